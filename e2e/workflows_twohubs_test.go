package e2e

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestWorkflowTwoHubsOneDockerEngine: two hubs (two data directories) sharing one
// Docker engine each run a workflow of the same namespace and name at once, so both
// number their first job run 1: neither meets the other's containers. Each run
// succeeds with its own hub's log only, each step started once, and what each made
// carries its own hub's instance label, gone at the end.
func TestWorkflowTwoHubsOneDockerEngine(t *testing.T) {
	env := dockerWorkflowEnv
	name, file := dockerWorkflow(t, "twohubs", func(name, img string) string {
		return fmt.Sprintf(`name: %s
on: manual
jobs:
  who:
    image: %s
    steps:
      - run: |
          i=1
          while [ $i -le 6 ]; do echo "hub $HUBCTL_HUB line $i"; i=$((i+1)); sleep 1; done
`, name, img)
	})
	type hub struct {
		s     *server
		cli   *hubCLI
		runID int64
	}
	hubs := make([]*hub, 2)
	for i := range hubs {
		s := startServerEnv(t, t.TempDir(), env)
		cli := loginCLI(t, s)
		cli.run("org", "create", "wft")
		cli.run("workflow", "apply", file, "--namespace", "wft")
		hubs[i] = &hub{s: s, cli: cli}
	}
	var wg sync.WaitGroup
	for _, h := range hubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, errOut, err := runErr(t, "", h.cli.env, hubctlBin, "workflow", "run", "wft/"+name, "--registry", h.cli.registry)
			if err != nil {
				t.Errorf("workflow run: %v: %s", err, errOut)
				return
			}
			h.runID, _ = strconv.ParseInt(strings.TrimSpace(out), 10, 64)
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// Both run at once: each hub's step container is up while the other's is.
	labels := map[string]bool{}
	waitKill(t, hubs[0].s, "both steps running at once", 2*time.Minute, func() bool {
		out, err := exec.Command("docker", "ps", "--filter", "label=hubctl.workflow="+name, "--format", `{{.Label "hubctl.hub"}} {{.Names}}`).Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if f := strings.Fields(l); len(f) == 2 {
				labels[f[0]] = true
			}
		}
		return len(labels) == 2
	})
	for _, h := range hubs {
		waitRunFinished(t, h.s, h.runID, 2*time.Minute)
	}
	for i, h := range hubs {
		other := hubs[1-i]
		var state string
		var starts, jobID int
		if err := openDB(t, h.s.DataDir).QueryRow(`SELECT r.state, j.id, s.starts FROM workflow_runs r JOIN workflow_jobs j ON j.run_id = r.id
			JOIN workflow_steps s ON s.job_id = j.id WHERE r.id = ?`, h.runID).Scan(&state, &jobID, &starts); err != nil {
			t.Fatal(err)
		}
		log := storedLog(t, h.s.DataDir, h.runID)
		if state != "succeeded" || starts != 1 || jobID != 1 {
			h.s.dumpLog(40)
			t.Fatalf("hub %d: run %s, job run %d, step started %d times\n%s", i+1, state, jobID, starts, log)
		}
		var want strings.Builder
		for n := 1; n <= 6; n++ {
			fmt.Fprintf(&want, "hub http://%s line %d\n", h.s.Addr, n)
		}
		if log != want.String() || strings.Contains(log, other.s.Addr) {
			t.Fatalf("hub %d's log is not its own step's:\n%s", i+1, log)
		}
	}
	if out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label=hubctl.workflow="+name).Output(); len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("containers left: %s", out)
	}
}
