package engine_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/pgtest"
	"github.com/hubctl/hubctl/internal/workflow/engine"
	"github.com/hubctl/hubctl/internal/workflow/executor/local"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// backend opens stores on one fresh database; each call opens another store on it,
// as another replica would.
type backend struct {
	name string
	open func(t *testing.T) func() *sqlstore.Store
}

var backends = []backend{
	{"sqlite", func(t *testing.T) func() *sqlstore.Store {
		path := filepath.Join(t.TempDir(), "meta.db")
		return func() *sqlstore.Store { return mustStore(t)(sqlstore.OpenSQLite(t.Context(), path)) }
	}},
	{"postgres", func(t *testing.T) func() *sqlstore.Store {
		dsn := pgtest.Start(t)
		return func() *sqlstore.Store { return mustStore(t)(sqlstore.OpenPostgres(t.Context(), dsn)) }
	}},
}

func mustStore(t *testing.T) func(*sqlstore.Store, error) *sqlstore.Store {
	return func(s *sqlstore.Store, err error) *sqlstore.Store {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}

func eachBackend(t *testing.T, fn func(t *testing.T, open func() *sqlstore.Store)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, b.open(t))
		})
	}
}

// mayPull lets account 1 pull everything and account 2 nothing.
func mayPull(ctx context.Context, account int64, repo string) (bool, error) { return account == 1, nil }

