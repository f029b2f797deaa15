package sqlstore

import (
	"context"
	"fmt"
	"strconv"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata"
)

// nsRepos selects the repositories of a namespace ($1 the namespace, $2 ns+"/", $3
// ns+"0"). The range rather than LIKE, whose '_' is a wildcard (and which SQLite
// compares without case), keeps it on the name index: names compare in byte order in
// both databases (SQLite's BINARY collation, PostgreSQL's COLLATE "C"), '0' being the
// byte after '/'.
const nsRepos = "SELECT id FROM repositories WHERE name = $1 OR (name >= $2 AND name < $3)"

func nsArgs(ns string) []any { return []any{ns, ns + "/", ns + "0"} }

// usageQuery sums what a namespace stores: the sizes of the distinct blobs linked to
// it, its manifests (metadata.ManifestQuotaBytes: the database keeps them, up to
// max_manifest_size each) and its tags (metadata.RowQuotaBytes each). The CASTs keep
// PostgreSQL's SUM of BIGINT (a NUMERIC) an integer.
var usageQuery = `SELECT CAST(COALESCE((SELECT SUM(size) FROM blobs WHERE digest IN
		(SELECT digest FROM repository_blobs WHERE repo_id IN (` + nsRepos + `))), 0) AS BIGINT)
	+ CAST(COALESCE((SELECT SUM(2 * size + ` + rowBytes + `) FROM manifests WHERE repo_id IN (` + nsRepos + `)), 0) AS BIGINT)
	+ (SELECT COUNT(*) FROM tags WHERE repo_id IN (` + nsRepos + `)) * ` + rowBytes

// rowBytes is metadata.RowQuotaBytes in SQL text.
var rowBytes = strconv.Itoa(metadata.RowQuotaBytes)

// nsUploads selects the upload sessions of a namespace's repositories, with the
// arguments of nsArgs: the same range as nsRepos, on the uploads_repository index.
const nsUploads = "repository = $1 OR (repository >= $2 AND repository < $3)"

// uploadingQuery sums what a namespace's open upload sessions hold or may still write:
// their received bytes and their reservations (ReserveUpload). Claimed sessions count
// too: their bytes are on disk until the claimer discards them.
const uploadingQuery = "SELECT CAST(COALESCE(SUM(upload_offset + reserved), 0) AS BIGINT) FROM uploads WHERE " + nsUploads

// SetQuota limits the bytes of a namespace; bytes <= 0 removes the limit.
func (s *Store) SetQuota(ctx context.Context, namespace string, bytes int64) error {
	var quota *int64
	if bytes > 0 {
		quota = &bytes
	}
	err := s.write(ctx, func(q querier) error {
		if err := mustAffect(q.Exec(ctx, "UPDATE namespaces SET quota_bytes = $1 WHERE name = $2", quota, namespace)); err != nil {
			return err
		}
		return s.recordChange(ctx, q, events.Event{Type: events.QuotaChanged,
			Detail: map[string]any{"namespace": namespace, "bytes": max(bytes, 0)}})
	})
	if err != nil {
		return fmt.Errorf("set quota of %s: %w", namespace, err)
	}
	return nil
}

