package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/metadata"
)

// nsRepos selects the repositories of a namespace (three parameters: the namespace,
// ns+"/" and ns+"0"). The range rather than LIKE, whose '_' is a wildcard, keeps it on
// the name index: '0' is the byte after '/'.
const nsRepos = "SELECT id FROM repositories WHERE name = ? OR (name >= ? AND name < ?)"

func nsArgs(ns string) []any { return []any{ns, ns + "/", ns + "0"} }

// usageQuery sums the sizes of the distinct blobs linked to a namespace.
const usageQuery = `SELECT COALESCE(SUM(size), 0) FROM blobs WHERE digest IN
	(SELECT digest FROM repository_blobs WHERE repo_id IN (` + nsRepos + `))`

// SetQuota limits the bytes of a namespace; bytes <= 0 removes the limit.
func (s *Store) SetQuota(ctx context.Context, namespace string, bytes int64) error {
	var q sql.NullInt64
	if bytes > 0 {
		q = sql.NullInt64{Int64: bytes, Valid: true}
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		return mustAffect(tx.ExecContext(ctx, "UPDATE namespaces SET quota_bytes = ? WHERE name = ?", q, namespace))
	})
	if err != nil {
		return fmt.Errorf("set quota of %s: %w", namespace, err)
	}
	return nil
}

// Usage returns the bytes of the distinct blobs linked to the namespace and its quota
// (0 when unlimited).
func (s *Store) Usage(ctx context.Context, namespace string) (used, quota int64, err error) {
	err = s.read(ctx, func(tx *sql.Tx) error {
		var q sql.NullInt64
		if err := tx.QueryRowContext(ctx, "SELECT quota_bytes FROM namespaces WHERE name = ?", namespace).Scan(&q); err != nil {
			return notFound(err)
		}
		quota = q.Int64
		return tx.QueryRowContext(ctx, usageQuery, nsArgs(namespace)...).Scan(&used)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("usage of %s: %w", namespace, err)
	}
	return used, quota, nil
}

// checkQuota returns an error wrapping metadata.ErrQuotaExceeded when linking the blob
// d of size bytes into repo would take its namespace over its quota. It runs in the
// linking transaction; the single write connection serialises concurrent links.
func checkQuota(ctx context.Context, tx *sql.Tx, repo string, d digest.Digest, size int64) error {
	ns := namespaceOf(repo)
	var quota int64
	// No row (a namespace without an account) or NULL: unlimited.
	switch err := tx.QueryRowContext(ctx, "SELECT quota_bytes FROM namespaces WHERE name = ? AND quota_bytes IS NOT NULL", ns).Scan(&quota); {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("quota of %s: %w", ns, err)
	}
	var linked bool
	err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM repository_blobs WHERE digest = ? AND repo_id IN ("+nsRepos+"))",
		append([]any{d.String()}, nsArgs(ns)...)...).Scan(&linked)
	if err != nil {
		return fmt.Errorf("quota of %s: %w", ns, err)
	}
	if linked {
		return nil // already counted in the namespace
	}
	var used int64
	if err := tx.QueryRowContext(ctx, usageQuery, nsArgs(ns)...).Scan(&used); err != nil {
		return fmt.Errorf("usage of %s: %w", ns, err)
	}
	return metadata.QuotaError(ns, quota, used, size)
}
