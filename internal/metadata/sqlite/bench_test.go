package sqlite

import (
	"fmt"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/metadata"
)

// seed fills a store with a realistic handful of repositories and tags so the lookups
// go through real indexes, and returns one repository's tag and manifest digest.
func seed(b *testing.B, s *Store) (repo, tag string, d digest.Digest) {
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
			d = m.Digest
		}
	}
	return repo, tag, d
}

func BenchmarkGetManifest(b *testing.B) {
	s, _ := openTemp(b)
	defer s.Close()
	repo, _, d := seed(b, s)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.GetManifest(b.Context(), repo, d); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkResolveTag(b *testing.B) {
	s, _ := openTemp(b)
	defer s.Close()
	repo, tag, _ := seed(b, s)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.ResolveTag(b.Context(), repo, tag); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