// Usage returns the bytes the namespace stores (its distinct linked blobs, manifests
// and tags, as its quota counts them) and its quota (0 when unlimited).
func (s *Store) Usage(ctx context.Context, namespace string) (used, quota int64, err error) {
	err = s.read(ctx, func(q querier) error {
		var limit *int64
		if err := q.QueryRow(ctx, "SELECT quota_bytes FROM namespaces WHERE name = $1", namespace).Scan(&limit); err != nil {
			return notFound(err)
		}
		quota = 0
		if limit != nil {
			quota = *limit
		}
		return q.QueryRow(ctx, usageQuery, nsArgs(namespace)...).Scan(&used)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("usage of %s: %w", namespace, err)
	}
	return used, quota, nil
}

// checkQuota returns an error wrapping metadata.ErrQuotaExceeded when linking the blob
// d of size bytes into repo would take its namespace over its quota. It runs in the
// linking transaction and first locks the namespace's row, so links into one namespace
// from any replica are counted one after the other. Only a namespace with a quota is
// locked: FOR UPDATE locks the rows the WHERE clause keeps, so pushes into unlimited
// namespaces never wait on each other.
func (s *Store) checkQuota(ctx context.Context, q querier, repo string, d digest.Digest, size int64) error {
	ns := namespaceOf(repo)
	// No row (a namespace without an account) or NULL: unlimited.
	quota, limited, err := s.quotaOf(ctx, q, ns, true)
	if err != nil || !limited {
		return err
	}
	// At READ COMMITTED each statement sees what committed before it began, so after
	// the lock these see every link made under it before.
	var linked bool
	err = q.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM repository_blobs WHERE digest = $4 AND repo_id IN ("+nsRepos+"))",
		append(nsArgs(ns), d.String())...).Scan(&linked)
	if err != nil {
		return fmt.Errorf("quota of %s: %w", ns, err)
	}
	if linked {
		return nil // already counted in the namespace
	}
	used, uploading, err := s.nsUsage(ctx, q, ns)
	if err != nil {
		return err
	}
	return metadata.QuotaError(ns, quota, used, uploading, size, "blob of")
}

// checkGrowth refuses, in PutManifest's transaction and after its writes, a manifest
// (created) or tag (newTag) new to repository id that takes it past the repository
// limits or its namespace past its quota. The counts are bounded by the limit, so a
// repository far below it costs little; the quota check locks the namespace's row as
// checkQuota does, after the repository's (links never wait on a repository lock).
func (s *Store) checkGrowth(ctx context.Context, q querier, repo string, id int64, created, newTag bool, size int64) error {
	l := s.limits.Load()
	for _, c := range []struct {
		grew  bool
		limit int
		table string
		what  string
	}{
		{created, l.Manifests, "manifests", "manifests (limits.manifests_per_repository)"},
		{newTag, l.Tags, "tags", "tags (limits.tags_per_repository)"},
	} {
		if !c.grew || c.limit <= 0 {
			continue
		}
		var n int
		if err := q.QueryRow(ctx, "SELECT COUNT(*) FROM (SELECT 1 FROM "+c.table+" WHERE repo_id = $1 LIMIT $2) x",
			id, c.limit+1).Scan(&n); err != nil {
			return err
		}
		if n > c.limit {
			return fmt.Errorf("repository %s holds the most %s allow, %d: %w", repo, c.what, c.limit, metadata.ErrRepositoryFull)
		}
	}
	var charge int64
	what := "manifest of"
	if created {
		charge += metadata.ManifestQuotaBytes(size)
	}
	if newTag {
		charge += metadata.RowQuotaBytes
		if !created {
			what = "tag of"
		}
	}
	if charge == 0 {
		return nil
	}
	ns := namespaceOf(repo)
	quota, limited, err := s.quotaOf(ctx, q, ns, true)
	if err != nil || !limited {
		return err
	}
	used, uploading, err := s.nsUsage(ctx, q, ns)
	if err != nil {
		return err
	}
	// used counts what this transaction wrote.
	return metadata.QuotaError(ns, quota, used-charge, uploading, charge, what)
}

// nsUsage returns the bytes namespace ns stores (usageQuery) and those of its open
// upload sessions.
func (s *Store) nsUsage(ctx context.Context, q querier, ns string) (used, uploading int64, err error) {
	if err := q.QueryRow(ctx, usageQuery, nsArgs(ns)...).Scan(&used); err != nil {
		return 0, 0, fmt.Errorf("usage of %s: %w", ns, err)
	}
	if err := q.QueryRow(ctx, uploadingQuery, nsArgs(ns)...).Scan(&uploading); err != nil {
		return 0, 0, fmt.Errorf("uploads of %s: %w", ns, err)
	}
	return used, uploading, nil
}