// startEngine runs an engine with the local executor on s until the test ends.
func startEngine(t *testing.T, s *sqlstore.Store, id string, maxJobs int) *engine.Engine {
	t.Helper()
	x, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(engine.Options{Store: s, Executor: x, MayPull: mayPull, ID: id, MaxJobs: maxJobs, Interval: 50 * time.Millisecond,
		Lease: 3 * time.Second, Renew: 200 * time.Millisecond, StopGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return e
}

// trigger applies src as team/<name> and pushes team/app:v1, which its push trigger
// matches; it returns the workflow.
func trigger(t *testing.T, s *sqlstore.Store, name, src string) engine.Workflow {
	t.Helper()
	w, err := s.ApplyWorkflow(t.Context(), "team", name, []byte(src), 1, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendEvent(t.Context(), events.Event{Type: events.ManifestPushed, Repository: "team/app", Tag: "v1",
		Digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}); err != nil {
		t.Fatal(err)
	}
	return w
}

// waitRun waits for the first run of w to satisfy done and returns it.
func waitRun(t *testing.T, s *sqlstore.Store, w engine.Workflow, what string, done func(engine.Run) bool) engine.Run {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last engine.Run
	for time.Now().Before(deadline) {
		runs, err := s.ListWorkflowRuns(t.Context(), w.ID, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) == 1 {
			if last, err = s.GetWorkflowRun(t.Context(), runs[0].ID); err != nil {
				t.Fatal(err)
			}
			if done(last) {
				return last
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("run never %s: %+v", what, last)
	return last
}

func finished(r engine.Run) bool { return r.FinishedAt != (time.Time{}) }

func jobsByName(r engine.Run) map[string]engine.Job {
	m := map[string]engine.Job{}
	for _, j := range r.Jobs {
		m[j.Display] = j
	}
	return m
}

const dag = `name: dag
on:
  push:
    repositories: [team/app]
jobs:
  a:
    image: alpine
    outputs: [v]
    steps:
      - run: |
          echo "v=A$HUBCTL_RUN_ID" >> "$HUBCTL_OUTPUT"
          test "$HUBCTL_IMAGE" = "team/app@$HUBCTL_DIGEST" && test "$HUBCTL_TAG" = v1 && test "$HUBCTL_REPOSITORY" = team/app
  b:
    needs: [a]
    image: alpine
    outputs: [v]
    env:
      IN: "${{ needs.a.outputs.v }}"
    steps:
      - run: echo "[JOB_OUT] v = B-$IN"
  c:
    needs: [a]
    image: alpine
    outputs: [v]
    env:
      IN: "${{ needs.a.outputs.v }}"
    steps:
      - run: echo "v=C-$IN" >> "$HUBCTL_OUTPUT"
  d:
    needs: [b, c]
    image: alpine
    outputs: [v, secret]
    env:
      B: "${{ needs.b.outputs.v }}"
      C: "${{ needs.c.outputs.v }}"
    steps:
      - run: |
          echo "v=$B+$C" >> "$HUBCTL_OUTPUT"
          echo "undeclared=x" >> "$HUBCTL_OUTPUT"
`

// TestWorkflowDAG: a → b, a → c, b,c → d run in the order of their needs, each
// reading the outputs of the jobs it needs (from $HUBCTL_OUTPUT and [JOB_OUT] lines);
// only declared outputs are kept; the logs are stored.
func TestWorkflowDAG(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *sqlstore.Store) {
		s := open()
		w := trigger(t, s, "dag", dag)
		startEngine(t, s, "e1", 4)
		r := waitRun(t, s, w, "finished", finished)
		if r.State != engine.StateSucceeded || r.Result != "success" {
			t.Fatalf("run %s/%s: %+v", r.State, r.Result, r.Jobs)
		}
		j := jobsByName(r)
		id := fmt.Sprint(r.ID)
		want := "B-A" + id + "+C-A" + id
		if got := j["d"].Outputs; got["v"] != want || len(got) != 1 {
			t.Fatalf("d outputs %v, want v=%s only", got, want)
		}
		for _, dep := range [][2]string{{"a", "b"}, {"a", "c"}, {"b", "d"}, {"c", "d"}} {
			if first, then := j[dep[0]], j[dep[1]]; then.StartedAt.Before(first.FinishedAt) {
				t.Errorf("%s started at %v, before %s finished at %v", dep[1], then.StartedAt, dep[0], first.FinishedAt)
			}
		}
		logs, err := s.ReadWorkflowLogs(t.Context(), j["b"].ID, 0, 0)
		if err != nil || len(logs) == 0 || !strings.Contains(string(logs[0].Data), "[JOB_OUT] v = B-A"+id) {
			t.Fatalf("b's log %+v, %v", logs, err)
		}
		for _, job := range r.Jobs {
			if job.Steps[0].Starts != 1 || job.Steps[0].State != engine.StateSucceeded {
				t.Errorf("job %s step %+v", job.Display, job.Steps[0])
			}
		}
	})
}

const failing = `name: failing
on:
  push:
    repositories: [team/app]
jobs:
  a:
    image: alpine
    steps:
      - run: echo failing; exit 3
      - run: echo never
  b:
    needs: [a]
    image: alpine
    steps:
      - run: echo never
  c:
    needs: [a]
    if: always() && needs.a.result == "failure"
    image: alpine
    steps:
      - run: echo cleanup
  other-tag:
    if: event.tag == "v2"
    image: alpine
    steps:
      - run: echo never
  bad-if:
    if: int(event.tag) > 0
    image: alpine
    steps:
      - run: echo never
  too-much:
    image: alpine
    outputs: [a, b]
    steps:
      - run: |
          v=$(head -c 600000 /dev/zero | tr '\0' x)
          echo "a=$v" >> "$HUBCTL_OUTPUT"
          echo "[JOB_OUT] b = $v"
  this-tag:
    if: event.tag == "v1" && event.repository == "team/app"
    image: alpine
    steps:
      - run: "true"
`

// TestWorkflowFailureSkipsDependents: a failing step fails its job and the run, skips
// the job's later steps and the jobs that need it, except one whose if: asks to run.
func TestWorkflowFailureSkipsDependents(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *sqlstore.Store) {
		s := open()
		w := trigger(t, s, "failing", failing)
		startEngine(t, s, "e1", 4)
		r := waitRun(t, s, w, "finished", finished)
		j := jobsByName(r)
		if r.State != engine.StateFailed || r.Result != "failure" {
			t.Fatalf("run %s/%s", r.State, r.Result)
		}
		a := j["a"]
		if a.State != engine.StateFailed || a.Steps[0].ExitCode != 3 || a.Steps[1].State != engine.StateSkipped ||
			!strings.Contains(a.Error, "exited with code 3") {
			t.Fatalf("a: %+v", a)
		}
		if j["b"].State != engine.StateSkipped || j["b"].Steps[0].Starts != 0 {
			t.Fatalf("b: %+v", j["b"])
		}
		if j["c"].State != engine.StateSucceeded {
			t.Fatalf("c: %+v", j["c"])
		}
		if j["other-tag"].State != engine.StateSkipped || j["this-tag"].State != engine.StateSucceeded {
			t.Fatalf("if: on the event: %+v", r.Jobs)
		}
		if bad := j["bad-if"]; bad.State != engine.StateFailed || !strings.HasPrefix(bad.Error, "if: ") || bad.Steps[0].Starts != 0 {
			t.Fatalf("an if: failing at run time: %+v", bad)
		}
		if big := j["too-much"]; big.State != engine.StateFailed || !strings.Contains(big.Error, "outputs exceed") || len(big.Outputs) != 0 {
			t.Fatalf("outputs over 1 MiB: state %s, error %q, %d outputs", big.State, big.Error, len(big.Outputs))
		}
	})
}

const matrix = `name: matrix
on:
  push:
    repositories: [team/app]
jobs:
  test:
    image: alpine
    matrix:
      os: [linux, darwin]
      v: ["1", "2"]
    outputs: [combo]
    env:
      COMBO: "${{ matrix.os }}-${{ matrix.v }}"
    steps:
      - run: echo "combo=$COMBO" >> "$HUBCTL_OUTPUT"
      - run: echo second
`

// TestWorkflowMatrix: a 2×2 matrix makes four job runs, each with its combination's
// values and outputs.
func TestWorkflowMatrix(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *sqlstore.Store) {
		s := open()
		w := trigger(t, s, "matrix", matrix)
		startEngine(t, s, "e1", 4)
		r := waitRun(t, s, w, "finished", finished)
		if r.State != engine.StateSucceeded || len(r.Jobs) != 4 {
			t.Fatalf("run %s with %d jobs", r.State, len(r.Jobs))
		}
		seen := map[string]bool{}
		for _, j := range r.Jobs {
			want := j.Matrix["os"] + "-" + j.Matrix["v"]
			if j.Outputs["combo"] != want {
				t.Errorf("%s: combo %q, want %q", j.Display, j.Outputs["combo"], want)
			}
			seen[want] = true
		}
		if len(seen) != 4 {
			t.Fatalf("combinations %v", seen)
		}
	})
}

