package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/metadata"
)

// EnsureRepository creates the repository if it does not exist; replicas racing to
// create it all succeed.
func (s *Store) EnsureRepository(ctx context.Context, name string) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		_, err := ensureRepo(ctx, tx, name, false)
		return err
	})
}

// RepositoryExists reports whether the repository exists.
func (s *Store) RepositoryExists(ctx context.Context, name string) (bool, error) {
	var exists bool
	err := s.retry(ctx, func() error {
		return s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM repositories WHERE name = $1)", name).Scan(&exists)
	})
	if err != nil {
		return false, fmt.Errorf("repository %s: %w", name, err)
	}
	return exists, nil
}

// ListRepositories returns up to n repository names in byte order after last.
func (s *Store) ListRepositories(ctx context.Context, last string, n int) ([]string, error) {
	var names []string
	err := s.retry(ctx, func() error {
		rows, err := s.pool.Query(ctx, "SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2", last, limit(n))
		if err != nil {
			return err
		}
		names, err = collectStrings(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	return names, nil
}

// PutBlob records a durably stored blob; recording it again keeps the first record,
// except that it fills in the size and location of a pending row left by PinBlob.
func (s *Store) PutBlob(ctx context.Context, b metadata.Blob) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO blobs (digest, size, location, created_at) VALUES ($1, $2, $3, $4)
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
	err := s.retry(ctx, func() error {
		return s.pool.QueryRow(ctx, "SELECT size, location, created_at FROM blobs WHERE digest = $1 AND size >= 0", d.String()).Scan(&b.Size, &b.Location, &created)
	})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return metadata.Blob{}, fmt.Errorf("blob %s: %w", d, metadata.ErrBlobNotFound)
	case err != nil:
		return metadata.Blob{}, fmt.Errorf("blob %s: %w", d, err)
	}
	b.CreatedAt = fromNanos(created)
	return b, nil
}

// LinkBlob makes a known blob part of repo, creating the repository; linking twice, or
// from two replicas at once, is not an error. A blob new to the namespace must fit in
// its quota (metadata.ErrQuotaExceeded).
func (s *Store) LinkBlob(ctx context.Context, repo string, d digest.Digest) error {
	return s.write(ctx, func(tx pgx.Tx) error { return linkBlob(ctx, tx, repo, d) })
}

// linkBlob is LinkBlob inside tx. A pending row (size -1, see PinBlob) is not a blob yet.
func linkBlob(ctx context.Context, tx pgx.Tx, repo string, d digest.Digest) error {
	var size int64
	// KEY SHARE keeps the blob row from being deleted (by GC) before the link commits.
	switch err := tx.QueryRow(ctx, "SELECT size FROM blobs WHERE digest = $1 AND size >= 0 FOR KEY SHARE", d.String()).Scan(&size); {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("link blob %s to %s: %w", d, repo, metadata.ErrBlobNotFound)
	case err != nil:
		return fmt.Errorf("link blob %s to %s: %w", d, repo, err)
	}
	if err := checkQuota(ctx, tx, repo, d, size); err != nil {
		return fmt.Errorf("link blob %s to %s: %w", d, repo, err)
	}
	id, err := ensureRepo(ctx, tx, repo, false)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO repository_blobs (repo_id, digest, created_at) VALUES ($1, $2, $3)
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
	err := s.retry(ctx, func() error {
		return s.pool.QueryRow(ctx, `SELECT b.size, b.location, b.created_at
			FROM repository_blobs rb
			JOIN repositories r ON r.id = rb.repo_id
			JOIN blobs b ON b.digest = rb.digest
			WHERE r.name = $1 AND rb.digest = $2 AND b.size >= 0`, repo, d.String()).Scan(&b.Size, &b.Location, &created)
	})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
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
	return s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM repository_blobs
			WHERE repo_id = (SELECT id FROM repositories WHERE name = $1) AND digest = $2`, repo, d.String())
		if err != nil {
			return fmt.Errorf("unlink blob %s from %s: %w", d, repo, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("unlink blob %s from %s: %w", d, repo, metadata.ErrBlobNotFound)
		}
		return nil
	})
}
