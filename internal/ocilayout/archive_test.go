package ocilayout

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/imagestore"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestArchiveRoundTrip(t *testing.T) {
	im := newTestImage(t, "archive")
	file := writeArchive(t, filepath.Join(t.TempDir(), "img.tar"), im, "v1")

	for _, ref := range []string{"", "v1", im.index.desc.Digest.String(), im.manifests[0].desc.Digest.String()} {
		t.Run("ref="+ref, func(t *testing.T) {
			src, err := OpenArchive(file, ref)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if ref == im.manifests[0].desc.Digest.String() {
				desc, raw, err := src.Root(context.Background())
				if err != nil || desc.Digest != im.manifests[0].desc.Digest || !bytes.Equal(raw, im.manifests[0].raw) {
					t.Fatalf("Root by child digest = %s, %v", desc.Digest, err)
				}
				return
			}
			checkImage(t, src, im)
		})
	}

	// The archive holds exactly the layout, in the documented shape.
	var names []string
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		if hdr.Uid != 0 || hdr.Gid != 0 || !hdr.ModTime.Equal(epoch) || (hdr.Typeflag == tar.TypeReg && hdr.Mode != 0o644) {
			t.Errorf("entry %s: uid %d gid %d mtime %v mode %o", hdr.Name, hdr.Uid, hdr.Gid, hdr.ModTime, hdr.Mode)
		}
	}
	want := []string{"blobs/", "blobs/sha256/"}
	for _, c := range append(im.blobs(), append(im.manifests, im.index)...) {
		want = append(want, "blobs/sha256/"+c.desc.Digest.Encoded())
	}
	want = append(want, "oci-layout", "index.json")
	if strings.Join(names, "\n") != strings.Join(want, "\n") {
		t.Fatalf("entries:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
}

func TestArchiveDeterministic(t *testing.T) {
	im := newTestImage(t, "same")
	dir := t.TempDir()
	a, err := os.ReadFile(writeArchive(t, filepath.Join(dir, "a.tar"), im, "v1"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(writeArchive(t, filepath.Join(dir, "b.tar"), im, "v1"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("the same image gave different archives")
	}
}

func TestArchiveCloseError(t *testing.T) {
	tests := []struct {
		name string
		old  []byte // content of FILE before, nil for none
	}{
		{"new file", nil},
		{"existing file kept", []byte("the previous archive")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "img.tar")
			if tt.old != nil {
				os.WriteFile(file, tt.old, 0o644)
			}
			w, err := CreateArchive(file, "")
			if err != nil {
				t.Fatal(err)
			}
			putImage(t, w, newTestImage(t, "x"), "v1")
			if err := w.Close(errors.New("copy failed")); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(file)
			switch {
			case tt.old == nil && !errors.Is(err, os.ErrNotExist):
				t.Fatalf("FILE exists after Close(err): %v", err)
			case tt.old != nil && !bytes.Equal(got, tt.old):
				t.Fatalf("FILE changed by Close(err): %q, %v", got, err)
			}
			var names []string
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if e.Name() != "img.tar" {
					names = append(names, e.Name())
				}
			}
			if len(names) != 0 {
				t.Fatalf("directory holds %v after Close(err), want no temp file", names)
			}
		})
	}
}

func TestArchivePutBlobMismatch(t *testing.T) {
	im := newTestImage(t, "mismatch")
	dir := t.TempDir()
	file := filepath.Join(dir, "img.tar")
	w, err := CreateArchive(file, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	layer := im.layers[0]
	bad := bytes.Clone(layer.raw)
	bad[len(bad)/2] ^= 0xff
	if err := w.PutBlob(ctx, layer.desc, bytes.NewReader(bad)); !errors.Is(err, imagestore.ErrDigest) || !strings.Contains(err.Error(), file) {
		t.Fatalf("PutBlob(bad) error = %v, want ErrDigest naming %s", err, file)
	}
	if err := w.PutBlob(ctx, layer.desc, bytes.NewReader(layer.raw[:10])); !errors.Is(err, imagestore.ErrDigest) {
		t.Fatalf("PutBlob(short) error = %v, want ErrDigest", err)
	}
	if ok, _ := w.HasBlob(ctx, layer.desc); ok {
		t.Fatal("HasBlob true after a mismatch")
	}

	// The failed entries were cut off: the rest of the image makes a valid archive,
	// byte-identical to one written without the failures.
	putImage(t, w, im, "v1")
	if err := w.Close(nil); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	clean, err := os.ReadFile(writeArchive(t, filepath.Join(dir, "clean.tar"), im, "v1"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, clean) {
		t.Fatal("archive after a rejected blob differs from a clean one")
	}
	src, err := OpenArchive(file, "v1")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	checkImage(t, src, im)
}

func TestArchiveMismatchThenCloseError(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "img.tar")
	w, err := CreateArchive(file, "")
	if err != nil {
		t.Fatal(err)
	}
	c := newContent(ocispec.MediaTypeImageLayerGzip, []byte("content"))
	err = w.PutBlob(context.Background(), c.desc, strings.NewReader("CONTENT"))
	if !errors.Is(err, imagestore.ErrDigest) {
		t.Fatalf("PutBlob error = %v", err)
	}
	if err := w.Close(err); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("directory not empty after Close(err): %d entries", len(entries))
	}
}

// writeTar writes a tar with the given headers (and bodies of their sizes).
func writeTar(t *testing.T, file string, hdrs []*tar.Header) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
	}
	tw.Close()
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestOpenArchiveRejects(t *testing.T) {
	reg := func(name string) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: 2, Mode: 0o644}
	}
	tests := []struct {
		name    string
		hdrs    []*tar.Header
		wantErr string
	}{
		{"absolute", []*tar.Header{reg("/etc/passwd")}, `"/etc/passwd": absolute path`},
		{"dotdot", []*tar.Header{reg("../x")}, `"../x": path contains ..`},
		{"inner dotdot", []*tar.Header{reg("blobs/../../x")}, "path contains .."},
		{"drive", []*tar.Header{reg("C:/x")}, "drive letter"},
		{"symlink", []*tar.Header{{Typeflag: tar.TypeSymlink, Name: "index.json", Linkname: "/etc/passwd"}}, "unsupported type"},
		{"duplicate", []*tar.Header{reg("index.json"), reg("./index.json")}, "appears twice"},
		{"no layout", []*tar.Header{reg("index.json")}, "no oci-layout entry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "bad.tar")
			writeTar(t, file, tt.hdrs)
			_, err := OpenArchive(file, "")
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), file) {
				t.Fatalf("OpenArchive error = %v, want %q naming %s", err, tt.wantErr, file)
			}
		})
	}
	if _, err := OpenArchive(filepath.Join(t.TempDir(), "none.tar"), ""); !errors.Is(err, imagestore.ErrNotFound) {
		t.Fatalf("OpenArchive(missing) error = %v, want ErrNotFound", err)
	}
}

