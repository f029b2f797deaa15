package ocilayout

// Interoperability with go-containerregistry's pkg/v1/layout, a third-party
// implementation of the layout: it reads what we write, and we read what it writes.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/hubctl/hubctl/internal/imagestore"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// validateImage checks an image read by go-containerregistry the way its
// pkg/v1/validate.Image does (digests and sizes of manifest, config and layers, diff
// IDs of the gunzipped layers against the config). validate itself cannot be built
// here: it needs github.com/google/go-cmp, which go.sum does not list.
func validateImage(img v1.Image) error {
	rm, err := img.RawManifest()
	if err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	if h, _, _ := v1.SHA256(bytes.NewReader(rm)); h != d {
		return fmt.Errorf("manifest digest %s, content hashes to %s", d, h)
	}
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	pm, err := v1.ParseManifest(bytes.NewReader(rm))
	if err != nil {
		return err
	}
	if !reflect.DeepEqual(pm, m) {
		return errors.New("Manifest() differs from ParseManifest(RawManifest())")
	}

	cn, err := img.ConfigName()
	if err != nil {
		return err
	}
	rc, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	if h, n, _ := v1.SHA256(bytes.NewReader(rc)); h != cn || n != m.Config.Size {
		return fmt.Errorf("config %s (%d bytes) hashes to %s (%d bytes)", cn, m.Config.Size, h, n)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	if cf.RootFS.Type != "layers" {
		return fmt.Errorf("rootfs type %q", cf.RootFS.Type)
	}

	layers, err := img.Layers()
	if err != nil {
		return err
	}
	if len(layers) != len(m.Layers) || len(layers) != len(cf.RootFS.DiffIDs) {
		return fmt.Errorf("%d layers, %d in manifest, %d diff IDs", len(layers), len(m.Layers), len(cf.RootFS.DiffIDs))
	}
	for i, l := range layers {
		comp, err := l.Compressed()
		if err != nil {
			return err
		}
		h, n, err := v1.SHA256(comp)
		comp.Close()
		if err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		if h != m.Layers[i].Digest || n != m.Layers[i].Size {
			return fmt.Errorf("layer %d: manifest says %s (%d bytes), content is %s (%d bytes)", i, m.Layers[i].Digest, m.Layers[i].Size, h, n)
		}
		unc, err := l.Uncompressed()
		if err != nil {
			return err
		}
		diffID, _, err := v1.SHA256(unc)
		unc.Close()
		if err != nil {
			return fmt.Errorf("layer %d: gunzip: %w", i, err)
		}
		if diffID != cf.RootFS.DiffIDs[i] {
			return fmt.Errorf("layer %d: diff ID %s, config says %s", i, diffID, cf.RootFS.DiffIDs[i])
		}
	}
	return nil
}

// singleImage is an image manifest stored at the root of index.json, next to an index.
func singleImage(im testImage) content { return im.manifests[0] }

func TestGGCRReadsWhatWeWrite(t *testing.T) {
	im := newTestImage(t, "interop")
	write := func(t *testing.T, target imagestore.Target) {
		putImage(t, target, im, "v1")
		single := singleImage(im)
		single.desc.Platform = nil
		if err := target.PutManifest(context.Background(), single.desc, single.raw, "single"); err != nil {
			t.Fatal(err)
		}
		if err := target.Close(nil); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		layout func(t *testing.T) string // returns a layout directory for ggcr
	}{
		{"dir", func(t *testing.T) string {
			dir := filepath.Join(t.TempDir(), "layout")
			w, err := CreateDir(dir, "")
			if err != nil {
				t.Fatal(err)
			}
			write(t, w)
			return dir
		}},
		{"archive", func(t *testing.T) string {
			file := filepath.Join(t.TempDir(), "img.tar")
			w, err := CreateArchive(file, "")
			if err != nil {
				t.Fatal(err)
			}
			write(t, w)
			dir := t.TempDir()
			untar(t, file, dir)
			return dir
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ii, err := layout.ImageIndexFromPath(tt.layout(t))
			if err != nil {
				t.Fatal(err)
			}
			top, err := ii.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			if len(top.Manifests) != 2 {
				t.Fatalf("index.json lists %d manifests, want 2", len(top.Manifests))
			}
			for _, desc := range top.Manifests {
				switch name := desc.Annotations[ocispec.AnnotationRefName]; name {
				case "v1":
					child, err := ii.ImageIndex(desc.Digest)
					if err != nil {
						t.Fatal(err)
					}
					cm, err := child.IndexManifest()
					if err != nil {
						t.Fatal(err)
					}
					if desc.Digest.String() != im.index.desc.Digest.String() || len(cm.Manifests) != 2 {
						t.Fatalf("v1 is %s with %d manifests", desc.Digest, len(cm.Manifests))
					}
					for i, md := range cm.Manifests {
						if md.Platform == nil || md.Platform.Architecture != im.manifests[i].desc.Platform.Architecture {
							t.Errorf("manifest %d platform %v", i, md.Platform)
						}
						img, err := child.Image(md.Digest)
						if err != nil {
							t.Fatal(err)
						}
						if err := validateImage(img); err != nil {
							t.Errorf("%s: %v", md.Digest, err)
						}
					}
				case "single":
					img, err := ii.Image(desc.Digest)
					if err != nil {
						t.Fatal(err)
					}
					if err := validateImage(img); err != nil {
						t.Error(err)
					}
				default:
					t.Errorf("unexpected name %q", name)
				}
			}
		})
	}
}

// ggcrDesc converts a go-containerregistry descriptor.
func ggcrDesc(t *testing.T, d v1.Descriptor) ocispec.Descriptor {
	t.Helper()
	dg, err := digest.Parse(d.Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	return ocispec.Descriptor{MediaType: string(d.MediaType), Digest: dg, Size: d.Size}
}

// checkGGCRImage compares every blob of img with what src returns for it.
func checkGGCRImage(t *testing.T, src imagestore.Source, img v1.Image) {
	t.Helper()
	ctx := context.Background()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	wantConfig, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	readBlob := func(d v1.Descriptor) []byte {
		rc, err := src.Blob(ctx, ggcrDesc(t, d))
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		raw, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	if !bytes.Equal(readBlob(m.Config), wantConfig) {
		t.Fatal("config differs")
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		want, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(readBlob(m.Layers[i]), want) {
			t.Fatalf("layer %d differs", i)
		}
	}
}

func TestWeReadWhatGGCRWrites(t *testing.T) {
	img, err := random.Image(2048, 3)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := random.Index(512, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "ggcr")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{ocispec.AnnotationRefName: "img"})); err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{ocispec.AnnotationRefName: "idx"})); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ggcr.tar")
	tarDir(t, dir, file)

	opens := []struct {
		name string
		open func(ref string) (imagestore.Source, error)
	}{
		{"dir", func(ref string) (imagestore.Source, error) { return OpenDir(dir, ref) }},
		{"archive", func(ref string) (imagestore.Source, error) { return OpenArchive(file, ref) }},
	}
	for _, o := range opens {
		t.Run(o.name, func(t *testing.T) {
			if _, err := o.open(""); err == nil || !strings.Contains(err.Error(), "(img, idx)") {
				t.Fatalf("open without REF: error = %v, want one listing img, idx", err)
			}

			src, err := o.open("img")
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			_, raw, err := src.Root(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			want, _ := img.RawManifest()
			if !bytes.Equal(raw, want) {
				t.Fatal("img: manifest differs")
			}
			checkGGCRImage(t, src, img)

			isrc, err := o.open("idx")
			if err != nil {
				t.Fatal(err)
			}
			defer isrc.Close()
			desc, raw, err := isrc.Root(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			want, _ = idx.RawManifest()
			if !bytes.Equal(raw, want) || desc.MediaType != ocispec.MediaTypeImageIndex {
				t.Fatalf("idx: index differs (%s)", desc.MediaType)
			}
			var index ocispec.Index
			if err := json.Unmarshal(raw, &index); err != nil {
				t.Fatal(err)
			}
			for _, cd := range index.Manifests {
				h, err := v1.NewHash(cd.Digest.String())
				if err != nil {
					t.Fatal(err)
				}
				child, err := idx.Image(h)
				if err != nil {
					t.Fatal(err)
				}
				got, err := isrc.Manifest(context.Background(), cd)
				if err != nil {
					t.Fatal(err)
				}
				if want, _ := child.RawManifest(); !bytes.Equal(got, want) {
					t.Fatalf("child %s differs", cd.Digest)
				}
				checkGGCRImage(t, isrc, child)
			}
		})
	}
}
