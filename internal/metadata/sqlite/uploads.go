package sqlite

import (
	"context"
	"database/sql"
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
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO uploads ("+uploadColumns+") VALUES (?, ?, ?, ?, ?, ?, ?)",
			u.ID, u.Repository, u.Offset, u.HashState, u.BackendState, created, updated)
		if err != nil {
			return fmt.Errorf("create upload %s: %w", u.ID, err)
		}
		return nil
	})
}

// GetUpload returns an upload session, or metadata.ErrUploadNotFound.
func (s *Store) GetUpload(ctx context.Context, id string) (metadata.Upload, error) {
	u, err := scanUpload(s.r.QueryRowContext(ctx, "SELECT "+uploadColumns+" FROM uploads WHERE id = ? AND claimed_at IS NULL", id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return metadata.Upload{}, fmt.Errorf("upload %s: %w", id, metadata.ErrUploadNotFound)
	case err != nil:
		return metadata.Upload{}, fmt.Errorf("upload %s: %w", id, err)
	}
	return u, nil
}

// UpdateUpload stores u if the session's offset is still prevOffset: a compare-and-set,
// so two PATCHes racing on one session cannot both append at the same offset.
func (s *Store) UpdateUpload(ctx context.Context, u metadata.Upload, prevOffset int64) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE uploads
			SET upload_offset = ?, hash_state = ?, backend_state = ?, updated_at = ?
			WHERE id = ? AND upload_offset = ? AND claimed_at IS NULL`,
			u.Offset, u.HashState, u.BackendState, nanos(u.UpdatedAt), u.ID, prevOffset)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var one int
		switch err := tx.QueryRowContext(ctx, "SELECT 1 FROM uploads WHERE id = ? AND claimed_at IS NULL", u.ID).Scan(&one); {
		case errors.Is(err, sql.ErrNoRows):
			return metadata.ErrUploadNotFound
		case err != nil:
			return err
		}
		return metadata.ErrUploadConflict
	})
	if err != nil {
		return fmt.Errorf("update upload %s at offset %d: %w", u.ID, prevOffset, err)
	}
	return nil
}

// DeleteUpload removes a session; removing one that is gone is not an error.
func (s *Store) DeleteUpload(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM uploads WHERE id = ?", id); err != nil {
			return fmt.Errorf("delete upload %s: %w", id, err)
		}
		return nil
	})
}

// ClaimUpload marks session id claimed and reports whether this call did; see
// metadata.Store.
func (s *Store) ClaimUpload(ctx context.Context, id string, staleBefore time.Time) (bool, error) {
	claimed := false
	err := s.write(ctx, func(tx *sql.Tx) error {
		q, args := "UPDATE uploads SET claimed_at = ? WHERE id = ? AND claimed_at IS NULL", []any{time.Now().UTC().UnixNano(), id}
		if !staleBefore.IsZero() {
			cut := staleBefore.UTC().UnixNano()
			q, args = "UPDATE uploads SET claimed_at = ? WHERE id = ? AND (claimed_at IS NULL AND updated_at < ? OR claimed_at < ?)",
				append(args, cut, cut)
		}
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		claimed = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("claim upload %s: %w", id, err)
	}
	return claimed, nil
}

// UnclaimUpload puts a claimed session back; see metadata.Store.
func (s *Store) UnclaimUpload(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "UPDATE uploads SET claimed_at = NULL WHERE id = ?", id); err != nil {
			return fmt.Errorf("unclaim upload %s: %w", id, err)
		}
		return nil
	})
}

// StaleUploads lists sessions last updated before before, oldest first, claimed ones
// included (see ClaimUpload).
func (s *Store) StaleUploads(ctx context.Context, before time.Time) ([]metadata.Upload, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+uploadColumns+" FROM uploads WHERE updated_at < ? ORDER BY updated_at, id",
		before.UTC().UnixNano())
	if err != nil {
		return nil, fmt.Errorf("stale uploads: %w", err)
	}
	defer rows.Close()
	out := []metadata.Upload{}
	for rows.Next() {
		u, err := scanUpload(rows)
		if err != nil {
			return nil, fmt.Errorf("stale uploads: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("stale uploads: %w", err)
	}
	return out, nil
}

func scanUpload(row interface{ Scan(...any) error }) (metadata.Upload, error) {
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
