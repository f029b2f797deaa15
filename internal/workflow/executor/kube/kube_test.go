package kube

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/hubctl/hubctl/internal/workflow/executor"
)

const ns = "ci"

// newFake is client-go's fake clientset, which (unlike an API server) gives created
// objects no uid: a reactor does, so owner references and the pod selector by the
// Job's uid are exercised.
func newFake(t *testing.T) *fake.Clientset {
	t.Helper()
	cs := fake.NewClientset()
	n := 0
	cs.PrependReactor("create", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		obj := a.(k8stesting.CreateAction).GetObject()
		if m, ok := obj.(metav1.Object); ok && m.GetUID() == "" {
			n++
			m.SetUID(types.UID("uid-" + strings.Repeat("x", n)))
		}
		return false, nil, nil
	})
	return cs
}

func newExec(t *testing.T, cs *fake.Clientset, opts ...Option) *Executor {
	t.Helper()
	e, err := New(cs, ns, append([]Option{WithPoll(5 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

const (
	secretValue = "s3cr3t-value-never-in-the-pod-spec"
	tokenValue  = "eyJhbGciOi.job-token.sig"
)

func testJob() *executor.JobSpec {
	return &executor.JobSpec{
		RunID: "7", JobID: "42", Name: "build", Namespace: "acme", Workflow: "release/x",
		Image: "hub.example:5000/acme/tools:1",
		Env: []executor.EnvVar{
			{Name: "HUBCTL_RUN_ID", Value: "7"},
			{Name: "HUBCTL_TOKEN", Value: tokenValue},
			{Name: "GREETING", Value: "hello"},
		},
		Secrets:   map[string]string{"DEPLOY_KEY": secretValue},
		Registry:  &executor.RegistryAuth{Registry: "hub.example:5000", Token: tokenValue},
		Resources: executor.Resources{MilliCPU: 500, Memory: 256 << 20},
		Services:  []executor.Service{{Name: "db", Image: "hub.example:5000/acme/db:1", Env: []executor.EnvVar{{Name: "PASS", Value: secretValue}}}},
		Labels:    map[string]string{"hubctl.run": "7", "hubctl.job": "42"},
		Timeout:   10 * time.Minute,
		Steps: []executor.StepSpec{
			{Index: 0, Name: "compile", Run: "make", Secrets: []string{"DEPLOY_KEY"}},
			{Index: 1, Name: "test", Image: "busybox:1", Args: []string{"echo", "hi"}, Workdir: "sub"},
		},
	}
}

func getJob(t *testing.T, cs *fake.Clientset, name string) *batchv1.Job {
	t.Helper()
	j, err := cs.BatchV1().Jobs(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestJobSpecBuilt(t *testing.T) {
	ctx := context.Background()
	cs := newFake(t)
	e := newExec(t, cs)
	job := testJob()
	if err := e.SetupWorkflow(ctx, job); err != nil {
		t.Fatal(err)
	}
	if l, _ := cs.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{}); len(l.Items) != 0 {
		t.Fatal("SetupWorkflow made the Job: the first StartStep must (after the engine marked the step running)")
	}
	if err := e.StartStep(ctx, job, &job.Steps[0]); err != nil {
		t.Fatal(err)
	}
	j := getJob(t, cs, "hubctl-42")
	if j.Labels[LabelRun] != "7" || j.Labels[LabelJob] != "42" || j.Spec.Template.Labels[LabelJob] != "42" {
		t.Errorf("labels %v, pod labels %v", j.Labels, j.Spec.Template.Labels)
	}
	if j.Annotations[AnnotationNamespace] != "acme" || j.Annotations[AnnotationWorkflow] != "release/x" || j.Annotations[AnnotationSteps] != "2" {
		t.Errorf("annotations %v", j.Annotations)
	}
	if j.Spec.BackoffLimit == nil || *j.Spec.BackoffLimit != 0 {
		t.Errorf("backoffLimit %v, want 0", j.Spec.BackoffLimit)
	}
	if d := j.Spec.ActiveDeadlineSeconds; d == nil || *d != 660 {
		t.Errorf("activeDeadlineSeconds %v, want 660 (10 min + 1 min slack)", d)
	}
	pod := j.Spec.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy %s", pod.RestartPolicy)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the pod mounts the namespace's service account token")
	}
	if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
		t.Error("service links are on")
	}
	var names []string
	for _, c := range pod.InitContainers {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, ","); got != "svc-db,step-0" {
		t.Errorf("init containers %s, want svc-db,step-0 (services first, as native sidecars, then the steps in order)", got)
	}
	if len(pod.Containers) != 1 || pod.Containers[0].Name != "step-1" {
		t.Fatalf("containers %+v, want the last step", pod.Containers)
	}
	svc := pod.InitContainers[0]
	if svc.RestartPolicy == nil || *svc.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Error("the service is not a native sidecar (restartPolicy Always)")
	}
	if step := pod.InitContainers[1]; step.RestartPolicy != nil {
		t.Error("a step init container has a restartPolicy")
	}
	if len(pod.HostAliases) != 1 || pod.HostAliases[0].IP != "127.0.0.1" || pod.HostAliases[0].Hostnames[0] != "db" {
		t.Errorf("host aliases %+v: the service must resolve by name", pod.HostAliases)
	}
	s0, s1 := pod.InitContainers[1], pod.Containers[0]
	if s0.Image != job.Image || s1.Image != "busybox:1" {
		t.Errorf("images %s %s", s0.Image, s1.Image)
	}
	if len(s0.Command) != 6 || s0.Command[0] != "/bin/sh" || s0.Command[4] != "make" || s0.Command[5] != "/dev/termination-log" {
		t.Errorf("step 0 command %q", s0.Command)
	}
	if len(s1.Command) != 0 || strings.Join(s1.Args, " ") != "echo hi" {
		t.Errorf("step 1 command %q args %q: a step without run keeps the image's entrypoint", s1.Command, s1.Args)
	}
	if s1.WorkingDir != "/workspace/sub" || s0.WorkingDir != "/workspace" {
		t.Errorf("workdirs %s %s", s0.WorkingDir, s1.WorkingDir)
	}
	if q := s0.Resources.Limits[corev1.ResourceCPU]; q.MilliValue() != 500 {
		t.Errorf("cpu limit %s", q.String())
	}
	if q := s0.Resources.Limits[corev1.ResourceMemory]; q.Value() != 256<<20 {
		t.Errorf("memory limit %s", q.String())
	}
	if len(pod.Volumes) != 1 || pod.Volumes[0].EmptyDir == nil || s1.VolumeMounts[0].MountPath != "/workspace" {
		t.Errorf("workspace %+v", pod.Volumes)
	}
	env := map[string]corev1.EnvVar{}
	for _, v := range s0.Env {
		env[v.Name] = v
	}
	if env["GREETING"].Value != "hello" || env["HUBCTL_OUTPUT"].Value != "/workspace/.hubctl/output-0" || env["HUBCTL_WORKSPACE"].Value != "/workspace" {
		t.Errorf("step env %+v", s0.Env)
	}
	for _, name := range []string{"HUBCTL_TOKEN", "DEPLOY_KEY"} {
		v := env[name]
		if v.Value != "" || v.ValueFrom == nil || v.ValueFrom.SecretKeyRef == nil || v.ValueFrom.SecretKeyRef.Name != "hubctl-42-env" {
			t.Errorf("%s is not read from the job's Secret: %+v", name, v)
		}
	}
	for _, v := range s1.Env {
		if v.Name == "DEPLOY_KEY" {
			t.Error("step 1 gets a secret it did not ask for")
		}
	}

	// An attacker reading the pod spec (anyone who may get Jobs or pods) finds no
	// secret and no token in it.
	raw, _ := json.Marshal(j)
	for _, s := range []string{secretValue, tokenValue} {
		if strings.Contains(string(raw), s) {
			t.Errorf("the Job holds a secret in clear: %s", s)
		}
	}

	envSecret, err := cs.CoreV1().Secrets(ns).Get(ctx, "hubctl-42-env", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pull, err := cs.CoreV1().Secrets(ns).Get(ctx, "hubctl-42-pull", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*corev1.Secret{envSecret, pull} {
		if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != j.UID || s.OwnerReferences[0].Kind != "Job" || j.UID == "" {
			t.Errorf("secret %s owners %+v, want the Job (uid %s)", s.Name, s.OwnerReferences, j.UID)
		}
		if s.Labels[LabelJob] != "42" {
			t.Errorf("secret %s labels %v", s.Name, s.Labels)
		}
	}
	vals := map[string]bool{}
	for _, v := range envSecret.Data {
		vals[string(v)] = true
	}
	if !vals[secretValue] || !vals[tokenValue] || len(envSecret.Data) != 2 {
		t.Errorf("env secret holds %d values, want the secret and the token once each", len(envSecret.Data))
	}
	for k := range envSecret.Data {
		if strings.Contains(k, "DEPLOY") || strings.Contains(k, "TOKEN") {
			t.Errorf("env secret key %q names the variable", k)
		}
	}
	if pull.Type != corev1.SecretTypeDockerConfigJson || len(pod.ImagePullSecrets) != 1 || pod.ImagePullSecrets[0].Name != "hubctl-42-pull" {
		t.Errorf("pull secret type %s, pod pull secrets %+v", pull.Type, pod.ImagePullSecrets)
	}
	var dc struct {
		Auths map[string]struct {
			Username      string `json:"username"`
			Password      string `json:"password"`
			Auth          string `json:"auth"`
			RegistryToken string `json:"registrytoken"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(pull.Data[corev1.DockerConfigJsonKey], &dc); err != nil {
		t.Fatal(err)
	}
	if a, ok := dc.Auths["hub.example:5000"]; !ok || a.RegistryToken != tokenValue || a.Password != tokenValue || a.Auth == "" || len(dc.Auths) != 1 {
		t.Errorf("pull secret auths %+v: want the job token for the hub only", dc.Auths)
	}

	// The service's environment carries the secret value it was given through the
	// Secret too.
	for _, v := range svc.Env {
		if v.Name == "PASS" && (v.Value != "" || v.ValueFrom == nil) {
			t.Errorf("service env PASS in clear")
		}
	}
}

func TestStartStepFindsWhatExists(t *testing.T) {
	ctx := context.Background()
	cs := newFake(t)
	e := newExec(t, cs)
	job := testJob()
	for i := 0; i < 2; i++ {
		if err := e.StartStep(ctx, job, &job.Steps[0]); err != nil {
			t.Fatalf("StartStep %d: %v", i, err)
		}
	}
	if err := e.StartStep(ctx, job, &job.Steps[1]); err != nil {
		t.Fatal(err)
	}
	if l, _ := cs.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{}); len(l.Items) != 1 {
		t.Fatalf("%d Jobs, want 1", len(l.Items))
	}

	// A second executor (another engine, after a crash) racing to create the Job
	// gets AlreadyExists and takes it as found.
	e2 := newExec(t, cs)
	if err := e2.create(ctx, job); err != nil {
		t.Fatalf("create racing an existing Job: %v", err)
	}

	// A later step whose Job is gone is not started by making the Job again (that
	// would run step 0 twice).
	other := testJob()
	other.JobID = "43"
	err := e.StartStep(ctx, other, &other.Steps[1])
	if !errors.Is(err, executor.ErrNotFound) {
		t.Fatalf("StartStep of step 1 without a Job: %v, want ErrNotFound", err)
	}

	// A Job of that name that is not the job's is never taken for it.
	foreign := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "hubctl-44", Namespace: ns, Labels: map[string]string{LabelJob: "someone-else"}}}
	if _, err := cs.BatchV1().Jobs(ns).Create(ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	third := testJob()
	third.JobID = "44"
	if err := e.StartStep(ctx, third, &third.Steps[0]); err == nil || !strings.Contains(err.Error(), "not this job's") {
		t.Fatalf("StartStep over a foreign Job: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	cs := newFake(t)
	e := newExec(t, cs)
	if _, err := New(cs, "Bad_NS"); err == nil {
		t.Error("namespace Bad_NS accepted")
	}
	if _, err := New(nil, ns); err == nil {
		t.Error("nil client accepted")
	}
	cases := map[string]func(j *executor.JobSpec){
		"job id upper case":    func(j *executor.JobSpec) { j.JobID = "Job1" },
		"job id path":          func(j *executor.JobSpec) { j.JobID = "../1" },
		"job id too long":      func(j *executor.JobSpec) { j.JobID = strings.Repeat("1", 49) },
		"run id":               func(j *executor.JobSpec) { j.RunID = "a b" },
		"service name":         func(j *executor.JobSpec) { j.Services[0].Name = "DB" },
		"service twice":        func(j *executor.JobSpec) { j.Services = append(j.Services, j.Services[0]) },
		"service no image":     func(j *executor.JobSpec) { j.Services[0].Image = "" },
		"env name with =":      func(j *executor.JobSpec) { j.Env = append(j.Env, executor.EnvVar{Name: "A=B", Value: "x"}) },
		"env NUL":              func(j *executor.JobSpec) { j.Env = append(j.Env, executor.EnvVar{Name: "A", Value: "x\x00"}) },
		"no steps":             func(j *executor.JobSpec) { j.Steps = nil },
		"no image":             func(j *executor.JobSpec) { j.Image = ""; j.Steps[0].Image = "" },
		"workdir escapes":      func(j *executor.JobSpec) { j.Steps[0].Workdir = "../../etc" },
		"unknown secret":       func(j *executor.JobSpec) { j.Steps[0].Secrets = []string{"NOPE"} },
		"relative workspace":   func(j *executor.JobSpec) { j.WorkspaceDir = "ws" },
		"step index mismatch":  func(j *executor.JobSpec) { j.Steps[1].Index = 5 },
		"registry with a path": func(j *executor.JobSpec) { j.Registry.Registry = "hub/x" },
		"cache":                func(j *executor.JobSpec) { j.CacheKey, j.CachePath = "k", "/cache" },
		"label value":          func(j *executor.JobSpec) { j.Labels["x"] = "not valid!" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			job := testJob()
			mutate(job)
			err := e.SetupWorkflow(context.Background(), job)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), secretValue) {
				t.Errorf("error quotes a secret: %v", err)
			}
		})
	}
}

func TestWorkspaceVolume(t *testing.T) {
	cs := newFake(t)
	e := newExec(t, cs, WithWorkspaceVolume("fast", resource.MustParse("2Gi")))
	objs, err := e.build(testJob())
	if err != nil {
		t.Fatal(err)
	}
	v := objs.job.Spec.Template.Spec.Volumes[0]
	if v.Ephemeral == nil || v.EmptyDir != nil {
		t.Fatalf("workspace %+v, want a generic ephemeral volume", v)
	}
	spec := v.Ephemeral.VolumeClaimTemplate.Spec
	if *spec.StorageClassName != "fast" || spec.Resources.Requests.Storage().String() != "2Gi" {
		t.Errorf("claim %+v", spec)
	}

	// The hub's settings (workflows.kube.workspace_size, _class) in bytes: 5 GiB in the
	// default class; 0 keeps the emptyDir.
	objs, err = newExec(t, cs, WithWorkspaceClaim("", 5<<30)).build(testJob())
	if err != nil {
		t.Fatal(err)
	}
	v = objs.job.Spec.Template.Spec.Volumes[0]
	if v.Ephemeral == nil || v.Ephemeral.VolumeClaimTemplate.Spec.StorageClassName != nil ||
		v.Ephemeral.VolumeClaimTemplate.Spec.Resources.Requests.Storage().String() != "5Gi" {
		t.Errorf("workspace_size 5GiB: %+v", v)
	}
	objs, err = newExec(t, cs, WithWorkspaceClaim("fast", 0)).build(testJob())
	if err != nil {
		t.Fatal(err)
	}
	if v := objs.job.Spec.Template.Spec.Volumes[0]; v.EmptyDir == nil {
		t.Errorf("workspace_size 0: %+v, want an emptyDir", v)
	}
}

func TestStateMapping(t *testing.T) {
	at := metav1.NewTime(time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC))
	cases := []struct {
		name string
		cs   *corev1.ContainerStatus
		want *executor.StepState
	}{
		{"none", nil, nil},
		{"waiting", &corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}}, nil},
		{"running", &corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at}}},
			&executor.StepState{Running: true, StartedAt: at.Time}},
		{"succeeded with output", &corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 0, Reason: "Completed", Message: "VERSION=1.2\n", StartedAt: at, FinishedAt: at}}},
			&executor.StepState{StartedAt: at.Time, FinishedAt: at.Time, Output: []byte("VERSION=1.2\n")}},
		{"failed", &corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3, Reason: "Error"}}},
			&executor.StepState{ExitCode: 3}},
		{"oom", &corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled"}}},
			&executor.StepState{ExitCode: 137, OOMKilled: true}},
		{"cannot run", &corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 128, Reason: "StartError", Message: "exec: /bin/sh: not found"}}},
			&executor.StepState{ExitCode: 128, Error: "StartError: exec: /bin/sh: not found"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := stepState(c.cs)
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(c.want)
			if string(g) != string(w) {
				t.Errorf("got %s\nwant %s", g, w)
			}
		})
	}
}

// runPod plays the Job controller and the kubelet on the fake clientset: it makes the
// Job's pod with the labels the Job controller gives it and sets container statuses.
func runPod(t *testing.T, cs *fake.Clientset, jobName string, phase corev1.PodPhase, inits, mains []corev1.ContainerStatus) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	j := getJob(t, cs, jobName)
	name := jobName + "-pod"
	p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		lbls := map[string]string{batchv1.ControllerUidLabel: string(j.UID)}
		for k, v := range j.Spec.Template.Labels {
			lbls[k] = v
		}
		p = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: lbls}, Spec: j.Spec.Template.Spec}
		if p, err = cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	p.Status = corev1.PodStatus{Phase: phase, InitContainerStatuses: inits, ContainerStatuses: mains}
	if p, err = cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return p
}

func terminated(name string, code int32, reason, msg string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, Message: msg}}}
}

func running(name string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}
}

func waiting(name, reason string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "details"}}}
}

func TestWaitStepAndFindAfterRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs := newFake(t)
	e := newExec(t, cs)
	job := testJob()
	if err := e.StartStep(ctx, job, &job.Steps[0]); err != nil {
		t.Fatal(err)
	}

	// A pod left by an earlier Job of the same name (other uid) is never read.
	stale := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "stale", Namespace: ns, Labels: map[string]string{LabelJob: "42", batchv1.ControllerUidLabel: "old"}},
		Status: corev1.PodStatus{InitContainerStatuses: []corev1.ContainerStatus{terminated("step-0", 9, "Error", "")}}}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, stale, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Nothing ran yet: Find (a new engine after a crash) sees step 0 coming.
	found, err := newExec(t, cs).Find(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0] == nil || !found[0].Running {
		t.Fatalf("Find before the pod: %+v", found)
	}

	runPod(t, cs, "hubctl-42", corev1.PodPending, []corev1.ContainerStatus{running("svc-db"), running("step-0")}, []corev1.ContainerStatus{waiting("step-1", "PodInitializing")})
	done := make(chan *executor.StepState, 1)
	go func() {
		st, err := e.WaitStep(ctx, job, &job.Steps[0])
		if err != nil {
			t.Error(err)
		}
		done <- st
	}()
	select {
	case st := <-done:
		t.Fatalf("WaitStep returned while step 0 runs: %+v", st)
	case <-time.After(50 * time.Millisecond):
	}
	runPod(t, cs, "hubctl-42", corev1.PodRunning, []corev1.ContainerStatus{running("svc-db"), terminated("step-0", 0, "Completed", "A=1\n")}, []corev1.ContainerStatus{running("step-1")})
	st := <-done
	if st == nil || st.Running || st.ExitCode != 0 || string(st.Output) != "A=1\n" {
		t.Fatalf("step 0: %+v", st)
	}

	// The engine restarts: a new executor instance finds step 0 ended (with its
	// output) and step 1 running.
	found, err = newExec(t, cs).Find(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 2 || found[0].Running || string(found[0].Output) != "A=1\n" || !found[1].Running {
		t.Fatalf("Find after a restart: %+v %+v", found[0], found[1])
	}

	runPod(t, cs, "hubctl-42", corev1.PodFailed, []corev1.ContainerStatus{running("svc-db"), terminated("step-0", 0, "Completed", "A=1\n")}, []corev1.ContainerStatus{terminated("step-1", 2, "Error", "")})
	st, err = newExec(t, cs).WaitStep(ctx, job, &job.Steps[1])
	if err != nil || st.ExitCode != 2 || st.Running {
		t.Fatalf("step 1: %+v %v", st, err)
	}
}

func TestWaitStepFailures(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs := newFake(t)
	e := newExec(t, cs, WithPullGrace(30*time.Millisecond))
	job := testJob()
	if err := e.StartStep(ctx, job, &job.Steps[0]); err != nil {
		t.Fatal(err)
	}

	runPod(t, cs, "hubctl-42", corev1.PodPending, []corev1.ContainerStatus{running("svc-db"), waiting("step-0", "InvalidImageName")}, nil)
	st, err := e.WaitStep(ctx, job, &job.Steps[0])
	if err != nil || !strings.Contains(st.Error, "InvalidImageName") {
		t.Fatalf("invalid image: %+v %v", st, err)
	}

	runPod(t, cs, "hubctl-42", corev1.PodPending, []corev1.ContainerStatus{running("svc-db"), waiting("step-0", "ImagePullBackOff")}, nil)
	st, err = e.WaitStep(ctx, job, &job.Steps[0])
	if err != nil || !strings.Contains(st.Error, "ImagePullBackOff") {
		t.Fatalf("pull back-off: %+v %v", st, err)
	}

	// Step 0 failed, the pod ended: step 1 never runs, and says so.
	runPod(t, cs, "hubctl-42", corev1.PodFailed, []corev1.ContainerStatus{terminated("step-0", 1, "Error", "")}, []corev1.ContainerStatus{waiting("step-1", "PodInitializing")})
	st, err = e.WaitStep(ctx, job, &job.Steps[1])
	if err != nil || !strings.Contains(st.Error, "never ran") {
		t.Fatalf("step after a failure: %+v %v", st, err)
	}
	found, err := e.Find(ctx, job)
	if err != nil || len(found) != 1 || found[0].ExitCode != 1 {
		t.Fatalf("Find after a failure: %+v %v (a step the pod never runs is not reported)", found, err)
	}

	// A step running past its timeout deletes the Job and is reported timed out.
	j2 := testJob()
	j2.JobID = "50"
	j2.Steps[0].Timeout = time.Millisecond
	if err := e.StartStep(ctx, j2, &j2.Steps[0]); err != nil {
		t.Fatal(err)
	}
	runPod(t, cs, "hubctl-50", corev1.PodRunning, []corev1.ContainerStatus{running("step-0")}, nil)
	time.Sleep(5 * time.Millisecond)
	st, err = e.WaitStep(ctx, j2, &j2.Steps[0])
	if err != nil || !strings.Contains(st.Error, "timed out") {
		t.Fatalf("timeout: %+v %v", st, err)
	}
	if _, err := cs.BatchV1().Jobs(ns).Get(ctx, "hubctl-50", metav1.GetOptions{}); err == nil {
		t.Error("the Job of a timed-out step is still there")
	}

	// WaitStep of a job whose Job is gone is ErrNotFound.
	gone := testJob()
	gone.JobID = "51"
	if _, err := e.WaitStep(ctx, gone, &gone.Steps[0]); !errors.Is(err, executor.ErrNotFound) {
		t.Fatalf("WaitStep without a Job: %v", err)
	}
}

// Log following is tested here, on client-go's fake clientset: kwok (the kubelet of
// the end-to-end test) runs no container and has no logs. The fake's pods/log answers
// "fake logs" for any container.
func TestTailStepFromOffset(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs := newFake(t)
	e := newExec(t, cs)
	job := testJob()
	if err := e.StartStep(ctx, job, &job.Steps[0]); err != nil {
		t.Fatal(err)
	}
	var logsAsked []string
	cs.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() == "log" {
			logsAsked = append(logsAsked, a.(k8stesting.GenericAction).GetValue().(*corev1.PodLogOptions).Container)
		}
		return false, nil, nil
	})

	// The reader comes at once and waits for the container to start.
	rc, err := e.TailStep(ctx, job, &job.Steps[0], 5)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	runPod(t, cs, "hubctl-42", corev1.PodRunning, []corev1.ContainerStatus{running("step-0")}, nil)
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "logs" {
		t.Errorf("log from offset 5 = %q, want %q (\"fake logs\" without its first 5 bytes)", got, "logs")
	}
	if len(logsAsked) != 1 || logsAsked[0] != "step-0" {
		t.Errorf("logs asked of %v, want step-0", logsAsked)
	}

	for _, off := range []int64{0, 9, 100} {
		rc, err := e.TailStep(ctx, job, &job.Steps[0], off)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		want := "fake logs"
		if off >= int64(len(want)) {
			want = ""
		} else {
			want = want[off:]
		}
		if string(got) != want {
			t.Errorf("offset %d: %q, want %q", off, got, want)
		}
	}
	if _, err := e.TailStep(ctx, job, &job.Steps[0], -1); err == nil {
		t.Error("negative offset accepted")
	}

	// A step the pod never starts has an empty log, which ends.
	runPod(t, cs, "hubctl-42", corev1.PodFailed, []corev1.ContainerStatus{terminated("step-0", 1, "Error", "")}, []corev1.ContainerStatus{waiting("step-1", "PodInitializing")})
	rc, err = e.TailStep(ctx, job, &job.Steps[1], 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(rc); err != nil || len(got) != 0 {
		t.Errorf("log of a step that never ran: %q %v", got, err)
	}
	rc.Close()
}

func TestDestroyWorkflow(t *testing.T) {
	ctx := context.Background()
	cs := newFake(t)
	e := newExec(t, cs)
	job := testJob()
	if err := e.StartStep(ctx, job, &job.Steps[0]); err != nil {
		t.Fatal(err)
	}
	bystander := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "not-ours", Namespace: ns}}
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, bystander, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var propagation []metav1.DeletionPropagation
	cs.PrependReactor("delete", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if p := a.(k8stesting.DeleteAction).GetDeleteOptions().PropagationPolicy; p != nil {
			propagation = append(propagation, *p)
		}
		return false, nil, nil
	})
	if err := e.DestroyWorkflow(ctx, job); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.BatchV1().Jobs(ns).Get(ctx, "hubctl-42", metav1.GetOptions{}); err == nil {
		t.Error("Job still there")
	}
	if len(propagation) != 1 || propagation[0] != metav1.DeletePropagationBackground {
		t.Errorf("propagation %v, want Background", propagation)
	}
	l, _ := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	if len(l.Items) != 1 || l.Items[0].Name != "not-ours" {
		t.Errorf("secrets left %+v: want only the bystander", l.Items)
	}
	// Destroying what is gone is no error; Find reports nothing.
	if err := e.DestroyWorkflow(ctx, job); err != nil {
		t.Fatal(err)
	}
	if found, err := e.Find(ctx, job); err != nil || len(found) != 0 {
		t.Fatalf("Find after destroy: %v %v", found, err)
	}
	// The next attempt of the job run makes its Job again.
	if err := e.StartStep(ctx, job, &job.Steps[0]); err != nil {
		t.Fatal(err)
	}
}

// The wrapper is plain sh: run it here, as a container would, with the termination
// message file in a temporary directory.
func TestStepWrapper(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	run := func(script string) (string, string, int) {
		dir := t.TempDir()
		term := filepath.Join(dir, "termination-log")
		cmd := exec.Command(sh, "-c", stepWrapper, "hubctl-wrapper", script, term)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HUBCTL_OUTPUT=" + filepath.Join(dir, "ws", ".hubctl", "output-0")}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		msg, _ := os.ReadFile(term)
		return string(msg), stderr.String(), code
	}
	if msg, _, code := run(`echo "VERSION=1.2" >>"$HUBCTL_OUTPUT"`); code != 0 || msg != "VERSION=1.2\n" {
		t.Errorf("output: %q, exit %d", msg, code)
	}
	if msg, _, code := run(`echo "A=1" >>"$HUBCTL_OUTPUT"; false; echo not reached`); code != 1 || msg != "A=1\n" {
		t.Errorf("-e: %q, exit %d, want the script to stop at false with its output kept", msg, code)
	}
	if _, _, code := run(`exit 7`); code != 7 {
		t.Errorf("exit code %d, want 7", code)
	}
	big := `i=0; while [ $i -lt 5000 ]; do printf x >>"$HUBCTL_OUTPUT"; i=$((i+1)); done`
	if msg, stderr, code := run(big); code != 1 || msg != "" || !strings.Contains(stderr, "5000 bytes") {
		t.Errorf("an output over 4096 bytes: message %d bytes, exit %d, stderr %q; want a failure that says so", len(msg), code, stderr)
	}
}
