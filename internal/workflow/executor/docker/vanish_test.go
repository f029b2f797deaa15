package docker

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/workflow/engine"
)

// TestEngineStepContainerVanished: a running step's container removed behind the
// engine's back (`docker rm -f`, an engine restart that lost it) fails the step and
// its job with an error that says the container is gone, instead of leaving the job
// running; the job's other objects are removed.
func TestEngineStepContainerVanished(t *testing.T) {
	x, img := newEngine(t)
	ctx := ctxT(t)
	store, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	w, err := store.ApplyWorkflow(ctx, "team", "vanish", []byte(`name: vanish
on: manual
jobs:
  long:
    image: `+img+`
    steps:
      - run: echo started; sleep 300
      - run: echo never
`), 1, "admin")
	if err != nil {
		t.Fatal(err)
	}
	pr, err := engine.PlanManual(w, "m1", map[string]any{}, "admin")
	if err != nil {
		t.Fatal(err)
	}
	runID, err := store.CreateWorkflowRun(ctx, w.ID, pr)
	if err != nil {
		t.Fatal(err)
	}
	prefix := randomID(t) + "-"
	e, err := engine.New(engine.Options{Store: store, Executor: x, ID: "e1", JobIDPrefix: prefix,
		MayPull:  func(context.Context, int64, string) (bool, error) { return true, nil },
		Interval: 100 * time.Millisecond, Lease: 3 * time.Second, Renew: 200 * time.Millisecond, StopGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ectx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ectx) }()
	defer func() { cancel(); <-done }()

	wait := func(what string, limit time.Duration, cond func(engine.Run) bool) engine.Run {
		t.Helper()
		for deadline := time.Now().Add(limit); ; {
			r, err := store.GetWorkflowRun(ctx, runID)
			if err != nil {
				t.Fatal(err)
			}
			if cond(r) {
				return r
			}
			if time.Now().After(deadline) {
				t.Fatalf("never %s: %+v", what, r)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	r := wait("running the step", time.Minute, func(r engine.Run) bool {
		return len(r.Jobs) == 1 && len(r.Jobs[0].Steps) == 2 && r.Jobs[0].Steps[0].LogBytes > 0
	})
	spec := newJob(t, x, img)
	spec.JobID = fmt.Sprint(prefix, r.Jobs[0].ID)
	c, err := x.findStep(ctx, spec, 0)
	if err != nil || c == nil {
		t.Fatalf("the step's container: %+v, %v", c, err)
	}
	if _, err := x.api.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	r = wait("finished", time.Minute, func(r engine.Run) bool { return engine.Terminal(r.State) })
	j := r.Jobs[0]
	if r.State != engine.StateFailed || j.State != engine.StateFailed || !strings.Contains(j.Error, "step 1") ||
		!strings.Contains(j.Error, "gone") {
		t.Fatalf("run %s, job %+v", r.State, j)
	}
	if j.Steps[0].State != engine.StateFailed || j.Steps[1].State != engine.StateSkipped || j.Steps[1].Starts != 0 {
		t.Fatalf("steps %+v", j.Steps)
	}
	assertNothingLeft(t, x, spec)
}
