package ocilayout

import (
	"bytes"
	"context"
	"crypto/sha512"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/hubctl/hubctl/internal/imagestore"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestDirRoundTrip(t *testing.T) {
	im := newTestImage(t, "dir")
	dir := writeDir(t, im, "v1")

	for _, ref := range []string{"", "v1", im.index.desc.Digest.String()} {
		t.Run("ref="+ref, func(t *testing.T) {
			src, err := OpenDir(dir, ref)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			checkImage(t, src, im)
		})
	}

	idx := readIndexFile(t, dir)
	if len(idx.Manifests) != 1 {
		t.Fatalf("index.json lists %d manifests, want only the root (children are blobs)", len(idx.Manifests))
	}
	if got := idx.Manifests[0].Annotations[ocispec.AnnotationRefName]; got != "v1" {
		t.Errorf("ref.name = %q, want v1", got)
	}
	for _, f := range listFiles(t, dir) {
		if strings.Contains(f, ".tmp-") {
			t.Errorf("temp file left behind: %s", f)
		}
	}
}

func TestOpenDirResolve(t *testing.T) {
	a, b := newTestImage(t, "a"), newTestImage(t, "b")
	dir := writeDir(t, a, "v1")
	w, err := CreateDir(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	putImage(t, w, b, "v2")
	if err := w.Close(nil); err != nil {
		t.Fatal(err)
	}
	child := a.manifests[1]

	tests := []struct {
		ref      string
		want     digest.Digest
		wantErr  string
		notFound bool
	}{
		{ref: "v1", want: a.index.desc.Digest},
		{ref: "v2", want: b.index.desc.Digest},
		{ref: b.index.desc.Digest.String(), want: b.index.desc.Digest},
		// A child is not in index.json but can be named by digest.
		{ref: child.desc.Digest.String(), want: child.desc.Digest},
		{ref: "", wantErr: "lists 2 manifests (v1, v2)"},
		{ref: "v3", wantErr: `no manifest named "v3" in index.json (names: v1, v2)`, notFound: true},
		{ref: "sha256:" + testHex, wantErr: "sha256:" + testHex, notFound: true},
		{ref: "sha256:zz", wantErr: `invalid digest "sha256:zz"`},
	}
	for _, tt := range tests {
		t.Run("ref="+tt.ref, func(t *testing.T) {
			src, err := OpenDir(dir, tt.ref)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), dir) {
					t.Fatalf("OpenDir(%q) error = %v, want one naming %s and %q", tt.ref, err, dir, tt.wantErr)
				}
				if errors.Is(err, imagestore.ErrNotFound) != tt.notFound {
					t.Fatalf("errors.Is(%v, ErrNotFound) = %v, want %v", err, !tt.notFound, tt.notFound)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			desc, _, err := src.Root(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if desc.Digest != tt.want || desc.MediaType == "" {
				t.Fatalf("Root = %s %q, want %s", desc.Digest, desc.MediaType, tt.want)
			}
		})
	}
}

func TestOpenDirErrors(t *testing.T) {
	root := t.TempDir()
	notLayout := filepath.Join(root, "plain")
	if err := os.Mkdir(notLayout, 0o755); err != nil {
		t.Fatal(err)
	}
	badIndex := filepath.Join(root, "badindex")
	if err := os.MkdirAll(badIndex, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(badIndex, "oci-layout"), layoutFileContent(), 0o644)
	os.WriteFile(filepath.Join(badIndex, "index.json"), []byte("{"), 0o644)

	tests := []struct {
		dir     string
		wantErr string
	}{
		{filepath.Join(root, "missing"), "directory does not exist"},
		{notLayout, "not an OCI layout"},
		{badIndex, "index.json: unexpected end of JSON input"},
	}
	for _, tt := range tests {
		_, err := OpenDir(tt.dir, "")
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), tt.dir) {
			t.Errorf("OpenDir(%s) error = %v, want %q", tt.dir, err, tt.wantErr)
		}
	}
}

