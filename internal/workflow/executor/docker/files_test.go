package docker

import (
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/workflow/executor"
)

// TestWriteFileReachesRunningAndLaterSteps: a file written before the first step is
// in its workspace; one rewritten while a step runs is read by that step (the engine's
// token renewal) and by the next step; bad names and oversized files are refused.
func TestWriteFileReachesRunningAndLaterSteps(t *testing.T) {
	e, image := newEngine(t)
	job := newJob(t, e, image)
	ctx := ctxT(t)
	if err := e.SetupWorkflow(ctx, job); err != nil {
		t.Fatal(err)
	}
	path := e.FilePath(job, "token")
	if path != "/workspace/.hubctl/token" {
		t.Fatalf("FilePath %q", path)
	}
	if err := e.WriteFile(ctx, job, "token", []byte("first")); err != nil {
		t.Fatal(err)
	}
	job.Env = append(job.Env, executor.EnvVar{Name: "HUBCTL_TOKEN_FILE", Value: path})
	// The step prints the file until it changes (at most 20 s), then once more.
	s0 := &executor.StepSpec{Index: 0, Name: "long", Run: `
first=$(cat "$HUBCTL_TOKEN_FILE"); echo "start $first"
i=0
while [ "$(cat "$HUBCTL_TOKEN_FILE")" = "$first" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
echo "now $(cat "$HUBCTL_TOKEN_FILE")"
ls -l "$HUBCTL_TOKEN_FILE"`}
	if err := e.StartStep(ctx, job, s0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := e.WriteFile(ctx, job, "token", []byte("second")); err != nil {
		t.Fatal(err)
	}
	st, err := e.WaitStep(ctx, job, s0)
	if err != nil || st.ExitCode != 0 {
		t.Fatalf("step 0: %+v %v", st, err)
	}
	log := logsOf(t, e, job, s0, 0)
	if !strings.Contains(log, "start first\n") || !strings.Contains(log, "now second\n") || !strings.Contains(log, "-rw-r--r--") {
		t.Fatalf("step 0 log:\n%s", log)
	}
	s1 := &executor.StepSpec{Index: 1, Name: "next", Run: `echo "next $(cat "$HUBCTL_TOKEN_FILE")"`}
	runStep(t, e, job, s1)
	if log := logsOf(t, e, job, s1, 0); !strings.Contains(log, "next second\n") {
		t.Fatalf("step 1 log:\n%s", log)
	}
	for _, name := range []string{"../x", "a/b", ".token", "Token", ""} {
		if err := e.WriteFile(ctx, job, name, []byte("x")); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	if err := e.WriteFile(ctx, job, "token", make([]byte, executor.MaxFile+1)); err == nil {
		t.Error("an oversized file accepted")
	}
}
