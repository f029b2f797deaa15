package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Settings of TestWorkflowReattachAfterKill9.
const (
	// killSlowLines is how many lines the first step prints, one a second: it must
	// still run when the restarted hub re-attaches (at once; at worst 30 s, the
	// lease, after the kill).
	killSlowLines = 45
	// killQuickLines is how many the second prints, one a second: it ends while the
	// hub is down, before the restarted one re-attaches.
	killQuickLines = 4
)

// TestWorkflowReattachAfterKill9 is issue 19's re-attach test: a workflow whose job
// prints numbered lines slowly runs on the Docker executor of a real `hubctl serve`;
// the test kill -9s the hub in the middle of the first step (which still runs when the
// restarted hub re-attaches) and again in the middle of the second (which ends while
// the hub is down), restarting it on the same data each time. The restarted hub
// re-attaches before the killed one's lease would have expired (its engine claims
// under the name kept in the data directory). The run succeeds, every
// step was started exactly once (workflow_steps.starts), and the stored log holds
// every line exactly once, in order.
func TestWorkflowReattachAfterKill9(t *testing.T) {
	env := dockerWorkflowEnv
	name, file := dockerWorkflow(t, "kill9", func(name, img string) string {
		return fmt.Sprintf(`name: %s
on: manual
jobs:
  slow:
    image: %s
    steps:
      - name: slow
        run: |
          i=1
          while [ $i -le %d ]; do echo "slow $i"; i=$((i+1)); sleep 1; done
      - name: quick
        run: |
          i=1
          while [ $i -le %d ]; do echo "quick $i"; i=$((i+1)); sleep 1; done
      - name: last
        run: echo last
`, name, img, killSlowLines, killQuickLines)
	})
	s := startServerEnv(t, t.TempDir(), env)
	cli := loginCLI(t, s)
	cli.run("org", "create", "wfk")
	cli.run("workflow", "apply", file, "--namespace", "wfk")
	runID, err := strconv.ParseInt(strings.TrimSpace(cli.run("workflow", "run", "wfk/"+name)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}

	// Kill in the middle of the first step, once it has printed a few lines.
	waitKill(t, s, "the first step's third line", 2*time.Minute, func() bool {
		return strings.Contains(storedLog(t, s.DataDir, runID), "slow 3\n")
	})
	s.Kill()
	// The lease the killed hub held, and its last log chunk: whatever comes after is
	// the restarted hub's.
	var leaseUntil, lastSeq int64
	if err := openDB(t, s.DataDir).QueryRow(`SELECT j.lease_until, COALESCE(MAX(l.seq), 0) FROM workflow_jobs j
		LEFT JOIN workflow_logs l ON l.job_id = j.id WHERE j.run_id = ? GROUP BY j.id`, runID).Scan(&leaseUntil, &lastSeq); err != nil {
		t.Fatal(err)
	}
	s = startServerEnv(t, s.DataDir, env)
	// The restarted hub (same data directory, same Docker engine) takes its job back
	// at once: the first log chunk it stores is written, by the database's clock,
	// before the killed hub's lease would have run out.
	var firstAt int64
	waitKill(t, s, "the restarted hub storing the step's log", 2*time.Minute, func() bool {
		err := openDB(t, s.DataDir).QueryRow(`SELECT l.at FROM workflow_logs l JOIN workflow_jobs j ON j.id = l.job_id
			WHERE j.run_id = ? AND l.seq > ? ORDER BY l.seq LIMIT 1`, runID, lastSeq).Scan(&firstAt)
		return err == nil
	})
	if firstAt >= leaseUntil {
		t.Fatalf("re-attached %v after the lease expiry, not before it", time.Duration(firstAt-leaseUntil))
	}
	t.Logf("re-attached %v before the lease expiry", time.Duration(leaseUntil-firstAt))

	// Kill again in the middle of the second step: it ends while the hub is down.
	waitKill(t, s, "the second step running", 3*time.Minute, func() bool {
		return stepState(t, s.DataDir, runID, 1) == "running" && strings.Contains(storedLog(t, s.DataDir, runID), "quick 1\n")
	})
	s.Kill()
	time.Sleep(killQuickLines * time.Second)
	s = startServerEnv(t, s.DataDir, env)

	waitRunFinished(t, s, runID, 3*time.Minute)
	var state, jobState, jobErr string
	db := openDB(t, s.DataDir)
	if err := db.QueryRow(`SELECT r.state, j.state, j.error FROM workflow_runs r JOIN workflow_jobs j ON j.run_id = r.id
		WHERE r.id = ?`, runID).Scan(&state, &jobState, &jobErr); err != nil {
		t.Fatal(err)
	}
	if state != "succeeded" {
		s.dumpLog(80)
		t.Fatalf("run %s, job %s: %s\nlog:\n%s", state, jobState, jobErr, storedLog(t, s.DataDir, runID))
	}
	rows, err := db.Query(`SELECT s.idx, s.starts, s.state FROM workflow_steps s JOIN workflow_jobs j ON j.id = s.job_id
		WHERE j.run_id = ? ORDER BY s.idx`, runID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var idx, starts int
		var st string
		if err := rows.Scan(&idx, &starts, &st); err != nil {
			t.Fatal(err)
		}
		n++
		if starts != 1 || st != "succeeded" {
			t.Errorf("step %d: started %d times, %s", idx+1, starts, st)
		}
	}
	if n != 3 {
		t.Fatalf("%d steps", n)
	}
	var want strings.Builder
	for i := 1; i <= killSlowLines; i++ {
		fmt.Fprintf(&want, "slow %d\n", i)
	}
	for i := 1; i <= killQuickLines; i++ {
		fmt.Fprintf(&want, "quick %d\n", i)
	}
	want.WriteString("last\n")
	if got := storedLog(t, s.DataDir, runID); got != want.String() {
		t.Fatalf("stored log is not every line once, in order:\n%s", got)
	}
	// The run's containers are gone with it.
	if out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label=hubctl.workflow="+name).Output(); len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("containers left: %s", out)
	}
}

