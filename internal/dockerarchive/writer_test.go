package dockerarchive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/hubctl/hubctl/internal/imagestore"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var (
	_ imagestore.Source          = (*Reader)(nil)
	_ imagestore.Target          = (*Writer)(nil)
	_ imagestore.Sequential      = (*Writer)(nil)
	_ imagestore.SinglePlatform  = (*Writer)(nil)
	_ imagestore.VerifiesDigests = (*Writer)(nil)
)

// putGGCRImage writes a ggcr image's blobs and manifest into w.
func putGGCRImage(t *testing.T, w *Writer, img v1.Image) {
	t.Helper()
	ctx := context.Background()
	m, _ := img.Manifest()
	cfg, _ := img.RawConfigFile()
	if err := w.PutBlob(ctx, desc(m.Config), bytes.NewReader(cfg)); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	for i, l := range layers {
		rc, _ := l.Compressed()
		err := w.PutBlob(ctx, desc(m.Layers[i]), rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := img.RawManifest()
	d, _ := img.Digest()
	mt, _ := img.MediaType()
	if err := w.PutManifest(ctx, ocispec.Descriptor{MediaType: string(mt), Digest: digest.Digest(d.String()), Size: int64(len(raw))}, raw, "1"); err != nil {
		t.Fatal(err)
	}
}

func desc(d v1.Descriptor) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: string(d.MediaType), Digest: digest.Digest(d.Digest.String()), Size: d.Size}
}

