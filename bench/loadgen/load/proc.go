package load

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Proc is what /proc says of a server process.
type Proc struct {
	FDs int `json:"fds"`
	// RSSKiB is the resident set now, HWMKiB its peak since start.
	RSSKiB int64 `json:"rss_kib"`
	HWMKiB int64 `json:"hwm_kib"`
}

// ReadProc reads pid's open file descriptors and memory (Linux).
func ReadProc(pid int) (Proc, error) {
	var p Proc
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return p, err
	}
	p.FDs = len(ents)
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return p, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		switch k {
		case "VmRSS":
			p.RSSKiB = n
		case "VmHWM":
			p.HWMKiB = n
		}
	}
	return p, sc.Err()
}

// Goroutines reads go_goroutines from a Prometheus endpoint (hubctl's /metrics).
func Goroutines(ctx context.Context, hc *http.Client, metricsURL string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(f), err
		}
	}
	return 0, fmt.Errorf("%s has no go_goroutines", metricsURL)
}

// Settle polls read until it is at most limit or timeout passes, and returns the last
// value: connections the clients closed take a moment to be gone on the server.
func Settle(ctx context.Context, timeout time.Duration, limit int, read func() (int, error)) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		v, err := read()
		if err != nil || v <= limit || time.Now().After(deadline) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
