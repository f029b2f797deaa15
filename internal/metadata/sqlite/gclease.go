package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/hubctl/hubctl/internal/metadata"
)

// The garbage-collection lease is the one row of gc_lease (docs/design/gc.md). Every
// process using an SQLite file runs on one host, so the local clock is everyone's; the
// write transaction (BEGIN IMMEDIATE) orders collectors racing for the lease, in this
// process and in others.

// AcquireGCLease takes the lease for holder if it is free, expired or already
// holder's; see metadata.Store.
func (s *Store) AcquireGCLease(ctx context.Context, holder string, ttl time.Duration) (metadata.GCLease, bool, error) {
	var (
		l        metadata.GCLease
		acquired bool
	)
	err := s.write(ctx, func(tx *sql.Tx) error {
		now := nanos(time.Time{})
		var got, exp int64
		err := tx.QueryRowContext(ctx, `INSERT INTO gc_lease (id, holder, acquired_at, expires_at) VALUES (1, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET holder = excluded.holder,
				acquired_at = CASE WHEN gc_lease.holder = excluded.holder THEN gc_lease.acquired_at ELSE excluded.acquired_at END,
				expires_at = excluded.expires_at
			WHERE gc_lease.holder = excluded.holder OR gc_lease.expires_at <= excluded.acquired_at
			RETURNING holder, acquired_at, expires_at`, holder, now, now+ttl.Nanoseconds()).Scan(&l.Holder, &got, &exp)
		acquired = err == nil
		if errors.Is(err, sql.ErrNoRows) {
			err = tx.QueryRowContext(ctx, "SELECT holder, acquired_at, expires_at FROM gc_lease WHERE id = 1").Scan(&l.Holder, &got, &exp)
		}
		if err != nil {
			return err
		}
		l.AcquiredAt, l.ExpiresAt = fromNanos(got), fromNanos(exp)
		return nil
	})
	if err != nil {
		return metadata.GCLease{}, false, fmt.Errorf("acquire gc lease: %w", err)
	}
	return l, acquired, nil
}

// RenewGCLease extends holder's lease; see metadata.Store.
func (s *Store) RenewGCLease(ctx context.Context, holder string, ttl time.Duration) error {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE gc_lease SET expires_at = ? WHERE id = 1 AND holder = ?",
			nanos(time.Time{})+ttl.Nanoseconds(), holder)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("renew gc lease: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("renew gc lease of %s: %w", holder, metadata.ErrGCLeaseLost)
	}
	return nil
}

// ReleaseGCLease gives holder's lease up; see metadata.Store.
func (s *Store) ReleaseGCLease(ctx context.Context, holder string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM gc_lease WHERE id = 1 AND holder = ?", holder)
		return err
	})
	if err != nil {
		return fmt.Errorf("release gc lease: %w", err)
	}
	return nil
}
