package docker

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/workflow/engine"
)

// TestEngineReattachAfterGracefulStop: an engine that stops (as `hubctl serve` on
// SIGTERM) in the middle of a step leaves the step's container running; the next
// engine, on the same store and the same Docker engine, re-attaches once the lease
// runs out: the step is started once, the log holds every line once, in order, and
// the job's containers are removed at its end.
func TestEngineReattachAfterGracefulStop(t *testing.T) {
	x, img := newEngine(t)
	ctx := ctxT(t)
	store, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	w, err := store.ApplyWorkflow(ctx, "team", "reattach", []byte(`name: reattach
on: manual
jobs:
  count:
    image: `+img+`
    steps:
      - run: for i in 1 2 3 4 5 6 7 8; do echo "n $i"; sleep 1; done
      - run: echo second
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
	start := func(id string) (stop func()) {
		e, err := engine.New(engine.Options{Store: store, Executor: x, ID: id, JobIDPrefix: prefix,
			MayPull:  func(context.Context, int64, string) (bool, error) { return true, nil },
			Interval: 100 * time.Millisecond, Lease: 2 * time.Second, Renew: 200 * time.Millisecond, StopGrace: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ectx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = e.Run(ectx)
		}()
		return func() { cancel(); <-done }
	}
	logOf := func(jobID int64) string {
		chunks, err := store.ReadWorkflowLogs(ctx, jobID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, c := range chunks {
			b.Write(c.Data)
		}
		return b.String()
	}
	wait := func(what string, cond func(engine.Run) bool) engine.Run {
		t.Helper()
		for deadline := time.Now().Add(40 * time.Second); ; {
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

	stop1 := start("e1")
	r := wait("printed n 2", func(r engine.Run) bool { return len(r.Jobs) == 1 && strings.Contains(logOf(r.Jobs[0].ID), "n 2\n") })
	jobID := r.Jobs[0].ID
	stop1()
	spec := newJob(t, x, img) // for the cleanup of what the job leaves, should the test fail
	spec.JobID = fmt.Sprint(prefix, jobID)
	c, err := x.findStep(ctx, spec, 0)
	if err != nil || c == nil || c.State != container.StateRunning {
		t.Fatalf("the stopped engine's step: %+v, %v", c, err)
	}

	stop2 := start("e2")
	defer stop2()
	r = wait("finished", func(r engine.Run) bool { return engine.Terminal(r.State) })
	j := r.Jobs[0]
	if r.State != engine.StateSucceeded || j.Owner != "e2" {
		t.Fatalf("run %s, job %+v", r.State, j)
	}
	for _, st := range j.Steps {
		if st.Starts != 1 {
			t.Errorf("step %d started %d times", st.Index+1, st.Starts)
		}
	}
	if got := logOf(jobID); got != "n 1\nn 2\nn 3\nn 4\nn 5\nn 6\nn 7\nn 8\nsecond\n" {
		t.Fatalf("log:\n%s", got)
	}
	if c, err := x.findStep(ctx, spec, 0); err != nil || c != nil {
		t.Fatalf("the job's containers are left: %+v, %v", c, err)
	}
}
