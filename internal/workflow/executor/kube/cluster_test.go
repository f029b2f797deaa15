package kube

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hubctl/hubctl/internal/kubetest"
	"github.com/hubctl/hubctl/internal/workflow/executor"
)

// TestAgainstControlPlane runs the executor against a real API server, controller
// manager and scheduler, with kwok as the kubelet (internal/kubetest). What it proves:
// the Job, its Secrets and their owner references are admitted and validated by the
// real API server, the Job controller makes the pod, the scheduler binds it, the
// steps end as the pod's statuses say and WaitStep, Find (from a new executor, as
// after a restart) and DestroyWorkflow work on real objects. What it cannot: kwok runs
// no container, so every step "exits 0" as kwok's pod/general stage reports it (no
// program runs, no failure, no output, no log: logs are tested on the fake
// clientset in kube_test.go).
func TestAgainstControlPlane(t *testing.T) {
	c := kubetest.Start(t)
	c.Namespace(t, "ci")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	e, err := NewFromConfig(c.Config, "ci", WithPoll(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	job := &executor.JobSpec{
		RunID: "1", JobID: "101", Name: "two steps", Namespace: "acme", Workflow: "ci",
		Image:    "127.0.0.1:5000/acme/tools:1",
		Env:      []executor.EnvVar{{Name: "HUBCTL_TOKEN", Value: tokenValue}},
		Secrets:  map[string]string{"KEY": secretValue},
		Registry: &executor.RegistryAuth{Registry: "127.0.0.1:5000", Token: tokenValue},
		Labels:   map[string]string{"hubctl.run": "1", "hubctl.job": "101"},
		Timeout:  time.Hour, Resources: executor.Resources{MilliCPU: 100, Memory: 64 << 20},
		Steps: []executor.StepSpec{
			{Index: 0, Name: "build", Run: "echo build", Secrets: []string{"KEY"}},
			{Index: 1, Name: "test", Run: "echo test"},
		},
	}
	if err := e.SetupWorkflow(ctx, job); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range job.Steps {
		if err := e.StartStep(ctx, job, &job.Steps[i]); err != nil {
			t.Fatalf("start step %d: %v", i, err)
		}
		st, err := e.WaitStep(ctx, job, &job.Steps[i])
		if err != nil {
			t.Fatalf("wait step %d: %v", i, err)
		}
		if st.Running || st.ExitCode != 0 || st.Error != "" {
			t.Fatalf("step %d: %+v", i, st)
		}
	}
	t.Logf("two steps complete as kwok reports them in %s", time.Since(start))

	j, err := c.Client.BatchV1().Jobs("ci").Get(ctx, "hubctl-101", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Client.CoreV1().Secrets("ci").Get(ctx, "hubctl-101-env", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != j.UID {
		t.Errorf("env secret owners %+v, want Job %s", s.OwnerReferences, j.UID)
	}
	pods, err := c.Client.CoreV1().Pods("ci").List(ctx, metav1.ListOptions{LabelSelector: "hubctl.job=101"})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("pods %v %v", pods, err)
	}
	if p := pods.Items[0]; p.Spec.NodeName != kubetest.NodeName {
		t.Errorf("pod on node %q, want %s (scheduled)", p.Spec.NodeName, kubetest.NodeName)
	}

	// A new executor, as an engine after a restart, finds both steps ended.
	found, err := func() (map[int]*executor.StepState, error) {
		e2, err := NewFromConfig(c.Config, "ci")
		if err != nil {
			return nil, err
		}
		return e2.Find(ctx, job)
	}()
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 2 || found[0].Running || found[1].Running {
		t.Fatalf("Find after a restart: %v", found)
	}

	if err := e.DestroyWorkflow(ctx, job); err != nil {
		t.Fatal(err)
	}

	// A cancelled job: its Job is deleted while its first step is pending or
	// running, and its Secrets with it.
	cancelled := *job
	cancelled.JobID, cancelled.Labels = "102", map[string]string{"hubctl.run": "1", "hubctl.job": "102"}
	if err := e.StartStep(ctx, &cancelled, &cancelled.Steps[0]); err != nil {
		t.Fatal(err)
	}
	if err := e.DestroyStep(ctx, &cancelled, &cancelled.Steps[0]); err != nil {
		t.Fatal(err)
	}
	if err := e.DestroyWorkflow(ctx, &cancelled); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.BatchV1().Jobs("ci").Get(ctx, "hubctl-102", metav1.GetOptions{}); err == nil {
		t.Error("the cancelled job's Job is still there")
	}
	if l, err := c.Client.CoreV1().Secrets("ci").List(ctx, metav1.ListOptions{LabelSelector: "hubctl.job=102"}); err != nil || len(l.Items) != 0 {
		t.Errorf("the cancelled job's secrets: %v %v", l, err)
	}
	// The garbage collector (the real one) deletes its pod.
	for {
		l, err := c.Client.CoreV1().Pods("ci").List(ctx, metav1.ListOptions{LabelSelector: "hubctl.job=102"})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Items) == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the cancelled job's pod %s was never deleted", l.Items[0].Name)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if found, err := e.Find(ctx, &cancelled); err != nil || len(found) != 0 {
		t.Fatalf("Find of a cancelled job: %v %v", found, err)
	}
	if _, err := e.WaitStep(ctx, &cancelled, &cancelled.Steps[0]); !errors.Is(err, executor.ErrNotFound) {
		t.Fatalf("WaitStep of a cancelled job: %v", err)
	}

	// A job id that is not a DNS label never reaches the API server.
	bad := *job
	bad.JobID = "Not_A_Label"
	if err := e.StartStep(ctx, &bad, &bad.Steps[0]); err == nil || !strings.Contains(err.Error(), "job id") {
		t.Fatalf("bad job id: %v", err)
	}
}

// TestReattachAgainstControlPlane: a job whose pod kwok holds in its first step
// (kubetest.HoldEnv) is found running by a new executor, as an engine after a kill -9
// finds it; its StartStep makes no second Job (the Job's uid is unchanged); once the
// pod is released, the new executor collects both steps.
func TestReattachAgainstControlPlane(t *testing.T) {
	c := kubetest.Start(t)
	c.Namespace(t, "ra")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	e1, err := NewFromConfig(c.Config, "ra", WithPoll(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	job := &executor.JobSpec{
		RunID: "5", JobID: "501", Image: "127.0.0.1:5000/acme/tools:1",
		Env:     []executor.EnvVar{{Name: kubetest.HoldEnv, Value: "1"}},
		Timeout: time.Hour,
		Steps:   []executor.StepSpec{{Index: 0, Name: "first", Run: "echo 1"}, {Index: 1, Name: "second", Run: "echo 2"}},
	}
	if err := e1.StartStep(ctx, job, &job.Steps[0]); err != nil {
		t.Fatal(err)
	}
	j, err := c.Client.BatchV1().Jobs("ra").Get(ctx, "hubctl-501", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	e2, err := NewFromConfig(c.Config, "ra", WithPoll(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for {
		found, err := e2.Find(ctx, job)
		if err != nil {
			t.Fatal(err)
		}
		if st := found[0]; st != nil && st.Running && !st.StartedAt.IsZero() {
			break // the container runs (not only waits for its turn)
		}
		if ctx.Err() != nil {
			t.Fatalf("step 0 never ran: %v", found)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := e2.StartStep(ctx, job, &job.Steps[0]); err != nil {
		t.Fatalf("StartStep on re-attach: %v", err)
	}
	if n, err := c.Release(ctx, "ra", "hubctl.job=501"); err != nil || n != 1 {
		t.Fatalf("release: %d %v", n, err)
	}
	for i := range job.Steps {
		if i > 0 {
			if err := e2.StartStep(ctx, job, &job.Steps[i]); err != nil {
				t.Fatal(err)
			}
		}
		st, err := e2.WaitStep(ctx, job, &job.Steps[i])
		if err != nil || st.Running || st.ExitCode != 0 || st.Error != "" {
			t.Fatalf("step %d after re-attach: %+v %v", i, st, err)
		}
	}
	l, err := c.Client.BatchV1().Jobs("ra").List(ctx, metav1.ListOptions{LabelSelector: "hubctl.job=501"})
	if err != nil || len(l.Items) != 1 || l.Items[0].UID != j.UID {
		t.Fatalf("Jobs after re-attach: %v %v, want the one Job %s", l, err, j.UID)
	}
	if err := e2.DestroyWorkflow(ctx, job); err != nil {
		t.Fatal(err)
	}
}
