package kubetest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

const sampleStages = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready
spec:
  selector:
    matchExpressions:
    - key: '.status.phase'
      operator: 'In'
      values: ['Pending']
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-complete
spec:
  selector:
    matchExpressions:
    - key: '.status.phase'
      operator: 'In'
      values: ['Running']
  weight: 1
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-init-container-completed
spec:
  selector:
    matchExpressions:
    - key: '.status.phase'
      operator: 'In'
      values: ['Pending']
`

// TestHoldStages: the stages that end containers get the hold condition, a released
// copy gets the release condition, and every other stage is kept as it is.
func TestHoldStages(t *testing.T) {
	out, err := holdStages([]byte(sampleStages))
	if err != nil {
		t.Fatal(err)
	}
	stages := map[string][]any{}
	for _, doc := range splitYAML(out) {
		var st map[string]any
		if err := yaml.Unmarshal(doc, &st); err != nil {
			t.Fatalf("%v in\n%s", err, doc)
		}
		name := nested(st, "metadata")["name"].(string)
		if _, dup := stages[name]; dup {
			t.Fatalf("stage %s twice", name)
		}
		exprs, _ := nested(nested(st, "spec"), "selector")["matchExpressions"].([]any)
		stages[name] = exprs
	}
	if len(stages) != 5 {
		t.Fatalf("stages %v", stages)
	}
	if len(stages["pod-ready"]) != 1 {
		t.Errorf("pod-ready changed: %v", stages["pod-ready"])
	}
	for _, name := range []string{"pod-complete", "pod-init-container-completed"} {
		held, released := stages[name], stages[name+"-released"]
		if len(held) != 2 || len(released) != 2 {
			t.Fatalf("%s: %v / %v", name, held, released)
		}
		h := held[1].(map[string]any)
		if h["operator"] != "DoesNotExist" || !strings.Contains(h["key"].(string), HoldEnv) {
			t.Errorf("%s hold: %v", name, h)
		}
		r := released[1].(map[string]any)
		if r["operator"] != "Exists" || !strings.Contains(r["key"].(string), ReleaseAnnotation) {
			t.Errorf("%s release: %v", name, r)
		}
	}
	if _, err := holdStages([]byte(strings.Split(sampleStages, "---")[0])); err == nil || !strings.Contains(err.Error(), "no stage") {
		t.Fatalf("stages without pod-complete: %v", err)
	}
}

// TestHoldStagesInstalled runs holdStages on the stages install-tools.sh wrote, when
// they are there: the file Start really gives kwok.
func TestHoldStagesInstalled(t *testing.T) {
	p := filepath.Join(ToolsDir(), StagesFile)
	if _, err := os.Stat(p); err != nil {
		missing(t, err)
	}
	if _, err := writeStages(p, t.TempDir()); err != nil {
		t.Fatal(err)
	}
}

// TestHoldRelease: a Job whose container has HoldEnv stays running (kwok's stages
// would otherwise end it within 6 s) until Release, then completes.
func TestHoldRelease(t *testing.T) {
	c := Start(t)
	c.Namespace(t, "hold")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	backoff := int32(0)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "held"},
		Spec: batchv1.JobSpec{
			BackoffLimit: &backoff,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "held"}},
				Spec: corev1.PodSpec{
					RestartPolicy:  corev1.RestartPolicyNever,
					InitContainers: []corev1.Container{{Name: "first", Image: "busybox:1", Env: []corev1.EnvVar{{Name: HoldEnv, Value: "1"}}}},
					Containers:     []corev1.Container{{Name: "main", Image: "busybox:1"}},
				},
			},
		},
	}
	if _, err := c.Client.BatchV1().Jobs("hold").Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	running := func() (*corev1.Pod, bool) {
		l, err := c.Client.CoreV1().Pods("hold").List(ctx, metav1.ListOptions{LabelSelector: "app=held"})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Items) != 1 {
			return nil, false
		}
		p := &l.Items[0]
		for _, s := range p.Status.InitContainerStatuses {
			if s.Name == "first" && s.State.Running != nil {
				return p, true
			}
		}
		return p, false
	}
	for {
		if _, ok := running(); ok {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the held pod's first container never ran")
		}
		time.Sleep(200 * time.Millisecond)
	}
	// kwok's stages end a container within 1 + 5 s of jitter: three times that, it
	// must still run.
	time.Sleep(18 * time.Second)
	if p, ok := running(); !ok {
		t.Fatalf("the held pod moved on: %+v", p.Status)
	}
	if n, err := c.Release(ctx, "hold", "app=held"); err != nil || n != 1 {
		t.Fatalf("release: %d %v", n, err)
	}
	for {
		j, err := c.Client.BatchV1().Jobs("hold").Get(ctx, "held", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if j.Status.Succeeded == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the released Job never completed: %+v", j.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
