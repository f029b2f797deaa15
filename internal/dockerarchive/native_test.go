package dockerarchive

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ociSaveArchive writes an archive as docker save writes it for an engine on the
// containerd image store: an OCI layout (index.json, the registry's manifest, the
// compressed layer, the config) beside manifest.json. layerMediaType says whether the
// layer is stored compressed.
func ociSaveArchive(t *testing.T, compressed bool) (path string, manifest []byte, layer []byte) {
	t.Helper()
	ti := newTestImage(t, 1)
	layer = ti.layers[0]
	mt := ocispec.MediaTypeImageLayer
	if compressed {
		var zb bytes.Buffer
		zw := gzip.NewWriter(&zb)
		zw.Write(layer)
		zw.Close()
		layer, mt = zb.Bytes(), ocispec.MediaTypeImageLayerGzip
	}
	cfgD, layerD := digest.FromBytes(ti.config), digest.FromBytes(layer)
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config:      ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cfgD, Size: int64(len(ti.config))},
		Layers:      []ocispec.Descriptor{{MediaType: mt, Digest: layerD, Size: int64(len(layer))}},
		Annotations: map[string]string{"org.example": "kept as pulled"}}
	m.SchemaVersion = 2
	manifest, _ = json.Marshal(m)
	manD := digest.FromBytes(manifest)
	idx, _ := json.Marshal(ocispec.Index{Manifests: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageManifest, Digest: manD, Size: int64(len(manifest))}}})
	entries, _ := json.Marshal([]manifestEntry{{Config: "blobs/sha256/" + cfgD.Encoded(), RepoTags: []string{"example.com/app:1"}, Layers: []string{"blobs/sha256/" + layerD.Encoded()}}})
	path = writeTar(t, []tarFile{
		{name: "oci-layout", body: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{name: "blobs/sha256/" + cfgD.Encoded(), body: ti.config},
		{name: "blobs/sha256/" + layerD.Encoded(), body: layer},
		{name: "blobs/sha256/" + manD.Encoded(), body: manifest},
		{name: "index.json", body: idx},
		{name: "manifest.json", body: entries},
	})
	return path, manifest, layer
}

// TestOpenServesTheArchivesOwnManifest (issue 13 item 8): compressed layers in the
// archive's OCI layout are served as they are, under the manifest they came with, so
// a push reproduces the digests the registry had.
func TestOpenServesTheArchivesOwnManifest(t *testing.T) {
	p, manifest, layer := ociSaveArchive(t, true)
	r, err := Open(p, "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	desc, m := root(t, r)
	if desc.Digest != digest.FromBytes(manifest) || desc.MediaType != ocispec.MediaTypeImageManifest {
		t.Fatalf("root = %+v, want the archive's manifest %s", desc, digest.FromBytes(manifest))
	}
	if got := readBlob(t, r, m.Layers[0]); !bytes.Equal(got, layer) {
		t.Fatal("the compressed layer was not served as it is")
	}
	raw, err := r.Manifest(t.Context(), desc)
	if err != nil || !bytes.Equal(raw, manifest) {
		t.Fatalf("Manifest = %v, want the archive's bytes", err)
	}

	// Uncompressed layers (the classic store's docker save in Docker 25+) are
	// compressed the deterministic way, under a synthesized manifest.
	p, manifest, _ = ociSaveArchive(t, false)
	r2, err := Open(p, "")
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if desc, m := root(t, r2); desc.Digest == digest.FromBytes(manifest) || m.Layers[0].MediaType != MediaTypeLayer {
		t.Fatalf("uncompressed layers: root %+v layers %+v, want a synthesized manifest with gzip layers", desc, m.Layers)
	}
}
