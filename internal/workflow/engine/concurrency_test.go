package engine_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/workflow/engine"
)

const grouped = `name: grouped
on:
  manual:
    inputs:
      env:
        type: string
        required: true
      gate:
        type: string
        default: ""
concurrency:
  group: deploy-${{ inputs.env }}
  queue: 1
jobs:
  deploy:
    image: alpine
    env:
      GATE: "${{ inputs.gate }}"
    steps:
      - run: |
          if [ -n "$GATE" ]; then
            i=0
            while [ ! -f "$GATE" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
          fi
`

// manualRun starts a run of w with inputs and returns its id.
func groupRun(t *testing.T, s *sqlstore.Store, w engine.Workflow, id string, inputs map[string]any) int64 {
	t.Helper()
	pr, err := engine.PlanManual(w, id, inputs, "")
	if err != nil {
		t.Fatal(err)
	}
	rid, err := s.CreateWorkflowRun(t.Context(), w.ID, pr)
	if err != nil {
		t.Fatal(err)
	}
	return rid
}

// waitRunID waits for run id to satisfy done.
func waitRunID(t *testing.T, s *sqlstore.Store, id int64, what string, done func(engine.Run) bool) engine.Run {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last engine.Run
	for time.Now().Before(deadline) {
		var err error
		if last, err = s.GetWorkflowRun(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		if done(last) {
			return last
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("run %d never %s: %+v", id, what, last)
	return last
}

func inState(state string) func(engine.Run) bool {
	return func(r engine.Run) bool { return r.State == state }
}

// TestWorkflowConcurrencyRuns: runs of one group (its name evaluated from the run's
// inputs) run one at a time: a second waits; a third supersedes the second (queue 1);
// another group runs meanwhile; when the first ends, the third runs. With
// cancel-in-progress a newcomer cancels the run in progress instead. The same for
// job runs in a job's own group. Two engines share the database.
func TestWorkflowConcurrencyRuns(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *sqlstore.Store) {
		s := open()
		dir := t.TempDir()
		gate := filepath.Join(dir, "gate")
		w, err := s.ApplyWorkflow(t.Context(), "team", "grouped", []byte(grouped), 1, "admin")
		if err != nil {
			t.Fatal(err)
		}
		startEngine(t, s, "e1", 4)
		startEngine(t, open(), "e2", 4)
		first := groupRun(t, s, w, "m1", map[string]any{"env": "prod", "gate": gate})
		waitRunID(t, s, first, "running", inState(engine.StateRunning))
		second := groupRun(t, s, w, "m2", map[string]any{"env": "prod"})
		third := groupRun(t, s, w, "m3", map[string]any{"env": "prod"})
		other := groupRun(t, s, w, "m4", map[string]any{"env": "staging"})
		if r := waitRunID(t, s, other, "finished", finished); r.State != engine.StateSucceeded {
			t.Fatalf("the staging run, alone in its group: %s", r.State)
		}
		r2 := waitRunID(t, s, second, "finished", finished)
		if r2.State != engine.StateCancelled || r2.Result != engine.ResultSuperseded || !strings.Contains(r2.Jobs[0].Error, "superseded") ||
			r2.Jobs[0].Steps[0].Starts != 0 {
			t.Fatalf("the second run: %s %s %+v", r2.State, r2.Result, r2.Jobs)
		}
		if r3, _ := s.GetWorkflowRun(t.Context(), third); r3.State != engine.StateWaiting {
			t.Fatalf("the third run is %s while the first runs, want waiting", r3.State)
		}
		time.Sleep(300 * time.Millisecond)
		if r3, _ := s.GetWorkflowRun(t.Context(), third); r3.State != engine.StateWaiting {
			t.Fatalf("the third run is %s while the first runs, want waiting", r3.State)
		}
		if err := os.WriteFile(gate, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		r1 := waitRunID(t, s, first, "finished", finished)
		r3 := waitRunID(t, s, third, "finished", finished)
		if r1.State != engine.StateSucceeded || r3.State != engine.StateSucceeded || r3.StartedAt.Before(r1.FinishedAt) {
			t.Fatalf("first %s (ended %v), third %s (started %v)", r1.State, r1.FinishedAt, r3.State, r3.StartedAt)
		}

		// cancel-in-progress: the newcomer stops the one running.
		src := strings.Replace(grouped, "  queue: 1\n", "  cancel-in-progress: true\n", 1)
		w2, err := s.ApplyWorkflow(t.Context(), "team", "cancelling", []byte(src), 1, "admin")
		if err != nil {
			t.Fatal(err)
		}
		old := groupRun(t, s, w2, "c1", map[string]any{"env": "prod", "gate": filepath.Join(dir, "never")})
		waitRunID(t, s, old, "running", func(r engine.Run) bool { return r.State == engine.StateRunning && r.Jobs[0].Steps[0].Starts == 1 })
		newer := groupRun(t, s, w2, "c2", map[string]any{"env": "prod"})
		if r := waitRunID(t, s, old, "finished", finished); r.State != engine.StateCancelled {
			t.Fatalf("the run in progress: %s", r.State)
		}
		if r := waitRunID(t, s, newer, "finished", finished); r.State != engine.StateSucceeded {
			t.Fatalf("the newcomer: %s %+v", r.State, r.Jobs)
		}

		// The same for a job's own group: the newcomer's job run stops the one running.
		src = strings.Replace(grouped, "concurrency:\n  group: deploy-${{ inputs.env }}\n  queue: 1\n", "", 1)
		src = strings.Replace(src, "    image: alpine\n", "    image: alpine\n    concurrency:\n      group: job-${{ inputs.env }}\n      cancel-in-progress: true\n", 1)
		w3, err := s.ApplyWorkflow(t.Context(), "team", "jobcancelling", []byte(src), 1, "admin")
		if err != nil {
			t.Fatal(err)
		}
		old = groupRun(t, s, w3, "j1", map[string]any{"env": "prod", "gate": filepath.Join(dir, "never")})
		waitRunID(t, s, old, "running", func(r engine.Run) bool { return r.State == engine.StateRunning && r.Jobs[0].Steps[0].Starts == 1 })
		newer = groupRun(t, s, w3, "j2", map[string]any{"env": "prod"})
		if r := waitRunID(t, s, old, "finished", finished); r.State != engine.StateCancelled || r.Jobs[0].State != engine.StateCancelled {
			t.Fatalf("the job run in progress: %s %+v", r.State, r.Jobs)
		}
		if r := waitRunID(t, s, newer, "finished", finished); r.State != engine.StateSucceeded {
			t.Fatalf("the newcomer's job: %s %+v", r.State, r.Jobs)
		}

		// A job's group queue: one waits, the older waiting job run is superseded.
		src = strings.Replace(src, "      cancel-in-progress: true\n", "      queue: 1\n", 1)
		w4, err := s.ApplyWorkflow(t.Context(), "team", "jobqueue", []byte(src), 1, "admin")
		if err != nil {
			t.Fatal(err)
		}
		gate2 := filepath.Join(dir, "gate2")
		a := groupRun(t, s, w4, "q1", map[string]any{"env": "prod", "gate": gate2})
		waitRunID(t, s, a, "running", func(r engine.Run) bool { return r.Jobs[0].Steps[0].Starts == 1 })
		b := groupRun(t, s, w4, "q2", map[string]any{"env": "prod"})
		c := groupRun(t, s, w4, "q3", map[string]any{"env": "prod"})
		if r := waitRunID(t, s, b, "finished", finished); r.Jobs[0].State != engine.StateCancelled || !strings.HasPrefix(r.Jobs[0].Error, "superseded") {
			t.Fatalf("the older waiting job run: %+v", r.Jobs)
		}
		if r, _ := s.GetWorkflowRun(t.Context(), c); r.Jobs[0].State != engine.StateQueued {
			t.Fatalf("the newest job run is %s while its group runs, want queued", r.Jobs[0].State)
		}
		if err := os.WriteFile(gate2, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		ra, rc := waitRunID(t, s, a, "finished", finished), waitRunID(t, s, c, "finished", finished)
		if ra.State != engine.StateSucceeded || rc.State != engine.StateSucceeded || rc.Jobs[0].StartedAt.Before(ra.Jobs[0].FinishedAt) {
			t.Fatalf("first %s, last %s (%+v, %+v)", ra.State, rc.State, ra.Jobs[0], rc.Jobs[0])
		}
	})
}

const jobGrouped = `name: jobgrouped
on:
  manual: {}
jobs:
  deploy:
    image: alpine
    matrix:
      n: ["1", "2", "3", "4"]
    concurrency:
      group: one-at-a-time
      queue: 10
    steps:
      - run: sleep 0.3
`

// TestWorkflowConcurrencyJobsTwoEngines: the job runs of one group, claimed by two
// engines on one database, never run at the same time: their running intervals (the
// database's clock) do not overlap.
func TestWorkflowConcurrencyJobsTwoEngines(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *sqlstore.Store) {
		s := open()
		w, err := s.ApplyWorkflow(t.Context(), "team", "jobgrouped", []byte(jobGrouped), 1, "admin")
		if err != nil {
			t.Fatal(err)
		}
		id := groupRun(t, s, w, "j1", nil)
		startEngine(t, s, "e1", 4)
		startEngine(t, open(), "e2", 4)
		r := waitRunID(t, s, id, "finished", finished)
		if r.State != engine.StateSucceeded || len(r.Jobs) != 4 {
			t.Fatalf("run %s: %+v", r.State, r.Jobs)
		}
		for i, a := range r.Jobs {
			for _, b := range r.Jobs[i+1:] {
				if a.StartedAt.Before(b.FinishedAt) && b.StartedAt.Before(a.FinishedAt) {
					t.Errorf("job runs %s [%v, %v] and %s [%v, %v] of one group overlap", a.Display, a.StartedAt, a.FinishedAt,
						b.Display, b.StartedAt, b.FinishedAt)
				}
			}
		}
	})
}
