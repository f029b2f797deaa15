package registry

import (
	"fmt"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// BenchmarkPushSmallImage is a whole push of a small image over HTTP to a registry on
// SQLite and the filesystem: two blobs (one new each time) and a manifest that moves a
// tag. The outbox writes its events in the manifest's transaction; comparing this
// benchmark across commits measures what that costs a push (issue 18 asks for under
// 5 %).
//
//	go test -run XXX -bench PushSmallImage -benchtime 300x ./internal/registry
func BenchmarkPushSmallImage(b *testing.B) {
	e := newEnv(b)
	b.ResetTimer()
	for i := range b.N {
		_, p := e.image("team/app")
		if r := e.putManifest("team/app", fmt.Sprint("v", i%10), ocispec.MediaTypeImageManifest, p); r.status != 201 {
			b.Fatalf("push: %d %s", r.status, r.body)
		}
	}
}