// TestWorkflowRetries: a job failing its first attempt runs again and succeeds; its
// step was started once per attempt.
func TestWorkflowRetries(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *sqlstore.Store) {
		s := open()
		counter := filepath.Join(t.TempDir(), "count")
		src := fmt.Sprintf(`name: retries
on:
  push:
    repositories: [team/app]
jobs:
  flaky:
    image: alpine
    retries: 2
    env:
      F: %q
    steps:
      - run: |
          n=$(cat "$F" 2>/dev/null || echo 0)
          n=$((n + 1))
          echo $n > "$F"
          echo "attempt $n"
          [ "$n" -ge 2 ]
`, counter)
		w := trigger(t, s, "retries", src)
		startEngine(t, s, "e1", 4)
		r := waitRun(t, s, w, "finished", finished)
		j := r.Jobs[0]
		if r.State != engine.StateSucceeded || j.Attempt != 2 || j.Steps[0].Starts != 2 {
			t.Fatalf("run %s, job %+v", r.State, j)
		}
		chunks, err := s.ReadWorkflowLogs(t.Context(), j.ID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var log strings.Builder
		for _, c := range chunks {
			fmt.Fprintf(&log, "%d:%s", c.Attempt, c.Data)
		}
		if log.String() != "1:attempt 1\n2:attempt 2\n" {
			t.Fatalf("log of both attempts %q", log.String())
		}
	})
}

// TestWorkflowTimeout: a job that outlives its timeout is stopped and timed out.
func TestWorkflowTimeout(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *sqlstore.Store) {
		s := open()
		w := trigger(t, s, "timeout", `name: timeout
on:
  push:
    repositories: [team/app]
jobs:
  slow:
    image: alpine
    timeout: 1s
    steps:
      - run: sleep 60
`)
		start := time.Now()
		startEngine(t, s, "e1", 4)
		r := waitRun(t, s, w, "finished", finished)
		if r.State != engine.StateFailed || r.Jobs[0].State != engine.StateTimedOut {
			t.Fatalf("run %s, job %+v", r.State, r.Jobs[0])
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Fatalf("timed out after %v", d)
		}
	})
}

