package kube

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	helmkube "helm.sh/helm/v4/pkg/kube"
	kubefake "helm.sh/helm/v4/pkg/kube/fake"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	release "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage"
	"helm.sh/helm/v4/pkg/storage/driver"

	"github.com/hubctl/hubctl/internal/deploy"
)

// notReadyOnce is helm's failing fake kube client whose next wait (only) fails, as
// a revision that never becomes ready does, so the rollback after it succeeds.
type notReadyOnce struct {
	*kubefake.FailingKubeClient
	mu   sync.Mutex
	fail int
}

func (c *notReadyOnce) GetWaiter(ws helmkube.WaitStrategy) (helmkube.Waiter, error) {
	return c.GetWaiterWithOptions(ws)
}

func (c *notReadyOnce) GetWaiterWithOptions(ws helmkube.WaitStrategy, opts ...helmkube.WaitOption) (helmkube.Waiter, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail > 0 {
		c.fail--
		c.WaitError = errors.New("context deadline exceeded (not ready)")
		defer func() { c.WaitError = nil }()
	}
	return c.FailingKubeClient.GetWaiterWithOptions(ws, opts...)
}

// TestHelmWiring runs the same life as TestRelease through helm's actions over helm's
// fake kube client and its memory release store: it checks this package's use of
// helm (install or upgrade, the rollback's detection and revisions, history order,
// the plan's diff against the stored manifest) where no control plane is installed.
// TestRelease proves the same against a real one.
func TestHelmWiring(t *testing.T) {
	mem := driver.NewMemory()
	kc := &notReadyOnce{FailingKubeClient: &kubefake.FailingKubeClient{PrintingKubeClient: kubefake.PrintingKubeClient{Out: io.Discard}}}
	h := New(Options{})
	h.config = func(k *deploy.Kubernetes) (*action.Configuration, string, error) {
		mem.SetNamespace("shop")
		cfg := action.NewConfiguration(action.ConfigurationSetLogger(h.o.Log))
		cfg.Releases = storage.Init(mem)
		cfg.KubeClient = kc
		cfg.Capabilities = common.DefaultCapabilities
		return cfg, "shop", nil
	}
	ctx := context.Background()
	spec := &deploy.Spec{Service: deploy.Service{Name: "web"}, Kubernetes: &deploy.Kubernetes{
		Chart: writeTestChart(t, "0.1.0"), Namespace: "shop", Timeout: time.Minute,
		Values: map[string]any{"token": "hunter2"},
	}}
	statuses := func() string {
		t.Helper()
		hist, err := h.History(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, r := range hist {
			s = append(s, strconv.Itoa(r.Revision)+":"+r.Status)
		}
		return strings.Join(s, " ")
	}

	if _, err := h.History(ctx, spec); !errors.Is(err, ErrNoRelease) {
		t.Fatalf("history before install: %v", err)
	}
	if rev, err := h.Upgrade(ctx, spec, image("1", digest1)); err != nil || rev.Revision != 1 || rev.Status != "deployed" {
		t.Fatalf("install: %+v %v", rev, err)
	}
	d, err := h.Plan(ctx, spec, image("2", digest2))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d, "-        image: \""+repoRef+"@"+digest1+"\"") || !strings.Contains(d, "+        image: \""+repoRef+"@"+digest2+"\"") || strings.Contains(d, "hunter2") {
		t.Errorf("plan:\n%s", d)
	}
	if got := statuses(); got != "1:deployed" {
		t.Errorf("the plan recorded a revision: %s", got)
	}
	if d, err := h.Plan(ctx, spec, image("1", digest1)); err != nil || d != "" {
		t.Errorf("plan of what is deployed: %q %v", d, err)
	}
	if rev, err := h.Upgrade(ctx, spec, image("2", digest2)); err != nil || rev.Revision != 2 {
		t.Fatalf("upgrade: %+v %v", rev, err)
	}

	// a deploy killed mid-upgrade leaves a pending revision: a fresh one is refused,
	// one older than the timeout is marked failed and the next upgrade goes on
	st := storage.Init(mem)
	last, err := st.Get("web", 2)
	if err != nil {
		t.Fatal(err)
	}
	pending := *(last.(*release.Release))
	info := *pending.Info
	pending.Info, pending.Version = &info, 3
	pending.SetStatus(rcommon.StatusPendingUpgrade, "killed")
	pending.Info.LastDeployed = time.Now()
	if err := st.Create(&pending); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Upgrade(ctx, spec, image("2", digest2)); err == nil || !strings.Contains(err.Error(), "another deploy is running") {
		t.Fatalf("upgrade over a fresh pending revision: %v", err)
	}
	pending.Info.LastDeployed = time.Now().Add(-2 * time.Minute)
	if err := st.Update(&pending); err != nil {
		t.Fatal(err)
	}
	if rev, err := h.Upgrade(ctx, spec, image("2", digest2)); err != nil || rev.Revision != 4 {
		t.Fatalf("upgrade over a stale pending revision: %+v %v", rev, err)
	}
	if got := statuses(); got != "4:deployed 3:failed 2:superseded 1:superseded" {
		t.Errorf("history after the stale pending revision: %s", got)
	}

	kc.fail = 1
	rev, err := h.Upgrade(ctx, spec, image("3", digest3))
	if !errors.Is(err, ErrRolledBack) || rev.Revision != 6 || rev.Status != "deployed" {
		t.Fatalf("never-ready upgrade: %+v %v", rev, err)
	}
	t.Logf("never-ready upgrade: %v", err)
	if got := statuses(); got != "6:deployed 5:failed 4:superseded 3:failed 2:superseded 1:superseded" {
		t.Errorf("history after the rollback: %s", got)
	}

	if rev, err := h.Rollback(ctx, spec, 1); err != nil || rev.Revision != 7 || rev.Status != "deployed" {
		t.Fatalf("rollback to 1: %+v %v", rev, err)
	}
	if rev, err := h.Rollback(ctx, spec, 0); err != nil || rev.Revision != 8 {
		t.Fatalf("rollback to the previous: %+v %v", rev, err)
	}
	if _, err := h.Rollback(ctx, spec, 99); err == nil || !strings.Contains(err.Error(), "no revision 99") {
		t.Errorf("rollback to 99: %v", err)
	}
	if err := h.Uninstall(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := h.History(ctx, spec); !errors.Is(err, ErrNoRelease) {
		t.Errorf("history after uninstall: %v", err)
	}
	if err := h.Uninstall(ctx, spec); !errors.Is(err, ErrNoRelease) {
		t.Errorf("second uninstall: %v", err)
	}

	// a first install that is not ready: uninstalled, no history
	kc.fail = 1
	if _, err := h.Upgrade(ctx, spec, image("1", digest1)); err == nil || errors.Is(err, ErrRolledBack) {
		t.Fatalf("never-ready install: %v", err)
	} else {
		t.Logf("never-ready install: %v", err)
	}
	if _, err := h.History(ctx, spec); !errors.Is(err, ErrNoRelease) {
		t.Errorf("history after the failed install: %v", err)
	}
}
