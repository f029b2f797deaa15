package e2e

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/hubctl/hubctl/bench/loadgen/load"
)

// TestLoadShort is the CI version of the load test (bench/loadgen has the 200-client
// one): 20 clients signed in with token auth push small images, pull, HEAD manifests
// and list tags for 10 s against a real hubctl serve. Every request must succeed, and
// once the clients are gone the server's goroutines and file descriptors must be back
// where they were. It reports requests/s and p99; it asserts nothing about speed.
func TestLoadShort(t *testing.T) {
	clients, seconds := 20, 10
	if v, err := strconv.Atoi(os.Getenv("HUBCTL_LOAD_CLIENTS")); err == nil && v > 0 {
		clients = v
	}
	if v, err := strconv.Atoi(os.Getenv("HUBCTL_LOAD_SECONDS")); err == nil && v > 0 {
		seconds = v
	}
	metrics := freeLoopback(t)
	s := startServerWith(t, t.TempDir(), "--metrics-addr", metrics, "--log-level", "warn")
	pid := s.cmd.Process.Pid
	ctx := context.Background()
	hc := &http.Client{Timeout: 10 * time.Second}
	murl := "http://" + metrics + "/metrics"

	// A short warm-up creates what lives for the server's lifetime (pools, the
	// namespaces' rows, the metrics series), so the baseline is a warm idle server.
	if _, err := load.Run(ctx, load.Options{Target: s.URL(""), Clients: 4, Duration: time.Second, Username: "admin", Password: adminPassword}); err != nil {
		t.Fatal(err)
	}
	hc.CloseIdleConnections()
	time.Sleep(time.Second)
	base, err := load.ReadProc(pid)
	if err != nil {
		t.Fatal(err)
	}
	baseG, err := load.Goroutines(ctx, hc, murl)
	if err != nil {
		t.Fatal(err)
	}

	res, err := load.Run(ctx, load.Options{Target: s.URL(""), Clients: clients, Duration: time.Duration(seconds) * time.Second,
		Username: "admin", Password: adminPassword})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d clients, %.1f s: %d requests (%.0f/s), %d pushes, %d pulls, p50 %.1f ms, p99 %.1f ms, %d errors",
		res.Clients, res.Seconds, res.Requests, res.RequestsPerSecond, res.Pushes, res.Pulls, res.Overall.P50ms, res.Overall.P99ms, res.Errors)
	for k, st := range res.Kinds {
		t.Logf("  %-14s %6d requests  p50 %6.1f ms  p99 %6.1f ms  errors %d", k, st.Requests, st.P50ms, st.P99ms, st.Errors)
	}
	if res.Errors != 0 {
		t.Errorf("%d errors under load: %v", res.Errors, res.ErrorSamples)
	}
	if res.Pushes == 0 || res.Pulls == 0 || res.Kinds[load.KindHead].Requests == 0 || res.Kinds[load.KindTags].Requests == 0 {
		t.Errorf("the mix did not run: %+v", res)
	}

	// Goroutines and descriptors return to the baseline (a little slack for a
	// background job that happens to run at the moment of the reading).
	const slack = 8
	g, err := load.Settle(ctx, 30*time.Second, baseG+slack, func() (int, error) { return load.Goroutines(ctx, hc, murl) })
	if err != nil || g > baseG+slack {
		t.Errorf("goroutines %d after the load, %d before (%v)", g, baseG, err)
	}
	hc.CloseIdleConnections()
	fds, err := load.Settle(ctx, 30*time.Second, base.FDs+slack, func() (int, error) {
		p, err := load.ReadProc(pid)
		return p.FDs, err
	})
	if err != nil || fds > base.FDs+slack {
		t.Errorf("file descriptors %d after the load, %d before (%v)", fds, base.FDs, err)
	}
	after, _ := load.ReadProc(pid)
	t.Logf("goroutines %d → %d, fds %d → %d, RSS %d MiB (peak %d MiB)", baseG, g, base.FDs, fds, after.RSSKiB>>10, after.HWMKiB>>10)
}
