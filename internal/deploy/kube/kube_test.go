package kube

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hubctl/hubctl/internal/deploy"
	"github.com/hubctl/hubctl/internal/kubetest"
)

const (
	digest1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	digest2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	digest3 = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
	repoRef = "hub.example.com/acme/web"
)

func image(tag, digest string) string { return repoRef + ":" + tag + "@" + digest }

// TestRelease drives one release through its life on a real control plane (kwok
// makes pods Ready): plan and install, plan and upgrade with --wait, an upgrade whose
// pods never become ready rolled back, an explicit rollback, uninstall; and a first
// install that never becomes ready, uninstalled.
func TestRelease(t *testing.T) {
	c := kubetest.StartWithStages(t, kubetest.NeverReadyStage)
	if c == nil {
		return
	}
	c.Namespace(t, "shop")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	spec := &deploy.Spec{
		Service: deploy.Service{Name: "web", Image: repoRef + ":1"},
		Kubernetes: &deploy.Kubernetes{
			Chart: writeTestChart(t, "0.1.0"), Release: "web", Namespace: "shop",
			Kubeconfig: c.Kubeconfig, ImagePath: "image", Timeout: 2 * time.Minute,
			Values: map[string]any{"replicaCount": 2, "token": "hunter2-v1"},
		},
	}
	h := New(Options{})
	deployed := func() (img string, ready int32) {
		t.Helper()
		d, err := c.Client.AppsV1().Deployments("shop").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return d.Spec.Template.Spec.Containers[0].Image, d.Status.ReadyReplicas
	}
	revisions := func() []deploy.ReleaseRevision {
		t.Helper()
		hist, err := h.History(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		return hist
	}

	// Plan before anything is installed: all added, nothing created.
	if _, err := h.History(ctx, spec); !errors.Is(err, ErrNoRelease) {
		t.Fatalf("history before install: %v", err)
	}
	d, err := h.Plan(ctx, spec, image("1", digest1))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d, "+        image: \""+repoRef+"@"+digest1+"\"") || strings.Contains(d, "hunter2") {
		t.Errorf("plan of the install:\n%s", d)
	}
	if _, err := c.Client.AppsV1().Deployments("shop").Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the plan created the Deployment: %v", err)
	}

	// Install, waiting for both pods to be Ready.
	rev, err := h.Upgrade(ctx, spec, image("1", digest1))
	if err != nil {
		t.Fatal(err)
	}
	if rev.Revision != 1 || rev.Status != "deployed" || rev.Chart != "web-0.1.0" || rev.AppVersion != "1.0" {
		t.Errorf("install: %+v", rev)
	}
	if img, ready := deployed(); img != repoRef+"@"+digest1 || ready != 2 {
		t.Errorf("after install: image %s, %d ready", img, ready)
	}

	// Plan v2: the image line changes, the secret's change is masked, nothing moves.
	spec.Kubernetes.Values["token"] = "hunter2-v2"
	d, err = h.Plan(ctx, spec, image("2", digest2))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plan of v2:\n%s", d)
	for _, want := range []string{"--- web revision 1 (deployed)", "-        image: \"" + repoRef + "@" + digest1 + "\"", "+        image: \"" + repoRef + "@" + digest2 + "\"", "+  token: (hidden "} {
		if !strings.Contains(d, want) {
			t.Errorf("plan of v2 lacks %q", want)
		}
	}
	if strings.Contains(d, "hunter2") {
		t.Error("the plan shows the secret's value")
	}
	if img, _ := deployed(); img != repoRef+"@"+digest1 || len(revisions()) != 1 {
		t.Errorf("the plan changed the release: image %s, revisions %+v", img, revisions())
	}
	if d, err := h.Plan(ctx, &deploy.Spec{Service: spec.Service, Kubernetes: withValues(spec.Kubernetes, map[string]any{"replicaCount": 2, "token": "hunter2-v1"})}, image("1", digest1)); err != nil || d != "" {
		t.Errorf("plan of what is deployed: %q, %v", d, err)
	}

	// Upgrade to v2 with --wait.
	rev, err = h.Upgrade(ctx, spec, image("2", digest2))
	if err != nil {
		t.Fatalf("%v\n%s", err, c.Describe(ctx, "shop"))
	}
	if rev.Revision != 2 || rev.Status != "deployed" {
		t.Errorf("upgrade: %+v", rev)
	}
	if img, ready := deployed(); img != repoRef+"@"+digest2 || ready != 2 {
		t.Errorf("after upgrade: image %s, %d ready", img, ready)
	}

	// v3's pods never become ready: the upgrade fails at its timeout and the
	// release is back on v2.
	bad := &deploy.Spec{Service: spec.Service, Kubernetes: withValues(spec.Kubernetes, map[string]any{"replicaCount": 2, "podAnnotations": neverReady()})}
	bad.Kubernetes.Timeout = 15 * time.Second
	start := time.Now()
	rev, err = h.Upgrade(ctx, bad, image("3", digest3))
	t.Logf("the never-ready upgrade returned after %s: %v", time.Since(start).Round(time.Millisecond), err)
	if !errors.Is(err, ErrRolledBack) {
		t.Fatalf("never-ready upgrade: %v, want ErrRolledBack\n%s", err, c.Describe(ctx, "shop"))
	}
	if rev.Revision != 4 || rev.Status != "deployed" {
		t.Errorf("after the rollback: %+v", rev)
	}
	hist := revisions()
	if len(hist) != 4 || hist[0].Revision != 4 || hist[0].Status != "deployed" || hist[1].Revision != 3 || hist[1].Status != "failed" || hist[2].Status != "superseded" {
		t.Errorf("history after the failed upgrade: %+v", hist)
	}
	if img, ready := deployed(); img != repoRef+"@"+digest2 || ready != 2 {
		t.Errorf("after the failed upgrade: image %s, %d ready", img, ready)
	}

	// Explicit rollback to v1, then to the previous one (v2 again).
	rev, err = h.Rollback(ctx, spec, 1)
	if err != nil {
		t.Fatalf("%v\n%s", err, c.Describe(ctx, "shop"))
	}
	if rev.Revision != 5 || rev.Status != "deployed" {
		t.Errorf("rollback to 1: %+v", rev)
	}
	if img, ready := deployed(); img != repoRef+"@"+digest1 || ready != 2 {
		t.Errorf("after rollback to 1: image %s, %d ready", img, ready)
	}
	if rev, err = h.Rollback(ctx, spec, 0); err != nil || rev.Revision != 6 {
		t.Errorf("rollback to the previous: %+v, %v\n%s", rev, err, c.Describe(ctx, "shop"))
	}
	if img, _ := deployed(); img != repoRef+"@"+digest2 {
		t.Errorf("after rollback to the previous: image %s", img)
	}
	if _, err := h.Rollback(ctx, spec, 99); err == nil || !strings.Contains(err.Error(), "no revision 99") {
		t.Errorf("rollback to a revision that does not exist: %v", err)
	}
	if _, err := h.Rollback(ctx, spec, -1); err == nil {
		t.Error("rollback to -1 accepted")
	}

	// Uninstall: the release and its objects are gone.
	if err := h.Uninstall(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := h.History(ctx, spec); !errors.Is(err, ErrNoRelease) {
		t.Errorf("history after uninstall: %v", err)
	}
	if _, err := c.Client.AppsV1().Deployments("shop").Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Deployment outlived the uninstall: %v", err)
	}
	if err := h.Uninstall(ctx, spec); !errors.Is(err, ErrNoRelease) {
		t.Errorf("a second uninstall: %v", err)
	}

	// A first install whose pods never become ready is uninstalled.
	first := &deploy.Spec{Service: deploy.Service{Name: "first"}, Kubernetes: withValues(spec.Kubernetes, map[string]any{"podAnnotations": neverReady()})}
	first.Kubernetes.Release, first.Kubernetes.Timeout = "first", 10*time.Second
	if _, err := h.Upgrade(ctx, first, image("1", digest1)); err == nil {
		t.Fatal("a never-ready first install succeeded")
	} else {
		t.Logf("never-ready first install: %v", err)
	}
	if _, err := h.History(ctx, first); !errors.Is(err, ErrNoRelease) {
		t.Errorf("history after the failed first install: %v", err)
	}
	if _, err := c.Client.AppsV1().Deployments("shop").Get(ctx, "first", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the failed first install left its Deployment: %v", err)
	}
}

