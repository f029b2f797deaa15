package server

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/config"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/workflow/executor/docker"
	"github.com/hubctl/hubctl/internal/workflow/executor/kube"
)

// TestServeWorkflowsWithoutDocker: with workflows.executor docker and no Docker engine
// answering, serve starts anyway, warns once, and the workflow API keeps workflows and
// queues their runs.
func TestServeWorkflowsWithoutDocker(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+t.TempDir()+"/no-docker.sock")
	old := DockerExecutor
	DockerExecutor = func(bool) (WorkflowExecutor, error) { return docker.New() }
	t.Cleanup(func() { DockerExecutor = old })
	r := start(t, map[string]string{"auth.mode": "token", "workflows.executor": "docker", "workflows.interval": "50ms"})
	base := "http://" + r.addr
	call := func(method, path, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.SetBasicAuth(AdminUser, testAdminPassword)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	src := "name: hello\non:\n  manual: {}\njobs:\n  a:\n    image: busybox\n    steps:\n      - run: echo hi\n"
	if code, b := call("PUT", "/api/v1/workflows/"+AdminUser+"/hello", src); code != http.StatusOK {
		t.Fatalf("apply: %d %s", code, b)
	}
	code, b := call("POST", "/api/v1/workflows/"+AdminUser+"/hello/runs", `{}`)
	var run hubtypes.WorkflowRun
	if code != http.StatusCreated || json.Unmarshal(b, &run) != nil || run.State != "queued" {
		t.Fatalf("run: %d %s", code, b)
	}
	warned := 0
	for _, l := range logLines(t, r.log) {
		if msg, _ := l["msg"].(string); strings.Contains(msg, "Docker engine does not answer") {
			warned++
		}
	}
	if warned != 1 {
		t.Fatalf("%d warnings about Docker, want 1; log:\n%s", warned, r.log.String())
	}
}

// TestServeWorkflowsWithoutKubernetes: with workflows.executor kubernetes and a
// kubeconfig whose API server does not answer, serve starts anyway and warns once.
func TestServeWorkflowsWithoutKubernetes(t *testing.T) {
	kc := t.TempDir() + "/kubeconfig"
	conf := "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\nusers:\n- name: u\n  user:\n    token: t\ncurrent-context: c\n"
	if err := os.WriteFile(kc, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	old := KubeExecutor
	KubeExecutor = func(cfg config.WorkflowsKube) (WorkflowExecutor, error) {
		rc, err := kube.RESTConfig(cfg.Kubeconfig)
		if err != nil {
			return nil, err
		}
		return kube.NewFromConfig(rc, cfg.Namespace)
	}
	t.Cleanup(func() { KubeExecutor = old })
	r := start(t, map[string]string{"auth.mode": "token", "workflows.executor": "kubernetes", "workflows.kube.kubeconfig": kc, "workflows.interval": "50ms"})
	// The engine is set up as serve starts, beside the listener: wait for its line.
	warned := 0
	for deadline := time.Now().Add(20 * time.Second); warned == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, l := range logLines(t, r.log) {
			if msg, _ := l["msg"].(string); strings.Contains(msg, "Kubernetes API server does not answer") {
				warned++
			}
		}
	}
	if warned != 1 {
		t.Fatalf("%d warnings about Kubernetes, want 1; log:\n%s", warned, r.log.String())
	}
}
