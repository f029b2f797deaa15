package artifact

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

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestParseFile(t *testing.T) {
	dir := t.TempDir()
	withColon := filepath.Join(dir, "a:b/c") // a file whose name looks like FILE:TYPE
	if err := os.MkdirAll(filepath.Dir(withColon), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(withColon, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]File{
		"tool":                            {Path: "tool"},
		"sbom.json:application/spdx+json": {Path: "sbom.json", MediaType: "application/spdx+json"},
		"C:notatype":                      {Path: "C:notatype"},
		withColon:                         {Path: withColon},
	} {
		if got := ParseFile(in); got != want {
			t.Errorf("ParseFile(%q) = %+v, want %+v", in, got, want)
		}
	}
}

// TestBuildLayout: the manifest is ORAS's: artifactType, the empty config, a layer
// per file titled by its base name, a directory as tar+gzip marked for unpacking with
// the digest of its tar.
func TestBuildLayout(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "tool"), []byte("binary"), 0o755))
	must(t, os.MkdirAll(filepath.Join(dir, "site", "css"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "site", "index.html"), []byte("<h1>hi</h1>"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "site", "css", "a.css"), []byte("h1{}"), 0o644))
	b, err := Build([]File{{Path: filepath.Join(dir, "tool")}, {Path: filepath.Join(dir, "site") + "/"},
		{Path: filepath.Join(dir, "site", "index.html"), MediaType: "text/html"}},
		BuildOptions{ArtifactType: "application/vnd.example.tool", Annotations: map[string]string{"k": "v"}, TempDir: t.TempDir()})
	must(t, err)
	defer b.Cleanup()
	_, raw, err := b.Root(context.Background())
	must(t, err)
	var m ocispec.Manifest
	must(t, json.Unmarshal(raw, &m))
	if m.MediaType != ocispec.MediaTypeImageManifest || m.ArtifactType != "application/vnd.example.tool" ||
		m.Config.MediaType != EmptyConfigMediaType || m.Config.Size != 2 || m.Annotations["k"] != "v" ||
		m.Annotations[ocispec.AnnotationCreated] == "" {
		t.Errorf("manifest: %s", raw)
	}
	if len(m.Layers) != 3 {
		t.Fatalf("layers: %+v", m.Layers)
	}
	tool, site, page := m.Layers[0], m.Layers[1], m.Layers[2]
	if tool.MediaType != FileMediaType || tool.Annotations[ocispec.AnnotationTitle] != "tool" || tool.Size != 6 {
		t.Errorf("file layer: %+v", tool)
	}
	if page.MediaType != "text/html" || page.Annotations[ocispec.AnnotationTitle] != "index.html" {
		t.Errorf("file with a media type: %+v", page)
	}
	if site.MediaType != DirMediaType || site.Annotations[ocispec.AnnotationTitle] != "site" ||
		site.Annotations[AnnotationUnpack] != "true" || !strings.HasPrefix(site.Annotations[AnnotationDigest], "sha256:") {
		t.Errorf("directory layer: %+v", site)
	}
	// The directory's tarball holds its files under its base name.
	rc, err := b.Blob(context.Background(), site)
	must(t, err)
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	must(t, err)
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		names = append(names, h.Name)
	}
	if got := strings.Join(names, " "); !strings.Contains(got, "site/index.html") || !strings.Contains(got, "site/css/a.css") {
		t.Errorf("directory tarball holds %v", names)
	}

	// Two files of one name cannot be told apart by title.
	if _, err := Build([]File{{Path: filepath.Join(dir, "tool")}, {Path: filepath.Join(dir, "site", "..", "tool")}}, BuildOptions{}); err == nil {
		t.Error("two files named tool accepted")
	}
	// No files: the spec's empty layer.
	e, err := Build(nil, BuildOptions{})
	must(t, err)
	_, raw, _ = e.Root(context.Background())
	must(t, json.Unmarshal(raw, &m))
	if len(m.Layers) != 1 || m.Layers[0].MediaType != EmptyConfigMediaType || m.ArtifactType != DefaultArtifactType {
		t.Errorf("empty artifact: %s", raw)
	}
}

func TestSafeName(t *testing.T) {
	for name, ok := range map[string]bool{
		"tool": true, "dir/file": true, "a/../b": true,
		"..": false, "../x": false, "a/../../x": false, "/etc/passwd": false, ".": false, "": false,
	} {
		if err := safeName(name); (err == nil) != ok {
			t.Errorf("safeName(%q) = %v, want ok %v", name, err, ok)
		}
	}
}

// TestUntarRefuses: a directory layer may only write under its title.
func TestUntarRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		hdr  tar.Header
	}{
		{"escape", tar.Header{Name: "site/../../evil", Typeflag: tar.TypeReg, Mode: 0o644}},
		{"other top", tar.Header{Name: "other/file", Typeflag: tar.TypeReg, Mode: 0o644}},
		{"absolute", tar.Header{Name: "/site/file", Typeflag: tar.TypeReg, Mode: 0o644}},
		{"link out", tar.Header{Name: "site/link", Typeflag: tar.TypeSymlink, Linkname: "../../etc/passwd"}},
		{"absolute link", tar.Header{Name: "site/link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			tw := tar.NewWriter(zw)
			must(t, tw.WriteHeader(&c.hdr))
			must(t, tw.Close())
			must(t, zw.Close())
			src := filepath.Join(t.TempDir(), "layer.tgz")
			must(t, os.WriteFile(src, buf.Bytes(), 0o644))
			out := t.TempDir()
			if err := untarGz(context.Background(), src, filepath.Join(out, "dest"), "site"); err == nil {
				t.Errorf("%s unpacked", c.hdr.Name)
			}
			if _, err := os.Lstat(filepath.Join(out, "evil")); err == nil {
				t.Error("wrote outside the output directory")
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
