package kubetest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// TestStart brings the control plane up and runs a Job to completion through the
// real controllers, the scheduler and kwok; the kubeconfig file works as well as the
// rest.Config, and an unauthenticated client is refused.
func TestStart(t *testing.T) {
	c := Start(t)
	c.Namespace(t, "kt")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	backoff := int32(0)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "hello"},
		Spec: batchv1.JobSpec{
			BackoffLimit: &backoff,
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "main", Image: "busybox:1", Command: []string{"true"}}},
			}},
		},
	}
	if _, err := client.BatchV1().Jobs("kt").Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		j, err := client.BatchV1().Jobs("kt").Get(ctx, "hello", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if j.Status.Succeeded == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the Job never completed: %+v", j.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("Job complete in %s", time.Since(start))

	anon := *c.Config
	anon.BearerToken = ""
	ac, err := kubernetes.NewForConfig(&anon)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ac.CoreV1().Secrets("kt").List(ctx, metav1.ListOptions{}); err == nil {
		t.Error("an anonymous client lists secrets")
	}
	wrong := *c.Config
	wrong.BearerToken = strings.Repeat("0", 64)
	wc, _ := kubernetes.NewForConfig(&wrong)
	if _, err := wc.CoreV1().Secrets("kt").List(ctx, metav1.ListOptions{}); err == nil {
		t.Error("a wrong token lists secrets")
	}
}

// TestMissingBinariesSkip: without the binaries Start skips (and fails under CI).
func TestMissingBinariesSkip(t *testing.T) {
	if os.Getenv("CI") == "true" {
		t.Skip("under CI a missing binary fails instead")
	}
	t.Setenv("HUBCTL_TOOLS_BIN", t.TempDir())
	t.Setenv("PATH", t.TempDir())
	if err := Check(); err == nil || !strings.Contains(err.Error(), "kube-apiserver") {
		t.Fatalf("Check: %v", err)
	}
	skipped := false
	t.Run("start", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Start(t)
		t.Error("Start returned without binaries")
	})
	if !skipped {
		t.Error("Start did not skip")
	}
}