// TestBadInput: what is refused before the cluster is touched, and a cluster that
// cannot be reached.
func TestBadInput(t *testing.T) {
	ctx := context.Background()
	h := New(Options{})
	chart := writeTestChart(t, "0.1.0")
	spec := func(k deploy.Kubernetes) *deploy.Spec {
		return &deploy.Spec{Service: deploy.Service{Name: "web"}, Kubernetes: &k}
	}
	cases := []struct {
		name  string
		spec  *deploy.Spec
		image string
		want  string
	}{
		{"no kubernetes", &deploy.Spec{Service: deploy.Service{Name: "web"}}, image("1", digest1), "no kubernetes section"},
		{"not pinned", spec(deploy.Kubernetes{Chart: chart}), repoRef + ":1", "not pinned"},
		{"image path in the way", spec(deploy.Kubernetes{Chart: chart, Values: map[string]any{"image": "nginx"}}), image("1", digest1), "not a mapping"},
		{"no chart", spec(deploy.Kubernetes{Chart: "/does/not/exist"}), image("1", digest1), "not a local chart"},
		{"no kubeconfig", spec(deploy.Kubernetes{Chart: chart, Kubeconfig: "/does/not/exist/kubeconfig"}), image("1", digest1), "kubeconfig"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := h.Upgrade(ctx, c.spec, c.image); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("upgrade: %v, want %q", err, c.want)
			}
			if _, err := h.Plan(ctx, c.spec, c.image); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("plan: %v, want %q", err, c.want)
			}
		})
	}
}

func withValues(k *deploy.Kubernetes, vals map[string]any) *deploy.Kubernetes {
	out := *k
	out.Values = vals
	return &out
}

// neverReady answers kubetest.NeverReadyAnnotations as chart values.
func neverReady() map[string]any {
	out := map[string]any{}
	for k, v := range kubetest.NeverReadyAnnotations {
		out[k] = v
	}
	return out
}
