package docker

import (
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/hubctl/hubctl/internal/workflow/engine"
)

// TestEngineReattachAfterGracefulStop: an engine that stops (as `hubctl serve` on
// SIGTERM) in the middle of a step leaves the step's container running; the next
// engine, on the same store and the same Docker engine, re-attaches once the lease
// runs out: the step is started once, the log holds every line once, in order, and
// the job's containers are removed at its end.
func TestEngineReattachAfterGracefulStop(t *testing.T) {
	x, img := newEngine(t)
	m := newManualRun(t, x, "reattach", `name: reattach
on: manual
jobs:
  count:
    image: `+img+`
    steps:
      - run: for i in 1 2 3 4 5 6 7 8; do echo "n $i"; sleep 1; done
      - run: echo second
`)
	stop1 := m.start("e1", 2*time.Second)
	r := m.wait("printed n 2", 40*time.Second, func(r engine.Run) bool { return len(r.Jobs) == 1 && strings.Contains(m.log(r.Jobs[0].ID), "n 2\n") })
	jobID := r.Jobs[0].ID
	stop1()
	spec := m.jobSpec(img, jobID)
	c, err := x.findStep(m.ctx, spec, 0)
	if err != nil || c == nil || c.State != container.StateRunning {
		t.Fatalf("the stopped engine's step: %+v, %v", c, err)
	}

	stop2 := m.start("e2", 2*time.Second)
	defer stop2()
	r = m.wait("finished", 40*time.Second, func(r engine.Run) bool { return engine.Terminal(r.State) })
	j := r.Jobs[0]
	if r.State != engine.StateSucceeded || j.Owner != "e2" {
		t.Fatalf("run %s, job %+v", r.State, j)
	}
	for _, st := range j.Steps {
		if st.Starts != 1 {
			t.Errorf("step %d started %d times", st.Index+1, st.Starts)
		}
	}
	if got := m.log(jobID); got != "n 1\nn 2\nn 3\nn 4\nn 5\nn 6\nn 7\nn 8\nsecond\n" {
		t.Fatalf("log:\n%s", got)
	}
	if c, err := x.findStep(m.ctx, spec, 0); err != nil || c != nil {
		t.Fatalf("the job's containers are left: %+v, %v", c, err)
	}
}
