package kube

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/hubctl/hubctl/internal/workflow/executor"
)

// TestReattachMakesNothingTwice is the executor's half of the kill -9 test (the whole
// is e2e/workflows_kube_test.go): an engine started step 0 and died; a new executor
// (the restarted engine's) is Identified, so its engine leaves Jobs running when it
// stops; it finds the running step, its StartStep of that step creates no second Job
// nor Secret, and the pull Secret gets the re-attached engine's new token.
func TestReattachMakesNothingTwice(t *testing.T) {
	ctx := context.Background()
	cs := newFake(t)
	creates := map[string]int{}
	cs.PrependReactor("create", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		creates[a.GetResource().Resource]++
		return false, nil, nil
	})
	job := testJob()
	if err := newExec(t, cs).StartStep(ctx, job, &job.Steps[0]); err != nil {
		t.Fatal(err)
	}
	runPod(t, cs, "hubctl-42", corev1.PodPending, []corev1.ContainerStatus{running("svc-db"), running("step-0")}, nil)

	e := newExec(t, cs)
	var x executor.Executor = e
	id, ok := x.(executor.Identified)
	if !ok {
		t.Fatal("the kube executor is not executor.Identified: its engine would delete Jobs when it stops")
	}
	if ref, err := id.Identity(ctx); err != nil || ref != "" {
		t.Fatalf("Identity %q %v, want \"\" (no pin)", ref, err)
	}
	found, err := e.Find(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0] == nil || !found[0].Running {
		t.Fatalf("Find after a restart: %v, want step 0 running", found)
	}
	renewed := *job
	renewed.Registry = &executor.RegistryAuth{Registry: job.Registry.Registry, Token: "eyJhbGciOi.renewed-token.sig"}
	if err := e.StartStep(ctx, &renewed, &renewed.Steps[0]); err != nil {
		t.Fatalf("StartStep on re-attach: %v", err)
	}
	if creates["jobs"] != 1 || creates["secrets"] != 2 {
		t.Fatalf("creates %v: want one Job and two Secrets in all", creates)
	}
	pull, err := cs.CoreV1().Secrets(ns).Get(ctx, "hubctl-42-pull", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg := string(pull.Data[corev1.DockerConfigJsonKey]); !strings.Contains(cfg, "renewed-token") || strings.Contains(cfg, tokenValue) {
		t.Fatalf("pull secret not renewed: %s", cfg)
	}
	if len(pull.OwnerReferences) != 1 {
		t.Fatalf("pull secret lost its owner: %+v", pull.OwnerReferences)
	}

	// A Job of the job's name made for another run (ids reused by a hub whose
	// database was replaced) is never taken for this one.
	stranger := *job
	stranger.RunID = "8"
	if err := e.StartStep(ctx, &stranger, &stranger.Steps[0]); err == nil || !strings.Contains(err.Error(), "belongs to run") {
		t.Fatalf("StartStep over another run's Job: %v", err)
	}
}
