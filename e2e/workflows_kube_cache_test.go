package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hubctl/hubctl/internal/kubetest"
)

// TestWorkflowKubeCacheJobShape: a real `hubctl serve` whose executor is kubernetes
// refuses at apply a workflow with `cache:` while it has no agent image
// (workflows.kube.agent_image), and, restarted with one, applies it and runs the job
// as a Job the real API server admits: an emptyDir "cache" mounted at the cache path
// in every step and in the agent's `restore --cache` and `save --cache` containers.
// kwok runs no container, so no file moves here and the save "exits 0" as kwok
// reports every container: the cache's round trip through the hub is
// TestWorkflowAgentCache (commands), the real agent against a real hub.
func TestWorkflowKubeCacheJobShape(t *testing.T) {
	c := kubetest.Start(t)
	const kns = "hubctl-wfcache"
	c.Namespace(t, kns)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	env := []string{"HUBCTL_WORKFLOWS_EXECUTOR=kubernetes", "HUBCTL_WORKFLOWS_INTERVAL=200ms",
		"HUBCTL_WORKFLOWS_KUBE_NAMESPACE=" + kns, "HUBCTL_WORKFLOWS_KUBE_KUBECONFIG=" + c.Kubeconfig}
	s := startServerEnv(t, t.TempDir(), env)
	cli := loginCLI(t, s)
	cli.run("org", "create", "wfcache")
	// The agent signs in with the job's token, which a run gets for its permissions
	// (a manual run has no triggering repository).
	pushImageAs(t, s, mustToken(t, s, "admin", adminPassword, "repository:wfcache/tools:pull,push"), "wfcache/tools", "1", newImage(t, "amd64"))
	src := fmt.Sprintf(`name: cached
on: manual
permissions:
  pull: [wfcache/tools]
jobs:
  build:
    image: %s/wfcache/tools:1
    cache:
      key: gomod-${{ run.workflow }}
      path: /root/go/pkg/mod
    steps:
      - run: go build ./...
      - run: go test ./...
`, s.Addr)
	file := filepath.Join(t.TempDir(), "cached.yaml")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, err := runErr(t, "", cli.env, hubctlBin, "workflow", "apply", file, "--namespace", "wfcache", "--registry", cli.registry)
	if err == nil || !strings.Contains(errOut, "agent_image") {
		t.Fatalf("apply without an agent image: %v: %s", err, errOut)
	}
	s.Stop()

	agent := s.Addr + "/hubctl/agent:1"
	s = startServerEnv(t, s.DataDir, append(env, "HUBCTL_WORKFLOWS_KUBE_AGENT_IMAGE="+agent))
	cli = loginCLI(t, s) // the restarted hub listens on another port
	cli.run("workflow", "apply", file, "--namespace", "wfcache")
	runID, err := strconv.ParseInt(strings.TrimSpace(cli.run("workflow", "run", "wfcache/cached")), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	var jobID int64
	var job *batchv1.Job
	waitKill(t, s, "the job's Job", 3*time.Minute, func() bool {
		if jobID == 0 {
			_ = openDB(t, s.DataDir).QueryRow(`SELECT id FROM workflow_jobs WHERE run_id = ? AND job_name = 'build'`, runID).Scan(&jobID)
			return false
		}
		j, err := c.Client.BatchV1().Jobs(kns).Get(ctx, "hubctl-"+strconv.FormatInt(jobID, 10), metav1.GetOptions{})
		if err == nil {
			job = j
		}
		return job != nil
	})
	pod := job.Spec.Template.Spec
	var names []string
	for _, ct := range append(pod.InitContainers, pod.Containers...) {
		names = append(names, ct.Name)
		var cache bool
		for _, m := range ct.VolumeMounts {
			cache = cache || m.Name == "cache" && m.MountPath == "/root/go/pkg/mod"
		}
		if !cache {
			t.Errorf("%s does not mount the cache: %+v", ct.Name, ct.VolumeMounts)
		}
		if strings.HasPrefix(ct.Name, "hubctl-") {
			cmd := strings.Join(ct.Command, " ")
			if ct.Image != agent || !strings.HasSuffix(cmd, "--cache /root/go/pkg/mod") || strings.Contains(cmd, "gomod") {
				t.Errorf("%s: image %s command %q", ct.Name, ct.Image, cmd)
			}
		}
	}
	if !slices.Equal(names, []string{"hubctl-restore", "step-0", "step-1", "hubctl-save"}) {
		t.Fatalf("containers %v", names)
	}
	var cacheVol bool
	for _, v := range pod.Volumes {
		cacheVol = cacheVol || v.Name == "cache" && v.EmptyDir != nil
	}
	if !cacheVol {
		t.Fatalf("volumes %+v", pod.Volumes)
	}
	waitKill(t, s, "the run finished", 4*time.Minute, func() bool {
		var state string
		if err := openDB(t, s.DataDir).QueryRow(`SELECT state FROM workflow_runs WHERE id = ?`, runID).Scan(&state); err != nil {
			t.Fatal(err)
		}
		return state != "queued" && state != "running"
	})
	var state, jobErr string
	if err := openDB(t, s.DataDir).QueryRow(`SELECT state, error FROM workflow_jobs WHERE id = ?`, jobID).Scan(&state, &jobErr); err != nil {
		t.Fatal(err)
	}
	if state != "succeeded" {
		s.dumpLog(60)
		t.Fatalf("job %s: %s", state, jobErr)
	}
}
