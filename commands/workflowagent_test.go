package commands

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/machinetoken"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/auth/token"
	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/hubapi"
	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/workflow/engine"
)

// TestWorkflowAgent: against a real in-process hub, `workflow-agent save` uploads a
// job's artifact with the job's token, and `workflow-agent restore` of the job that
// needs it extracts it into another workspace; a token of another run moves nothing.
func TestWorkflowAgent(t *testing.T) {
	store, _, minter, srv, h := newAgentHub(t)
	bob := h.login("bob", "bob-password")
	file := filepath.Join(t.TempDir(), "pipe.yaml")
	src := `name: pipe
on:
  manual: {}
jobs:
  build:
    image: alpine
    artifacts:
      - {name: dist, path: out/dist}
    steps:
      - run: make
  test:
    image: alpine
    needs: [build]
    steps:
      - run: make test
`
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	h.ok(bob, "workflow", "apply", file, "--namespace", "bob")
	run1 := strings.TrimSpace(h.ok(bob, "workflow", "run", "bob/pipe"))
	run2 := strings.TrimSpace(h.ok(bob, "workflow", "run", "bob/pipe"))
	ctx := t.Context()
	claims, err := store.ClaimWorkflowJobs(ctx, "e1", 2, time.Minute)
	if err != nil || len(claims) != 2 {
		t.Fatalf("claim: %+v %v", claims, err)
	}
	u, err := store.GetUser(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	mint := func(run string) string {
		tok, err := minter.Mint(ctx, machinetoken.Request{Creator: u.ID, Subject: "workflow-run:" + run,
			Access: []scope.Access{{Type: scope.TypeRepository, Name: "bob/app", Actions: []string{scope.Pull}}}})
		if err != nil {
			t.Fatal(err)
		}
		return tok.Raw
	}
	agent := func(tok string, args ...string) (int, string) {
		ios, _, _, errOut := iostreams.Test()
		f := NewFactory(ios, BuildInfo{})
		env := map[string]string{"HUBCTL_HUB": srv.URL, "HUBCTL_TOKEN": tok}
		f.LookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
		return Execute(context.Background(), f, append([]string{"workflow-agent"}, args...)), errOut.String()
	}
	build := claims[0].Job.ID
	if strconv.FormatInt(claims[0].Run.ID, 10) != run1 {
		t.Fatalf("first claim is of run %d, not %s", claims[0].Run.ID, run1)
	}
	ws := t.TempDir()
	if err := os.MkdirAll(filepath.Join(ws, "out/dist/sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"out/dist/a.txt": "hello", "out/dist/sub/b.txt": "deep", "out/other.txt": "not kept"} {
		if err := os.WriteFile(filepath.Join(ws, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	jobArgs := func(run string, job int64) []string {
		return []string{"--run", run, "--job", strconv.FormatInt(job, 10)}
	}
	// Run 2's token cannot save into run 1.
	if code, errOut := agent(mint(run2), append([]string{"save", "--workspace", ws, "--artifact", "dist=out/dist"}, jobArgs(run1, build)...)...); code == 0 || !strings.Contains(errOut, "has no job") {
		t.Fatalf("run 2's token saving into run 1: exit %d, %s", code, errOut)
	}
	tok1 := mint(run1)
	if code, errOut := agent(tok1, append([]string{"save", "--workspace", ws, "--artifact", "dist=out/dist"}, jobArgs(run1, build)...)...); code != 0 || !strings.Contains(errOut, "Saved artifact dist") {
		t.Fatalf("save: exit %d, %s", code, errOut)
	}
	if err := store.FinishWorkflowJob(ctx, build, "e1", engine.Finish{State: engine.StateSucceeded}); err != nil {
		t.Fatal(err)
	}
	claims, err = store.ClaimWorkflowJobs(ctx, "e1", 1, time.Minute)
	if err != nil || len(claims) != 1 || claims[0].Job.Job != "test" {
		t.Fatalf("claim test: %+v %v", claims, err)
	}
	ws2 := t.TempDir()
	if code, errOut := agent(tok1, append([]string{"restore", "--workspace", ws2}, jobArgs(run1, claims[0].Job.ID)...)...); code != 0 {
		t.Fatalf("restore: exit %d, %s", code, errOut)
	}
	for name, want := range map[string]string{"out/dist/a.txt": "hello", "out/dist/sub/b.txt": "deep"} {
		if b, err := os.ReadFile(filepath.Join(ws2, name)); err != nil || string(b) != want {
			t.Errorf("%s: %q %v", name, b, err)
		}
	}
	if _, err := os.Stat(filepath.Join(ws2, "out/other.txt")); !os.IsNotExist(err) {
		t.Errorf("a file outside the artifact was restored: %v", err)
	}
	// Run 2's token cannot restore run 1's artifacts; without a token nothing runs.
	if code, _ := agent(mint(run2), append([]string{"restore", "--workspace", t.TempDir()}, jobArgs(run1, claims[0].Job.ID)...)...); code == 0 {
		t.Fatal("run 2's token restored run 1's artifacts")
	}
	if code, errOut := agent("", append([]string{"restore"}, jobArgs(run1, claims[0].Job.ID)...)...); code == 0 || !strings.Contains(errOut, "HUBCTL_TOKEN") {
		t.Fatalf("without a token: exit %d, %s", code, errOut)
	}
}

// newAgentHub is an in-process hub API serving the job-file endpoints that `hubctl
// workflow-agent` calls, with its stores, its machine-token minter, its server and
// the account bob (password bob-password), for the workflow-agent tests.
func newAgentHub(t *testing.T) (*sqlstore.Store, *blobstore.FS, *machinetoken.Minter, *httptest.Server, *hub) {
	t.Helper()
	store, blobs := openTestHubStores(t)
	keys, err := token.LoadOrCreateKeySet(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	minter := &machinetoken.Minter{Keys: keys, Issuer: "hubctl-test", Service: "registry.test", Store: store, Policy: &authz.Policy{Store: store}}
	ver := &token.Verifier{Keys: keys, Issuer: "hubctl-test", Audience: "registry.test"}
	srv := httptest.NewServer(hubapi.New(hubapi.Options{Accounts: store, Events: store, Workflows: store, Blobs: blobs, Minter: minter,
		JobArtifacts: engine.ArtifactOptions{Store: store, Blobs: blobs, TempDir: t.TempDir()},
		VerifyJWT: func(raw string) (string, token.Hub, error) {
			c, err := ver.Verify(raw)
			if err != nil {
				return "", token.Hub{}, err
			}
			return c.Subject, c.Hub, nil
		},
		JobActive: func(context.Context, string) error { return nil },
	}))
	t.Cleanup(srv.Close)
	h := &hub{t: t, store: store, host: strings.TrimPrefix(srv.URL, "http://")}
	h.user("bob", "bob-password", false)
	return store, blobs, minter, srv, h
}