// dockerWorkflowEnv is the environment of a hub whose workflows run on the Docker
// executor, looking for work every 200 ms.
var dockerWorkflowEnv = []string{"HUBCTL_WORKFLOWS_EXECUTOR=docker", "HUBCTL_WORKFLOWS_INTERVAL=200ms"}

// dockerWorkflow is the setup of the tests that run a workflow on the Docker executor
// of real hubs: it needs the engine and the slow-printing step image, names the
// workflow uniquely (prefix-<random>, as the executor labels what it makes), removes
// what its jobs leave on the engine when the test ends, and writes src(name, image)
// to a file to apply.
func dockerWorkflow(t *testing.T, prefix string, src func(name, img string) string) (name, file string) {
	t.Helper()
	requireDocker(t)
	img := killImage(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name = prefix + "-" + hex.EncodeToString(b)
	t.Cleanup(func() { removeJobObjects(name) })
	file = filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(file, []byte(src(name, img)), 0o600); err != nil {
		t.Fatal(err)
	}
	return name, file
}

// waitRunFinished waits until run runID of hub s is neither queued nor running.
func waitRunFinished(t *testing.T, s *server, runID int64, limit time.Duration) {
	t.Helper()
	waitKill(t, s, fmt.Sprintf("run %d finished", runID), limit, func() bool {
		var state string
		if err := openDB(t, s.DataDir).QueryRow(`SELECT state FROM workflow_runs WHERE id = ?`, runID).Scan(&state); err != nil {
			t.Fatal(err)
		}
		return state != "queued" && state != "running"
	})
}

// waitKill polls cond every 200 ms until it holds, failing after limit.
func waitKill(t *testing.T, s *server, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			s.dumpLog(80)
			t.Fatalf("waited %v for %s", limit, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// storedLog is the log of run id's job runs as stored, chunks in order.
func storedLog(t *testing.T, dataDir string, runID int64) string {
	t.Helper()
	rows, err := openDB(t, dataDir).Query(`SELECT l.chunk FROM workflow_logs l JOIN workflow_jobs j ON j.id = l.job_id
		WHERE j.run_id = ? ORDER BY l.job_id, l.seq`, runID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var c []byte
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		b.Write(c)
	}
	return b.String()
}

// stepState is the state of step idx of run id's (only) job run.
func stepState(t *testing.T, dataDir string, runID int64, idx int) string {
	t.Helper()
	var st string
	if err := openDB(t, dataDir).QueryRow(`SELECT s.state FROM workflow_steps s JOIN workflow_jobs j ON j.id = s.job_id
		WHERE j.run_id = ? AND s.idx = ?`, runID, idx).Scan(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// killImage builds busybox FROM scratch into the Docker engine under a name of its
// own (removed at cleanup): the job's image, which the engine has, so nothing is pulled.
func killImage(t *testing.T) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		skipOrFatal(t, "busybox not found (apt-get install -y busybox-static): %v", err)
	}
	bin, err := os.ReadFile(bb)
	if err != nil || !strings.HasPrefix(string(bin[:4]), "\x7fELF") {
		skipOrFatal(t, "%s is not a static ELF binary: %v", bb, err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "busybox"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	dockerfile := "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	ref := "hubctl-e2e/kill9-busybox:" + hex.EncodeToString(b)
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", ref).Run() })
	run(t, dir, append(os.Environ(), "DOCKER_BUILDKIT=0"), "docker", "build", "-q", "-t", ref, ".")
	return ref
}

// removeJobObjects removes what the Docker executor made for workflow name's jobs,
// should a failed test leave any.
func removeJobObjects(name string) {
	filter := "label=hubctl.workflow=" + name
	if out, err := exec.Command("docker", "ps", "-aq", "--filter", filter).Output(); err == nil {
		for _, id := range strings.Fields(string(out)) {
			_ = exec.Command("docker", "rm", "-f", id).Run()
		}
	}
	for _, kind := range []string{"volume", "network"} {
		if out, err := exec.Command("docker", kind, "ls", "-q", "--filter", filter).Output(); err == nil {
			for _, id := range strings.Fields(string(out)) {
				_ = exec.Command("docker", kind, "rm", id).Run()
			}
		}
	}
}
