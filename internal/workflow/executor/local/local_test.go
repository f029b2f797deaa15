package local

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/workflow/executor"
)

func setup(t *testing.T) (*Executor, *executor.JobSpec) {
	t.Helper()
	x, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	job := &executor.JobSpec{RunID: "1", JobID: "7", StopGrace: 500 * time.Millisecond,
		Env: []executor.EnvVar{{Name: "GREETING", Value: "hello"}}}
	if err := x.SetupWorkflow(t.Context(), job); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.DestroyWorkflow(context.Background(), job) })
	return x, job
}

func run(t *testing.T, x *Executor, job *executor.JobSpec, st *executor.StepSpec) (*executor.StepState, string) {
	t.Helper()
	if err := x.StartStep(t.Context(), job, st); err != nil {
		t.Fatal(err)
	}
	rc, err := x.TailStep(t.Context(), job, st, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	log, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	state, err := x.WaitStep(t.Context(), job, st)
	if err != nil {
		t.Fatal(err)
	}
	return state, string(log)
}

// TestLocalStep: a step sees the job's environment and the workspace, writes outputs
// and a log, and its exit code is reported; starting it again finds it.
func TestLocalStep(t *testing.T) {
	x, job := setup(t)
	st := &executor.StepSpec{Index: 0, Run: `echo "$GREETING from $(pwd)"; echo "k=v" >> "$HUBCTL_OUTPUT"; echo err >&2; touch shared`}
	state, log := run(t, x, job, st)
	if state.Running || state.ExitCode != 0 || string(state.Output) != "k=v\n" {
		t.Fatalf("state %+v", state)
	}
	if !strings.Contains(log, "hello from "+job.WorkspaceDir) || !strings.Contains(log, "err") {
		t.Fatalf("log %q", log)
	}
	if err := x.StartStep(t.Context(), job, st); err != nil {
		t.Fatalf("second start: %v", err)
	}
	found, err := x.Find(t.Context(), job)
	if err != nil || len(found) != 1 || found[0].Running {
		t.Fatalf("find %v, %v", found, err)
	}
	// The next step shares the workspace; -e stops a script at its first failure.
	state, log = run(t, x, job, &executor.StepSpec{Index: 1, Run: "test -f shared; false; echo not-reached"})
	if state.ExitCode != 1 || strings.Contains(log, "not-reached") {
		t.Fatalf("state %+v, log %q", state, log)
	}
	// TailStep resumes at an offset.
	rc, err := x.TailStep(t.Context(), job, st, 6)
	if err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(rc)
	rc.Close()
	if !strings.HasPrefix(string(rest), "from ") {
		t.Fatalf("from offset 6: %q", rest)
	}
}

// TestLocalDestroy: destroying a running step stops its whole process group, and the
// job's directory goes with the job.
func TestLocalDestroy(t *testing.T) {
	x, job := setup(t)
	st := &executor.StepSpec{Index: 0, Run: "sleep 60 & sleep 60"}
	if err := x.StartStep(t.Context(), job, st); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := x.DestroyStep(t.Context(), job, st); err != nil {
		t.Fatal(err)
	}
	state, err := x.WaitStep(t.Context(), job, st)
	if err != nil || state.Running || state.ExitCode == 0 || time.Since(start) > 5*time.Second {
		t.Fatalf("state %+v, %v after %v", state, err, time.Since(start))
	}
	if err := x.DestroyWorkflow(t.Context(), job); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(job.WorkspaceDir)); !os.IsNotExist(err) {
		t.Fatalf("job directory left: %v", err)
	}
	if err := x.DestroyWorkflow(t.Context(), job); err != nil {
		t.Fatalf("second destroy: %v", err)
	}
}

// TestLocalRefuses: ids that would name another directory, workdirs outside the
// workspace and steps without a script are refused.
func TestLocalRefuses(t *testing.T) {
	x, job := setup(t)
	if err := x.SetupWorkflow(t.Context(), &executor.JobSpec{JobID: "../x"}); err == nil {
		t.Error("job id ../x accepted")
	}
	for _, wd := range []string{"../..", "/etc"} {
		if err := x.StartStep(t.Context(), job, &executor.StepSpec{Index: 5, Run: "true", Workdir: wd}); err == nil {
			t.Errorf("workdir %q accepted", wd)
		}
	}
	if err := x.StartStep(t.Context(), job, &executor.StepSpec{Index: 6, Args: []string{"x"}}); err == nil {
		t.Error("a step without run: accepted")
	}
}
