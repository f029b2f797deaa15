package dockerarchive

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/hubctl/hubctl/internal/imagestore"
	"github.com/opencontainers/go-digest"
)

// An archive ggcr writes (gzip layers) reads back with the same config, layer
// digests and uncompressed contents.
func TestOpenGGCRArchive(t *testing.T) {
	img, err := random.Image(4096, 3)
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag("app:1")
	p := filepath.Join(t.TempDir(), "img.tar")
	if err := tarball.WriteToFile(p, tag, img); err != nil {
		t.Fatal(err)
	}
	r, err := Open(p, "docker.io/library/app:1")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, m := root(t, r)
	cfg, _ := img.RawConfigFile()
	if got := readBlob(t, r, m.Config); !bytes.Equal(got, cfg) || m.Config.MediaType != MediaTypeConfig {
		t.Fatalf("config differs or media type %q", m.Config.MediaType)
	}
	layers, _ := img.Layers()
	if len(m.Layers) != len(layers) {
		t.Fatalf("%d layers, want %d", len(m.Layers), len(layers))
	}
	for i, l := range layers {
		d, _ := l.Digest()
		if m.Layers[i].Digest.String() != d.String() || m.Layers[i].MediaType != MediaTypeLayer {
			t.Errorf("layer %d: %s %s, want the gzip blob %s passed through", i, m.Layers[i].MediaType, m.Layers[i].Digest, d)
		}
		rc, _ := l.Uncompressed()
		want, _ := io.ReadAll(rc)
		rc.Close()
		if got := gunzip(t, readBlob(t, r, m.Layers[i])); !bytes.Equal(got, want) {
			t.Errorf("layer %d: uncompressed content differs", i)
		}
	}
}

// Docker 20.10's layout: uncompressed <id>/layer.tar, a duplicate layer as a symlink.
// Layers are compressed once, deterministically, and match the diff_ids.
func TestOpenUncompressedIsReproducible(t *testing.T) {
	ti := newTestImage(t, 2)
	files := ti.legacyEntries("app:1")
	// Make the second layer a link to the first, as docker save does for duplicates.
	var cfg map[string]any
	json.Unmarshal(ti.config, &cfg)
	ids := cfg["rootfs"].(map[string]any)["diff_ids"].([]any)
	ids[1] = ids[0]
	ti.config, _ = json.Marshal(cfg)
	ti.layers[1] = ti.layers[0]
	files = ti.legacyEntries("app:1")
	parts := strings.Split(files[4].name, "/")
	files[4] = tarFile{name: files[4].name, link: "../" + strings.Split(files[2].name, "/")[0] + "/" + parts[1]}
	p := writeTar(t, files)

	var digests []digest.Digest
	for range 2 {
		r, err := Open(p, "app:1")
		if err != nil {
			t.Fatal(err)
		}
		desc, m := root(t, r)
		digests = append(digests, desc.Digest)
		if len(m.Layers) != 2 || m.Layers[0].Digest != m.Layers[1].Digest {
			t.Fatalf("layers %v: want two equal", m.Layers)
		}
		for i, l := range m.Layers {
			if got := gunzip(t, readBlob(t, r, l)); !bytes.Equal(got, ti.layers[i]) {
				t.Errorf("layer %d: content differs", i)
			}
		}
		temps := append([]string(nil), r.remove...)
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Blob(context.Background(), m.Layers[0]); err == nil {
			t.Error("Blob after Close succeeded")
		}
		for _, f := range temps {
			if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("temp file %s left after Close", f)
			}
		}
	}
	if digests[0] != digests[1] {
		t.Fatalf("manifest digests differ between runs: %s, %s", digests[0], digests[1])
	}
}