func TestDirBlobErrors(t *testing.T) {
	im := newTestImage(t, "errs")
	dir := writeDir(t, im, "v1")
	src, err := OpenDir(dir, "v1")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	layer := im.layers[0]

	missing := newContent(ocispec.MediaTypeImageLayerGzip, []byte("absent"))
	if _, err := src.Blob(ctx, missing.desc); !errors.Is(err, imagestore.ErrNotFound) || !strings.Contains(err.Error(), missing.desc.Digest.String()) {
		t.Errorf("Blob(missing) error = %v, want ErrNotFound naming the digest", err)
	}
	wrongSize := layer.desc
	wrongSize.Size++
	if _, err := src.Blob(ctx, wrongSize); !errors.Is(err, imagestore.ErrDigest) {
		t.Errorf("Blob(wrong size) error = %v, want ErrDigest", err)
	}

	// A manifest whose bytes were changed (same size) fails verification.
	m := im.manifests[0]
	p := filepath.Join(dir, "blobs", "sha256", m.desc.Digest.Encoded())
	tampered := bytes.Clone(m.raw)
	tampered[len(tampered)/2] ^= 1
	if err := os.WriteFile(p, tampered, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Manifest(ctx, m.desc); !errors.Is(err, imagestore.ErrDigest) {
		t.Errorf("Manifest(tampered) error = %v, want ErrDigest", err)
	}
}

func TestDirPutBlobMismatch(t *testing.T) {
	good := newContent(ocispec.MediaTypeImageLayerGzip, []byte("the real content"))
	tests := []struct {
		name string
		body []byte
		desc ocispec.Descriptor
	}{
		{"same size, other bytes", []byte("the fake content"), good.desc},
		{"short", []byte("the real"), good.desc},
		{"long", []byte("the real content and more"), good.desc},
		{"size lies", good.raw, ocispec.Descriptor{Digest: good.desc.Digest, Size: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "layout")
			w, err := CreateDir(dir, "")
			if err != nil {
				t.Fatal(err)
			}
			err = w.PutBlob(context.Background(), tt.desc, bytes.NewReader(tt.body))
			if !errors.Is(err, imagestore.ErrDigest) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("PutBlob error = %v, want ErrDigest naming %s", err, dir)
			}
			entries, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 0 {
				t.Fatalf("blobs/sha256 holds %d files after a mismatch, want none", len(entries))
			}
			if ok, _ := w.HasBlob(context.Background(), good.desc); ok {
				t.Fatal("HasBlob true after a mismatch")
			}
		})
	}
}

