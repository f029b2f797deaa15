package commands

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/workflow/engine"
	"github.com/hubctl/hubctl/internal/workflow/executor/local"
)

// TestWorkflowApproveCommands: `hubctl workflow approve|reject RUN` against a hub, and
// `show RUN` listing who decided.
func TestWorkflowApproveCommands(t *testing.T) {
	h := newHub(t)
	x, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(engine.Options{Store: h.store, Executor: x, Interval: 50 * time.Millisecond,
		MayPull: func(context.Context, int64, string) (bool, error) { return true, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	bob := h.login("bob", "bob-password")
	admin := h.login("admin", "admin-password")
	file := filepath.Join(t.TempDir(), "gate.yaml")
	if err := os.WriteFile(file, []byte(`name: gate
on:
  manual: {}
jobs:
  deploy:
    image: alpine
    environment:
      name: production
      approvers: [bob, admin]
    steps:
      - run: echo deployed
  after:
    needs: [deploy]
    image: alpine
    steps:
      - run: echo after
`), 0o600); err != nil {
		t.Fatal(err)
	}
	h.ok(bob, "workflow", "apply", file, "--namespace", "bob")
	waitGate := func(id string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			var run hubtypes.WorkflowRun
			if err := json.Unmarshal([]byte(h.ok(bob, "workflow", "show", id, "-o", "json")), &run); err != nil {
				t.Fatal(err)
			}
			for _, j := range run.Jobs {
				if j.Job == "deploy" && j.State == "waiting_approval" {
					return
				}
			}
		}
		t.Fatalf("run %s never waited for approval", id)
	}
	waitEnd := func(id string) hubtypes.WorkflowRun {
		t.Helper()
		var run hubtypes.WorkflowRun
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if err := json.Unmarshal([]byte(h.ok(bob, "workflow", "show", id, "-o", "json")), &run); err != nil {
				t.Fatal(err)
			}
			if engine.Terminal(run.State) {
				return run
			}
		}
		t.Fatalf("run %s never ended: %+v", id, run)
		return run
	}

	id := strings.TrimSpace(h.ok(bob, "workflow", "run", "bob/gate"))
	waitGate(id)
	h.fails(bob, "another of its approvers must decide", "workflow", "approve", id)
	h.fails(bob, "run id", "workflow", "approve", "abc")
	if code, _, errOut := h.run(admin, "", false, "workflow", "approve", id, "--comment", "ship it"); code != 0 ||
		!strings.Contains(errOut, "1 of 1 approvals") {
		t.Fatalf("approve: exit %d, %q", code, errOut)
	}
	if run := waitEnd(id); run.State != "succeeded" {
		t.Fatalf("approved run %+v", run)
	}
	if out := h.ok(bob, "workflow", "show", id); !strings.Contains(out, "admin approved") || !strings.Contains(out, "APPROVALS") {
		t.Fatalf("show:\n%s", out)
	}
	h.fails(admin, "no job of the run waits for approval", "workflow", "approve", id)

	id = strings.TrimSpace(h.ok(bob, "workflow", "run", "bob/gate"))
	waitGate(id)
	h.ok(admin, "workflow", "reject", id, "--job", "deploy", "--comment", "not now")
	run := waitEnd(id)
	if run.State != "failed" || run.Jobs[0].Error != "rejected by admin: not now" || run.Jobs[1].State != "skipped" {
		t.Fatalf("rejected run %+v", run)
	}
}
