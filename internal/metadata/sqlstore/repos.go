package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata"
)

// This file holds repositories and blobs with their repository links; manifests.go the
// manifests, tags and referrers; gc.go the pin / mark / sweep protocol.

// EnsureRepository creates the repository if it does not exist; replicas racing to
// create it all succeed.
func (s *Store) EnsureRepository(ctx context.Context, name string) error {
	return s.write(ctx, func(q querier) error {
		if err := s.lockRepo(ctx, q, name); err != nil {
			return err
		}
		_, err := s.ensureRepo(ctx, q, name, false)
		return err
	})
}

// RepositoryExists reports whether the repository exists.
func (s *Store) RepositoryExists(ctx context.Context, name string) (bool, error) {
	var exists bool
	err := s.do(ctx, func(q querier) error {
		return q.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM repositories WHERE name = $1)", name).Scan(&exists)
	})
	if err != nil {
		return false, fmt.Errorf("repository %s: %w", name, err)
	}
	return exists, nil
}

// ListRepositories returns up to n repository names in byte order after last.
func (s *Store) ListRepositories(ctx context.Context, last string, n int) ([]string, error) {
	var names []string
	err := s.do(ctx, func(q querier) error {
		var err error
		names, err = collect(scanString)(q.Query(ctx, "SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2",
			last, s.d.limit(n)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	return names, nil
}

// DeleteRepository removes a repository; its tags, manifests, manifest edges and blob
// links go by cascade. It takes the repository lock first, as PutManifest does.
func (s *Store) DeleteRepository(ctx context.Context, name string) error {
	err := s.write(ctx, func(q querier) error {
		if err := s.lockRepo(ctx, q, name); err != nil {
			return err
		}
		var id int64
		if err := q.QueryRow(ctx, "SELECT id FROM repositories WHERE name = $1"+s.d.forNoKeyUpdate, name).Scan(&id); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, "DELETE FROM repositories WHERE id = $1", id); err != nil {
			return err
		}
		return s.appendEvent(ctx, q, events.Event{Type: events.RepositoryDeleted, RepositoryID: id, Repository: name})
	})
	switch {
	case isNoRows(err):
		return fmt.Errorf("delete repository %s: %w", name, metadata.ErrRepositoryNotFound)
	case err != nil:
		return fmt.Errorf("delete repository %s: %w", name, err)
	}
	return nil
}

// repoID returns the id of a repository; "no rows" when it does not exist.
func repoID(ctx context.Context, q querier, name string) (int64, error) {
	var id int64
	err := q.QueryRow(ctx, "SELECT id FROM repositories WHERE name = $1", name).Scan(&id)
	return id, err
}

// ensureRepo returns the id of a repository, creating it inside q's transaction. With
// lock, the row is locked FOR NO KEY UPDATE until the transaction ends: the
// serialisation point of the manifest puts and deletes of one repository.
func (s *Store) ensureRepo(ctx context.Context, q querier, name string, lock bool) (int64, error) {
	if name == "" {
		return 0, errors.New("repository name is empty")
	}
	sel := "SELECT id FROM repositories WHERE name = $1"
	if lock {
		sel += s.d.forNoKeyUpdate
	}
	// Look first: the repository nearly always exists, and a SELECT writes nothing,
	// where an upsert would write a row version on every push.
	for range 3 {
		var id int64
		err := q.QueryRow(ctx, sel, name).Scan(&id)
		if err == nil {
			return id, nil
		}
		if !isNoRows(err) {
			return 0, fmt.Errorf("ensure repository %s: %w", name, err)
		}
		// The visibility of a new repository is its namespace's default, chosen here so
		// every path creating a repository (a blob link, a manifest push, an explicit
		// create) applies it. A row inserted by this transaction is ours alone until
		// commit, so it needs no further lock.
		var vis string
		err = q.QueryRow(ctx, `INSERT INTO repositories (name, created_at, visibility)
			VALUES ($1, $2, COALESCE((SELECT default_visibility FROM namespaces WHERE name = $3), 'private'))
			ON CONFLICT (name) DO NOTHING
			RETURNING id, visibility`, name, nanos(time.Time{}), namespaceOf(name)).Scan(&id, &vis)
		if err == nil {
			return id, s.appendEvent(ctx, q, events.Event{Type: events.RepositoryCreated, RepositoryID: id, Repository: name, Visibility: vis})
		}
		if !isNoRows(err) {
			return 0, fmt.Errorf("ensure repository %s: %w", name, err)
		}
		// Another transaction inserted it between our SELECT and INSERT, and has
		// committed (ON CONFLICT waits for it): the next SELECT, a new snapshot at READ
		// COMMITTED, sees it.
	}
	return 0, fmt.Errorf("ensure repository %s: created and deleted concurrently, try again", name)
}

// PutBlob records a durably stored blob; recording it again keeps the first record,
// except that it fills in the size and location of a pending row left by PinBlob.
func (s *Store) PutBlob(ctx context.Context, b metadata.Blob) error {
	return s.write(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO blobs (digest, size, location, created_at) VALUES ($1, $2, $3, $4)
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
	err := s.do(ctx, func(q querier) error {
		return q.QueryRow(ctx, "SELECT size, location, created_at FROM blobs WHERE digest = $1 AND size >= 0",
			d.String()).Scan(&b.Size, &b.Location, &created)
	})
	switch {
	case isNoRows(err):
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
	return s.write(ctx, func(q querier) error { return s.linkBlob(ctx, q, repo, d) })
}

// linkBlob is LinkBlob inside q's transaction. A pending row (size -1, see PinBlob) is
// not a blob yet.
func (s *Store) linkBlob(ctx context.Context, q querier, repo string, d digest.Digest) error {
	var size int64
	// KEY SHARE keeps the blob row from being deleted (by GC) before the link commits.
	switch err := q.QueryRow(ctx, "SELECT size FROM blobs WHERE digest = $1 AND size >= 0"+s.d.forKeyShare,
		d.String()).Scan(&size); {
	case isNoRows(err):
		return fmt.Errorf("link blob %s to %s: %w", d, repo, metadata.ErrBlobNotFound)
	case err != nil:
		return fmt.Errorf("link blob %s to %s: %w", d, repo, err)
	}
	if err := s.checkQuota(ctx, q, repo, d, size); err != nil {
		return fmt.Errorf("link blob %s to %s: %w", d, repo, err)
	}
	id, err := s.ensureRepo(ctx, q, repo, false)
	if err != nil {
		return err
	}
	_, err = q.Exec(ctx, `INSERT INTO repository_blobs (repo_id, digest, created_at) VALUES ($1, $2, $3)
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
	err := s.do(ctx, func(q querier) error {
		return q.QueryRow(ctx, `SELECT b.size, b.location, b.created_at
			FROM repository_blobs rb
			JOIN repositories r ON r.id = rb.repo_id
			JOIN blobs b ON b.digest = rb.digest
			WHERE r.name = $1 AND rb.digest = $2 AND b.size >= 0`, repo, d.String()).Scan(&b.Size, &b.Location, &created)
	})
	switch {
	case isNoRows(err):
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
	return s.write(ctx, func(q querier) error {
		if err := s.lockRepo(ctx, q, repo); err != nil {
			return err
		}
		var id int64
		err := q.QueryRow(ctx, `DELETE FROM repository_blobs
			WHERE repo_id = (SELECT id FROM repositories WHERE name = $1) AND digest = $2
			RETURNING repo_id`, repo, d.String()).Scan(&id)
		if isNoRows(err) {
			return fmt.Errorf("unlink blob %s from %s: %w", d, repo, metadata.ErrBlobNotFound)
		}
		if err == nil {
			err = s.appendEvent(ctx, q, events.Event{Type: events.BlobDeleted, RepositoryID: id, Repository: repo, Digest: d.String()})
		}
		if err != nil {
			return fmt.Errorf("unlink blob %s from %s: %w", d, repo, err)
		}
		return nil
	})
}