func TestDirPutBlobReadError(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	w, err := CreateDir(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	c := newContent(ocispec.MediaTypeImageLayerGzip, []byte("x"))
	boom := errors.New("boom")
	if err := w.PutBlob(context.Background(), c.desc, iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Fatalf("PutBlob error = %v, want boom", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.PutBlob(ctx, c.desc, bytes.NewReader(c.raw)); !errors.Is(err, context.Canceled) {
		t.Fatalf("PutBlob(cancelled) error = %v, want context.Canceled", err)
	}
	if files := listFiles(t, filepath.Join(dir, "blobs")); len(files) != 0 {
		t.Fatalf("blobs left behind: %v", files)
	}
}

func TestDirConcurrentPutBlob(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	w, err := CreateDir(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	var blobs []content
	for i := range 4 {
		blobs = append(blobs, newContent(ocispec.MediaTypeImageLayerGzip, bytes.Repeat([]byte{byte('a' + i)}, 256<<10+i)))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*len(blobs))
	for range 4 {
		for _, b := range blobs {
			wg.Go(func() {
				errs <- w.PutBlob(context.Background(), b.desc, iotest.HalfReader(bytes.NewReader(b.raw)))
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range blobs {
		got, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", b.desc.Digest.Encoded()))
		if err != nil || !bytes.Equal(got, b.raw) {
			t.Fatalf("blob %s: err %v, equal %v", b.desc.Digest, err, bytes.Equal(got, b.raw))
		}
	}
	if files := listFiles(t, filepath.Join(dir, "blobs")); len(files) != len(blobs) {
		t.Fatalf("blobs dir holds %v, want %d blobs and no temp files", files, len(blobs))
	}
}

func TestDirSHA512(t *testing.T) {
	raw := []byte("sha512 content")
	sum := sha512.Sum512(raw)
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.NewDigestFromBytes(digest.SHA512, sum[:]), Size: int64(len(raw))}
	dir := filepath.Join(t.TempDir(), "layout")
	w, err := CreateDir(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := w.PutBlob(ctx, desc, bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	if ok, err := w.HasBlob(ctx, desc); !ok || err != nil {
		t.Fatalf("HasBlob = %v, %v", ok, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "blobs", "sha512", desc.Digest.Encoded())); err != nil {
		t.Fatal(err)
	}
	bad := desc
	bad.Digest = digest.Digest("sha384:" + strings.Repeat("0", 96))
	if err := w.PutBlob(ctx, bad, bytes.NewReader(raw)); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Fatalf("PutBlob(sha384) error = %v, want unsupported algorithm", err)
	}
}

func TestDirTags(t *testing.T) {
	a, b, c := newTestImage(t, "a"), newTestImage(t, "b"), newTestImage(t, "c")
	tests := []struct {
		name     string
		ref      string // the location's REF for the third write
		tag      string // the tag PutManifest gets
		wantTags map[string]digest.Digest
	}{
		{"replace v1 keeps v2", "", "v1", map[string]digest.Digest{"v1": c.index.desc.Digest, "v2": b.index.desc.Digest}},
		{"new name is added", "", "v3", map[string]digest.Digest{"v1": a.index.desc.Digest, "v2": b.index.desc.Digest, "v3": c.index.desc.Digest}},
		{"location REF wins", "v2", "other", map[string]digest.Digest{"v1": a.index.desc.Digest, "v2": c.index.desc.Digest}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeDir(t, a, "v1")
			for _, step := range []struct {
				ref, tag string
				im       testImage
			}{{"", "v2", b}, {tt.ref, tt.tag, c}} {
				w, err := CreateDir(dir, step.ref)
				if err != nil {
					t.Fatal(err)
				}
				putImage(t, w, step.im, step.tag)
				if err := w.Close(nil); err != nil {
					t.Fatal(err)
				}
			}
			idx := readIndexFile(t, dir)
			got := make(map[string]digest.Digest)
			for _, m := range idx.Manifests {
				got[m.Annotations[ocispec.AnnotationRefName]] = m.Digest
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.wantTags) {
				t.Fatalf("index.json names %v, want %v", got, tt.wantTags)
			}
		})
	}
}

func TestCreateDirClose(t *testing.T) {
	t.Run("error removes a new directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "new")
		w, err := CreateDir(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		putImage(t, w, newTestImage(t, "x"), "v1")
		if err := w.Close(errors.New("copy failed")); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("directory still there after Close(err): %v", err)
		}
	})
	t.Run("error leaves an existing index alone", func(t *testing.T) {
		dir := writeDir(t, newTestImage(t, "a"), "v1")
		before, _ := os.ReadFile(filepath.Join(dir, "index.json"))
		w, err := CreateDir(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		putImage(t, w, newTestImage(t, "b"), "v1")
		if err := w.Close(errors.New("copy failed")); err != nil {
			t.Fatal(err)
		}
		after, _ := os.ReadFile(filepath.Join(dir, "index.json"))
		if !bytes.Equal(before, after) {
			t.Fatalf("index.json changed by Close(err)")
		}
		if err := w.PutBlob(context.Background(), ocispec.Descriptor{}, nil); err == nil || !strings.Contains(err.Error(), "closed") {
			t.Fatalf("PutBlob after Close error = %v", err)
		}
	})
	t.Run("refuses a non-empty directory that is not a layout", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644)
		if _, err := CreateDir(dir, ""); err == nil || !strings.Contains(err.Error(), "not an OCI layout") {
			t.Fatalf("CreateDir error = %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "oci-layout")); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("oci-layout written into a foreign directory")
		}
	})
	t.Run("rejects a digest as the name", func(t *testing.T) {
		if _, err := CreateDir(t.TempDir(), "sha256:"+testHex); err == nil || !strings.Contains(err.Error(), "digest") {
			t.Fatalf("CreateDir error = %v", err)
		}
	})
	t.Run("empty layout is valid", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "empty")
		w, err := CreateDir(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Close(nil); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenDir(dir, ""); !errors.Is(err, imagestore.ErrNotFound) {
			t.Fatalf("OpenDir(empty) error = %v, want ErrNotFound", err)
		}
	})
}
