package e2e

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/hubtypes"
)

// TestWorkflowPushRunsDocker: a real `hubctl serve` with workflows.executor docker
// (and workflows.docker.network host, so the step reaches the hub on 127.0.0.1 at
// $HUBCTL_HUB) runs a workflow `on: push` when an image is pushed: its job runs in the pushed image
// itself (busybox FROM scratch), which the Docker engine pulls from the hub on
// 127.0.0.1 by digest, and writes the pushed digest to $HUBCTL_OUTPUT and its log;
// `hubctl workflow runs` and `logs` show both. The repository is private: the engine
// pulls the job's image with the job's own $HUBCTL_TOKEN, a machine token granting
// pull on the pushed repository, minted for the account that applied the workflow.
func TestWorkflowPushRunsDocker(t *testing.T) {
	requireDocker(t)
	bb, err := exec.LookPath("busybox")
	if err != nil {
		skipOrFatal(t, "busybox not found (apt-get install -y busybox-static): %v", err)
	}
	bin, err := os.ReadFile(bb)
	if err != nil || !strings.HasPrefix(string(bin[:4]), "\x7fELF") {
		skipOrFatal(t, "%s is not a static ELF binary: %v", bb, err)
	}
	s := startServerEnv(t, t.TempDir(), []string{"HUBCTL_WORKFLOWS_EXECUTOR=docker", "HUBCTL_WORKFLOWS_INTERVAL=200ms",
		"HUBCTL_WORKFLOWS_DOCKER_NETWORK=host"})
	cli := loginCLI(t, s)
	cli.run("org", "create", "wf") // private: only the job's token pulls its image

	dir := t.TempDir()
	wf := filepath.Join(dir, "echo.yaml")
	src := `name: echo-digest
on:
  push:
    repositories: [wf/bb]
jobs:
  echo:
    image: "` + s.Addr + `/wf/bb@${{ event.digest }}"
    outputs: [digest]
    steps:
      - run: |
          echo "pushed $HUBCTL_DIGEST to $HUBCTL_REPOSITORY (hub $HUBCTL_HUB)"
          echo "digest=$HUBCTL_DIGEST" >> "$HUBCTL_OUTPUT"
          wget -q -O- "$HUBCTL_HUB/readyz"
`
	if err := os.WriteFile(wf, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cli.run("workflow", "apply", wf, "--namespace", "wf")

	// Build busybox FROM scratch with the classic builder and push it with docker.
	ctxDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(ctxDir, "busybox"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	dockerfile := "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := s.Addr + "/wf/bb:1"
	dockerCfg := t.TempDir()
	dockerEnv := append(os.Environ(), "DOCKER_BUILDKIT=0", "DOCKER_CONFIG="+dockerCfg)
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", ref).Run() })
	run(t, ctxDir, dockerEnv, "docker", "build", "-q", "-t", ref, ".")
	runStdin(t, ctxDir, dockerEnv, adminPassword+"\n", "docker", "login", s.Addr, "-u", "admin", "--password-stdin")
	run(t, ctxDir, dockerEnv, "docker", "push", ref)
	// The engine must pull it from the hub, not find it in its cache.
	run(t, ctxDir, dockerEnv, "docker", "rmi", "-f", ref)

	pull := mustToken(t, s, "admin", adminPassword, "repository:wf/bb:pull")
	resp, body := do(t, "HEAD", s.URL("/v2/wf/bb/manifests/1"), nil, map[string]string{"Authorization": "Bearer " + pull,
		"Accept": "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"})
	digest := resp.Header.Get("Docker-Content-Digest")
	if !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("HEAD manifest: %s %s", resp.Status, body)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", s.Addr+"/wf/bb@"+digest).Run() })

	var runs []hubtypes.WorkflowRun
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if err := json.Unmarshal([]byte(cli.run("workflow", "runs", "wf/echo-digest", "-o", "json")), &runs); err != nil {
			t.Fatal(err)
		}
		if len(runs) > 0 && (runs[0].State == "succeeded" || runs[0].State == "failed" || runs[0].State == "cancelled" || runs[0].State == "timed_out") {
			break
		}
		if time.Now().After(deadline) {
			s.dumpLog(60)
			t.Fatalf("no finished run after 2 minutes: %+v", runs)
		}
		time.Sleep(300 * time.Millisecond)
	}
	id := strconv.FormatInt(runs[0].ID, 10)
	logs := cli.run("workflow", "logs", id)
	if runs[0].State != "succeeded" || runs[0].Trigger != "push" {
		s.dumpLog(60)
		t.Fatalf("run %+v; logs:\n%s", runs[0], logs)
	}
	if !strings.Contains(logs, "pushed "+digest+" to wf/bb (hub http://"+s.Addr+")") || !strings.Contains(logs, "ready") {
		t.Fatalf("logs do not hold the digest %s and the hub:\n%s", digest, logs)
	}
	var full hubtypes.WorkflowRun
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+adminPassword))
	resp, body = do(t, "GET", s.URL("/api/v1/runs/"+id), nil, map[string]string{"Authorization": basic})
	if err := json.Unmarshal(body, &full); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET run: %s %s", resp.Status, body)
	}
	if len(full.Jobs) != 1 || full.Jobs[0].Outputs["digest"] != digest {
		t.Fatalf("outputs: %+v", full.Jobs)
	}
}