// What the Writer makes, ggcr reads and validates as the same image.
func TestWriterGGCRReadsIt(t *testing.T) {
	img, err := random.Image(4096, 3)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "out.tar")
	w, err := Create(p, "example.com/app:1")
	if err != nil {
		t.Fatal(err)
	}
	putGGCRImage(t, w, img)
	if err := w.Close(nil); err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag("example.com/app:1")
	got, err := tarball.ImageFromPath(p, &tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkImage(got); err != nil {
		t.Fatal(err)
	}
	want, _ := img.ConfigName()
	if have, _ := got.ConfigName(); have != want {
		t.Fatalf("config %s, want %s", have, want)
	}
	ls, _ := got.Layers()
	wls, _ := img.Layers()
	for i := range ls {
		a, _ := ls[i].Digest()
		b, _ := wls[i].Digest()
		if a != b {
			t.Errorf("layer %d: %s, want %s", i, a, b)
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(p)); len(entries) != 1 {
		t.Errorf("directory holds %d files, want only the archive", len(entries))
	}
}

// Reader → Writer → Reader keeps the manifest, and the Writer's bytes are the
// same on every run.
func TestWriterRoundTripIsDeterministic(t *testing.T) {
	ti := newTestImage(t, 2)
	r, err := Open(writeTar(t, ti.legacyEntries("app:1")), "app:1")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d0, _ := root(t, r)
	var outs [2]bytes.Buffer
	for i := range outs {
		w := NewWriter(&outs[i], "app")
		copyImage(t, r, w)
		if err := w.Close(nil); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(outs[0].Bytes(), outs[1].Bytes()) {
		t.Fatal("two writes of one image differ")
	}
	r2, err := Open(writeFile(t, outs[0].Bytes()), "app:latest")
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if d1, _ := root(t, r2); d1.Digest != d0.Digest {
		t.Fatalf("manifest %s after the round trip, want %s", d1.Digest, d0.Digest)
	}
}

// A blob whose bytes do not match its digest fails with ErrDigest; Close(err) then
// leaves nothing behind.
func TestWriterDigestMismatch(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.tar")
	w, err := Create(p, "app:1")
	if err != nil {
		t.Fatal(err)
	}
	good := []byte("good content")
	err = w.PutBlob(context.Background(), ocispec.Descriptor{Digest: digest.FromBytes(good), Size: int64(len(good))}, strings.NewReader("evil content"))
	if !errors.Is(err, imagestore.ErrDigest) {
		t.Fatalf("PutBlob: %v, want ErrDigest", err)
	}
	if ok, _ := w.HasBlob(context.Background(), ocispec.Descriptor{Digest: digest.FromBytes(good)}); ok {
		t.Fatal("HasBlob reports the rejected blob")
	}
	if err := w.Close(err); !errors.Is(err, imagestore.ErrDigest) {
		t.Fatalf("Close: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left %v behind", entries)
	}
}

// A file archive recovers from a bad blob: the entry is cut off and the retry lands.
// A stream cannot take its bytes back, so it refuses further use.
func TestWriterAfterDigestMismatch(t *testing.T) {
	img, _ := random.Image(1024, 1)
	m, _ := img.Manifest()
	cfg, _ := img.RawConfigFile()
	bad := func(w *Writer) error {
		return w.PutBlob(context.Background(), desc(m.Config), bytes.NewReader(bytes.ToUpper(cfg)))
	}

	p := filepath.Join(t.TempDir(), "out.tar")
	w, _ := Create(p, "app:1")
	if err := bad(w); !errors.Is(err, imagestore.ErrDigest) {
		t.Fatal(err)
	}
	putGGCRImage(t, w, img)
	if err := w.Close(nil); err != nil {
		t.Fatal(err)
	}
	got, err := tarball.ImageFromPath(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkImage(got); err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	sw := NewWriter(&buf, "app:1")
	if err := bad(sw); !errors.Is(err, imagestore.ErrDigest) {
		t.Fatal(err)
	}
	if err := sw.PutBlob(context.Background(), desc(m.Config), bytes.NewReader(cfg)); err == nil {
		t.Fatal("the stream took a blob after a bad one")
	}
	if err := sw.Close(nil); err == nil {
		t.Fatal("Close(nil) succeeded on a broken stream")
	}
}

func TestWriterRefusals(t *testing.T) {
	ctx := context.Background()
	index := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
	w := NewWriter(&bytes.Buffer{}, "app")
	err := w.PutManifest(ctx, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(index), Size: int64(len(index))}, index, "")
	if !errors.Is(err, ErrIndex) || !strings.Contains(err.Error(), "choose a platform") {
		t.Fatalf("index: %v", err)
	}
	if err := w.PutManifest(ctx, ocispec.Descriptor{Digest: digest.FromString("other")}, index, ""); !errors.Is(err, imagestore.ErrDigest) {
		t.Fatalf("manifest digest mismatch: %v", err)
	}

	// Close(nil) without the blobs the manifest names fails and leaves no file.
	img, _ := random.Image(512, 1)
	raw, _ := img.RawManifest()
	p := filepath.Join(t.TempDir(), "out.tar")
	cw, _ := Create(p, "")
	if err := cw.PutManifest(ctx, ocispec.Descriptor{MediaType: MediaTypeManifest, Digest: digest.FromBytes(raw), Size: int64(len(raw))}, raw, ""); err != nil {
		t.Fatal(err)
	}
	if err := cw.Close(nil); err == nil || !strings.Contains(err.Error(), "not written") {
		t.Fatalf("Close: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(p)); len(entries) != 0 {
		t.Fatalf("left %v behind", entries)
	}

	if _, err := Create(p, "app@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"); err == nil {
		t.Fatal("Create took a digest reference")
	}
}

// pgzip's output must not depend on how many blocks run at once, or digests would
// vary with the machine's CPU count.
func TestCompressIgnoresConcurrency(t *testing.T) {
	data := bytes.Repeat([]byte("hubctl layer data, compressible and long enough. "), 100_000)
	var digests []digest.Digest
	for _, blocks := range []int{1, 2, 8} {
		f, err := os.CreateTemp(t.TempDir(), "gz")
		if err != nil {
			t.Fatal(err)
		}
		d, _, err := compressLayer(context.Background(), f, bytes.NewReader(data), digest.SHA256.Hash(), blocks)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	if digests[0] != digests[1] || digests[1] != digests[2] {
		t.Fatalf("digests differ with concurrency: %v", digests)
	}
}

// checkImage does what ggcr's validate.Image does for the parts an archive carries
// (validate itself needs a go.sum entry for go-cmp the module lacks): the config
// matches its digest, and every layer's compressed bytes its digest and size, its
// uncompressed bytes its diff_id.
func checkImage(img v1.Image) error {
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	if d := digest.FromBytes(cfg); d.String() != m.Config.Digest.String() {
		return fmt.Errorf("config is %s, manifest says %s", d, m.Config.Digest)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	if len(layers) != len(m.Layers) || len(layers) != len(cf.RootFS.DiffIDs) {
		return fmt.Errorf("%d layers, %d in the manifest, %d diff_ids", len(layers), len(m.Layers), len(cf.RootFS.DiffIDs))
	}
	for i, l := range layers {
		for _, c := range []struct {
			open func() (io.ReadCloser, error)
			want v1.Hash
			size int64
		}{{l.Compressed, m.Layers[i].Digest, m.Layers[i].Size}, {l.Uncompressed, cf.RootFS.DiffIDs[i], -1}} {
			rc, err := c.open()
			if err != nil {
				return err
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return fmt.Errorf("layer %d: %w", i, err)
			}
			if d := digest.FromBytes(b); d.String() != c.want.String() || c.size >= 0 && int64(len(b)) != c.size {
				return fmt.Errorf("layer %d: content is %s (%d bytes), want %s", i, d, len(b), c.want)
			}
		}
	}
	return nil
}
