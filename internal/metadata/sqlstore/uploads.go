package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hubctl/hubctl/internal/metadata"
)

const uploadColumns = "id, repository, upload_offset, hash_state, backend_state, created_at, updated_at"

// CreateUpload records a new upload session. Zero times mean now.
func (s *Store) CreateUpload(ctx context.Context, u metadata.Upload) error {
	created := nanos(u.CreatedAt)
	updated := created
	if !u.UpdatedAt.IsZero() {
		updated = nanos(u.UpdatedAt)
	}
	return s.write(ctx, func(q querier) error {
		_, err := q.Exec(ctx, "INSERT INTO uploads ("+uploadColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7)",
			u.ID, u.Repository, u.Offset, u.HashState, u.BackendState, created, updated)
		if err != nil {
			return fmt.Errorf("create upload %s: %w", u.ID, err)
		}
		return nil
	})
}

// GetUpload returns an upload session, or metadata.ErrUploadNotFound.
func (s *Store) GetUpload(ctx context.Context, id string) (metadata.Upload, error) {
	var u metadata.Upload
	err := s.do(ctx, func(q querier) error {
		var err error
		u, err = scanUpload(q.QueryRow(ctx, "SELECT "+uploadColumns+" FROM uploads WHERE id = $1 AND claimed_at IS NULL", id))
		return err
	})
	switch {
	case isNoRows(err):
		return metadata.Upload{}, fmt.Errorf("upload %s: %w", id, metadata.ErrUploadNotFound)
	case err != nil:
		return metadata.Upload{}, fmt.Errorf("upload %s: %w", id, err)
	}
	return u, nil
}

// UpdateUpload stores u if the session's offset is still prevOffset: a compare-and-set
// in one UPDATE, so two PATCHes racing on one session, on any replicas, cannot both
// append at the same offset (the loser's UPDATE waits for the winner's row lock, then
// re-checks the offset and matches nothing).
func (s *Store) UpdateUpload(ctx context.Context, u metadata.Upload, prevOffset int64) error {
	err := s.write(ctx, func(q querier) error {
		n, err := q.Exec(ctx, `UPDATE uploads
			SET upload_offset = $1, hash_state = $2, backend_state = $3, updated_at = $4, reserved = 0,
				writer = NULL, writing_until = NULL
			WHERE id = $5 AND upload_offset = $6 AND claimed_at IS NULL AND COALESCE(writer, '') = $7`,
			u.Offset, u.HashState, u.BackendState, nanos(u.UpdatedAt), u.ID, prevOffset, u.Writer)
		if err != nil {
			return err
		}
		if n == 1 {
			return nil
		}
		var exists bool
		if err := q.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM uploads WHERE id = $1 AND claimed_at IS NULL)", u.ID).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return metadata.ErrUploadNotFound
		}
		return metadata.ErrUploadConflict
	})
	if err != nil {
		return fmt.Errorf("update upload %s at offset %d: %w", u.ID, prevOffset, err)
	}
	return nil
}

// BeginUploadWrite makes writer the session's one writer; see metadata.Store. One
// conditional UPDATE: on PostgreSQL a racing writer waits for the row lock and then
// re-checks the condition against the winner's hold.
func (s *Store) BeginUploadWrite(ctx context.Context, id string, offset int64, writer string, ttl time.Duration) error {
	err := s.write(ctx, func(q querier) error {
		n, err := q.Exec(ctx, `UPDATE uploads SET writer = $1, writing_until = `+s.d.now+` + $2
			WHERE id = $3 AND upload_offset = $4 AND claimed_at IS NULL
				AND (writer IS NULL OR writing_until < `+s.d.now+`)`,
			writer, ttl.Nanoseconds(), id, offset)
		if err != nil || n == 1 {
			return err
		}
		var (
			at   int64
			held bool
		)
		switch err := q.QueryRow(ctx, `SELECT upload_offset, writer IS NOT NULL AND writing_until >= `+s.d.now+`
			FROM uploads WHERE id = $1 AND claimed_at IS NULL`, id).Scan(&at, &held); {
		case isNoRows(err):
			return metadata.ErrUploadNotFound
		case err != nil:
			return err
		case at != offset:
			return metadata.ErrUploadConflict
		case held:
			return metadata.ErrUploadBusy
		}
		return errors.New("the session changed while its write was taken, try again")
	})
	if err != nil {
		return fmt.Errorf("write upload %s at offset %d: %w", id, offset, err)
	}
	return nil
}

