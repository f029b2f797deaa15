package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/workflow/engine"
	"github.com/hubctl/hubctl/internal/workflow/executor/local"
)

const wakeFlow = `name: wake
on:
  push:
    repositories: [team/app]
jobs:
  a:
    image: alpine
    steps:
      - run: "true"
  b:
    image: alpine
    needs: [a]
    steps:
      - run: "true"
`

// TestWakeStartsRunsBeforeTheInterval: with an interval of an hour, a run starts only
// because the engine is woken (as the hub does when its registry commits a push), and
// its second job runs because the end of the first wakes the engine again.
func TestWakeStartsRunsBeforeTheInterval(t *testing.T) {
	s := backends[0].open(t)()
	owner(t, s)
	x, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(engine.Options{Store: s, Executor: x, MayPull: mayPull, Interval: time.Hour,
		Lease: 3 * time.Second, Renew: 200 * time.Millisecond, StopGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.Run(ctx) // its first round finds nothing: the workflow is not applied yet
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	time.Sleep(200 * time.Millisecond)
	w := trigger(t, s, "wake", wakeFlow)
	start := time.Now()
	e.Wake()
	r := waitRun(t, s, w, "finished", finished)
	if r.State != engine.StateSucceeded || time.Since(start) > 30*time.Second {
		t.Fatalf("run %s after %s: %+v", r.State, time.Since(start), r.Jobs)
	}
}