// quotaOf returns the quota of namespace ns, or false when it has none (no row, or
// NULL). With lock (inside a write transaction), the namespace's row stays locked
// until commit, which orders every link and reservation into ns on any replica.
func (s *Store) quotaOf(ctx context.Context, q querier, ns string, lock bool) (int64, bool, error) {
	query := "SELECT quota_bytes FROM namespaces WHERE name = $1 AND quota_bytes IS NOT NULL"
	if lock {
		query += s.d.forUpdate
	}
	var quota int64
	switch err := q.QueryRow(ctx, query, ns).Scan(&quota); {
	case isNoRows(err):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("quota of %s: %w", ns, err)
	}
	return quota, true, nil
}

// ReserveUpload reserves room for bytes about to be appended to session id; see
// metadata.Store. A namespace without a quota costs one read and writes nothing.
func (s *Store) ReserveUpload(ctx context.Context, id string, atLeast, atMost int64) (int64, bool, error) {
	var repo string
	limited := false
	err := s.do(ctx, func(q querier) error {
		if err := q.QueryRow(ctx, "SELECT repository FROM uploads WHERE id = $1 AND claimed_at IS NULL", id).Scan(&repo); err != nil {
			if isNoRows(err) {
				return metadata.ErrUploadNotFound
			}
			return err
		}
		var err error
		_, limited, err = s.quotaOf(ctx, q, namespaceOf(repo), false)
		return err
	})
	if err != nil || !limited {
		if err != nil {
			return 0, false, fmt.Errorf("reserve for upload %s: %w", id, err)
		}
		return atMost, false, nil
	}
	var granted int64
	err = s.write(ctx, func(q querier) error {
		ns := namespaceOf(repo)
		quota, limited, err := s.quotaOf(ctx, q, ns, true)
		if err != nil {
			return err
		}
		if !limited {
			granted = atMost // lifted meanwhile
			return nil
		}
		used, uploading, err := s.nsUsage(ctx, q, ns)
		if err != nil {
			return err
		}
		granted = min(atMost, quota-used-uploading)
		if granted < atLeast {
			return metadata.QuotaError(ns, quota, used, uploading, atLeast, "upload of")
		}
		n, err := q.Exec(ctx, "UPDATE uploads SET reserved = reserved + $1 WHERE id = $2 AND claimed_at IS NULL", granted, id)
		if err == nil && n == 0 {
			err = metadata.ErrUploadNotFound
		}
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("reserve for upload %s: %w", id, err)
	}
	return granted, true, nil
}

// ReleaseUpload drops session id's reservation; see metadata.Store.
func (s *Store) ReleaseUpload(ctx context.Context, id string) error {
	return s.write(ctx, func(q querier) error {
		if _, err := q.Exec(ctx, "UPDATE uploads SET reserved = 0 WHERE id = $1 AND reserved <> 0", id); err != nil {
			return fmt.Errorf("release upload %s: %w", id, err)
		}
		return nil
	})
}

// QuotaHeadroom returns the room left for blob d in repo's namespace; see
// metadata.Store.
func (s *Store) QuotaHeadroom(ctx context.Context, repo string, d digest.Digest, size int64) (int64, bool, error) {
	var headroom int64
	limited := false
	err := s.read(ctx, func(q querier) error {
		ns := namespaceOf(repo)
		quota, ok, err := s.quotaOf(ctx, q, ns, false)
		if err != nil || !ok {
			return err
		}
		var linked bool
		err = q.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM repository_blobs WHERE digest = $4 AND repo_id IN ("+nsRepos+"))",
			append(nsArgs(ns), d.String())...).Scan(&linked)
		if err != nil || linked {
			return err
		}
		used, uploading, err := s.nsUsage(ctx, q, ns)
		if err != nil {
			return err
		}
		headroom, limited = quota-used-uploading, true
		if size >= 0 {
			return metadata.QuotaError(ns, quota, used, uploading, size, "blob of")
		}
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("quota headroom of %s: %w", repo, err)
	}
	return headroom, limited, nil
}
