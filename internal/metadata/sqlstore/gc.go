package sqlstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata"
)

// Garbage collection (docs/design/gc.md). The pin / mark / sweep protocol relies on
// row locks on blobs: PinBlob's upsert and GCMarkBlobs's UPDATE lock the row, and
// GCSweepBlob holds it FOR UPDATE while it deletes the bytes, so a pin either lands
// before the sweep's lock (the sweep's re-check then finds deleting_at cleared) or
// after the row is gone (the push finds no row and no bytes). LinkBlob's KEY SHARE
// conflicts with FOR UPDATE, so a link and a sweep of one blob are ordered too.

// PinBlob claims a blob for a push; see metadata.Store. A new row is pending (size -1)
// whatever size says: its bytes are not verified yet. size is accepted for the
// interface's sake (the declared length) and not recorded.
func (s *Store) PinBlob(ctx context.Context, d digest.Digest, size int64) (time.Time, error) {
	var now int64
	err := s.write(ctx, func(q querier) error {
		now = nanos(time.Time{})
		_, err := q.Exec(ctx, `INSERT INTO blobs (digest, size, created_at, pinned_at, deleting_at)
			VALUES ($1, -1, $2, $2, NULL)
			ON CONFLICT (digest) DO UPDATE SET pinned_at = excluded.pinned_at, deleting_at = NULL`,
			d.String(), now)
		return err
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("pin blob %s: %w", d, err)
	}
	return fromNanos(now), nil
}

// CommitBlob records the size and location of a pinned blob and links it to repo, if
// GC has not marked or swept it since pinnedAt (else metadata.ErrBlobReclaimed). It
// returns the location the row holds: b.Location, or the one an earlier commit recorded.
func (s *Store) CommitBlob(ctx context.Context, repo string, b metadata.Blob, pinnedAt time.Time) (string, error) {
	return s.CommitUploadedBlob(ctx, repo, b, pinnedAt, "")
}

// CommitUploadedBlob is CommitBlob that also deletes upload session upload (when not
// ""), and commits nothing when the session is gone; see metadata.Store.
func (s *Store) CommitUploadedBlob(ctx context.Context, repo string, b metadata.Blob, pinnedAt time.Time, upload string) (string, error) {
	var location string
	err := s.write(ctx, func(q querier) error {
		if upload != "" {
			// The row lock this takes orders it against a concurrent ClaimUpload: one of
			// the two takes the session (this deletes it, a claim marks it), and the
			// other, re-checking its condition after the lock, finds it gone.
			n, err := q.Exec(ctx, "DELETE FROM uploads WHERE id = $1 AND claimed_at IS NULL", upload)
			if err != nil {
				return fmt.Errorf("commit blob %s: finish upload %s: %w", b.Digest, upload, err)
			}
			if n == 0 {
				return fmt.Errorf("commit blob %s: upload %s: %w", b.Digest, upload, metadata.ErrUploadNotFound)
			}
		}
		// Both CASEs see the row as the UPDATE found it after waiting for its lock, so
		// size and location are recorded together, once: a concurrent commit of the same
		// blob re-evaluates against the committed row and keeps its location.
		switch err := q.QueryRow(ctx, `UPDATE blobs SET size = CASE WHEN size < 0 THEN $1 ELSE size END,
				location = CASE WHEN size < 0 THEN $2 ELSE location END
			WHERE digest = $3 AND created_at <= $4 AND deleting_at IS NULL
			RETURNING location`,
			b.Size, b.Location, b.Digest.String(), pinnedAt.UTC().UnixNano()).Scan(&location); {
		case isNoRows(err):
			return fmt.Errorf("commit blob %s: %w", b.Digest, metadata.ErrBlobReclaimed)
		case err != nil:
			return fmt.Errorf("commit blob %s: %w", b.Digest, err)
		}
		return s.linkBlob(ctx, q, repo, b.Digest)
	})
	if err != nil {
		return "", err
	}
	return location, nil
}

// gcUntaggedWhere selects manifests m that phase 1 removes; hold is the parameter
// holding the tag-history cutoff (holdCutoff): a manifest a tag moved away from after
// it stays.
func gcUntaggedWhere(hold string) string {
	return `m.created_at < $1
	AND NOT ` + heldWhere(hold) + `
	AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo_id = m.repo_id AND t.digest = m.digest)
	AND NOT EXISTS (SELECT 1 FROM manifest_refs mr
		WHERE mr.repo_id = m.repo_id AND mr.ref_digest = m.digest AND mr.kind = 'manifest')
	AND NOT (m.subject IS NOT NULL AND EXISTS (SELECT 1 FROM manifests sm
		WHERE sm.repo_id = m.repo_id AND sm.digest = m.subject))`
}

// lockRepos locks, in id order, the repositories ids selects (a query on $1 = the
// cutoff), FOR NO KEY UPDATE as PutManifest and DeleteManifest do, and returns them.
func (s *Store) lockRepos(ctx context.Context, q querier, ids string, args ...any) ([]int64, error) {
	return collect(func(r row) (int64, error) {
		var id int64
		err := r.Scan(&id)
		return id, err
	})(q.Query(ctx, "SELECT id FROM repositories WHERE id IN ("+ids+") ORDER BY id"+s.d.forNoKeyUpdate, args...))
}

// GCUntaggedManifests is phase 1; see metadata.Store. It locks the repositories
// holding candidates first, then deletes with a statement whose snapshot is taken
// under those locks, so a concurrent tag move onto a candidate either committed
// before (the candidate is spared) or waits until after.
func (s *Store) GCUntaggedManifests(ctx context.Context, before time.Time, dryRun bool) ([]metadata.Manifest, error) {
	var out []metadata.Manifest
	cutoff, hold := before.UTC().UnixNano(), s.holdCutoff()
	var err error
	if dryRun {
		err = s.read(ctx, func(q querier) error {
			var err error
			out, err = collect(func(r row) (metadata.Manifest, error) {
				var name string
				m, err := scanManifest(scanFirst{r, &name}, false)
				m.Repository = name
				return m, err
			})(q.Query(ctx, `SELECT r.name, `+mManifestColumns+`
				FROM manifests m JOIN repositories r ON r.id = m.repo_id
				WHERE `+gcUntaggedWhere("$2")+` ORDER BY r.name, m.digest`, cutoff, hold))
			return err
		})
	} else {
		err = s.write(ctx, func(q querier) error {
			out = []metadata.Manifest{}
			ids, err := s.lockRepos(ctx, q, "SELECT DISTINCT m.repo_id FROM manifests m WHERE "+gcUntaggedWhere("$2"), cutoff, hold)
			if err != nil || len(ids) == 0 {
				return err
			}
			names := map[int64]string{}
			for _, id := range ids {
				var name string
				if err := q.QueryRow(ctx, "SELECT name FROM repositories WHERE id = $1", id).Scan(&name); err != nil {
					return err
				}
				names[id] = name
			}
			// No tag points at a candidate, so DeleteManifest's tag deletion has nothing
			// to do; manifest_refs go by cascade, referrer entries with the row.
			out, err = collect(func(r row) (metadata.Manifest, error) {
				var id int64
				m, err := scanManifest(scanFirst{r, &id}, false)
				m.Repository = names[id]
				return m, err
			})(q.Query(ctx, `DELETE FROM manifests AS m
				WHERE m.repo_id IN (SELECT value FROM `+s.d.list("$2", "bigint")+`) AND `+gcUntaggedWhere("$3")+`
				RETURNING repo_id, `+manifestColumns, cutoff, s.d.listArg(ids), hold))
			if err != nil {
				return err
			}
			slices.SortFunc(out, func(a, b metadata.Manifest) int {
				return cmp.Or(strings.Compare(a.Repository, b.Repository), strings.Compare(string(a.Digest), string(b.Digest)))
			})
			byName := make(map[string]int64, len(names))
			for id, name := range names {
				byName[name] = id
			}
			for _, m := range out {
				if err := s.appendEvent(ctx, q, events.Event{Type: events.ManifestDeleted, RepositoryID: byName[m.Repository],
					Repository: m.Repository, Digest: m.Digest.String(), MediaType: m.MediaType, ArtifactType: m.ArtifactType,
					Size: m.Size}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("gc untagged manifests: %w", err)
	}
	return out, nil
}

// scanFirst scans a leading column into first, then the rest as scanManifest wants.
type scanFirst struct {
	row   row
	first any
}

func (s scanFirst) Scan(dest ...any) error { return s.row.Scan(append([]any{s.first}, dest...)...) }

// gcUnlinkWhere selects repository links that phase 2 removes.
const gcUnlinkWhere = `rb.created_at < $1 AND NOT EXISTS (SELECT 1 FROM manifest_refs mr
	WHERE mr.repo_id = rb.repo_id AND mr.ref_digest = rb.digest AND mr.kind = 'blob')`

// GCUnlinkUnreferenced is phase 2; see metadata.Store. The repositories with
// candidates are locked as PutManifest locks them, and the DELETE's snapshot is taken
// under the locks: a put that checked a link has committed its references by then.
func (s *Store) GCUnlinkUnreferenced(ctx context.Context, before time.Time, dryRun bool) (int, error) {
	cutoff := before.UTC().UnixNano()
	var n int64
	var err error
	if dryRun {
		err = s.do(ctx, func(q querier) error {
			return q.QueryRow(ctx, "SELECT count(*) FROM repository_blobs rb WHERE "+gcUnlinkWhere, cutoff).Scan(&n)
		})
	} else {
		err = s.write(ctx, func(q querier) error {
			n = 0
			ids, err := s.lockRepos(ctx, q, "SELECT DISTINCT rb.repo_id FROM repository_blobs rb WHERE "+gcUnlinkWhere, cutoff)
			if err != nil || len(ids) == 0 {
				return err
			}
			n, err = q.Exec(ctx, "DELETE FROM repository_blobs AS rb WHERE rb.repo_id IN (SELECT value FROM "+s.d.list("$2", "bigint")+") AND "+gcUnlinkWhere,
				cutoff, s.d.listArg(ids))
			return err
		})
	}
	if err != nil {
		return 0, fmt.Errorf("gc unreferenced links: %w", err)
	}
	return int(n), nil
}

const gcUnlinked = `NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = blobs.digest)` + gcNoWorkflowRow

// gcNoWorkflowRow: a workflow artifact or cache (artifacts.go) keeps its blob as a
// repository link does, until the run is purged or the cache evicted.
const gcNoWorkflowRow = ` AND NOT EXISTS (SELECT 1 FROM workflow_artifacts wa WHERE wa.digest = blobs.digest)
	AND NOT EXISTS (SELECT 1 FROM workflow_caches wc WHERE wc.digest = blobs.digest)`

// gcMarkable selects the blobs phase 3a marks, by their own columns: not marked yet,
// created and last pinned before the cutoff $1.
func (s *Store) gcMarkable() string {
	return `deleting_at IS NULL AND ` + s.d.greatest + `(created_at, COALESCE(pinned_at, 0)) < $1`
}

// gcDryRunUnlinked is gcUnlinked in a dry run, where the links phase 2 would remove
// (same cutoff) count as gone.
const gcDryRunUnlinked = `NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = blobs.digest
	AND NOT (rb.created_at < $1 AND NOT EXISTS (SELECT 1 FROM manifest_refs mr
		WHERE mr.repo_id = rb.repo_id AND mr.ref_digest = rb.digest AND mr.kind = 'blob')))` + gcNoWorkflowRow

// GCMarkBlobs is phase 3a; see metadata.Store.
func (s *Store) GCMarkBlobs(ctx context.Context, before time.Time, dryRun bool) ([]metadata.Blob, error) {
	var out []metadata.Blob
	var err error
	if dryRun {
		err = s.do(ctx, func(q querier) error {
			var err error
			out, err = collect(scanBlob)(q.Query(ctx, "SELECT "+blobColumns+" FROM blobs WHERE "+s.gcMarkable()+" AND "+gcDryRunUnlinked+" ORDER BY digest",
				before.UTC().UnixNano()))
			return err
		})
	} else {
		err = s.write(ctx, func(q querier) error {
			var err error
			out, err = collect(scanBlob)(q.Query(ctx, "UPDATE blobs SET deleting_at = $2 WHERE "+s.gcMarkable()+" AND "+gcUnlinked+" RETURNING "+blobColumns,
				before.UTC().UnixNano(), nanos(time.Time{})))
			if err == nil {
				slices.SortFunc(out, func(a, b metadata.Blob) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
			}
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("gc mark blobs: %w", err)
	}
	return out, nil
}

// gcSweepable selects the blobs phase 3b may delete by their own columns: marked
// before the cutoff and not pinned since the mark.
// p is the placeholder of the cutoff.
func gcSweepable(p string) string {
	return `deleting_at IS NOT NULL AND deleting_at < ` + p + ` AND (pinned_at IS NULL OR pinned_at < deleting_at)`
}

// GCSweepCandidates lists the blobs GCSweepBlob would delete; see metadata.Store.
func (s *Store) GCSweepCandidates(ctx context.Context, before time.Time) ([]metadata.Blob, error) {
	var out []metadata.Blob
	err := s.do(ctx, func(q querier) error {
		var err error
		out, err = collect(scanBlob)(q.Query(ctx, "SELECT "+blobColumns+" FROM blobs WHERE "+gcSweepable("$1")+" AND "+gcUnlinked+" ORDER BY digest",
			before.UTC().UnixNano()))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("gc sweep candidates: %w", err)
	}
	return out, nil
}

// GCSweepBlob deletes one blob's bytes and row while holding the row FOR UPDATE; see
// metadata.Store. The link check is a separate statement after the lock, so its
// snapshot sees every link committed before the lock was granted.
func (s *Store) GCSweepBlob(ctx context.Context, d digest.Digest, before time.Time, del func(location string) error) (bool, error) {
	swept := false
	err := s.write(ctx, func(q querier) error {
		swept = false
		var location string
		switch err := q.QueryRow(ctx, "SELECT location FROM blobs WHERE digest = $1 AND "+gcSweepable("$2")+s.d.forUpdate,
			d.String(), before.UTC().UnixNano()).Scan(&location); {
		case isNoRows(err):
			return nil
		case err != nil:
			return err
		}
		var linked bool
		if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM repository_blobs WHERE digest = $1)
			OR EXISTS (SELECT 1 FROM workflow_artifacts WHERE digest = $1) OR EXISTS (SELECT 1 FROM workflow_caches WHERE digest = $1)`, d.String()).Scan(&linked); err != nil {
			return err
		}
		if linked {
			return nil
		}
		if err := del(location); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, "DELETE FROM blobs WHERE digest = $1", d.String()); err != nil {
			return err
		}
		swept = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("gc sweep blob %s: %w", d, err)
	}
	return swept, nil
}

// blobColumns are the columns scanBlob reads.
const blobColumns = "digest, size, location, created_at"

func scanBlob(r row) (metadata.Blob, error) {
	var (
		b       metadata.Blob
		dg      string
		created int64
	)
	if err := r.Scan(&dg, &b.Size, &b.Location, &created); err != nil {
		return metadata.Blob{}, err
	}
	b.Digest = digest.Digest(dg)
	b.CreatedAt = fromNanos(created)
	return b, nil
}

// UnpinBlob removes the pending row a failed push's pin created, if it is still that.
func (s *Store) UnpinBlob(ctx context.Context, d digest.Digest, pinnedAt time.Time) error {
	return s.write(ctx, func(q querier) error {
		if _, err := q.Exec(ctx, `DELETE FROM blobs WHERE digest = $1 AND size < 0 AND pinned_at = $2
			AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = blobs.digest)`,
			d.String(), pinnedAt.UTC().UnixNano()); err != nil {
			return fmt.Errorf("unpin blob %s: %w", d, err)
		}
		return nil
	})
}

// DiscardBlob deletes a refused push's bytes and pending row; see metadata.Store. The
// row qualifies only while created_at and pinned_at both equal pinnedAt: this pin
// created it (no push of the same digest pinned earlier and may be about to commit
// it) and nobody pinned it since. Size < 0 means no commit recorded it, so nothing
// links it. The lock orders it against a concurrent pin, as GCSweepBlob's does.
func (s *Store) DiscardBlob(ctx context.Context, d digest.Digest, pinnedAt time.Time, del func(location string) error) (bool, error) {
	discarded := false
	err := s.write(ctx, func(q querier) error {
		discarded = false
		var location string
		switch err := q.QueryRow(ctx, "SELECT location FROM blobs WHERE digest = $1 AND size < 0 AND pinned_at = $2 AND created_at = $2"+s.d.forUpdate,
			d.String(), pinnedAt.UTC().UnixNano()).Scan(&location); {
		case isNoRows(err):
			return nil
		case err != nil:
			return err
		}
		if err := del(location); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, "DELETE FROM blobs WHERE digest = $1", d.String()); err != nil {
			return err
		}
		discarded = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("discard blob %s: %w", d, err)
	}
	return discarded, nil
}
