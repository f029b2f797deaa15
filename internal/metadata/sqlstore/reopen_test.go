package sqlstore

import (
	"bytes"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/metadata"
)

// TestDataSurvivesReopen: what one Store wrote, the next one opened on the same
// database reads.
func TestDataSurvivesReopen(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s, reopen := b.open(t)
		ctx := t.Context()
		cfg := digest.FromString("config")
		if err := s.PutBlob(ctx, metadata.Blob{Digest: cfg, Size: 6}); err != nil {
			t.Fatal(err)
		}
		if err := s.LinkBlob(ctx, "app", cfg); err != nil {
			t.Fatal(err)
		}
		payload := []byte(`{"schemaVersion":2}`)
		m := metadata.Manifest{Repository: "app", Digest: digest.FromBytes(payload), MediaType: "application/vnd.oci.image.manifest.v1+json",
			Size: int64(len(payload)), Payload: payload, Annotations: map[string]string{"a": "b"}}
		if _, err := s.PutManifest(ctx, m, metadata.References{Blobs: []digest.Digest{cfg}}, "latest"); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateUpload(ctx, metadata.Upload{ID: "u", Repository: "app", Offset: 3, HashState: []byte("h")}); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}

		s = reopen(t)
		defer s.Close()
		d, err := s.ResolveTag(ctx, "app", "latest")
		if err != nil || d != m.Digest {
			t.Fatalf("ResolveTag after re-open = %s, %v; want %s", d, err, m.Digest)
		}
		got, err := s.GetManifest(ctx, "app", m.Digest)
		if err != nil || !bytes.Equal(got.Payload, payload) || got.Annotations["a"] != "b" {
			t.Fatalf("GetManifest after re-open = %q %v, %v", got.Payload, got.Annotations, err)
		}
		if _, err := s.RepositoryBlob(ctx, "app", cfg); err != nil {
			t.Fatalf("RepositoryBlob after re-open: %v", err)
		}
		u, err := s.GetUpload(ctx, "u")
		if err != nil || u.Offset != 3 || string(u.HashState) != "h" {
			t.Fatalf("GetUpload after re-open = %+v, %v", u, err)
		}
	})
}