// TestWorkflowCancel: cancelling a run stops its running step and cancels what has
// not started.
func TestWorkflowCancel(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *sqlstore.Store) {
		s := open()
		marker := filepath.Join(t.TempDir(), "after-sleep")
		w := trigger(t, s, "cancel", fmt.Sprintf(`name: cancel
on:
  push:
    repositories: [team/app]
jobs:
  slow:
    image: alpine
    steps:
      - run: sleep 60; touch %q
  next:
    needs: [slow]
    image: alpine
    steps:
      - run: "true"
`, marker))
		startEngine(t, s, "e1", 4)
		r := waitRun(t, s, w, "running its step", func(r engine.Run) bool {
			return len(r.Jobs) > 0 && r.Jobs[0].Steps[0].State == engine.StateRunning
		})
		start := time.Now()
		if err := s.CancelWorkflowRun(t.Context(), r.ID); err != nil {
			t.Fatal(err)
		}
		r = waitRun(t, s, w, "finished", finished)
		j := jobsByName(r)
		if r.State != engine.StateCancelled || j["slow"].State != engine.StateCancelled || j["next"].State != engine.StateCancelled {
			t.Fatalf("run %s: %+v", r.State, r.Jobs)
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Fatalf("cancel took %v", d)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatal("the cancelled step ran to its end")
		}
	})
}

// TestWorkflowTwoEngines: two engines, each on its own store of one database, share
// the job runs of a run and never start a step twice.
func TestWorkflowTwoEngines(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *sqlstore.Store) {
		s1, s2 := open(), open()
		w := trigger(t, s1, "matrix", strings.Replace(matrix, "echo second", "sleep 0.5", 1))
		startEngine(t, s1, "e1", 2)
		startEngine(t, s2, "e2", 2)
		r := waitRun(t, s1, w, "finished", finished)
		if r.State != engine.StateSucceeded || len(r.Jobs) != 4 {
			t.Fatalf("run %s with %d jobs", r.State, len(r.Jobs))
		}
		owners := map[string]int{}
		for _, j := range r.Jobs {
			owners[j.Owner]++
			for _, st := range j.Steps {
				if st.Starts != 1 {
					t.Errorf("%s step %d started %d times", j.Display, st.Index, st.Starts)
				}
			}
		}
		if len(owners) != 2 {
			t.Errorf("job runs by owner %v: both engines should have run some", owners)
		}
	})
}

// TestWorkflowEngineStopsMidStep: an engine stopping mid-step leaves the job run to
// the next engine once its lease runs out; that engine's executor does not know the
// step (processes die with their engine), so it fails the step rather than start it
// a second time.
func TestWorkflowEngineStopsMidStep(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *sqlstore.Store) {
		s := open()
		w := trigger(t, s, "stop", `name: stop
on:
  push:
    repositories: [team/app]
jobs:
  slow:
    image: alpine
    steps:
      - run: echo started; sleep 60
`)
		x, err := local.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		e1, err := engine.New(engine.Options{Store: s, Executor: x, MayPull: mayPull, ID: "e1", Interval: 50 * time.Millisecond,
			Lease: 2 * time.Second, Renew: 200 * time.Millisecond, StopGrace: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = e1.Run(ctx)
		}()
		waitRun(t, s, w, "running its step", func(r engine.Run) bool {
			return len(r.Jobs) > 0 && r.Jobs[0].Steps[0].State == engine.StateRunning
		})
		stop()
		<-done
		startEngine(t, s, "e2", 4)
		r := waitRun(t, s, w, "finished", finished)
		j := r.Jobs[0]
		if r.State != engine.StateFailed || j.Owner != "e2" || j.Steps[0].Starts != 1 || !strings.Contains(j.Error, "no longer knows it") {
			t.Fatalf("run %s, job %+v", r.State, j)
		}
	})
}

