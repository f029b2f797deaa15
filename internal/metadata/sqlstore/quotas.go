package sqlstore

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/metadata"
)

// nsRepos selects the repositories of a namespace ($1 the namespace, $2 ns+"/", $3
// ns+"0"). The range rather than LIKE, whose '_' is a wildcard (and which SQLite
// compares without case), keeps it on the name index: names compare in byte order in
// both databases (SQLite's BINARY collation, PostgreSQL's COLLATE "C"), '0' being the
// byte after '/'.
const nsRepos = "SELECT id FROM repositories WHERE name = $1 OR (name >= $2 AND name < $3)"

func nsArgs(ns string) []any { return []any{ns, ns + "/", ns + "0"} }

// usageQuery sums the sizes of the distinct blobs linked to a namespace. The CAST keeps
// PostgreSQL's SUM of BIGINT (a NUMERIC) an integer.
const usageQuery = `SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blobs WHERE digest IN
	(SELECT digest FROM repository_blobs WHERE repo_id IN (` + nsRepos + `))`

// SetQuota limits the bytes of a namespace; bytes <= 0 removes the limit.
func (s *Store) SetQuota(ctx context.Context, namespace string, bytes int64) error {
	var quota *int64
	if bytes > 0 {
		quota = &bytes
	}
	err := s.write(ctx, func(q querier) error {
		return mustAffect(q.Exec(ctx, "UPDATE namespaces SET quota_bytes = $1 WHERE name = $2", quota, namespace))
	})
	if err != nil {
		return fmt.Errorf("set quota of %s: %w", namespace, err)
	}
	return nil
}

// Usage returns the bytes of the distinct blobs linked to the namespace and its quota
// (0 when unlimited).
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
	var quota int64
	// No row (a namespace without an account) or NULL: unlimited.
	switch err := q.QueryRow(ctx, "SELECT quota_bytes FROM namespaces WHERE name = $1 AND quota_bytes IS NOT NULL"+s.d.forUpdate,
		ns).Scan(&quota); {
	case isNoRows(err):
		return nil
	case err != nil:
		return fmt.Errorf("quota of %s: %w", ns, err)
	}
	// At READ COMMITTED each statement sees what committed before it began, so after
	// the lock these see every link made under it before.
	var linked bool
	err := q.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM repository_blobs WHERE digest = $4 AND repo_id IN ("+nsRepos+"))",
		append(nsArgs(ns), d.String())...).Scan(&linked)
	if err != nil {
		return fmt.Errorf("quota of %s: %w", ns, err)
	}
	if linked {
		return nil // already counted in the namespace
	}
	var used int64
	if err := q.QueryRow(ctx, usageQuery, nsArgs(ns)...).Scan(&used); err != nil {
		return fmt.Errorf("usage of %s: %w", ns, err)
	}
	return metadata.QuotaError(ns, quota, used, size)
}