// Docker 25's layout: an OCI layout inside, manifest.json naming blobs/sha256/….
func TestOpenOCILayoutArchive(t *testing.T) {
	ti := newTestImage(t, 1)
	cfgName := "blobs/sha256/" + digest.FromBytes(ti.config).Encoded()
	layerName := "blobs/sha256/" + digest.FromBytes(ti.layers[0]).Encoded()
	m, _ := json.Marshal([]manifestEntry{{Config: cfgName, RepoTags: []string{"example.com/team/app:2"}, Layers: []string{layerName}}})
	p := writeTar(t, []tarFile{
		{name: "oci-layout", body: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{name: "blobs/sha256/", body: nil},
		{name: cfgName, body: ti.config},
		{name: layerName, body: ti.layers[0]},
		{name: "index.json", body: []byte(`{}`)},
		{name: "manifest.json", body: m},
	})
	r, err := Open(p, "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, man := root(t, r)
	if got := gunzip(t, readBlob(t, r, man.Layers[0])); !bytes.Equal(got, ti.layers[0]) {
		t.Fatal("layer content differs")
	}
	if _, err := Open(p, "example.com/team/app"); !errors.Is(err, imagestore.ErrNotFound) {
		t.Fatalf("wrong tag: %v, want ErrNotFound", err)
	}
}

// A gzip-compressed archive (docker save | gzip) opens like a plain one.
func TestOpenCompressedArchive(t *testing.T) {
	ti := newTestImage(t, 1)
	raw, _ := os.ReadFile(writeTar(t, ti.legacyEntries("app:1")))
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(raw)
	zw.Close()
	p := filepath.Join(t.TempDir(), "img.tar.gz")
	os.WriteFile(p, buf.Bytes(), 0o644)
	r, err := Open(p, "app")
	if err == nil {
		t.Fatal("app means app:latest, which the archive does not have")
	}
	if r, err = Open(p, "app:1"); err != nil {
		t.Fatal(err)
	}
	root(t, r)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenDiffIDMismatch(t *testing.T) {
	ti := newTestImage(t, 1)
	ti.layers[0] = append([]byte(nil), ti.layers[0]...)
	ti.layers[0][600] ^= 1
	r, err := Open(writeTar(t, ti.legacyEntries()), "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, _, err := r.Root(context.Background()); err == nil || !strings.Contains(err.Error(), "diff_id") {
		t.Fatalf("Root: %v, want a diff_id mismatch", err)
	}
	if len(r.remove) != 0 {
		t.Fatalf("failed Root kept temp files %v", r.remove)
	}
}

func TestOpenSelect(t *testing.T) {
	a, b := newTestImage(t, 1), newTestImage(t, 1)
	ea, eb := a.legacyEntries("a:1", "a:latest"), b.legacyEntries("b:1")
	var ma, mb []manifestEntry
	json.Unmarshal(ea[len(ea)-1].body, &ma)
	json.Unmarshal(eb[len(eb)-1].body, &mb)
	both, _ := json.Marshal(append(ma, mb...))
	files := append(append(ea[:len(ea)-1:len(ea)-1], eb[:len(eb)-1]...), tarFile{name: "manifest.json", body: both})
	p := writeTar(t, files)

	if _, err := Open(p, ""); err == nil || !strings.Contains(err.Error(), "a:1, a:latest, b:1") {
		t.Fatalf("no ref: %v, want the tags listed", err)
	}
	if _, err := Open(p, "c"); !errors.Is(err, imagestore.ErrNotFound) {
		t.Fatalf("missing tag: %v", err)
	}
	for ref, want := range map[string][]byte{"a": a.config, "docker.io/library/b:1": b.config} {
		r, err := Open(p, ref)
		if err != nil {
			t.Fatal(err)
		}
		_, m := root(t, r)
		if !bytes.Equal(readBlob(t, r, m.Config), want) {
			t.Errorf("%s: wrong image", ref)
		}
		r.Close()
	}
}

func TestOpenErrors(t *testing.T) {
	ti := newTestImage(t, 1)
	noLayer := ti.legacyEntries()
	noLayer = append(noLayer[:1], noLayer[3:]...)
	for name, p := range map[string]string{
		"not a tar":     writeFile(t, []byte("hello, this is not a tar archive")),
		"no manifest":   writeTar(t, []tarFile{{name: "x", body: []byte("y")}}),
		"missing layer": writeTar(t, noLayer),
		"link loop":     writeTar(t, append(noLayer, tarFile{name: ti.legacyEntries()[2].name, link: "layer.tar"})),
	} {
		if r, err := Open(p, ""); err == nil {
			r.Close()
			t.Errorf("%s: no error", name)
		}
	}
}

func writeFile(t *testing.T, b []byte) string {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Reading an untrusted archive must fail cleanly, never panic or hang.
func FuzzOpen(f *testing.F) {
	ti := newTestImage(f, 1)
	var buf bytes.Buffer
	seed := writeTarTo(&buf, ti.legacyEntries("app:1"))
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Open(writeFile(t, data), "")
		if err != nil {
			return
		}
		defer r.Close()
		if _, m, err := r.Root(context.Background()); err == nil {
			var man struct {
				Layers []struct{ Digest digest.Digest }
			}
			json.Unmarshal(m, &man)
		}
	})
}
