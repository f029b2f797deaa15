package artifact_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/artifact"
	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/distclient"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/registry"
	"github.com/hubctl/hubctl/internal/transfer"
)

// newRegistry serves the hub's registry on loopback over a SQLite store in a
// temporary directory and returns its base URL.
func newRegistry(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(dir, "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	blobs, err := blobstore.NewFS(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(registry.Options{Blobs: blobs, Meta: s}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func newClient() *artifact.Client {
	e := &transfer.Engine{}
	e.Client = distclient.New(distclient.Options{})
	return &artifact.Client{Engine: e}
}

func write(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Error(err)
	}
	return string(b)
}

// TestPushPull: files and a directory go up as one artifact and come down as they
// were, the directory unpacked under its name.
func TestPushPull(t *testing.T) {
	base := newRegistry(t)
	host := strings.TrimPrefix(base, "http://")
	src := t.TempDir()
	write(t, filepath.Join(src, "tool"), "binary")
	write(t, filepath.Join(src, "site", "index.html"), "<h1>hi</h1>")
	write(t, filepath.Join(src, "site", "css", "a.css"), "h1{}")
	c := newClient()
	ref := host + "/team/tool:1.0"
	r, err := c.Push(t.Context(), ref, []artifact.File{{Path: filepath.Join(src, "tool")}, {Path: filepath.Join(src, "site")}},
		artifact.BuildOptions{ArtifactType: "application/vnd.example.tool"}, transfer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.Reference, ref+"@sha256:") {
		t.Errorf("push: %+v", r)
	}
	out := t.TempDir()
	p, err := c.Pull(t.Context(), ref, out, transfer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(out, "site"), filepath.Join(out, "tool")}; fmt.Sprint(p.Files) != fmt.Sprint(want) || p.Digest != r.Digest {
		t.Errorf("pull: %+v, want files %v", p, want)
	}
	for rel, want := range map[string]string{"tool": "binary", "site/index.html": "<h1>hi</h1>", "site/css/a.css": "h1{}"} {
		if got := read(t, filepath.Join(out, rel)); got != want {
			t.Errorf("%s: %q, want %q", rel, got, want)
		}
	}
	// A reference that is not a registry is refused before anything moves.
	if _, err := c.Pull(t.Context(), "oci:"+t.TempDir(), out, transfer.Options{}); err == nil {
		t.Error("pull from a layout accepted")
	}
}

// TestPullRefusesEscapes: a layer titled to land outside the output directory (as
// another client could push) is refused.
func TestPullRefusesEscapes(t *testing.T) {
	base := newRegistry(t)
	data := []byte("evil")
	d := digest.FromBytes(data)
	resp, err := http.Post(base+"/v2/team/x/blobs/uploads/?digest="+d.String(), "application/octet-stream", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cfg := []byte("{}")
	cd := digest.FromBytes(cfg)
	resp, err = http.Post(base+"/v2/team/x/blobs/uploads/?digest="+cd.String(), "application/octet-stream", bytes.NewReader(cfg))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"x/y",
		"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},
		"layers":[{"mediaType":"application/octet-stream","digest":%q,"size":4,"annotations":{"org.opencontainers.image.title":"../evil"}}]}`, cd, d)
	req, _ := http.NewRequest(http.MethodPut, base+"/v2/team/x/manifests/1", strings.NewReader(m))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("manifest: %s", resp.Status)
	}
	parent := t.TempDir()
	out := filepath.Join(parent, "out")
	_, err = newClient().Pull(t.Context(), strings.TrimPrefix(base, "http://")+"/team/x:1", out, transfer.Options{})
	if err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("pull of ../evil: %v", err)
	}
	if _, err := os.Stat(filepath.Join(parent, "evil")); err == nil {
		t.Error("../evil was written")
	}
}
