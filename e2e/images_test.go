package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// blob is content with its digest.
type blob struct {
	Data   []byte
	Digest string
	// DiffID is the digest of a layer's uncompressed tar.
	DiffID string
}

func newBlob(b []byte) blob { return blob{Data: b, Digest: sha256Digest(b)} }

// layeredImage is an OCI image of several gzip layers, for transfer tests.
type layeredImage struct {
	Arch     string
	Layers   []blob
	Config   blob
	Manifest blob
}

// randomLayer is a gzip layer of one random file of size bytes (random data does not
// compress, so the blob is about size bytes).
func randomLayer(t testing.TB, size int) blob {
	t.Helper()
	tarb := layerTar(t, "data.bin", size)
	b := newBlob(gzipBytes(t, tarb))
	b.DiffID = sha256Digest(tarb)
	return b
}

// buildImage assembles an image for arch from layers, with a config naming their
// diff ids.
func buildImage(t testing.TB, arch string, layers ...blob) layeredImage {
	t.Helper()
	img := layeredImage{Arch: arch, Layers: layers}
	var diffIDs []string
	var descs []descriptor
	for _, l := range layers {
		diffIDs = append(diffIDs, l.DiffID)
		descs = append(descs, descriptor{MediaType: mtOCILayerGz, Digest: l.Digest, Size: int64(len(l.Data))})
	}
	img.Config = newBlob(mustJSON(t, map[string]any{
		"architecture": arch, "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
		"config": map[string]any{"Cmd": []string{"/app"}},
	}))
	img.Manifest = newBlob(mustJSON(t, manifest{
		SchemaVersion: 2, MediaType: mtOCIManifest,
		Config: &descriptor{MediaType: mtOCIConfig, Digest: img.Config.Digest, Size: int64(len(img.Config.Data))},
		Layers: descs,
	}))
	return img
}

// indexOf builds an OCI index of the images, each with its platform.
func indexOf(t testing.TB, imgs ...layeredImage) blob {
	t.Helper()
	var ms []descriptor
	for _, img := range imgs {
		ms = append(ms, descriptor{MediaType: mtOCIManifest, Digest: img.Manifest.Digest, Size: int64(len(img.Manifest.Data)),
			Platform: &platform{OS: "linux", Architecture: img.Arch}})
	}
	return newBlob(mustJSON(t, manifest{SchemaVersion: 2, MediaType: mtOCIIndex, Manifests: ms}))
}

// layout is an OCI image layout being written by a test.
type layout struct {
	t     testing.TB
	Dir   string
	index []descriptor
}

func newLayout(t testing.TB) *layout {
	t.Helper()
	l := &layout{t: t, Dir: t.TempDir()}
	l.put("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	return l
}

func (l *layout) put(rel string, b []byte) {
	p := filepath.Join(l.Dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		l.t.Fatal(err)
	}
}

func (l *layout) blob(b blob) {
	l.put(filepath.Join("blobs", strings.Replace(b.Digest, ":", "/", 1)), b.Data)
}

// addImage stores an image's blobs (and names its manifest tag when tag is set).
func (l *layout) addImage(img layeredImage, tag string) {
	for _, b := range append([]blob{img.Config, img.Manifest}, img.Layers...) {
		l.blob(b)
	}
	if tag != "" {
		l.tag(tag, mtOCIManifest, img.Manifest)
	}
}

// addIndex stores an index of the images under tag.
func (l *layout) addIndex(tag string, imgs ...layeredImage) blob {
	for _, img := range imgs {
		l.addImage(img, "")
	}
	idx := indexOf(l.t, imgs...)
	l.blob(idx)
	l.tag(tag, mtOCIIndex, idx)
	return idx
}

func (l *layout) tag(tag, mediaType string, b blob) {
	l.index = append(l.index, descriptor{MediaType: mediaType, Digest: b.Digest, Size: int64(len(b.Data)),
		Annotations: map[string]string{"org.opencontainers.image.ref.name": tag}})
	l.put("index.json", mustJSON(l.t, manifest{SchemaVersion: 2, MediaType: mtOCIIndex, Manifests: l.index}))
}

// hubctl runs the client binary with a private docker config (no stored logins) and
// returns stdout; it fails the test on a non-zero exit.
func hubctl(t testing.TB, args ...string) string {
	t.Helper()
	out, errOut, err := hubctlErr(t, args...)
	if err != nil {
		t.Fatalf("hubctl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func hubctlErr(t testing.TB, args ...string) (string, string, error) {
	t.Helper()
	env := append(cleanEnv("HUBCTL_", "DOCKER_CONFIG"), "DOCKER_CONFIG="+dockerConfigFor(t))
	return runErr(t, "", env, hubctlBin, args...)
}

// dockerConfigFor is an empty docker config directory for the test's client runs.
func dockerConfigFor(t testing.TB) string {
	dir := filepath.Join(os.TempDir(), "hubctl-e2e-dockercfg-"+sanitize(t.Name()))
	_ = os.MkdirAll(dir, 0o700)
	return dir
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' {
			return '_'
		}
		return r
	}, s)
}

// jsonLines parses NDJSON output.
func jsonLines(t testing.TB, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}
