package dockerarchive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/hubctl/hubctl/internal/imagestore"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// tarFile is one entry of a hand-made archive: a regular file, or a symlink when
// link is set.
type tarFile struct {
	name string
	body []byte
	link string
}

// writeTar writes entries to a new file in dir and returns its path.
func writeTar(t *testing.T, entries []tarFile) string {
	t.Helper()
	var buf bytes.Buffer
	writeTarTo(&buf, entries)
	p := filepath.Join(t.TempDir(), "archive.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeTarTo writes entries as a tar to buf and returns its bytes.
func writeTarTo(buf *bytes.Buffer, entries []tarFile) []byte {
	tw := tar.NewWriter(buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		if e.link != "" {
			hdr = &tar.Header{Name: e.name, Linkname: e.link, Typeflag: tar.TypeSymlink, Mode: 0o777}
		}
		if strings.HasSuffix(e.name, "/") {
			hdr = &tar.Header{Name: e.name, Mode: 0o755, Typeflag: tar.TypeDir}
		}
		tw.WriteHeader(hdr)
		tw.Write(e.body)
	}
	tw.Close()
	return buf.Bytes()
}

// testImage is a random image as raw parts: config JSON and uncompressed layer tars.
type testImage struct {
	config []byte
	layers [][]byte
}

func newTestImage(t testing.TB, layers int) testImage {
	t.Helper()
	img, err := random.Image(3000, int64(layers))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	ti := testImage{config: cfg}
	for _, l := range ls {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		ti.layers = append(ti.layers, b)
	}
	return ti
}

// legacyEntries lays the image out as Docker 20.10's docker save does: config as
// <id>.json, layers as <dir>/layer.tar, uncompressed.
func (ti testImage) legacyEntries(tags ...string) []tarFile {
	cfgName := digest.FromBytes(ti.config).Encoded() + ".json"
	files := []tarFile{{name: cfgName, body: ti.config}}
	m := manifestEntry{Config: cfgName, RepoTags: tags}
	for i, l := range ti.layers {
		dir := digest.FromBytes(append([]byte{byte(i)}, l...)).Encoded()
		files = append(files,
			tarFile{name: dir + "/VERSION", body: []byte("1.0")},
			tarFile{name: dir + "/layer.tar", body: l})
		m.Layers = append(m.Layers, dir+"/layer.tar")
	}
	raw, _ := json.Marshal([]manifestEntry{m})
	return append(files, tarFile{name: "manifest.json", body: raw})
}

// readBlob reads a blob whole and checks it against its descriptor.
func readBlob(t *testing.T, src imagestore.Source, desc ocispec.Descriptor) []byte {
	t.Helper()
	rc, err := src.Blob(context.Background(), desc)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != desc.Size || digest.FromBytes(b) != desc.Digest {
		t.Fatalf("blob %s: got %d bytes with digest %s, want %d", desc.Digest, len(b), digest.FromBytes(b), desc.Size)
	}
	return b
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// root opens the source's manifest and parses it.
func root(t *testing.T, src imagestore.Source) (ocispec.Descriptor, ocispec.Manifest) {
	t.Helper()
	desc, raw, err := src.Root(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if digest.FromBytes(raw) != desc.Digest || int64(len(raw)) != desc.Size {
		t.Fatalf("root descriptor %v does not match its bytes", desc)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return desc, m
}

// copyImage copies the source's image into the target, as the transfer engine would.
func copyImage(t *testing.T, src imagestore.Source, dst imagestore.Target) {
	t.Helper()
	ctx := context.Background()
	desc, raw, err := src.Root(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, b := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
		rc, err := src.Blob(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		err = dst.PutBlob(ctx, b, rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := dst.PutManifest(ctx, desc, raw, ""); err != nil {
		t.Fatal(err)
	}
}