// TestWorkflowManualRun: a manual run gets its inputs (and the defaults of those not
// given) as inputs.*.
func TestWorkflowManualRun(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *sqlstore.Store) {
		s := open()
		w, err := s.ApplyWorkflow(t.Context(), "team", "manual", []byte(`name: manual
on:
  manual:
    inputs:
      target:
        type: string
        required: true
      debug:
        type: boolean
        default: true
jobs:
  show:
    image: alpine
    outputs: [said]
    env:
      SAID: "${{ inputs.target }}/${{ inputs.debug }}"
    steps:
      - run: echo "said=$SAID" >> "$HUBCTL_OUTPUT"
`), 1, "admin")
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []map[string]any{{}, {"target": 1}, {"target": "x", "debug": "yes"}, {"target": "x", "other": "y"}} {
			if _, err := engine.PlanManual(w, "manual-0", bad, "alice"); !errors.Is(err, engine.ErrInvalid) {
				t.Errorf("inputs %v: %v", bad, err)
			}
		}
		pr, err := engine.PlanManual(w, "manual-1", map[string]any{"target": "prod"}, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateWorkflowRun(t.Context(), w.ID, pr); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateWorkflowRun(t.Context(), w.ID, pr); err == nil {
			t.Fatal("a second run for one event id was created")
		}
		startEngine(t, s, "e1", 4)
		r := waitRun(t, s, w, "finished", finished)
		if r.State != engine.StateSucceeded || r.Trigger != "manual" || r.Jobs[0].Outputs["said"] != "prod/true" {
			t.Fatalf("run %s, jobs %+v", r.State, r.Jobs)
		}
	})
}

// TestWorkflowRerunFailed: rerunning the failed part of a run runs again the jobs that
// did not succeed, and only those; a run still going cannot be rerun.
func TestWorkflowRerunFailed(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *sqlstore.Store) {
		s := open()
		flag := filepath.Join(t.TempDir(), "fixed")
		w := trigger(t, s, "rerun", fmt.Sprintf(`name: rerun
on:
  push:
    repositories: [team/app]
jobs:
  fine:
    image: alpine
    steps:
      - run: "true"
  flaky:
    image: alpine
    env:
      F: %q
    steps:
      - run: test -f "$F"
  after:
    needs: [flaky, fine]
    image: alpine
    steps:
      - run: "true"
`, flag))
		startEngine(t, s, "e1", 4)
		r := waitRun(t, s, w, "finished", finished)
		if j := jobsByName(r); r.State != engine.StateFailed || j["after"].State != engine.StateSkipped {
			t.Fatalf("first attempt: %s, %+v", r.State, r.Jobs)
		}
		if err := os.WriteFile(flag, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := s.RerunWorkflowRun(t.Context(), r.ID, true); err != nil {
			t.Fatal(err)
		}
		if err := s.RerunWorkflowRun(t.Context(), r.ID, true); !errors.Is(err, engine.ErrInvalid) {
			t.Fatalf("rerun of a run going on: %v", err)
		}
		r = waitRun(t, s, w, "finished again", func(r engine.Run) bool { return r.Attempt == 2 && finished(r) })
		j := jobsByName(r)
		if r.State != engine.StateSucceeded || j["flaky"].Steps[0].Starts != 2 || j["fine"].Steps[0].Starts != 1 ||
			j["after"].Steps[0].Starts != 1 || j["flaky"].Attempt != 2 {
			t.Fatalf("rerun: %s, %+v", r.State, r.Jobs)
		}
	})
}

// TestWorkflowApplierMayNotPull: a push starts no run of a workflow whose applier may
// not pull the pushed repository (checked at dispatch, as the account is now).
func TestWorkflowApplierMayNotPull(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *sqlstore.Store) {
		s := open()
		w, err := s.ApplyWorkflow(t.Context(), "team", "dag", []byte(dag), 2, "mallory")
		if err != nil {
			t.Fatal(err)
		}
		allowed := trigger(t, s, "other", matrix) // applied by account 1: its run shows the push was dispatched
		startEngine(t, s, "e1", 4)
		waitRun(t, s, allowed, "finished", finished)
		if runs, err := s.ListWorkflowRuns(t.Context(), w.ID, 0); err != nil || len(runs) != 0 {
			t.Fatalf("runs of a workflow whose applier may not pull: %+v, %v", runs, err)
		}
	})
}
