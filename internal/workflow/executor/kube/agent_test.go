package kube

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hubctl/hubctl/internal/kubetest"
	"github.com/hubctl/hubctl/internal/workflow/executor"
)

const agentImage = "hub.example:5000/hubctl/agent:1"

func agentJob() *executor.JobSpec {
	job := testJob()
	job.Env = append(job.Env, executor.EnvVar{Name: "HUBCTL_HUB", Value: "https://hub.example:5000"})
	job.Agent = &executor.AgentFiles{RunID: 7, JobID: 9042, Restore: true,
		Save: []executor.NamedPath{{Name: "dist", Path: "out/dist"}, {Name: "report", Path: "report.txt"}}}
	return job
}

func names(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

// TestAgentContainers: a job that moves artifacts gets an init container restoring
// the needed ones before the services and steps, and a last container saving its
// own after the last step (an init container then), both running /hubctl
// workflow-agent in the agent image on the workspace, with the hub's URL and the
// job's token from the env Secret (never in the pod spec).
func TestAgentContainers(t *testing.T) {
	e := newExec(t, newFake(t), WithAgentImage(agentImage))
	objs, err := e.build(agentJob())
	if err != nil {
		t.Fatal(err)
	}
	pod := objs.job.Spec.Template.Spec
	if got := names(pod.InitContainers); !slices.Equal(got, []string{"hubctl-restore", "svc-db", "step-0", "step-1"}) {
		t.Fatalf("init containers %v", got)
	}
	if got := names(pod.Containers); !slices.Equal(got, []string{"hubctl-save"}) {
		t.Fatalf("containers %v", got)
	}
	restore, save := pod.InitContainers[0], pod.Containers[0]
	if got := strings.Join(restore.Command, " "); got != "/hubctl workflow-agent restore --run 7 --job 9042 --workspace /workspace" {
		t.Errorf("restore command %q", got)
	}
	if got := strings.Join(save.Command, " "); got != "/hubctl workflow-agent save --run 7 --job 9042 --workspace /workspace --artifact dist=out/dist --artifact report=report.txt" {
		t.Errorf("save command %q", got)
	}
	for _, c := range []corev1.Container{restore, save} {
		if c.Image != agentImage || len(c.VolumeMounts) != 1 || c.VolumeMounts[0].Name != "workspace" || c.VolumeMounts[0].MountPath != "/workspace" {
			t.Errorf("%s: image %s mounts %+v", c.Name, c.Image, c.VolumeMounts)
		}
		var hub, tok bool
		for _, v := range c.Env {
			switch v.Name {
			case "HUBCTL_HUB":
				hub = v.Value == "https://hub.example:5000"
			case "HUBCTL_TOKEN":
				tok = v.Value == "" && v.ValueFrom != nil && v.ValueFrom.SecretKeyRef != nil && v.ValueFrom.SecretKeyRef.Name == "hubctl-42-env"
			default:
				t.Errorf("%s gets %s", c.Name, v.Name)
			}
		}
		if !hub || !tok {
			t.Errorf("%s env %+v", c.Name, c.Env)
		}
	}
	b, _ := json.Marshal(objs.job)
	if strings.Contains(string(b), tokenValue) {
		t.Fatal("the job token is in the Job")
	}

	// Restoring only: the last step stays the pod's container.
	job := agentJob()
	job.Agent.Save = nil
	objs, err = e.build(job)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(objs.job.Spec.Template.Spec.Containers); !slices.Equal(got, []string{"step-1"}) {
		t.Fatalf("restore only: containers %v", got)
	}
	// Nothing to move: no agent.
	job.Agent.Restore = false
	if objs, err = e.build(job); err != nil || objs.job.Spec.Template.Spec.InitContainers[0].Name != "svc-db" {
		t.Fatalf("nothing to move: %v", err)
	}

	// Without an agent image, or without the hub's URL, the job is refused.
	if _, err := newExec(t, newFake(t)).build(agentJob()); err == nil || !strings.Contains(err.Error(), "agent_image") {
		t.Fatalf("without an agent image: %v", err)
	}
	job = agentJob()
	job.Env = job.Env[:len(job.Env)-1]
	if _, err := e.build(job); err == nil || !strings.Contains(err.Error(), "HUBCTL_HUB") {
		t.Fatalf("without $HUBCTL_HUB: %v", err)
	}
}

// TestWaitSaved: WaitSaved waits for the save container, and reports its failure
// with what it said.
func TestWaitSaved(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs := newFake(t)
	e := newExec(t, cs, WithAgentImage(agentImage))
	job := agentJob()
	if err := e.StartStep(ctx, job, &job.Steps[0]); err != nil {
		t.Fatal(err)
	}
	inits := []corev1.ContainerStatus{terminated("hubctl-restore", 0, "Completed", ""), running("svc-db"),
		terminated("step-0", 0, "Completed", ""), terminated("step-1", 0, "Completed", "")}
	runPod(t, cs, "hubctl-42", corev1.PodRunning, inits, []corev1.ContainerStatus{running("hubctl-save")})
	done := make(chan error, 1)
	go func() { done <- e.WaitSaved(ctx, job) }()
	select {
	case err := <-done:
		t.Fatalf("WaitSaved returned while saving: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	runPod(t, cs, "hubctl-42", corev1.PodSucceeded, inits, []corev1.ContainerStatus{terminated("hubctl-save", 0, "Completed", "")})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	runPod(t, cs, "hubctl-42", corev1.PodFailed, inits, []corev1.ContainerStatus{terminated("hubctl-save", 1, "Error", "artifact dist: larger than the limit")})
	if err := e.WaitSaved(ctx, job); err == nil || !strings.Contains(err.Error(), "larger than the limit") {
		t.Fatalf("a failed save: %v", err)
	}
}

// TestAgentAgainstControlPlane: the Job with the agent's init and last containers,
// and a cache's emptyDir mounted in its steps, is admitted and validated by the real
// API server, its pod made and scheduled, and
// WaitSaved sees the save container end. kwok runs no container: no agent really
// moves a file here (TestWorkflowAgent in commands tests the agent against a real
// hub); every container "exits 0" as kwok's stages report it.
func TestAgentAgainstControlPlane(t *testing.T) {
	c := kubetest.Start(t)
	c.Namespace(t, "ci")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	e, err := NewFromConfig(c.Config, "ci", WithPoll(200*time.Millisecond), WithAgentImage("127.0.0.1:5000/hubctl/agent:1"))
	if err != nil {
		t.Fatal(err)
	}
	job := &executor.JobSpec{
		RunID: "1", JobID: "201", Name: "with artifacts", Namespace: "acme", Workflow: "ci",
		Image:    "127.0.0.1:5000/acme/tools:1",
		Env:      []executor.EnvVar{{Name: "HUBCTL_TOKEN", Value: tokenValue}, {Name: "HUBCTL_HUB", Value: "http://127.0.0.1:5000"}},
		Registry: &executor.RegistryAuth{Registry: "127.0.0.1:5000", Token: tokenValue},
		Labels:   map[string]string{"hubctl.run": "1", "hubctl.job": "201"},
		Timeout:  time.Hour,
		Agent: &executor.AgentFiles{RunID: 1, JobID: 201, Restore: true,
			Save: []executor.NamedPath{{Name: "dist", Path: "out/dist"}}, Cache: "/root/.cache"},
		CacheKey: "hub/acme/ci\ndeps", CachePath: "/root/.cache",
		Steps: []executor.StepSpec{{Index: 0, Name: "build", Run: "make"}, {Index: 1, Name: "test", Run: "make test"}},
	}
	for i := range job.Steps {
		if err := e.StartStep(ctx, job, &job.Steps[i]); err != nil {
			t.Fatalf("start step %d: %v", i, err)
		}
		if st, err := e.WaitStep(ctx, job, &job.Steps[i]); err != nil || st.ExitCode != 0 || st.Error != "" {
			t.Fatalf("step %d: %+v %v", i, st, err)
		}
	}
	if err := e.WaitSaved(ctx, job); err != nil {
		t.Fatal(err)
	}
	j, err := c.Client.BatchV1().Jobs("ci").Get(ctx, "hubctl-201", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod := j.Spec.Template.Spec
	if got := names(pod.InitContainers); !slices.Equal(got, []string{"hubctl-restore", "step-0", "step-1"}) {
		t.Fatalf("admitted init containers %v", got)
	}
	if got := names(pod.Containers); !slices.Equal(got, []string{"hubctl-save"}) {
		t.Fatalf("admitted containers %v", got)
	}
	// The cache's emptyDir, mounted in the steps and the agents, passed validation.
	if len(pod.Volumes) != 2 || pod.Volumes[1].Name != "cache" || pod.Volumes[1].EmptyDir == nil {
		t.Fatalf("admitted volumes %+v", pod.Volumes)
	}
	for _, c := range append(pod.InitContainers, pod.Containers...) {
		if len(c.VolumeMounts) != 2 || c.VolumeMounts[1].MountPath != "/root/.cache" {
			t.Errorf("%s: admitted mounts %+v", c.Name, c.VolumeMounts)
		}
	}
	if got := pod.Containers[0].Command; got[len(got)-1] != "/root/.cache" || got[len(got)-2] != "--cache" {
		t.Errorf("admitted save command %v", got)
	}
	if err := e.DestroyWorkflow(ctx, job); err != nil {
		t.Fatal(err)
	}
}

// TestTokenRenewedInEnvSecret: the job's token as the engine renews it reaches the
// env Secret at each later step and before the save container starts, under the key
// the pod spec names, so a container that starts after the first token expired (the
// artifact agent above all) signs in.
func TestTokenRenewedInEnvSecret(t *testing.T) {
	ctx := t.Context()
	cs := newFake(t)
	e := newExec(t, cs, WithAgentImage(agentImage))
	job := agentJob()
	if err := e.StartStep(ctx, job, &job.Steps[0]); err != nil {
		t.Fatal(err)
	}
	secret := func() map[string][]byte {
		s, err := cs.CoreV1().Secrets(ns).Get(ctx, "hubctl-42-env", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s.Data
	}
	has := func(data map[string][]byte, v string) bool {
		for _, b := range data {
			if string(b) == v {
				return true
			}
		}
		return false
	}
	before := secret()
	if !has(before, tokenValue) {
		t.Fatalf("env secret %v", before)
	}
	job.Registry = &executor.RegistryAuth{Registry: job.Registry.Registry, Token: "renewed.job-token.sig"}
	if err := e.StartStep(ctx, job, &job.Steps[1]); err != nil {
		t.Fatal(err)
	}
	after := secret()
	if has(after, tokenValue) || !has(after, "renewed.job-token.sig") || len(after) != len(before) {
		t.Fatalf("after renewal: %v (before %v)", after, before)
	}
	// The key is the one the pod spec names.
	objs, err := e.build(job)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range objs.job.Spec.Template.Spec.Containers[0].Env {
		if v.Name == "HUBCTL_TOKEN" && string(after[v.ValueFrom.SecretKeyRef.Key]) != "renewed.job-token.sig" {
			t.Fatalf("the save container's token key %s holds %q", v.ValueFrom.SecretKeyRef.Key, after[v.ValueFrom.SecretKeyRef.Key])
		}
	}
}

// TestAgentCacheContainers: a job with a cache gets an emptyDir "cache" volume mounted
// at the cache path in every step and in both agent containers (not in the services),
// `restore --cache PATH` before everything and `save … --cache PATH` after the last
// step, even when it moves no artifact; without an agent image, or without the
// agent's part, the job is refused.
func TestAgentCacheContainers(t *testing.T) {
	e := newExec(t, newFake(t), WithAgentImage(agentImage))
	cacheJob := func() *executor.JobSpec {
		job := agentJob()
		job.Agent.Restore, job.Agent.Save = false, nil
		job.CacheKey, job.CachePath = "hub/acme/ci\ndeps-1", "/root/.cache"
		job.Agent.Cache = "/root/.cache"
		return job
	}
	objs, err := e.build(cacheJob())
	if err != nil {
		t.Fatal(err)
	}
	pod := objs.job.Spec.Template.Spec
	if got := names(pod.InitContainers); !slices.Equal(got, []string{"hubctl-restore", "svc-db", "step-0", "step-1"}) {
		t.Fatalf("init containers %v", got)
	}
	if got := names(pod.Containers); !slices.Equal(got, []string{"hubctl-save"}) {
		t.Fatalf("containers %v", got)
	}
	var vols []string
	for _, v := range pod.Volumes {
		vols = append(vols, v.Name)
		if v.Name == "cache" && v.EmptyDir == nil {
			t.Errorf("the cache volume is not an emptyDir: %+v", v)
		}
	}
	if !slices.Equal(vols, []string{"workspace", "cache"}) {
		t.Fatalf("volumes %v", vols)
	}
	for _, c := range append(pod.InitContainers, pod.Containers...) {
		var mounts []string
		for _, m := range c.VolumeMounts {
			mounts = append(mounts, m.Name+"="+m.MountPath)
		}
		want := []string{"workspace=/workspace", "cache=/root/.cache"}
		if strings.HasPrefix(c.Name, "svc-") {
			want = nil
		}
		if !slices.Equal(mounts, want) {
			t.Errorf("%s mounts %v, want %v", c.Name, mounts, want)
		}
	}
	restore, save := pod.InitContainers[0], pod.Containers[0]
	if got := strings.Join(restore.Command, " "); got != "/hubctl workflow-agent restore --run 7 --job 9042 --workspace /workspace --cache /root/.cache" {
		t.Errorf("restore command %q", got)
	}
	if got := strings.Join(save.Command, " "); got != "/hubctl workflow-agent save --run 7 --job 9042 --workspace /workspace --cache /root/.cache" {
		t.Errorf("save command %q", got)
	}
	b, _ := json.Marshal(objs.job)
	if strings.Contains(string(b), tokenValue) || strings.Contains(string(b), "deps-1") {
		t.Fatal("the job token or the cache key is in the Job")
	}

	// With artifacts too: one restore, one save doing both.
	job := cacheJob()
	job.Agent.Restore = true
	job.Agent.Save = []executor.NamedPath{{Name: "dist", Path: "out/dist"}}
	if objs, err = e.build(job); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(objs.job.Spec.Template.Spec.Containers[0].Command, " "); got != "/hubctl workflow-agent save --run 7 --job 9042 --workspace /workspace --artifact dist=out/dist --cache /root/.cache" {
		t.Errorf("save command %q", got)
	}

	// Refused: no agent image; a cache key the agent does not move; a cache path that
	// is relative, unclean, / or the workspace.
	if _, err := newExec(t, newFake(t)).build(cacheJob()); err == nil || !strings.Contains(err.Error(), "agent_image") {
		t.Fatalf("without an agent image: %v", err)
	}
	job = cacheJob()
	job.Agent = nil
	if _, err := e.build(job); err == nil || !strings.Contains(err.Error(), "Agent.Cache") {
		t.Fatalf("a cache without the agent's part: %v", err)
	}
	for _, p := range []string{"cache", "/root/../etc", "/", "/workspace", "/root/.cache/"} {
		job = cacheJob()
		job.Agent.Cache = p
		if _, err := e.build(job); err == nil || !strings.Contains(err.Error(), "cache path") {
			t.Errorf("cache path %q: %v", p, err)
		}
	}
}