// RenewUploadWrite extends writer's hold; see metadata.Store.
func (s *Store) RenewUploadWrite(ctx context.Context, id, writer string, ttl time.Duration) error {
	err := s.write(ctx, func(q querier) error {
		n, err := q.Exec(ctx, "UPDATE uploads SET writing_until = "+s.d.now+" + $1 WHERE id = $2 AND writer = $3 AND claimed_at IS NULL",
			ttl.Nanoseconds(), id, writer)
		if err != nil || n == 1 {
			return err
		}
		var exists bool
		if err := q.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM uploads WHERE id = $1 AND claimed_at IS NULL)", id).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return metadata.ErrUploadNotFound
		}
		return metadata.ErrUploadConflict
	})
	if err != nil {
		return fmt.Errorf("renew write of upload %s: %w", id, err)
	}
	return nil
}

// EndUploadWrite gives writer's hold up; see metadata.Store.
func (s *Store) EndUploadWrite(ctx context.Context, id, writer string) error {
	return s.write(ctx, func(q querier) error {
		if _, err := q.Exec(ctx, "UPDATE uploads SET writer = NULL, writing_until = NULL WHERE id = $1 AND writer = $2", id, writer); err != nil {
			return fmt.Errorf("end write of upload %s: %w", id, err)
		}
		return nil
	})
}

// DeleteUpload removes a session; removing one that is gone is not an error.
func (s *Store) DeleteUpload(ctx context.Context, id string) error {
	return s.write(ctx, func(q querier) error {
		if _, err := q.Exec(ctx, "DELETE FROM uploads WHERE id = $1", id); err != nil {
			return fmt.Errorf("delete upload %s: %w", id, err)
		}
		return nil
	})
}

// ClaimUpload marks session id claimed and reports whether this call did; see
// metadata.Store. Racing claims (several replicas' purges) are ordered by the row lock:
// the second re-checks its condition against the first one's claim and finds none.
func (s *Store) ClaimUpload(ctx context.Context, id string, staleBefore time.Time) (bool, error) {
	claimed := false
	err := s.write(ctx, func(q querier) error {
		query, args := "UPDATE uploads SET claimed_at = $1 WHERE id = $2 AND claimed_at IS NULL", []any{time.Now().UTC().UnixNano(), id}
		if !staleBefore.IsZero() {
			query, args = "UPDATE uploads SET claimed_at = $1 WHERE id = $2 AND (claimed_at IS NULL AND updated_at < $3 OR claimed_at < $3)",
				append(args, staleBefore.UTC().UnixNano())
		}
		n, err := q.Exec(ctx, query, args...)
		claimed = err == nil && n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("claim upload %s: %w", id, err)
	}
	return claimed, nil
}

// UnclaimUpload puts a claimed session back; see metadata.Store.
func (s *Store) UnclaimUpload(ctx context.Context, id string) error {
	return s.write(ctx, func(q querier) error {
		if _, err := q.Exec(ctx, "UPDATE uploads SET claimed_at = NULL WHERE id = $1", id); err != nil {
			return fmt.Errorf("unclaim upload %s: %w", id, err)
		}
		return nil
	})
}

// StaleUploads lists sessions last updated before before, oldest first, claimed ones
// included (see ClaimUpload).
func (s *Store) StaleUploads(ctx context.Context, before time.Time) ([]metadata.Upload, error) {
	var out []metadata.Upload
	err := s.do(ctx, func(q querier) error {
		rows, err := q.Query(ctx, "SELECT "+uploadColumns+" FROM uploads WHERE updated_at < $1 ORDER BY updated_at, id",
			before.UTC().UnixNano())
		if err != nil {
			return err
		}
		defer rows.Close()
		out = []metadata.Upload{}
		for rows.Next() {
			u, err := scanUpload(rows)
			if err != nil {
				return err
			}
			out = append(out, u)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("stale uploads: %w", err)
	}
	return out, nil
}

func scanUpload(row row) (metadata.Upload, error) {
	var (
		u                metadata.Upload
		created, updated int64
	)
	if err := row.Scan(&u.ID, &u.Repository, &u.Offset, &u.HashState, &u.BackendState, &created, &updated); err != nil {
		return metadata.Upload{}, err
	}
	u.CreatedAt, u.UpdatedAt = fromNanos(created), fromNanos(updated)
	return u, nil
}
