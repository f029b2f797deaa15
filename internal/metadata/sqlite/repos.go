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

// EnsureRepository creates the repository if it does not exist.
func (s *Store) EnsureRepository(ctx context.Context, name string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := ensureRepo(ctx, tx, name)
		return err
	})
}

// RepositoryExists reports whether the repository exists.
func (s *Store) RepositoryExists(ctx context.Context, name string) (bool, error) {
	switch _, err := repoID(ctx, s.r, name); {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("repository %s: %w", name, err)
	}
	return true, nil
}

// ListRepositories returns up to n repository names in byte order after last.
func (s *Store) ListRepositories(ctx context.Context, last string, n int) ([]string, error) {
	rows, err := s.r.QueryContext(ctx,
		"SELECT name FROM repositories WHERE name > ? ORDER BY name LIMIT ?", last, limit(n))
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	names, err := scanStrings(rows)
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	return names, nil
}

// PutBlob records a durably stored blob; recording it again keeps the first record,
// except that it fills in the size and location of a pending row left by PinBlob.
func (s *Store) PutBlob(ctx context.Context, b metadata.Blob) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO blobs (digest, size, location, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (digest) DO UPDATE SET size = excluded.size, location = excluded.location WHERE blobs.size < 0`,
			b.Digest.String(), b.Size, b.Location, nanos(b.CreatedAt))
		if err != nil {
			return fmt.Errorf("put blob %s: %w", b.Digest, err)
		}
		return nil
	})
}

// GetBlob returns a blob known to the registry, or metadata.ErrBlobNotFound.
func (s *Store) GetBlob(ctx context.Context, d digest.Digest) (metadata.Blob, error) {
	b := metadata.Blob{Digest: d}
	var created int64
	switch err := s.getBlob.QueryRowContext(ctx, d.String()).Scan(&b.Size, &b.Location, &created); {
	case errors.Is(err, sql.ErrNoRows):
		return metadata.Blob{}, fmt.Errorf("blob %s: %w", d, metadata.ErrBlobNotFound)
	case err != nil:
		return metadata.Blob{}, fmt.Errorf("blob %s: %w", d, err)
	}
	b.CreatedAt = fromNanos(created)
	return b, nil
}

// LinkBlob makes a known blob part of repo, creating the repository; linking twice is
// not an error. A blob new to the namespace must fit in its quota
// (metadata.ErrQuotaExceeded).
func (s *Store) LinkBlob(ctx context.Context, repo string, d digest.Digest) error {
	return s.write(ctx, func(tx *sql.Tx) error { return linkBlob(ctx, tx, repo, d) })
}

// linkBlob is LinkBlob inside tx. A pending row (size -1, see PinBlob) is not a blob yet.
func linkBlob(ctx context.Context, tx *sql.Tx, repo string, d digest.Digest) error {
	var size int64
	switch err := tx.QueryRowContext(ctx, "SELECT size FROM blobs WHERE digest = ? AND size >= 0", d.String()).Scan(&size); {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("link blob %s to %s: %w", d, repo, metadata.ErrBlobNotFound)
	case err != nil:
		return fmt.Errorf("link blob %s to %s: %w", d, repo, err)
	}
	if err := checkQuota(ctx, tx, repo, d, size); err != nil {
		return fmt.Errorf("link blob %s to %s: %w", d, repo, err)
	}
	id, err := ensureRepo(ctx, tx, repo)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO repository_blobs (repo_id, digest, created_at) VALUES (?, ?, ?)
		ON CONFLICT (repo_id, digest) DO NOTHING`, id, d.String(), nanos(time.Time{}))
	if err != nil {
		return fmt.Errorf("link blob %s to %s: %w", d, repo, err)
	}
	return nil
}

// RepositoryBlob returns the blob if it is linked to repo, or metadata.ErrBlobNotFound.
func (s *Store) RepositoryBlob(ctx context.Context, repo string, d digest.Digest) (metadata.Blob, error) {
	b := metadata.Blob{Digest: d}
	var created int64
	switch err := s.repositoryBlob.QueryRowContext(ctx, repo, d.String()).Scan(&b.Size, &b.Location, &created); {
	case errors.Is(err, sql.ErrNoRows):
		return metadata.Blob{}, fmt.Errorf("blob %s in %s: %w", d, repo, metadata.ErrBlobNotFound)
	case err != nil:
		return metadata.Blob{}, fmt.Errorf("blob %s in %s: %w", d, repo, err)
	}
	b.CreatedAt = fromNanos(created)
	return b, nil
}

// UnlinkBlob removes the blob from repo, or returns metadata.ErrBlobNotFound. The blob
// itself stays known: other repositories may link it, and GC decides when it goes.
func (s *Store) UnlinkBlob(ctx context.Context, repo string, d digest.Digest) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM repository_blobs
			WHERE repo_id = (SELECT id FROM repositories WHERE name = ?) AND digest = ?`, repo, d.String())
		if err != nil {
			return fmt.Errorf("unlink blob %s from %s: %w", d, repo, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("unlink blob %s from %s: %w", d, repo, err)
		} else if n == 0 {
			return fmt.Errorf("unlink blob %s from %s: %w", d, repo, metadata.ErrBlobNotFound)
		}
		return nil
	})
}

func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
