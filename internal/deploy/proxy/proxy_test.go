package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/deploy/loadtest"
)

// TestZeroDowntimeSwitch: under continuous load, v1 (two tasks) is replaced by v2
// (two tasks), the v1 tasks are stopped, then a v3 that never becomes healthy is
// refused. No request fails, every request started after the switch is served by
// v2, and v3 never sees a request.
func TestZeroDowntimeSwitch(t *testing.T) {
	tp := startProxy(t, "")
	ctx := context.Background()
	v1a, v1b := startTask(t, "v1", true), startTask(t, "v1", true)
	if _, err := tp.client.Deploy(ctx, "web", DeployRequest{Targets: targets(v1a, v1b), Health: fastHealth}); err != nil {
		t.Fatal(err)
	}
	l := loadtest.Start(tp.url+"/", 4)
	defer l.End()
	waitFor(t, "load on v1", func() bool { return v1a.requests.Load() > 20 && v1b.requests.Load() > 20 })

	v2a, v2b := startTask(t, "v2", true), startTask(t, "v2", true)
	res, err := tp.client.Deploy(ctx, "web", DeployRequest{Targets: targets(v2a, v2b), Health: fastHealth, DrainTimeout: Duration(5 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	switched := time.Now()
	if res.Generation != 2 || res.DrainTimedOut || !sameSet(res.Drained, targets(v1a, v1b)) {
		t.Errorf("deploy v2 = %+v", res)
	}
	// The deployer stops the old tasks once the proxy says they are drained.
	v1a.stop()
	v1b.stop()
	before := l.Count()
	waitFor(t, "load on v2", func() bool { return l.Count() > before+200 })

	v3a, v3b := startTask(t, "v3", false), startTask(t, "v3", true)
	start := time.Now()
	_, err = tp.client.Deploy(ctx, "web", DeployRequest{Targets: targets(v3a, v3b), Health: fastHealth, DeployTimeout: Duration(400 * time.Millisecond)})
	if !errors.Is(err, ErrUnhealthy) || !strings.Contains(err.Error(), v3a.addr) {
		t.Fatalf("deploy v3 = %v, want ErrUnhealthy naming %s", err, v3a.addr)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the refusal took %s; the deploy timeout is 400ms", d)
	}
	before = l.Count()
	waitFor(t, "load after v3", func() bool { return l.Count() > before+200 })
	l.End()

	l.CheckNoFailure(t, "")
	after := l.Since(switched)
	if len(after) != 1 || after["v2"] == 0 {
		t.Errorf("responses to requests started after the switch: %v; want only v2", after)
	}
	if n := v3a.requests.Load() + v3b.requests.Load(); n != 0 {
		t.Errorf("v3 served %d requests; it never passed its health check", n)
	}
	st, err := tp.client.Status(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, ts := range st.Targets {
		addrs = append(addrs, ts.Address)
	}
	if st.Generation != 2 || !sameSet(addrs, targets(v2a, v2b)) {
		t.Errorf("status after the refused v3 = %+v; want generation 2 on v2", st)
	}
	_, total := l.Failures()
	t.Logf("%d requests, 0 failed; v1 → v2 switch, v3 refused", total)
}

// TestDrainWaitsForInFlight: a slow request that started on v1 finishes on v1, the
// deploy returns only after it did, and requests started during the drain go to v2.
// With a drain timeout shorter than the request, the deploy says it timed out.
func TestDrainWaitsForInFlight(t *testing.T) {
	tp := startProxy(t, "")
	ctx := context.Background()
	v1 := startTask(t, "v1", true)
	if _, err := tp.client.Deploy(ctx, "web", DeployRequest{Targets: targets(v1), Health: fastHealth}); err != nil {
		t.Fatal(err)
	}
	slow := func(ms string) (chan string, chan time.Time) {
		body, done := make(chan string, 1), make(chan time.Time, 1)
		go func() {
			b, err := loadtest.Get(http.DefaultClient, tp.url+"/slow?ms="+ms)
			if err != nil {
				b = "error: " + err.Error()
			}
			done <- time.Now()
			body <- b
		}()
		waitFor(t, "the slow request to reach its task", func() bool { return v1.requests.Load() > 0 })
		return body, done
	}
	body, done := slow("800")
	v2 := startTask(t, "v2", true)
	deployed := make(chan DeployResult, 1)
	go func() {
		res, err := tp.client.Deploy(ctx, "web", DeployRequest{Targets: targets(v2), Health: fastHealth, DrainTimeout: Duration(10 * time.Second)})
		if err != nil {
			t.Error(err)
		}
		deployed <- res
	}()
	waitFor(t, "the switch", func() bool {
		st, _ := tp.p.Status("web")
		return st.Generation == 2
	})
	if b, err := loadtest.Get(http.DefaultClient, tp.url+"/"); err != nil || b != "v2" {
		t.Errorf("a request during the drain: %q, %v; want v2", b, err)
	}
	res := <-deployed
	returned := time.Now()
	finished := <-done
	if b := <-body; b != "v1" {
		t.Errorf("the slow request got %q; want v1", b)
	}
	if returned.Before(finished) {
		t.Errorf("the deploy returned %s before the in-flight request finished", finished.Sub(returned))
	}
	if res.DrainTimedOut || !slices.Equal(res.Drained, targets(v1)) {
		t.Errorf("deploy = %+v", res)
	}

	// The drain timeout bounds the wait.
	v1.requests.Store(0)
	v2.requests.Store(0)
	_ = v1 // the slow request now runs on v2
	body, _ = slowOn(t, tp, v2, "1500")
	v3 := startTask(t, "v3", true)
	start := time.Now()
	res, err := tp.client.Deploy(ctx, "web", DeployRequest{Targets: targets(v3), Health: fastHealth, DrainTimeout: Duration(100 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	if !res.DrainTimedOut {
		t.Errorf("deploy = %+v; want drain_timed_out", res)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the deploy waited %s; the drain timeout is 100ms", d)
	}
	if b := <-body; b != "v2" {
		t.Errorf("the slow request got %q; a timed-out drain does not cut it, stopping the task does", b)
	}
}

func slowOn(t *testing.T, tp *testProxy, tk *task, ms string) (chan string, chan time.Time) {
	t.Helper()
	body, done := make(chan string, 1), make(chan time.Time, 1)
	go func() {
		b, err := loadtest.Get(http.DefaultClient, tp.url+"/slow?ms="+ms)
		if err != nil {
			b = "error: " + err.Error()
		}
		done <- time.Now()
		body <- b
	}()
	waitFor(t, "the slow request to reach its task", func() bool { return tk.requests.Load() > 0 })
	return body, done
}

// TestRoundRobinSkipsUnhealthy: requests spread over the targets; a target failing
// its checks leaves the rotation and comes back when it passes again.
func TestRoundRobinSkipsUnhealthy(t *testing.T) {
	tp := startProxy(t, "")
	a, b := startTask(t, "a", true), startTask(t, "b", true)
	if _, err := tp.p.Deploy(context.Background(), "web", DeployRequest{Targets: targets(a, b), Health: fastHealth}); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, err := loadtest.Get(http.DefaultClient, tp.url+"/"); err != nil {
			t.Fatal(err)
		}
	}
	if a.requests.Load() != 10 || b.requests.Load() != 10 {
		t.Errorf("a served %d, b %d; want 10 each", a.requests.Load(), b.requests.Load())
	}
	b.healthy.Store(false)
	waitFor(t, "b out of rotation", func() bool {
		st, _ := tp.p.Status("web")
		return !st.Targets[1].Healthy
	})
	b.requests.Store(0)
	for range 10 {
		if body, err := loadtest.Get(http.DefaultClient, tp.url+"/"); err != nil || body != "a" {
			t.Fatalf("with b unhealthy: %q, %v", body, err)
		}
	}
	b.healthy.Store(true)
	waitFor(t, "b back", func() bool {
		st, _ := tp.p.Status("web")
		return st.Targets[1].Healthy
	})
	a.healthy.Store(false)
	b.healthy.Store(false)
	waitFor(t, "both out", func() bool {
		st, _ := tp.p.Status("web")
		return !st.Targets[0].Healthy && !st.Targets[1].Healthy
	})
	resp, err := http.Get(tp.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("no healthy target: %s; want 503 with Retry-After", resp.Status)
	}
}

// TestHostRouting: services answer for their hosts, one service takes the rest, the
// Host header reaches the task unchanged, and two services cannot claim one host.
func TestHostRouting(t *testing.T) {
	tp := startProxy(t, "")
	ctx := context.Background()
	api, web := startTask(t, "api", true), startTask(t, "web", true)
	if _, err := tp.p.Deploy(ctx, "api", DeployRequest{Hosts: []string{"API.example.com."}, Targets: targets(api), Health: fastHealth}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", tp.url+"/", nil)
	req.Host = "other.example.com"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("a host no service names, without a default service: %s; want 404", resp.Status)
	}
	if _, err := tp.p.Deploy(ctx, "web", DeployRequest{Targets: targets(web), Health: fastHealth}); err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{"api.example.com": "api", "api.example.com:8080": "api", "other.example.com": "web", "127.0.0.1": "web"} {
		req, _ := http.NewRequest("GET", tp.url+"/", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := resp.Header.Get("X-Seen-Host"); got != host {
			t.Errorf("host %s reached the task as %q", host, got)
		}
		if resp.StatusCode != 200 || string(body) != want {
			t.Errorf("host %s: %s %q; want %s", host, resp.Status, body, want)
		}
	}
	if api.requests.Load() != 2 || web.requests.Load() != 2 {
		t.Errorf("api served %d, web %d; want 2 each", api.requests.Load(), web.requests.Load())
	}
	other := startTask(t, "other", true)
	if _, err := tp.p.Deploy(ctx, "other", DeployRequest{Hosts: []string{"api.example.com"}, Targets: targets(other), Health: fastHealth}); !errors.Is(err, ErrConflict) {
		t.Errorf("a second service for api.example.com: %v; want ErrConflict", err)
	}
	if _, err := tp.p.Deploy(ctx, "other", DeployRequest{Targets: targets(other), Health: fastHealth}); !errors.Is(err, ErrConflict) {
		t.Errorf("a second default service: %v; want ErrConflict", err)
	}
	if _, err := tp.p.Status("other"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused new service is listed: %v", err)
	}
	// Removing drains and stops routing: the host answers 404, the default still serves.
	res, err := tp.client.Remove(ctx, "api")
	if err != nil || !slices.Equal(res.Drained, targets(api)) {
		t.Fatalf("remove = %+v, %v", res, err)
	}
	req, _ = http.NewRequest("GET", tp.url+"/", nil)
	req.Host = "api.example.com"
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "web" {
		t.Errorf("after removing api, the default service answers api.example.com: %s %q", resp.Status, body)
	}
	if _, err := tp.client.Remove(ctx, "api"); !errors.Is(err, ErrNotFound) {
		t.Errorf("remove twice: %v; want ErrNotFound", err)
	}
}

// TestConcurrentDeployIsBusy: a second deploy of a service while one is being
// health-checked is refused, not queued behind it.
func TestConcurrentDeployIsBusy(t *testing.T) {
	tp := startProxy(t, "")
	ctx := context.Background()
	slow := startTask(t, "v1", false)
	var wg sync.WaitGroup
	wg.Go(func() {
		_, err := tp.client.Deploy(ctx, "web", DeployRequest{Targets: targets(slow), Health: fastHealth, DeployTimeout: Duration(time.Second)})
		if !errors.Is(err, ErrUnhealthy) {
			t.Errorf("first deploy: %v; want ErrUnhealthy", err)
		}
	})
	waitFor(t, "the first deploy to start", func() bool {
		tp.p.mu.Lock()
		defer tp.p.mu.Unlock()
		return tp.p.services["web"] != nil
	})
	other := startTask(t, "v1", true)
	if _, err := tp.client.Deploy(ctx, "web", DeployRequest{Targets: targets(other), Health: fastHealth}); !errors.Is(err, ErrBusy) {
		t.Errorf("second deploy: %v; want ErrBusy", err)
	}
	wg.Wait()
}

// TestDeployAbandoned: a deployer that goes away while the new targets are checked
// changes nothing.
func TestDeployAbandoned(t *testing.T) {
	tp := startProxy(t, "")
	v1, v2 := startTask(t, "v1", true), startTask(t, "v2", false)
	if _, err := tp.p.Deploy(context.Background(), "web", DeployRequest{Targets: targets(v1), Health: fastHealth}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	_, err := tp.client.Deploy(ctx, "web", DeployRequest{Targets: targets(v2), Health: fastHealth})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deploy = %v; want the deadline", err)
	}
	waitFor(t, "the proxy to give up", func() bool { return !mustStatus(t, tp.p, "web").Deploying })
	if st := mustStatus(t, tp.p, "web"); st.Generation != 1 || st.Targets[0].Address != v1.addr {
		t.Errorf("status = %+v; want v1 still", st)
	}
	if b, err := loadtest.Get(http.DefaultClient, tp.url+"/"); err != nil || b != "v1" {
		t.Errorf("after an abandoned deploy: %q, %v", b, err)
	}
}

func mustStatus(t *testing.T, p *Proxy, name string) Status {
	t.Helper()
	st, err := p.Status(name)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
