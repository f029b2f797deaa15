package sqlstore

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/metadata"
)

// BenchmarkSearchScale seeds each database with 100,000 repositories and 1,010,000
// tags (ten per repository, and one repository of 10,000) in bulk SQL, then measures
// the store's search and the 10,000-tag repository page. Each sub-benchmark cycles
// through its cases and reports p50 and p95 (ms/op is their mean). Issue 21's targets:
// search p95 under 50 ms, the tag page p95 under 200 ms. Seeding takes a minute or
// two; run it alone:
//
//	go test -run '^$' -bench BenchmarkSearchScale -benchtime 300x ./internal/metadata/sqlstore/
func BenchmarkSearchScale(b *testing.B) {
	for _, bk := range backends {
		b.Run(bk.name, func(b *testing.B) {
			s, _ := openFresh(b, bk)
			start := time.Now()
			bigDigest := seedScale(b, bk, s)
			b.Logf("%s: seeded 100k repositories, 1.01M tags in %s", bk.name, time.Since(start).Round(time.Second))
			ctx := b.Context()
			anon := metadata.CatalogFilter{Public: true}
			user := metadata.CatalogFilter{Public: true, Namespaces: []string{"ns7"}, Member: "ns7"}
			admin := metadata.CatalogFilter{All: true}
			cases := []struct {
				name string
				f    metadata.CatalogFilter
				q    metadata.SearchQuery
			}{
				{"anonymous word", anon, metadata.SearchQuery{Text: "billing"}},
				{"anonymous label", anon, metadata.SearchQuery{Text: "vendor42"}},
				{"user word", user, metadata.SearchQuery{Text: "payments"}},
				{"user name", user, metadata.SearchQuery{Text: "worker-1234"}},
				{"admin two terms", admin, metadata.SearchQuery{Text: "team7 search"}},
				{"admin common word", admin, metadata.SearchQuery{Text: "catalog"}},
				{"admin digest prefix", admin, metadata.SearchQuery{Text: bigDigest[:19]}},
				{"anonymous short term", anon, metadata.SearchQuery{Text: "ab"}},
				{"user kind filter", user, metadata.SearchQuery{Kind: metadata.KindChart}},
				{"user namespace filter", user, metadata.SearchQuery{Namespace: "ns42", Text: "web"}},
			}
			b.Run("search", func(b *testing.B) {
				var ds []time.Duration
				per := map[string][]time.Duration{}
				i := 0
				for b.Loop() {
					c := cases[i%len(cases)]
					i++
					t0 := time.Now()
					if _, err := s.Search(ctx, c.f, c.q); err != nil {
						b.Fatal(err)
					}
					d := time.Since(t0)
					ds = append(ds, d)
					per[c.name] = append(per[c.name], d)
				}
				report(b, "search", ds)
				if len(ds) >= 3*len(cases) {
					for _, c := range cases {
						p50, p95 := percentiles(per[c.name])
						b.Logf("  %-22s p50 %6.2f ms  p95 %6.2f ms", c.name, ms(p50), ms(p95))
					}
				}
			})
			sorts := []metadata.TagSort{metadata.TagSortName, metadata.TagSortPushed, metadata.TagSortPulled}
			b.Run("tagpage10k", func(b *testing.B) {
				var ds []time.Duration
				i := 0
				for b.Loop() {
					sort, desc, page := sorts[i%3], i%2 == 0, (i*37)%200
					i++
					t0 := time.Now()
					p, err := s.TagPage(ctx, "ns1/web-1", sort, desc, page*50, 50)
					if err != nil || p.Total != 10010 || len(p.Tags) != 50 {
						b.Fatalf("page %d: %d of %d tags, %v", page, len(p.Tags), p.Total, err)
					}
					ds = append(ds, time.Since(t0))
				}
				report(b, "tagpage", ds)
			})
		})
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func percentiles(ds []time.Duration) (p50, p95 time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[min(len(s)-1, len(s)*95/100)]
}

func report(b *testing.B, what string, ds []time.Duration) {
	p50, p95 := percentiles(ds)
	b.ReportMetric(ms(p50), "p50-ms")
	b.ReportMetric(ms(p95), "p95-ms")
	b.Logf("%s: %d runs, p50 %.2f ms, p95 %.2f ms", what, len(ds), ms(p50), ms(p95))
}

// seedScale fills s in bulk: repositories ns{i%1000}/{word}-{i} (one in ten public)
// with a search document each, one manifest and ten tags per repository, and
// ns1/web-1 with 10,000 more manifests and tags, half of them pulled. It returns one
// of those manifests' digest.
func seedScale(b *testing.B, bk backend, s *Store) string {
	ctx := b.Context()
	randomDigest := "'sha256:' || lower(hex(randomblob(32)))"
	if bk.name == "postgres" {
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
			b.Fatalf("seed statement %d: %v", i, err)
		}
	}
	var d string
	if err := s.e.pool().QueryRow(ctx, `SELECT digest FROM manifests WHERE created_at = 1005000`).Scan(&d); err != nil {
		b.Fatal(err)
	}
	var tags int
	if err := s.e.pool().QueryRow(ctx, `SELECT count(*) FROM tags`).Scan(&tags); err != nil || tags != 1010000 {
		b.Fatalf("seeded %d tags, %v", tags, err)
	}
	return fmt.Sprint(d)
}
