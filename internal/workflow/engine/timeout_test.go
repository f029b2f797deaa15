package engine_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/workflow/engine"
)

// jobLog is the stored log of job run id.
func jobLog(t *testing.T, s *sqlstore.Store, id int64) string {
	t.Helper()
	chunks, err := s.ReadWorkflowLogs(t.Context(), id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, c := range chunks {
		b.Write(c.Data)
	}
	return b.String()
}

// TestWorkflowStepTimeout: a step past its own timeout: is stopped and its job run
// ends timed_out (not failed), as does the step itself, with a line in the log that
// says so; the job's steps after it are skipped, and a step within its timeout runs on.
func TestWorkflowStepTimeout(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *sqlstore.Store) {
		s := open()
		w := trigger(t, s, "steptimeout", `name: steptimeout
on:
  push:
    repositories: [team/app]
jobs:
  slow:
    image: alpine
    steps:
      - run: echo quick
        timeout: 30s
      - run: echo started; sleep 60; echo never
        timeout: 1s
      - run: echo third
`)
		start := time.Now()
		startEngine(t, s, "e1", 4)
		r := waitRun(t, s, w, "finished", finished)
		j := r.Jobs[0]
		if r.State != engine.StateFailed || j.State != engine.StateTimedOut || !strings.Contains(j.Error, "step 2 timed out after 1s") {
			t.Fatalf("run %s, job %+v", r.State, j)
		}
		if j.Steps[0].State != engine.StateSucceeded || j.Steps[1].State != engine.StateTimedOut || j.Steps[2].State != engine.StateSkipped {
			t.Fatalf("steps %+v", j.Steps)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Fatalf("timed out after %v", d)
		}
		log := jobLog(t, s, j.ID)
		if !strings.Contains(log, "quick\nstarted\n") || !strings.Contains(log, "[hubctl] step 2 timed out after 1s: stopped\n") ||
			strings.Contains(log, "never") || strings.Contains(log, "third") {
			t.Fatalf("log:\n%s", log)
		}
	})
}

// TestWorkflowJobTimeoutLogged: a job past its timeout: ends timed_out, the step it
// stopped too, with a line in its log naming that step.
func TestWorkflowJobTimeoutLogged(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *sqlstore.Store) {
		s := open()
		w := trigger(t, s, "jobtimeout", `name: jobtimeout
on:
  push:
    repositories: [team/app]
jobs:
  slow:
    image: alpine
    timeout: 1s
    steps:
      - run: echo started; sleep 60
`)
		startEngine(t, s, "e1", 4)
		r := waitRun(t, s, w, "finished", finished)
		j := r.Jobs[0]
		if j.State != engine.StateTimedOut || j.Steps[0].State != engine.StateTimedOut {
			t.Fatalf("job %+v", j)
		}
		if log := jobLog(t, s, j.ID); !strings.Contains(log, "[hubctl] the job timed out: step 1 stopped\n") {
			t.Fatalf("log:\n%s", log)
		}
	})
}
