package docker

import (
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/hubctl/hubctl/internal/workflow/engine"
)

// TestEngineStepContainerVanished: a running step's container removed behind the
// engine's back (`docker rm -f`, an engine restart that lost it) fails the step and
// its job with an error that says the container is gone, instead of leaving the job
// running; the job's other objects are removed.
func TestEngineStepContainerVanished(t *testing.T) {
	x, img := newEngine(t)
	m := newManualRun(t, x, "vanish", `name: vanish
on: manual
jobs:
  long:
    image: `+img+`
    steps:
      - run: echo started; sleep 300
      - run: echo never
`)
	defer m.start("e1", 3*time.Second)()
	ctx := m.ctx
	r := m.wait("running the step", time.Minute, func(r engine.Run) bool {
		return len(r.Jobs) == 1 && len(r.Jobs[0].Steps) == 2 && r.Jobs[0].Steps[0].LogBytes > 0
	})
	spec := m.jobSpec(img, r.Jobs[0].ID)
	c, err := x.findStep(ctx, spec, 0)
	if err != nil || c == nil {
		t.Fatalf("the step's container: %+v, %v", c, err)
	}
	if _, err := x.api.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	r = m.wait("finished", time.Minute, func(r engine.Run) bool { return engine.Terminal(r.State) })
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
