package sqlstore

import (
	"context"
	"fmt"
)

// SeedScale fills s in bulk, for the scale benchmarks (BenchmarkSearchScale, the web
// pages' benchmark); it is meant for a fresh store only: repositories ns{i%1000}/{word}-{i} (one in ten public)
// with a search document each, one manifest and ten tags per repository, and
// ns1/web-1 with 10,000 more manifests and tags, half of them pulled. It returns one
// of those manifests' digest.
func (s *Store) SeedScale(ctx context.Context) (string, error) {
	randomDigest := "'sha256:' || lower(hex(randomblob(32)))"
	if s.d.name == "postgres" {
		randomDigest = "'sha256:' || md5(random()::text) || md5(random()::text)"
	}
	stmts := []string{
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
		INSERT INTO repositories (name, created_at, visibility)
		SELECT 'ns' || (i % 1000) || '/' || (CASE i % 7 WHEN 0 THEN 'api' WHEN 1 THEN 'web' WHEN 2 THEN 'worker' WHEN 3 THEN 'db'
			WHEN 4 THEN 'cache' WHEN 5 THEN 'proxy' ELSE 'tool' END) || '-' || i,
			i, CASE WHEN i % 10 = 0 THEN 'public' ELSE 'private' END FROM n`,
		`UPDATE repository_search SET kind = CASE WHEN repo_id % 20 = 0 THEN 'chart' ELSE 'image' END,
			description = 'The ' || (CASE repo_id % 5 WHEN 0 THEN 'billing' WHEN 1 THEN 'search' WHEN 2 THEN 'catalog'
				WHEN 3 THEN 'payments' ELSE 'identity' END) || ' service, build ' || repo_id,
			labels = '{"org.opencontainers.image.vendor":"vendor' || (repo_id % 300) || '","team":"team' || (repo_id % 50) || '"}',
			updated_at = 1`,
		`INSERT INTO manifests (repo_id, digest, media_type, size, payload, created_at)
		SELECT id, ` + randomDigest + `, 'application/vnd.oci.image.manifest.v1+json', 2, $1, id FROM repositories`,
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10)
		INSERT INTO tags (repo_id, name, digest, updated_at)
		SELECT m.repo_id, 'v' || n.i, m.digest, m.created_at * 100 + n.i FROM manifests m CROSS JOIN n`,
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
		INSERT INTO manifests (repo_id, digest, media_type, size, payload, created_at)
		SELECT r.id, ` + randomDigest + `, 'application/vnd.oci.image.manifest.v1+json', 2, $1, 1000000 + n.i
		FROM repositories r CROSS JOIN n WHERE r.name = 'ns1/web-1'`,
		`INSERT INTO tags (repo_id, name, digest, updated_at)
		SELECT repo_id, 'build-' || (created_at - 1000000), digest, created_at * 100 FROM manifests WHERE created_at > 1000000`,
		`INSERT INTO manifest_pulls (repo_id, digest, pulled_at)
		SELECT repo_id, digest, (created_at * 7919) % 100003 FROM manifests WHERE created_at > 1000000 AND created_at % 2 = 0`,
		`ANALYZE`,
	}
	for i, q := range stmts {
		err := s.write(ctx, func(qr querier) error {
			var args []any
			if i == 2 || i == 4 {
				args = []any{[]byte("{}")}
			}
			_, err := qr.Exec(ctx, q, args...)
			return err
		})
		if err != nil {
			return "", fmt.Errorf("seed statement %d: %w", i, err)
		}
	}
	var d string
	if err := s.e.pool().QueryRow(ctx, `SELECT digest FROM manifests WHERE created_at = 1005000`).Scan(&d); err != nil {
		return "", err
	}
	var tags int
	if err := s.e.pool().QueryRow(ctx, `SELECT count(*) FROM tags`).Scan(&tags); err != nil || tags != 1010000 {
		return "", fmt.Errorf("seeded %d tags, %v", tags, err)
	}
	return d, nil
}
