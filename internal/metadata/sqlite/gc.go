package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/metadata"
)

// Garbage collection (docs/design/gc.md). SQLite has one writer: every transaction
// below runs alone, so the pin / mark / sweep protocol needs no row locks here; the
// sweep deletes the bytes inside its write transaction, so no pin can slip in between.

// PinBlob claims a blob for a push; see metadata.Store. A new row is pending (size -1)
// whatever size says: its bytes are not verified yet. size is accepted for the
// interface's sake (the declared length) and not recorded.
func (s *Store) PinBlob(ctx context.Context, d digest.Digest, size int64) (time.Time, error) {
	now := nanos(time.Time{})
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO blobs (digest, size, created_at, pinned_at, deleting_at)
			VALUES (?, -1, ?, ?, NULL)
			ON CONFLICT (digest) DO UPDATE SET pinned_at = excluded.pinned_at, deleting_at = NULL`,
			d.String(), now, now)
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
	err := s.write(ctx, func(tx *sql.Tx) error {
		if upload != "" {
			res, err := tx.ExecContext(ctx, "DELETE FROM uploads WHERE id = ? AND claimed_at IS NULL", upload)
			if err != nil {
				return fmt.Errorf("commit blob %s: finish upload %s: %w", b.Digest, upload, err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("commit blob %s: finish upload %s: %w", b.Digest, upload, err)
			} else if n == 0 {
				return fmt.Errorf("commit blob %s: upload %s: %w", b.Digest, upload, metadata.ErrUploadNotFound)
			}
		}
		// Both CASEs see the old row, so size and location are recorded together or not
		// at all: a second commit of the same blob keeps the first one's location.
		switch err := tx.QueryRowContext(ctx, `UPDATE blobs SET size = CASE WHEN size < 0 THEN ? ELSE size END,
				location = CASE WHEN size < 0 THEN ? ELSE location END
			WHERE digest = ? AND created_at <= ? AND deleting_at IS NULL
			RETURNING location`,
			b.Size, b.Location, b.Digest.String(), pinnedAt.UTC().UnixNano()).Scan(&location); {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("commit blob %s: %w", b.Digest, metadata.ErrBlobReclaimed)
		case err != nil:
			return fmt.Errorf("commit blob %s: %w", b.Digest, err)
		}
		return linkBlob(ctx, tx, repo, b.Digest)
	})
	if err != nil {
		return "", err
	}
	return location, nil
}

// gcUntaggedWhere selects manifests m that phase 1 removes.
const gcUntaggedWhere = `m.created_at < ?
	AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo_id = m.repo_id AND t.digest = m.digest)
	AND NOT EXISTS (SELECT 1 FROM manifest_refs mr
		WHERE mr.repo_id = m.repo_id AND mr.ref_digest = m.digest AND mr.kind = 'manifest')
	AND NOT (m.subject IS NOT NULL AND EXISTS (SELECT 1 FROM manifests sm
		WHERE sm.repo_id = m.repo_id AND sm.digest = m.subject))`

// GCUntaggedManifests is phase 1; see metadata.Store.
func (s *Store) GCUntaggedManifests(ctx context.Context, before time.Time, dryRun bool) ([]metadata.Manifest, error) {
	var out []metadata.Manifest
	list := func(tx *sql.Tx) ([]int64, error) {
		rows, err := tx.QueryContext(ctx, `SELECT m.repo_id, r.name, m.digest, m.media_type, m.artifact_type, m.size, m.subject, m.annotations, m.created_at
			FROM manifests m JOIN repositories r ON r.id = m.repo_id
			WHERE `+gcUntaggedWhere+` ORDER BY r.name, m.digest`, before.UTC().UnixNano())
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		out = []metadata.Manifest{}
		var ids []int64
		for rows.Next() {
			var (
				id                   int64
				m                    metadata.Manifest
				dg                   string
				subject, annotations sql.NullString
				created              int64
			)
			if err := rows.Scan(&id, &m.Repository, &dg, &m.MediaType, &m.ArtifactType, &m.Size, &subject, &annotations, &created); err != nil {
				return nil, err
			}
			m.Digest = digest.Digest(dg)
			m.Subject = digest.Digest(subject.String)
			m.CreatedAt = fromNanos(created)
			if m.Annotations, err = decodeAnnotations(annotations); err != nil {
				return nil, err
			}
			ids = append(ids, id)
			out = append(out, m)
		}
		return ids, rows.Err()
	}
	var err error
	if dryRun {
		err = s.read(ctx, func(tx *sql.Tx) error { _, err := list(tx); return err })
	} else {
		err = s.write(ctx, func(tx *sql.Tx) error {
			ids, err := list(tx)
			if err != nil {
				return err
			}
			for i, m := range out {
				if _, err := deleteManifest(ctx, tx, ids[i], m.Repository, m.Digest); err != nil {
					return fmt.Errorf("delete manifest %s@%s: %w", m.Repository, m.Digest, err)
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

// gcUnlinkWhere selects repository links rb that phase 2 removes.
const gcUnlinkWhere = `created_at < ? AND NOT EXISTS (SELECT 1 FROM manifest_refs mr
	WHERE mr.repo_id = repository_blobs.repo_id AND mr.ref_digest = repository_blobs.digest AND mr.kind = 'blob')`

// GCUnlinkUnreferenced is phase 2; see metadata.Store. The single writer orders it
// with every PutManifest.
func (s *Store) GCUnlinkUnreferenced(ctx context.Context, before time.Time, dryRun bool) (int, error) {
	var n int64
	var err error
	if dryRun {
		err = s.r.QueryRowContext(ctx, "SELECT count(*) FROM repository_blobs WHERE "+gcUnlinkWhere, before.UTC().UnixNano()).Scan(&n)
	} else {
		err = s.write(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, "DELETE FROM repository_blobs WHERE "+gcUnlinkWhere, before.UTC().UnixNano())
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
	}
	if err != nil {
		return 0, fmt.Errorf("gc unreferenced links: %w", err)
	}
	return int(n), nil
}

const gcUnlinked = `NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = blobs.digest)`

// gcDryRunWhere is the mark's condition in a dry run, where the links phase 2 would
// remove (same cutoff) count as gone.
const gcDryRunWhere = `deleting_at IS NULL AND max(created_at, COALESCE(pinned_at, 0)) < ?
	AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = blobs.digest
		AND NOT (rb.created_at < ? AND NOT EXISTS (SELECT 1 FROM manifest_refs mr
			WHERE mr.repo_id = rb.repo_id AND mr.ref_digest = rb.digest AND mr.kind = 'blob')))`

// GCMarkBlobs is phase 3a; see metadata.Store.
func (s *Store) GCMarkBlobs(ctx context.Context, before time.Time, dryRun bool) ([]metadata.Blob, error) {
	where := `deleting_at IS NULL AND max(created_at, COALESCE(pinned_at, 0)) < ? AND ` + gcUnlinked
	var out []metadata.Blob
	var err error
	if dryRun {
		err = s.read(ctx, func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx, "SELECT digest, size, location, created_at FROM blobs WHERE "+gcDryRunWhere+" ORDER BY digest",
				before.UTC().UnixNano(), before.UTC().UnixNano())
			if err != nil {
				return err
			}
			out, err = scanBlobs(rows)
			return err
		})
	} else {
		err = s.write(ctx, func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx, "UPDATE blobs SET deleting_at = ? WHERE "+where+" RETURNING digest, size, location, created_at",
				nanos(time.Time{}), before.UTC().UnixNano())
			if err != nil {
				return err
			}
			out, err = scanBlobs(rows)
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("gc mark blobs: %w", err)
	}
	return out, nil
}

// gcSweepable selects the blobs phase 3b may delete: marked before the cutoff, not
// pinned since the mark, linked nowhere.
const gcSweepable = `deleting_at IS NOT NULL AND deleting_at < ?
	AND (pinned_at IS NULL OR pinned_at < deleting_at) AND ` + gcUnlinked

// GCSweepCandidates lists the blobs GCSweepBlob would delete; see metadata.Store.
func (s *Store) GCSweepCandidates(ctx context.Context, before time.Time) ([]metadata.Blob, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT digest, size, location, created_at FROM blobs WHERE "+gcSweepable+" ORDER BY digest",
		before.UTC().UnixNano())
	if err != nil {
		return nil, fmt.Errorf("gc sweep candidates: %w", err)
	}
	out, err := scanBlobs(rows)
	if err != nil {
		return nil, fmt.Errorf("gc sweep candidates: %w", err)
	}
	return out, nil
}

// GCSweepBlob deletes one blob's bytes and row in one write transaction; see
// metadata.Store.
func (s *Store) GCSweepBlob(ctx context.Context, d digest.Digest, before time.Time, del func(location string) error) (bool, error) {
	swept := false
	err := s.write(ctx, func(tx *sql.Tx) error {
		swept = false
		var location string
		switch err := tx.QueryRowContext(ctx, "SELECT location FROM blobs WHERE digest = ? AND "+gcSweepable,
			d.String(), before.UTC().UnixNano()).Scan(&location); {
		case errors.Is(err, sql.ErrNoRows):
			return nil
		case err != nil:
			return err
		}
		if err := del(location); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM blobs WHERE digest = ?", d.String()); err != nil {
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

func scanBlobs(rows *sql.Rows) ([]metadata.Blob, error) {
	defer rows.Close()
	out := []metadata.Blob{}
	for rows.Next() {
		var (
			b       metadata.Blob
			dg      string
			created int64
		)
		if err := rows.Scan(&dg, &b.Size, &b.Location, &created); err != nil {
			return nil, err
		}
		b.Digest = digest.Digest(dg)
		b.CreatedAt = fromNanos(created)
		out = append(out, b)
	}
	return out, rows.Err()
}

// UnpinBlob removes the pending row a failed push's pin created, if it is still that.
func (s *Store) UnpinBlob(ctx context.Context, d digest.Digest, pinnedAt time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM blobs WHERE digest = ? AND size < 0 AND pinned_at = ?
			AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = blobs.digest)`,
			d.String(), pinnedAt.UTC().UnixNano()); err != nil {
			return fmt.Errorf("unpin blob %s: %w", d, err)
		}
		return nil
	})
}
