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

func TestWorkflowHubCommands(t *testing.T) {
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
	dir := t.TempDir()
	file := filepath.Join(dir, "greet.yaml")
	src := `name: greet
on:
  manual:
    inputs:
      who: {type: string, required: true}
      loud: {type: boolean, default: false}
jobs:
  hello:
    image: alpine
    env:
      WHO: "${{ inputs.who }}"
      LOUD: "${{ inputs.loud }}"
    steps:
      - run: echo "hello $WHO loud=$LOUD"
`
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := h.run(bob, "", false, "workflow", "apply", file, "--namespace", "bob"); code != 0 || !strings.Contains(errOut, "bob/greet applied") {
		t.Fatalf("apply: exit %d, %q", code, errOut)
	}
	h.ok(bob, "workflow", "apply", file, "--namespace", "bob", "--name", "greet2")
	h.fails(bob, "--namespace is required", "workflow", "apply", file)
	h.fails(bob, "not found", "workflow", "apply", file, "--namespace", "admin")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: bad\non: {manual: {}}\njobs:\n  a:\n    steps: 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := h.run(bob, "", false, "workflow", "apply", bad, "--namespace", "bob"); code != 1 || !strings.Contains(errOut, bad+":5:") {
		t.Fatalf("apply of a bad file: exit %d, %q", code, errOut)
	}

	var wfs []hubtypes.Workflow
	if err := json.Unmarshal([]byte(h.ok(bob, "workflow", "ls", "-o", "json")), &wfs); err != nil || len(wfs) != 2 {
		t.Fatalf("ls: %v %+v", err, wfs)
	}
	if out := h.ok(bob, "workflow", "ls"); !strings.HasPrefix(out, "WORKFLOW") || !strings.Contains(out, "bob/greet2") {
		t.Fatalf("ls:\n%s", out)
	}
	if out := h.ok(bob, "workflow", "show", "bob/greet"); out != src {
		t.Fatalf("show: %q", out)
	}
	h.fails(bob, "NAMESPACE/NAME", "workflow", "show", "greet")

	id := strings.TrimSpace(h.ok(bob, "workflow", "run", "bob/greet", "--input", "who=world", "--input", "loud=true"))
	h.fails(bob, "want true or false", "workflow", "run", "bob/greet", "--input", "who=x", "--input", "loud=very")
	h.fails(bob, "NAME=VALUE", "workflow", "run", "bob/greet", "--input", "who")
	h.fails(bob, "required", "workflow", "run", "bob/greet")
	var runs []hubtypes.WorkflowRun
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := json.Unmarshal([]byte(h.ok(bob, "workflow", "runs", "bob/greet", "-o", "json")), &runs); err != nil || len(runs) != 1 {
			t.Fatalf("runs: %v %+v", err, runs)
		}
		if engine.Terminal(runs[0].State) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if runs[0].State != "succeeded" || strings.TrimSpace(id) != json.Number(itoa64(runs[0].ID)).String() {
		t.Fatalf("run %s: %+v", id, runs[0])
	}
	if out := h.ok(bob, "workflow", "logs", id); !strings.Contains(out, "hello world loud=true") {
		t.Fatalf("logs: %q", out)
	}
	if out := h.ok(bob, "workflow", "logs", id, "--job", "hello", "--follow"); !strings.Contains(out, "hello world") {
		t.Fatalf("logs --follow: %q", out)
	}
	if out := h.ok(bob, "workflow", "runs", "bob/greet", "--state", "succeeded"); !strings.HasPrefix(out, "ID") || !strings.Contains(out, "manual") {
		t.Fatalf("runs:\n%s", out)
	}
	h.ok(bob, "workflow", "rerun", id, "--failed")
	h.ok(bob, "workflow", "cancel", id)
	h.fails(bob, "run id", "workflow", "logs", "abc")

	// The site admin sees bob's workflows; bob sees none of what he may not read.
	if out := h.ok(admin, "workflow", "ls", "--namespace", "bob"); !strings.Contains(out, "bob/greet") {
		t.Fatalf("admin ls:\n%s", out)
	}
	h.ok(bob, "workflow", "rm", "bob/greet2")
	h.fails(bob, "not found", "workflow", "show", "bob/greet2")
}

func itoa64(n int64) string { b, _ := json.Marshal(n); return string(b) }
