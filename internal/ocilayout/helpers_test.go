package ocilayout

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/hubctl/hubctl/internal/imagestore"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// content is a blob with its descriptor.
type content struct {
	desc ocispec.Descriptor
	raw  []byte
}

func newContent(mediaType string, raw []byte) content {
	return content{desc: ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(raw), Size: int64(len(raw))}, raw: raw}
}

// testImage is a multi-platform image: an index of two manifests that share two
// gzipped layers and have a config each.
type testImage struct {
	layers    []content
	configs   []content
	manifests []content
	index     content
}

// blobs lists the configs and layers, each once.
func (im testImage) blobs() []content {
	return append(append([]content{}, im.configs...), im.layers...)
}

func gzipTar(t testing.TB, files map[string]string) (gz []byte, diffID digest.Digest) {
	t.Helper()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, name := range []string{"etc/hostname", "usr/bin/app"} {
		body, ok := files[name]
		if !ok {
			continue
		}
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: epoch}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	if _, err := zw.Write(tb.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return zb.Bytes(), digest.FromBytes(tb.Bytes())
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func newTestImage(t testing.TB, seed string) testImage {
	t.Helper()
	var im testImage
	var diffIDs []digest.Digest
	for _, files := range []map[string]string{
		{"etc/hostname": "hub-" + seed + "\n"},
		{"usr/bin/app": fmt.Sprintf("#!/bin/sh\necho %s\n", seed)},
	} {
		gz, diffID := gzipTar(t, files)
		im.layers = append(im.layers, newContent(ocispec.MediaTypeImageLayerGzip, gz))
		diffIDs = append(diffIDs, diffID)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		cfg := ocispec.Image{
			Platform: ocispec.Platform{OS: "linux", Architecture: arch},
			Config:   ocispec.ImageConfig{Cmd: []string{"/usr/bin/app"}},
			RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
		}
		config := newContent(ocispec.MediaTypeImageConfig, mustJSON(t, cfg))
		im.configs = append(im.configs, config)
		layerDescs := make([]ocispec.Descriptor, len(im.layers))
		for i, l := range im.layers {
			layerDescs[i] = l.desc
		}
		m := ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageManifest,
			Config:    config.desc,
			Layers:    layerDescs,
		}
		mc := newContent(ocispec.MediaTypeImageManifest, mustJSON(t, m))
		mc.desc.Platform = &ocispec.Platform{OS: "linux", Architecture: arch}
		im.manifests = append(im.manifests, mc)
	}
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	for _, m := range im.manifests {
		idx.Manifests = append(idx.Manifests, m.desc)
	}
	im.index = newContent(ocispec.MediaTypeImageIndex, mustJSON(t, idx))
	return im
}

// putImage writes im into target as the engine would: blobs, children, then the index
// under tag. It does not close the target.
func putImage(t testing.TB, target imagestore.Target, im testImage, tag string) {
	t.Helper()
	ctx := context.Background()
	for _, b := range im.blobs() {
		if err := target.PutBlob(ctx, b.desc, bytes.NewReader(b.raw)); err != nil {
			t.Fatalf("PutBlob: %v", err)
		}
	}
	for _, m := range im.manifests {
		if err := target.PutManifest(ctx, m.desc, m.raw, ""); err != nil {
			t.Fatalf("PutManifest child: %v", err)
		}
	}
	if err := target.PutManifest(ctx, im.index.desc, im.index.raw, tag); err != nil {
		t.Fatalf("PutManifest root: %v", err)
	}
}

// checkImage reads im back through src and compares every byte.
func checkImage(t testing.TB, src imagestore.Source, im testImage) {
	t.Helper()
	ctx := context.Background()
	desc, raw, err := src.Root(ctx)
	if err != nil {
		t.Fatalf("Root: %v", err)
	}
	if desc.Digest != im.index.desc.Digest || desc.MediaType != ocispec.MediaTypeImageIndex || !bytes.Equal(raw, im.index.raw) {
		t.Fatalf("Root = %s %s (%d bytes), want %s", desc.MediaType, desc.Digest, len(raw), im.index.desc.Digest)
	}
	for _, m := range im.manifests {
		got, err := src.Manifest(ctx, m.desc)
		if err != nil {
			t.Fatalf("Manifest: %v", err)
		}
		if !bytes.Equal(got, m.raw) {
			t.Fatalf("Manifest %s: bytes differ", m.desc.Digest)
		}
	}
	for _, b := range im.blobs() {
		rc, err := src.Blob(ctx, b.desc)
		if err != nil {
			t.Fatalf("Blob: %v", err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("Blob %s: %v", b.desc.Digest, err)
		}
		if !bytes.Equal(got, b.raw) {
			t.Fatalf("Blob %s: bytes differ", b.desc.Digest)
		}
	}
}

// writeDir writes im into a new layout directory under tag and returns its path.
func writeDir(t testing.TB, im testImage, tag string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	w, err := CreateDir(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	putImage(t, w, im, tag)
	if err := w.Close(nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeArchive writes im into a new archive under tag and returns its path.
func writeArchive(t testing.TB, file string, im testImage, tag string) string {
	t.Helper()
	w, err := CreateArchive(file, "")
	if err != nil {
		t.Fatal(err)
	}
	putImage(t, w, im, tag)
	if err := w.Close(nil); err != nil {
		t.Fatal(err)
	}
	return file
}

// listFiles returns the names of the regular files under dir, relative and slashed.
func listFiles(t testing.TB, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// readIndexFile decodes index.json of a layout directory.
func readIndexFile(t testing.TB, dir string) ocispec.Index {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, ocispec.ImageIndexFile))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := parseIndex(raw)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// tarDir writes the files of dir into a tar at file, with names as `tar -C dir -cf
// file .` gives them ("./" prefix, directory entries).
func tarDir(t testing.TB, dir, file string) {
	t.Helper()
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		name := "./" + filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "." {
				name = "./"
			} else {
				name += "/"
			}
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755})
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(raw))}); err != nil {
			return err
		}
		_, err = tw.Write(raw)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// untar extracts the archive at file into dir, as a third-party tool would.
func untar(t testing.TB, file, dir string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		name, err := cleanEntryName(hdr.Name)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			out, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(out, tr); err != nil {
				t.Fatal(err)
			}
			if err := out.Close(); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("unexpected entry %q type %q", hdr.Name, hdr.Typeflag)
		}
	}
}
