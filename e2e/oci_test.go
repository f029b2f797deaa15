package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Media types the tests build content with.
const (
	mtOCIManifest = "application/vnd.oci.image.manifest.v1+json"
	mtOCIIndex    = "application/vnd.oci.image.index.v1+json"
	mtOCIConfig   = "application/vnd.oci.image.config.v1+json"
	mtOCILayerGz  = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// descriptor is an OCI content descriptor.
type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Platform     *platform         `json:"platform,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// manifest is an OCI image manifest (also used for indexes through Manifests).
type manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        *descriptor       `json:"config,omitempty"`
	Layers        []descriptor      `json:"layers,omitempty"`
	Manifests     []descriptor      `json:"manifests,omitempty"`
	Subject       *descriptor       `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// randomBytes returns n random bytes.
func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// layerTar returns an uncompressed tar holding one file of random content.
func layerTar(t testing.TB, name string, size int) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	data := randomBytes(t, size)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// image is a minimal, valid single-layer OCI image.
type image struct {
	Config, Layer, Manifest []byte
	ConfigDigest            string
	LayerDigest             string
	ManifestDigest          string
}

// newImage builds a random single-layer linux image for arch.
func newImage(t testing.TB, arch string) image {
	t.Helper()
	tarb := layerTar(t, "data.bin", 4096)
	layer := gzipBytes(t, tarb)
	cfg, _ := json.Marshal(map[string]any{
		"architecture": arch,
		"os":           "linux",
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{sha256Digest(tarb)}},
		"config":       map[string]any{},
	})
	img := image{Config: cfg, Layer: layer, ConfigDigest: sha256Digest(cfg), LayerDigest: sha256Digest(layer)}
	img.Manifest = mustJSON(t, manifest{
		SchemaVersion: 2,
		MediaType:     mtOCIManifest,
		Config:        &descriptor{MediaType: mtOCIConfig, Digest: img.ConfigDigest, Size: int64(len(cfg))},
		Layers:        []descriptor{{MediaType: mtOCILayerGz, Digest: img.LayerDigest, Size: int64(len(layer))}},
	})
	img.ManifestDigest = sha256Digest(img.Manifest)
	return img
}

// push uploads the image's blobs and its manifest under ref.
func (img image) push(t testing.TB, s *server, repo, ref string) {
	t.Helper()
	pushBlob(t, s, repo, img.Config)
	pushBlob(t, s, repo, img.Layer)
	resp, body := pushManifest(t, s, repo, ref, mtOCIManifest, img.Manifest)
	if resp.StatusCode != 201 {
		t.Fatalf("push manifest %s:%s: %s %q", repo, ref, resp.Status, truncate(body, 300))
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeOCILayout writes img as an OCI image layout with img tagged as tag, for
// `skopeo copy oci:DIR:tag`.
func writeOCILayout(t testing.TB, dir, tag string, img image) {
	t.Helper()
	put := func(rel string, b []byte) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	blob := func(d string, b []byte) { put(filepath.Join("blobs", strings.Replace(d, ":", "/", 1)), b) }
	blob(img.ConfigDigest, img.Config)
	blob(img.LayerDigest, img.Layer)
	blob(img.ManifestDigest, img.Manifest)
	put("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	put("index.json", mustJSON(t, manifest{
		SchemaVersion: 2,
		MediaType:     mtOCIIndex,
		Manifests: []descriptor{{
			MediaType:   mtOCIManifest,
			Digest:      img.ManifestDigest,
			Size:        int64(len(img.Manifest)),
			Annotations: map[string]string{"org.opencontainers.image.ref.name": tag},
		}},
	}))
}
