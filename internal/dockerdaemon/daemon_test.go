package dockerdaemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/dockerarchive"
	"github.com/hubctl/hubctl/internal/imagestore"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var (
	_ imagestore.Source         = (*Source)(nil)
	_ imagestore.Target         = (*Target)(nil)
	_ imagestore.Sequential     = (*Target)(nil)
	_ imagestore.SinglePlatform = (*Target)(nil)
)

// engine returns a client for the machine's Docker engine, skipping the test when
// there is none (failing it on CI, where there must be one).
func engine(t *testing.T) *Client {
	t.Helper()
	c, err := New()
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = c.Ping(ctx)
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI needs a Docker engine: %v", err)
		}
		t.Skipf("no Docker engine to test against: %v", err)
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("the docker CLI is needed to build test images")
	}
	return c
}

// testName returns name:tag with a name no other run uses, removed from the engine
// after the test.
func testName(t *testing.T, suffix, tag string) string {
	ref := "hubctl-test-" + randomHex() + suffix + ":" + tag
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", ref).Run() })
	return ref
}

func randomHex() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// buildImage builds a one-file image FROM scratch (nothing can be pulled here). The
// file's content is random so no other run shares the image through the build cache.
func buildImage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY hello /hello\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "hello"), []byte("hello from hubctl "+randomHex()+"\n"), 0o644)
	ref := testName(t, "", "1")
	cmd := exec.Command("docker", "build", "-q", "-t", ref, dir)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	return ref
}

// copyImage copies the source's image into the target blob by blob.
func copyImage(t *testing.T, src imagestore.Source, dst imagestore.Target) ocispec.Manifest {
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
	return m
}

func TestSaveAndLoad(t *testing.T) {
	c := engine(t)
	ctx := context.Background()
	ref := buildImage(t)

	img, err := c.Inspect(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(img.ID, "sha256:") || len(img.RepoTags) != 1 || img.RepoTags[0] != ref || img.OS != "linux" {
		t.Fatalf("Inspect: %+v", img)
	}

	// Save straight into dockerarchive: Docker 20.10's uncompressed layout.
	rc, err := c.Save(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "saved.tar")
	f, _ := os.Create(p)
	if _, err := f.ReadFrom(rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	f.Close()
	r, err := dockerarchive.Open(p, ref)
	if err != nil {
		t.Fatal(err)
	}
	_, raw, err := r.Root(ctx)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	json.Unmarshal(raw, &m)
	if len(m.Layers) != 1 || string(m.Config.Digest) != img.ID {
		t.Fatalf("manifest %s: want 1 layer and config %s", raw, img.ID)
	}

	// docker-daemon: → docker-daemon: under a new name, gzip layers and all.
	src, err := OpenSource(ctx, c, ref)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		tmp := src.tmp
		if err := src.Close(); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Close left %s", tmp)
		}
	}()
	loadedName := testName(t, "-loaded", "2")
	dst, err := OpenTarget(ctx, c, loadedName)
	if err != nil {
		t.Fatal(err)
	}
	copyImage(t, src, dst)
	if err := dst.Close(nil); err != nil {
		t.Fatalf("load: %v", err)
	}
	loaded, err := c.Inspect(ctx, loadedName)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.ID != img.ID {
		t.Fatalf("loaded image %s, want %s", loaded.ID, img.ID)
	}
	out, err := exec.Command("docker", "image", "inspect", "--format", "{{.Id}}", loadedName).Output()
	if err != nil || strings.TrimSpace(string(out)) != img.ID {
		t.Fatalf("docker image inspect: %q, %v", out, err)
	}
}

// "app" loads as "app:latest", as docker would name it.
func TestLoadNormalisesName(t *testing.T) {
	c := engine(t)
	ctx := context.Background()
	src, err := OpenSource(ctx, c, buildImage(t))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	name := strings.TrimSuffix(testName(t, "-latest", "latest"), ":latest")
	dst, err := OpenTarget(ctx, c, name)
	if err != nil {
		t.Fatal(err)
	}
	copyImage(t, src, dst)
	if err := dst.Close(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Inspect(ctx, name+":latest"); err != nil {
		t.Fatal(err)
	}
}

// Close with an error breaks the stream: the engine loads nothing.
func TestLoadAborted(t *testing.T) {
	c := engine(t)
	ctx := context.Background()
	src, err := OpenSource(ctx, c, buildImage(t))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	name := testName(t, "-aborted", "1")
	dst, err := OpenTarget(ctx, c, name)
	if err != nil {
		t.Fatal(err)
	}
	copyImage(t, src, dst)
	if err := dst.Close(errors.New("x")); err != nil {
		t.Fatalf("Close(err): %v", err)
	}
	if _, err := c.Inspect(ctx, name); !errors.Is(err, imagestore.ErrNotFound) {
		t.Fatalf("after an aborted load, Inspect: %v; want ErrNotFound", err)
	}
}

// The engine's own refusal comes back from Close(nil).
func TestLoadEngineError(t *testing.T) {
	c := engine(t)
	ctx := context.Background()
	dst, err := OpenTarget(ctx, c, testName(t, "-bad", "1"))
	if err != nil {
		t.Fatal(err)
	}
	// A manifest naming blobs that were never written: the Writer fails Close first.
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	if err := dst.PutBlob(ctx, ocispec.Descriptor{MediaType: dockerarchive.MediaTypeConfig, Digest: digestOf(cfg), Size: int64(len(cfg))}, strings.NewReader(string(cfg))); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(nil); err == nil {
		t.Fatal("Close(nil) without a manifest succeeded")
	}
	if err := c.Load(ctx, strings.NewReader("this is not a tar")); err == nil {
		t.Fatal("Load took garbage")
	}
}

func TestNotFound(t *testing.T) {
	c := engine(t)
	ctx := context.Background()
	name := testName(t, "-missing", "1")
	_, err := c.Inspect(ctx, name)
	if !errors.Is(err, imagestore.ErrNotFound) || !strings.Contains(err.Error(), name) {
		t.Fatalf("Inspect: %v", err)
	}
	if _, err := OpenSource(ctx, c, name); !errors.Is(err, imagestore.ErrNotFound) {
		t.Fatalf("OpenSource: %v", err)
	}
}
