package proxyimage

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hubctl/hubctl/layering"
)

// missing skips a test whose peer is not here, and fails it when CI=true.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

var (
	hubctlOnce sync.Once
	hubctlBin  string
	hubctlErr  error
	hubctlDir  string
)

// staticHubctl builds hubctl as the releases are (CGO_ENABLED=0) once per test run:
// the running test binary is not hubctl.
func staticHubctl(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds hubctl: not with -short")
	}
	hubctlOnce.Do(func() {
		gomod, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			hubctlErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		if hubctlDir, err = os.MkdirTemp("", "proxyimage-test-"); err != nil {
			hubctlErr = err
			return
		}
		bin := filepath.Join(hubctlDir, "hubctl")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/hubctl")
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			hubctlErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		hubctlBin = bin
	})
	if hubctlErr != nil {
		t.Fatal(hubctlErr)
	}
	return hubctlBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if hubctlDir != "" {
		os.RemoveAll(hubctlDir)
	}
	os.Exit(code)
}

func openCache(t *testing.T) *layering.Cache {
	t.Helper()
	c, err := layering.OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestBuildReproducible builds the image twice, each with a cold cache of its own:
// the same binary makes the same bytes, and the layer is /data and /hubctl only.
func TestBuildReproducible(t *testing.T) {
	bin := staticHubctl(t)
	ctx := context.Background()
	a, err := Build(ctx, WithBinary(bin), WithCache(openCache(t)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(ctx, WithBinary(bin), WithCache(openCache(t)))
	if err != nil {
		t.Fatal(err)
	}
	if a.Desc.Digest != b.Desc.Digest || a.Layer.Digest != b.Layer.Digest || a.ConfigDesc.Digest != b.ConfigDesc.Digest {
		t.Fatalf("two builds of one binary differ: %s / %s, layers %s / %s", a.Desc.Digest, b.Desc.Digest, a.Layer.Digest, b.Layer.Digest)
	}
	// A touched binary (new mtime, same bytes) changes nothing either.
	copyBin := filepath.Join(t.TempDir(), "hubctl")
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(copyBin, data, 0o700); err != nil {
		t.Fatal(err)
	}
	c, err := Build(ctx, WithBinary(copyBin), WithCache(openCache(t)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Desc.Digest != a.Desc.Digest {
		t.Errorf("a copy of the binary (other path, mode, mtime) made %s, not %s", c.Desc.Digest, a.Desc.Digest)
	}
	// Labels are part of the image.
	d, err := Build(ctx, WithBinary(bin), WithCache(openCache(t)), WithLabels(map[string]string{"x": "y"}))
	if err != nil {
		t.Fatal(err)
	}
	if d.Desc.Digest == a.Desc.Digest || d.Layer.Digest != a.Layer.Digest {
		t.Errorf("labels: manifest %s (was %s), layer %s (was %s)", d.Desc.Digest, a.Desc.Digest, d.Layer.Digest, a.Layer.Digest)
	}

	var cfg ocispec.Image
	if err := json.Unmarshal(a.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	want := []string{"/hubctl", "proxy", "run", "--listen", ":80", "--state-file", "/data/state.json"}
	if !slices.Equal(cfg.Config.Entrypoint, want) || cfg.Config.Cmd != nil {
		t.Errorf("entrypoint %q cmd %q; want %q", cfg.Config.Entrypoint, cfg.Config.Cmd, want)
	}
	if cfg.OS != "linux" || cfg.Architecture != layering.DefaultPlatform().Architecture || !cfg.Created.Equal(time.Unix(0, 0)) {
		t.Errorf("config %s/%s created %v", cfg.OS, cfg.Architecture, cfg.Created)
	}
	if len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != a.Layer.DiffID {
		t.Errorf("diff ids %v; want [%s]", cfg.RootFS.DiffIDs, a.Layer.DiffID)
	}

	// The layer: what a FROM scratch container needs, with fixed times and owners.
	rc, err := a.Blob(ctx, ocispec.Descriptor{Digest: a.Layer.Digest})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(time.Unix(0, 0)) || h.Mode&0o777 != 0o755 {
			t.Errorf("%s: uid %d gid %d mtime %v mode %o", h.Name, h.Uid, h.Gid, h.ModTime, h.Mode)
		}
		if h.Name == "hubctl" {
			sum := sha256.New()
			if _, err := io.Copy(sum, tr); err != nil {
				t.Fatal(err)
			}
			want := sha256.Sum256(data)
			if hex.EncodeToString(sum.Sum(nil)) != hex.EncodeToString(want[:]) {
				t.Error("/hubctl in the layer is not the binary")
			}
		}
	}
	if !slices.Equal(names, []string{"data/", "hubctl"}) {
		t.Errorf("layer entries %q; want data/ and hubctl", names)
	}
}

// TestBuildRefuses: a dynamically linked binary, something that is not an ELF
// executable, a file that is not there. Nothing is written to the cache.
func TestBuildRefuses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	script := filepath.Join(dir, "hubctl.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho hubctl\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("\x7fELF\x02\x01"), 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ bin, want string }{
		{script, "is not an ELF executable"},
		{short, "is not an ELF executable"},
		{filepath.Join(dir, "absent"), "no such file"},
	}
	// A binary that needs the dynamic loader: ls, or the shell.
	for _, p := range []string{"/bin/ls", "/bin/sh", "/usr/bin/env"} {
		if pl, err := CheckBinary(p); err != nil && strings.Contains(err.Error(), "dynamically linked") {
			cases = append(cases, struct{ bin, want string }{p, "is dynamically linked (it needs /lib"})
			break
		} else if err == nil {
			t.Logf("%s is static (%s/%s)", p, pl.OS, pl.Architecture)
		}
	}
	if len(cases) == 3 {
		missing(t, "no dynamically linked binary found among /bin/ls, /bin/sh, /usr/bin/env")
	}
	for _, tt := range cases {
		cache := openCache(t)
		_, err := Build(ctx, WithBinary(tt.bin), WithCache(cache))
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Build(%s): %v; want one line with %q", tt.bin, err, tt.want)
		}
		if blobs, _ := os.ReadDir(filepath.Join(cache.Dir(), "blobs", "sha256")); len(blobs) != 0 {
			t.Errorf("Build(%s) left %d blobs in the cache", tt.bin, len(blobs))
		}
	}
}

func TestTagAndReference(t *testing.T) {
	for in, want := range map[string]string{
		"v1.4.0": "v1.4.0", "v1.4.0+dirty": "v1.4.0-dirty", "": "dev", "(devel)": "devel",
		"v0.0.0-20261207-abc+dirty": "v0.0.0-20261207-abc-dirty", "..": "dev", strings.Repeat("a", 200): strings.Repeat("a", 128),
	} {
		if got := Tag(in); got != want {
			t.Errorf("Tag(%q) = %q; want %q", in, got, want)
		}
	}
	if got, err := Reference("hub.example.com:5000", "team", "v1.4.0"); err != nil || got != "hub.example.com:5000/team/hubctl-proxy:v1.4.0" {
		t.Errorf("Reference: %q, %v", got, err)
	}
	for _, bad := range [][2]string{{"", "team"}, {"hub/x", "team"}, {"hub", "Team"}, {"hub", "a//b"}, {"hub", "team@x"}} {
		if got, err := Reference(bad[0], bad[1], "v1"); err == nil {
			t.Errorf("Reference(%q, %q) = %q; want an error", bad[0], bad[1], got)
		}
	}
}
