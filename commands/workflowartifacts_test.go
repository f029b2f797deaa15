package commands

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/hubapi"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/workflow/engine"
	"github.com/hubctl/hubctl/internal/workflow/executor/local"
)

// TestWorkflowArtifactCommands: a run's artifact is listed and downloaded by whoever
// may read the run (extracted into a directory, or as a .tar.gz), and is "not found"
// to anyone else, as the run is; the API streams it with its digest.
func TestWorkflowArtifactCommands(t *testing.T) {
	store, blobs := openTestHubStores(t)
	srv := httptest.NewServer(hubapi.New(hubapi.Options{Accounts: store, Events: store, Workflows: store, Blobs: blobs}))
	t.Cleanup(srv.Close)
	h := &hub{t: t, store: store, host: strings.TrimPrefix(srv.URL, "http://")}
	h.user("admin", "admin-password", true)
	h.user("bob", "bob-password", false)
	h.user("eve", "eve-password", false)

	x, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(engine.Options{Store: store, Executor: x, Interval: 50 * time.Millisecond,
		MayPull:   func(context.Context, int64, string) (bool, error) { return true, nil },
		Artifacts: engine.ArtifactOptions{Store: store, Blobs: blobs, TempDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	bob := h.login("bob", "bob-password")
	eve := h.login("eve", "eve-password")
	file := filepath.Join(t.TempDir(), "build.yaml")
	src := `name: build
on:
  manual: {}
jobs:
  build:
    image: alpine
    artifacts:
      - {name: dist, path: out/dist}
    steps:
      - run: mkdir -p out/dist/sub && echo hello > out/dist/a.txt && echo deep > out/dist/sub/b.txt
`
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	h.ok(bob, "workflow", "apply", file, "--namespace", "bob")
	id := strings.TrimSpace(h.ok(bob, "workflow", "run", "bob/build"))
	deadline := time.Now().Add(60 * time.Second)
	for {
		var runs []hubtypes.WorkflowRun
		if err := json.Unmarshal([]byte(h.ok(bob, "workflow", "runs", "bob/build", "-o", "json")), &runs); err != nil || len(runs) != 1 {
			t.Fatalf("runs: %v %+v", err, runs)
		}
		if engine.Terminal(runs[0].State) {
			if runs[0].State != "succeeded" {
				t.Fatalf("run %+v", runs[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the run did not finish")
		}
		time.Sleep(100 * time.Millisecond)
	}

	var arts []hubtypes.WorkflowArtifact
	if err := json.Unmarshal([]byte(h.ok(bob, "workflow", "artifacts", id, "-o", "json")), &arts); err != nil || len(arts) != 1 {
		t.Fatalf("artifacts: %v %+v", err, arts)
	}
	if a := arts[0]; a.Name != "dist" || a.Path != "out/dist" || a.Job != "build" || !strings.HasPrefix(a.Digest, "sha256:") || a.Size <= 0 {
		t.Fatalf("artifact %+v", a)
	}
	if out := h.ok(bob, "workflow", "artifacts", id); !strings.HasPrefix(out, "NAME") || !strings.Contains(out, "out/dist") {
		t.Fatalf("artifacts:\n%s", out)
	}

	dir := filepath.Join(t.TempDir(), "got")
	h.ok(bob, "workflow", "download", id, "dist", "-o", dir)
	for p, want := range map[string]string{"dist/a.txt": "hello\n", "dist/sub/b.txt": "deep\n"} {
		if b, err := os.ReadFile(filepath.Join(dir, p)); err != nil || string(b) != want {
			t.Fatalf("%s: %q, %v", p, b, err)
		}
	}
	tgz := filepath.Join(t.TempDir(), "dist.tar.gz")
	h.ok(bob, "workflow", "download", id, "dist", "-o", tgz)
	if st, err := os.Stat(tgz); err != nil || st.Size() != arts[0].Size {
		t.Fatalf("archive: %v, %v (want %d bytes)", st, err, arts[0].Size)
	}

	// Outsiders see neither the run nor its artifacts; names that are not there fail
	// with one clear line.
	h.fails(eve, "not found", "workflow", "artifacts", id)
	h.fails(eve, "not found", "workflow", "download", id, "dist", "-o", t.TempDir())
	h.fails(bob, `no artifact "nope"`, "workflow", "download", id, "nope", "-o", t.TempDir())
	h.fails(bob, "run id", "workflow", "download", "abc", "dist")

	// The API answers without credentials as it does for the run: not found.
	resp, err := http.Get(srv.URL + "/api/v1/runs/" + id + "/artifacts/dist")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusNotFound {
		t.Fatalf("anonymous download: %s", resp.Status)
	}
}

// openTestHubStores opens a hub's metadata store (SQLite) and blob store (a
// directory) in the test's temp dirs, closed when the test ends: what an in-process
// hubapi handler of a test stands on.
func openTestHubStores(t *testing.T) (*sqlstore.Store, *blobstore.FS) {
	t.Helper()
	store, err := sqlstore.OpenSQLite(context.Background(), t.TempDir()+"/db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	blobs, err := blobstore.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return store, blobs
}
