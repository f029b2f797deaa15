package sqlstore

import (
	"context"
	"fmt"
	"time"
)

// This file holds the ACME cache (migration 0014): autocert's certificates, keys and
// account, one row per cache key, shared by every replica on the database.

// ACMEGet returns the cached data under key, and false when there is none.
func (s *Store) ACMEGet(ctx context.Context, key string) ([]byte, bool, error) {
	var data []byte
	err := s.do(ctx, func(q querier) error {
		return q.QueryRow(ctx, "SELECT data FROM acme_cache WHERE key = $1", key).Scan(&data)
	})
	switch {
	case isNoRows(err):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("acme cache get %s: %w", key, err)
	}
	return data, true, nil
}

// ACMEPut stores data under key, replacing what was there.
func (s *Store) ACMEPut(ctx context.Context, key string, data []byte) error {
	err := s.write(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO acme_cache (key, data, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (key) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`,
			key, data, nanos(time.Now()))
		return err
	})
	if err != nil {
		return fmt.Errorf("acme cache put %s: %w", key, err)
	}
	return nil
}

// ACMEDelete removes key; a missing key is not an error.
func (s *Store) ACMEDelete(ctx context.Context, key string) error {
	err := s.write(ctx, func(q querier) error {
		_, err := q.Exec(ctx, "DELETE FROM acme_cache WHERE key = $1", key)
		return err
	})
	if err != nil {
		return fmt.Errorf("acme cache delete %s: %w", key, err)
	}
	return nil
}
