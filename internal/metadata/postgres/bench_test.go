package postgres

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/metadata/sqlite"
)

// seed fills a store with the same handful of repositories and tags as the SQLite
// store's benchmarks, so the lookups go through real indexes, and returns one tag.
func seed(b *testing.B, s metadata.Store) (repo, tag string) {
	ctx := b.Context()
	for r := range 20 {
		repo = fmt.Sprintf("team/app%d", r)
		for i := range 25 {
			payload := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[%d,%d],"pad":"%01500d"}`, r, i, 0))
			m := metadata.Manifest{Repository: repo, Digest: digest.FromBytes(payload),
				MediaType: "application/vnd.oci.image.manifest.v1+json", Size: int64(len(payload)), Payload: payload}
			tag = fmt.Sprint("v", i)
			if _, err := s.PutManifest(ctx, m, metadata.References{}, tag); err != nil {
				b.Fatal(err)
			}
		}
	}
	return repo, tag
}

// BenchmarkGetManifestByTag measures the hot path of every pull by tag on both stores
// in one run and reports PostgreSQL's time per call as a multiple of SQLite's (x_sqlite). PostgreSQL
// pays a loopback round trip per call that SQLite, in process, does not.
func BenchmarkGetManifestByTag(b *testing.B) {
	perOp := map[string]time.Duration{}
	for _, store := range []struct {
		name string
		open func(b *testing.B) metadata.Store
	}{
		{"sqlite", func(b *testing.B) metadata.Store {
			s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "meta.db"))
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
		{"postgres", func(b *testing.B) metadata.Store {
			s, _ := openFresh(b)
			return s
		}},
	} {
		b.Run(store.name, func(b *testing.B) {
			s := store.open(b)
			defer s.Close()
			repo, tag := seed(b, s)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.GetManifestByTag(b.Context(), repo, tag); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			perOp[store.name] = b.Elapsed() / time.Duration(b.N)
			// The ratio goes on the benchmark's own line, which is printed without -v.
			if sq := perOp["sqlite"]; store.name != "sqlite" && sq > 0 {
				b.ReportMetric(float64(perOp[store.name])/float64(sq), "x_sqlite")
			}
		})
	}
}
