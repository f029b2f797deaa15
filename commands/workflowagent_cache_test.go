package commands

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/auth/machinetoken"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/internal/workflow/engine"
)

// TestWorkflowAgentCache: against a real in-process hub, the real `workflow-agent
// restore --cache` of run 1 finds no cache and leaves the directory empty, `save
// --cache` keeps what the job wrote there; run 2's restore gets it back, and its save
// of a changed directory changes nothing (the key's cache never changes), so run 3
// restores run 1's files. A token of another run neither reads nor writes it, and a
// cache stored behind the hub's checks with entries climbing out or links leaving the
// tree writes nothing outside the cache directory on restore.
func TestWorkflowAgentCache(t *testing.T) {
	store, blobs, minter, srv, h := newAgentHub(t)
	bob := h.login("bob", "bob-password")
	file := filepath.Join(t.TempDir(), "cached.yaml")
	src := `name: cached
on:
  manual: {}
jobs:
  build:
    image: alpine
    cache:
      key: gomod-${{ run.namespace }}
      path: /root/go/pkg/mod
    steps:
      - run: go build
`
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	h.ok(bob, "workflow", "apply", file, "--namespace", "bob")
	ctx := t.Context()
	u, err := store.GetUser(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	// start starts a run and claims its job: the run and job run ids and the run's token.
	start := func() (string, string, string) {
		run := strings.TrimSpace(h.ok(bob, "workflow", "run", "bob/cached"))
		claims, err := store.ClaimWorkflowJobs(ctx, "e1", 1, time.Minute)
		if err != nil || len(claims) != 1 || strconv.FormatInt(claims[0].Run.ID, 10) != run {
			t.Fatalf("claim: %+v %v", claims, err)
		}
		tok, err := minter.Mint(ctx, machinetoken.Request{Creator: u.ID, Subject: "workflow-run:" + run,
			Access: []scope.Access{{Type: scope.TypeRepository, Name: "bob/app", Actions: []string{scope.Pull}}}})
		if err != nil {
			t.Fatal(err)
		}
		return run, strconv.FormatInt(claims[0].Job.ID, 10), tok.Raw
	}
	finish := func(job string) {
		id, _ := strconv.ParseInt(job, 10, 64)
		if err := store.FinishWorkflowJob(ctx, id, "e1", engine.Finish{State: engine.StateSucceeded}); err != nil {
			t.Fatal(err)
		}
	}
	agent := func(tok string, args ...string) (int, string) {
		ios, _, _, errOut := iostreams.Test()
		f := NewFactory(ios, BuildInfo{})
		env := map[string]string{"HUBCTL_HUB": srv.URL, "HUBCTL_TOKEN": tok}
		f.LookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
		return Execute(context.Background(), f, append([]string{"workflow-agent"}, args...)), errOut.String()
	}
	write := func(dir string, files map[string]string) {
		for name, content := range files {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	read := func(dir string) map[string]string {
		got := map[string]string{}
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				b, _ := os.ReadFile(p)
				rel, _ := filepath.Rel(dir, p)
				got[filepath.ToSlash(rel)] = string(b)
			}
			return nil
		})
		return got
	}
	verb := func(v, run, job, cache string) []string {
		return []string{v, "--run", run, "--job", job, "--workspace", t.TempDir(), "--cache", cache}
	}

	// Run 1: no cache yet; the job fills the directory; save keeps it.
	run1, job1, tok1 := start()
	cache1 := filepath.Join(t.TempDir(), "mod")
	if err := os.Mkdir(cache1, 0o755); err != nil {
		t.Fatal(err)
	}
	if code, errOut := agent(tok1, verb("restore", run1, job1, cache1)...); code != 0 || !strings.Contains(errOut, "No cache under the job's key") {
		t.Fatalf("restore without a cache: exit %d, %s", code, errOut)
	}
	if got := read(cache1); len(got) != 0 {
		t.Fatalf("restore without a cache wrote %v", got)
	}
	run2, job2, tok2 := start() // started before run 1 saves: its token must not reach run 1
	write(cache1, map[string]string{"a.txt": "from run 1", "pkg/b.txt": "deep"})
	if code, errOut := agent(tok2, verb("save", run1, job1, cache1)...); code == 0 || !strings.Contains(errOut, "has no job") {
		t.Fatalf("run 2's token saving run 1's cache: exit %d, %s", code, errOut)
	}
	if code, errOut := agent(tok1, verb("save", run1, job1, cache1)...); code != 0 || !strings.Contains(errOut, "Saved the cache") {
		t.Fatalf("save: exit %d, %s", code, errOut)
	}
	finish(job1)

	// Run 2: restores run 1's files; its changed directory is not saved.
	cache2 := filepath.Join(t.TempDir(), "mod")
	if code, errOut := agent(tok2, verb("restore", run2, job2, cache2)...); code != 0 || !strings.Contains(errOut, "Restored the cache") {
		t.Fatalf("restore run 2: exit %d, %s", code, errOut)
	}
	want := map[string]string{"a.txt": "from run 1", "pkg/b.txt": "deep"}
	if got := read(cache2); len(got) != 2 || got["a.txt"] != want["a.txt"] || got["pkg/b.txt"] != want["pkg/b.txt"] {
		t.Fatalf("run 2 restored %v", got)
	}
	write(cache2, map[string]string{"a.txt": "from run 2", "new.txt": "run 2"})
	if code, errOut := agent(tok2, verb("save", run2, job2, cache2)...); code != 0 || !strings.Contains(errOut, "has a cache already") {
		t.Fatalf("save run 2: exit %d, %s", code, errOut)
	}
	finish(job2)

	// Run 3 restores run 1's cache, unchanged.
	run3, job3, tok3 := start()
	cache3 := filepath.Join(t.TempDir(), "mod")
	if code, errOut := agent(tok3, verb("restore", run3, job3, cache3)...); code != 0 {
		t.Fatalf("restore run 3: exit %d, %s", code, errOut)
	}
	if got := read(cache3); len(got) != 2 || got["a.txt"] != "from run 1" || got["new.txt"] != "" {
		t.Fatalf("run 3 restored %v", got)
	}
	w, err := store.GetWorkflow(ctx, "bob", "cached")
	if err != nil {
		t.Fatal(err)
	}
	caches, err := store.ListWorkflowCaches(ctx, w.ID)
	if err != nil || len(caches) != 1 || caches[0].Key != "gomod-bob" {
		t.Fatalf("stored caches %+v %v", caches, err)
	}
	finish(job3)

	// A cache stored behind the hub's checks (as a tampered store would hold it):
	// restore refuses it and writes nothing outside the cache directory.
	for name, hdrs := range map[string][]*tar.Header{
		"climbing out": {{Name: "../escaped.txt", Typeflag: tar.TypeReg, Size: 4, Mode: 0o644}},
		"a link out":   {{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "../..", Mode: 0o777}, {Name: "link/escaped.txt", Typeflag: tar.TypeReg, Size: 4, Mode: 0o644}},
		"absolute":     {{Name: "/tmp/escaped.txt", Typeflag: tar.TypeReg, Size: 4, Mode: 0o644}},
	} {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			gz := gzip.NewWriter(&b)
			tw := tar.NewWriter(gz)
			for _, hd := range hdrs {
				if err := tw.WriteHeader(hd); err != nil {
					t.Fatal(err)
				}
				if hd.Size > 0 {
					_, _ = tw.Write([]byte("evil"))
				}
			}
			_ = tw.Close()
			_ = gz.Close()
			d := digest.FromBytes(b.Bytes())
			pinned, err := store.PinBlob(ctx, d, int64(b.Len()))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := engine.PutBlob(ctx, store, blobs, d, bytes.NewReader(b.Bytes()), int64(b.Len()), nil); err != nil {
				t.Fatal(err)
			}
			key := "evil-" + strings.ReplaceAll(name, " ", "-")
			if added, err := store.AddWorkflowCache(ctx, engine.Cache{WorkflowID: w.ID, Key: key, Digest: d, Size: int64(b.Len())}, pinned, 1<<30); err != nil || !added {
				t.Fatalf("add %v %v", added, err)
			}
			evil := `name: cached
on:
  manual: {}
jobs:
  build:
    image: alpine
    cache:
      key: ` + key + `
      path: /root/go/pkg/mod
    steps:
      - run: go build
`
			if err := os.WriteFile(file, []byte(evil), 0o600); err != nil {
				t.Fatal(err)
			}
			h.ok(bob, "workflow", "apply", file, "--namespace", "bob")
			run, job, tok := start()
			root := t.TempDir()
			cache := filepath.Join(root, "a", "b", "mod")
			code, errOut := agent(tok, verb("restore", run, job, cache)...)
			if code == 0 || !strings.Contains(errOut, "unsafe tar entry") {
				t.Fatalf("restore of %s: exit %d, %s", name, code, errOut)
			}
			if got := read(root); len(got) != 0 {
				t.Fatalf("restore of %s wrote %v", name, got)
			}
			if _, err := os.Stat("/tmp/escaped.txt"); err == nil {
				t.Fatal("/tmp/escaped.txt was written")
			}
			finish(job)
		})
	}
}