func TestOpenArchiveTruncated(t *testing.T) {
	im := newTestImage(t, "trunc")
	file := writeArchive(t, filepath.Join(t.TempDir(), "img.tar"), im, "v1")
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// The last cut falls inside index.json (its content block is just before the
	// 1024-byte trailer). A cut in padding or trailer loses nothing and is accepted,
	// as archive/tar does.
	for _, n := range []int{len(raw) / 3, len(raw) / 2, len(raw) - 1024 - 512 + 10} {
		cut := filepath.Join(t.TempDir(), "cut.tar")
		os.WriteFile(cut, raw[:n], 0o644)
		if _, err := OpenArchive(cut, "v1"); err == nil {
			t.Fatalf("OpenArchive of an archive cut at %d of %d bytes succeeded", n, len(raw))
		}
	}
}

func TestArchiveBlobErrors(t *testing.T) {
	im := newTestImage(t, "errs")
	file := writeArchive(t, filepath.Join(t.TempDir(), "img.tar"), im, "v1")
	src, err := OpenArchive(file, "")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx := context.Background()
	missing := newContent(ocispec.MediaTypeImageLayerGzip, []byte("absent"))
	if _, err := src.Blob(ctx, missing.desc); !errors.Is(err, imagestore.ErrNotFound) || !strings.Contains(err.Error(), missing.desc.Digest.String()) {
		t.Errorf("Blob(missing) error = %v, want ErrNotFound naming the digest", err)
	}
	wrong := im.layers[1].desc
	wrong.Size--
	if _, err := src.Blob(ctx, wrong); !errors.Is(err, imagestore.ErrDigest) {
		t.Errorf("Blob(wrong size) error = %v, want ErrDigest", err)
	}
	// Blob readers can seek, so a resumed transfer need not read from the start.
	rc, err := src.Blob(ctx, im.layers[1].desc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.(io.Seeker).Seek(5, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(rc)
	if !bytes.Equal(rest, im.layers[1].raw[5:]) {
		t.Fatal("seeked blob reader returned other bytes")
	}
}

func FuzzOpenArchive(f *testing.F) {
	im := newTestImage(f, "fuzz")
	seed, err := os.ReadFile(writeArchive(f, filepath.Join(f.TempDir(), "seed.tar"), im, "v1"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		src, err := readArchive("fuzz.tar", bytes.NewReader(raw), int64(len(raw)), "")
		if err != nil {
			return
		}
		defer src.Close()
		ctx := context.Background()
		desc, _, err := src.Root(ctx)
		if err != nil {
			return
		}
		if rc, err := src.Blob(ctx, desc); err == nil {
			io.Copy(io.Discard, rc)
			rc.Close()
		}
	})
}
