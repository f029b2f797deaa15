package layering

import (
	"archive/tar"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// file is a context file for tests: content and mode.
type file struct {
	data string
	mode os.FileMode
}

// writeContext writes files (path → content, mode 0644 unless given) into a new dir.
func writeContext(t testing.TB, files map[string]file) string {
	t.Helper()
	dir := t.TempDir()
	for name, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(name, "/") {
			continue
		}
		mode := f.mode
		if mode == 0 {
			mode = 0o644
		}
		if err := os.WriteFile(p, []byte(f.data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// build runs a build of dockerfile in dir with a fresh cache unless one is given.
func build(t testing.TB, dir, dockerfile string, opts ...Option) (*Image, error) {
	t.Helper()
	c, err := OpenCache(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	all := append([]Option{WithCache(c), WithDockerfileContent("Dockerfile", []byte(dockerfile))}, opts...)
	return NewBuild(dir, all...).Run(context.Background())
}

func mustBuild(t testing.TB, dir, dockerfile string, opts ...Option) *Image {
	t.Helper()
	img, err := build(t, dir, dockerfile, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

// layerHeaders returns the tar headers of each of the image's layers (single platform).
func layerHeaders(t testing.TB, img *Image) [][]*tar.Header {
	t.Helper()
	var m ocispec.Manifest
	if err := json.Unmarshal(img.Raw, &m); err != nil {
		t.Fatal(err)
	}
	var out [][]*tar.Header
	for _, l := range m.Layers {
		rc, err := openLayer(context.Background(), img, l)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, readTar(t, rc))
		rc.Close()
	}
	return out
}

// layerFiles returns, per layer, "path mode uid:gid" lines of its entries.
func layerNames(t testing.TB, img *Image) [][]string {
	var out [][]string
	for _, hs := range layerHeaders(t, img) {
		var names []string
		for _, h := range hs {
			names = append(names, h.Name)
		}
		out = append(out, names)
	}
	return out
}

func configOf(t testing.TB, img *Image) dockerspec.DockerOCIImage {
	t.Helper()
	cfg, err := img.Config(img.Manifests[0])
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func readAllBlob(t testing.TB, img *Image, desc ocispec.Descriptor) []byte {
	rc, err := img.Blob(context.Background(), desc)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return b
}

func TestBuildScratchConfigAndLayers(t *testing.T) {
	dir := writeContext(t, map[string]file{
		"hello":           {"binary", 0o700},
		"conf/app.yaml":   {"a: 1", 0o600},
		"conf/extra.yaml": {"b: 2", 0o664},
		"notes.txt":       {"n", 0},
	})
	img := mustBuild(t, dir, `# syntax=docker/dockerfile:1
ARG BASE=scratch
FROM ${BASE}
ARG VERSION=1.0
ENV APP_HOME=/app VERSION=$VERSION
WORKDIR $APP_HOME
COPY hello /app/bin/
COPY conf/*.yaml ./conf/
LABEL org.example.version=$VERSION maintainer="me"
USER 1000:1000
EXPOSE 8080 9000-9001/udp
VOLUME /data
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s CMD ["/app/bin/hello", "-health"]
ENTRYPOINT ["/app/bin/hello"]
CMD ["--port", "8080"]
`, WithBuildArgs(map[string]string{"VERSION": "2.0"}))
	cfg := configOf(t, img)
	c := cfg.Config
	if !slices.Equal(c.Env, []string{defaultPath, "APP_HOME=/app", "VERSION=2.0"}) {
		t.Errorf("Env = %v", c.Env)
	}
	if c.WorkingDir != "/app" || c.User != "1000:1000" || c.StopSignal != "SIGINT" {
		t.Errorf("workdir %q user %q stopsignal %q", c.WorkingDir, c.User, c.StopSignal)
	}
	if !slices.Equal(c.Entrypoint, []string{"/app/bin/hello"}) || !slices.Equal(c.Cmd, []string{"--port", "8080"}) {
		t.Errorf("entrypoint %v cmd %v", c.Entrypoint, c.Cmd)
	}
	for _, p := range []string{"8080/tcp", "9000/udp", "9001/udp"} {
		if _, ok := c.ExposedPorts[p]; !ok {
			t.Errorf("ExposedPorts %v lacks %s", c.ExposedPorts, p)
		}
	}
	if _, ok := c.Volumes["/data"]; !ok {
		t.Errorf("Volumes %v", c.Volumes)
	}
	if c.Labels["org.example.version"] != "2.0" || c.Labels["maintainer"] != "me" {
		t.Errorf("Labels %v", c.Labels)
	}
	if c.Healthcheck == nil || !slices.Equal(c.Healthcheck.Test, []string{"CMD", "/app/bin/hello", "-health"}) || c.Healthcheck.Interval.Seconds() != 5 {
		t.Errorf("Healthcheck %+v", c.Healthcheck)
	}
	if cfg.Created == nil || cfg.Created.Unix() != 0 || cfg.OS != "linux" {
		t.Errorf("created %v os %q", cfg.Created, cfg.OS)
	}
	layers := layerHeaders(t, img)
	if len(layers) != 2 || len(cfg.RootFS.DiffIDs) != 2 {
		t.Fatalf("%d layers, want 2 (one per COPY)", len(layers))
	}
	got := map[string]string{}
	for _, hs := range layers {
		for _, h := range hs {
			got[h.Name] = strings.TrimSpace(strings.Join([]string{os.FileMode(h.Mode).String(), strconv.Itoa(h.Uid)}, " "))
		}
	}
	want := map[string]string{
		"app/": "-rwxr-xr-x 0", "app/bin/": "-rwxr-xr-x 0", "app/bin/hello": "-rwxr-xr-x 0",
		"app/conf/": "-rwxr-xr-x 0", "app/conf/app.yaml": "-rw-r--r-- 0", "app/conf/extra.yaml": "-rw-r--r-- 0",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if _, ok := got["notes.txt"]; ok {
		t.Error("notes.txt was copied")
	}
}
