package sqlstore

import (
	"crypto/sha256"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/metadata"
)

// The store benchmarks run every operation on both databases. The bodies use only the
// metadata.Store and accounts.Store interfaces, so the same file measures another
// implementation by changing benchOpeners alone (that is how the figures before and
// after the one-store rewrite were taken; see docs/design/sql-store.md).

type benchStore interface {
	metadata.Store
	accounts.Store
}

// benchOpeners open a store on a new database of each kind.
var benchOpeners = []struct {
	name string
	open func(b *testing.B) benchStore
}{
	{"sqlite", func(b *testing.B) benchStore { s, _ := openFresh(b, backends[0]); return s }},
	{"postgres", func(b *testing.B) benchStore { s, _ := openFresh(b, backends[1]); return s }},
}

// seed fills a store with a realistic handful of repositories and tags so the lookups
// go through real indexes, and returns one repository's tag and manifest digest, a
// user who is a member of that repository's organisation, and an access token's hash.
func seed(b *testing.B, s benchStore) (repo, tag string, d digest.Digest, user string, token []byte) {
	ctx := b.Context()
	user = "alice"
	if _, err := s.CreateUser(ctx, accounts.User{Name: user}); err != nil {
		b.Fatal(err)
	}
	if _, err := s.CreateOrg(ctx, "team", user); err != nil {
		b.Fatal(err)
	}
	for i := range 20 {
		h := sha256.Sum256([]byte(fmt.Sprint("token ", i)))
		if _, err := s.CreateToken(ctx, accounts.AccessToken{User: user, Name: fmt.Sprint("t", i), Hash: h[:],
			Scopes: []string{"repository:team/*:pull"}}); err != nil {
			b.Fatal(err)
		}
		token = h[:]
	}
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
	return repo, tag, d, user, token
}

// fixture is what seed made.
type fixture struct {
	repo, tag, user string
	d               digest.Digest
	token           []byte
}

// benchEach runs op as a sub-benchmark per database, on a store seeded first when
// seeded, op's calls spread over GOMAXPROCS goroutines when parallel.
func benchEach(b *testing.B, seeded, parallel bool, op func(b *testing.B, s benchStore, f *fixture, i int64) error) {
	for _, o := range benchOpeners {
		b.Run(o.name, func(b *testing.B) {
			s := o.open(b)
			f := &fixture{}
			if seeded {
				f.repo, f.tag, f.d, f.user, f.token = seed(b, s)
			}
			var n atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			if !parallel {
				for i := 0; b.Loop(); i++ {
					if err := op(b, s, f, int64(i)); err != nil {
						b.Fatal(err)
					}
				}
				return
			}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := op(b, s, f, n.Add(1)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkGetManifestByTag(b *testing.B) {
	benchEach(b, true, false, func(b *testing.B, s benchStore, f *fixture, _ int64) error {
		_, err := s.GetManifestByTag(b.Context(), f.repo, f.tag)
		return err
	})
}

func BenchmarkGetManifest(b *testing.B) {
	benchEach(b, true, false, func(b *testing.B, s benchStore, f *fixture, _ int64) error {
		_, err := s.GetManifest(b.Context(), f.repo, f.d)
		return err
	})
}

func BenchmarkResolveTag(b *testing.B) {
	benchEach(b, true, false, func(b *testing.B, s benchStore, f *fixture, _ int64) error {
		_, err := s.ResolveTag(b.Context(), f.repo, f.tag)
		return err
	})
}

func BenchmarkListTags(b *testing.B) {
	benchEach(b, true, false, func(b *testing.B, s benchStore, f *fixture, _ int64) error {
		tags, err := s.ListTags(b.Context(), f.repo, "", 10)
		if err == nil && len(tags) != 10 {
			err = fmt.Errorf("%d tags, want 10", len(tags))
		}
		return err
	})
}

func BenchmarkRoleOf(b *testing.B) {
	benchEach(b, true, false, func(b *testing.B, s benchStore, f *fixture, _ int64) error {
		_, err := s.RoleOf(b.Context(), f.user, f.repo)
		return err
	})
}

func BenchmarkTokenByHash(b *testing.B) {
	benchEach(b, true, false, func(b *testing.B, s benchStore, f *fixture, _ int64) error {
		_, err := s.TokenByHash(b.Context(), f.token)
		return err
	})
}

// BenchmarkGetManifestByTagParallel is the pull hot path under concurrent clients.
func BenchmarkGetManifestByTagParallel(b *testing.B) {
	benchEach(b, true, true, func(b *testing.B, s benchStore, f *fixture, _ int64) error {
		_, err := s.GetManifestByTag(b.Context(), f.repo, f.tag)
		return err
	})
}

// BenchmarkPushImage is a push's metadata work: pin, commit and link a config and a
// layer, then put a manifest referencing both that moves a tag.
func BenchmarkPushImage(b *testing.B) {
	benchEach(b, false, false, func(b *testing.B, s benchStore, _ *fixture, i int64) error {
		ctx := b.Context()
		var refs metadata.References
		for _, what := range []string{"config", "layer"} {
			d := digest.FromString(fmt.Sprint(what, i))
			pinned, err := s.PinBlob(ctx, d, 100)
			if err != nil {
				return err
			}
			if _, err := s.CommitBlob(ctx, "team/app", metadata.Blob{Digest: d, Size: 100}, pinned); err != nil {
				return err
			}
			refs.Blobs = append(refs.Blobs, d)
		}
		payload := []byte(fmt.Sprintf(`{"schemaVersion":2,"n":%d}`, i))
		m := metadata.Manifest{Repository: "team/app", Digest: digest.FromBytes(payload),
			MediaType: "application/vnd.oci.image.manifest.v1+json", Size: int64(len(payload)), Payload: payload}
		_, err := s.PutManifest(ctx, m, refs, "latest")
		return err
	})
}

// BenchmarkUploadPatch is a chunked upload's metadata work per PATCH: a compare-and-set
// of the session's offset.
func BenchmarkUploadPatch(b *testing.B) {
	var created = map[benchStore]bool{}
	benchEach(b, false, false, func(b *testing.B, s benchStore, _ *fixture, i int64) error {
		ctx := b.Context()
		if !created[s] {
			created[s] = true
			if err := s.CreateUpload(ctx, metadata.Upload{ID: "u", Repository: "team/app"}); err != nil {
				return err
			}
		}
		return s.UpdateUpload(ctx, metadata.Upload{ID: "u", Repository: "team/app", Offset: i + 1, HashState: []byte("state")}, i)
	})
}

// BenchmarkUploadPatchHeld is BenchmarkUploadPatch as the registry does it since issue
// 16: the chunk's writer takes the session's write first, and the compare-and-set ends
// it.
func BenchmarkUploadPatchHeld(b *testing.B) {
	var created = map[benchStore]bool{}
	benchEach(b, false, false, func(b *testing.B, s benchStore, _ *fixture, i int64) error {
		ctx := b.Context()
		if !created[s] {
			created[s] = true
			if err := s.CreateUpload(ctx, metadata.Upload{ID: "u", Repository: "team/app"}); err != nil {
				return err
			}
		}
		w := fmt.Sprint("w", i)
		if err := s.BeginUploadWrite(ctx, "u", i, w, 60_000_000_000); err != nil {
			return err
		}
		return s.UpdateUpload(ctx, metadata.Upload{ID: "u", Repository: "team/app", Offset: i + 1, HashState: []byte("state"), Writer: w}, i)
	})
}
