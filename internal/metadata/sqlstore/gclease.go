package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hubctl/hubctl/internal/metadata"
)

// The garbage-collection lease is the one row of gc_lease (docs/design/gc.md). Its
// times come from the database's clock (dialect.now), not the replica's: replicas
// whose clocks disagree must still agree on when a lease has expired.

// AcquireGCLease takes the lease for holder if it is free, expired or already
// holder's; see metadata.Store. The upsert's WHERE is evaluated on the latest version
// of the row, so of collectors racing for a free lease exactly one gets it: the others
// wait for its insert, then find it held.
func (s *Store) AcquireGCLease(ctx context.Context, holder string, ttl time.Duration) (metadata.GCLease, bool, error) {
	var (
		l        metadata.GCLease
		acquired bool
	)
	err := s.write(ctx, func(q querier) error {
		// "WHERE true" keeps SQLite from reading ON CONFLICT as a join's ON. The row may
		// be released between the upsert finding it held and the read of
		// its holder; a few rounds settle it.
		for range 3 {
			var got, exp int64
			err := q.QueryRow(ctx, `INSERT INTO gc_lease AS l (id, holder, acquired_at, expires_at)
				SELECT 1, $1, n, n + $2 FROM (SELECT `+s.d.now+` AS n) now
				WHERE true
				ON CONFLICT (id) DO UPDATE SET holder = excluded.holder,
					acquired_at = CASE WHEN l.holder = excluded.holder THEN l.acquired_at ELSE excluded.acquired_at END,
					expires_at = excluded.expires_at
				WHERE l.holder = excluded.holder OR l.expires_at <= excluded.acquired_at
				RETURNING holder, acquired_at, expires_at`, holder, ttl.Nanoseconds()).Scan(&l.Holder, &got, &exp)
			if err == nil {
				l.AcquiredAt, l.ExpiresAt, acquired = fromNanos(got), fromNanos(exp), true
				return nil
			}
			if !isNoRows(err) {
				return err
			}
			// Held by another collector: a new statement, so at READ COMMITTED it sees
			// the holder whose insert or update the upsert waited for.
			err = q.QueryRow(ctx, "SELECT holder, acquired_at, expires_at FROM gc_lease WHERE id = 1").Scan(&l.Holder, &got, &exp)
			if err == nil {
				l.AcquiredAt, l.ExpiresAt, acquired = fromNanos(got), fromNanos(exp), false
				return nil
			}
			if !isNoRows(err) {
				return err
			}
		}
		return errors.New("the lease changed hands three times in a row, try again")
	})
	if err != nil {
		return metadata.GCLease{}, false, fmt.Errorf("acquire gc lease: %w", err)
	}
	return l, acquired, nil
}

// RenewGCLease extends holder's lease; see metadata.Store.
func (s *Store) RenewGCLease(ctx context.Context, holder string, ttl time.Duration) error {
	var n int64
	err := s.write(ctx, func(q querier) error {
		var err error
		n, err = q.Exec(ctx, "UPDATE gc_lease SET expires_at = "+s.d.now+" + $2 WHERE id = 1 AND holder = $1", holder, ttl.Nanoseconds())
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
	err := s.write(ctx, func(q querier) error {
		_, err := q.Exec(ctx, "DELETE FROM gc_lease WHERE id = 1 AND holder = $1", holder)
		return err
	})
	if err != nil {
		return fmt.Errorf("release gc lease: %w", err)
	}
	return nil
}
