package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// shownRate is the overall speed and the blob's ETA on the terminal view's lines.
var (
	shownRate = regexp.MustCompile(`total \d+/\d+ blobs .*?([0-9.]+) (B|KiB|MiB|GiB)/s`)
	shownETA  = regexp.MustCompile(`ETA (?:(\d+)m)?(\d+)s`)
)

// TestRateShownMatchesServer (issue 13 item 5): with --rate, the speed the terminal
// view shows stays within ±20% of the bytes the server received over the time
// elapsed, and the ETA within 20% (and a second) of when the blob really finished.
// The copy runs in a real terminal (tmux), stdin from /dev/null (item 3), through a
// proxy that counts what arrives.
func TestRateShownMatchesServer(t *testing.T) {
	tmux := tool(t, "tmux")
	s := startServer(t)
	p := startCountingProxy(t, s.Addr)
	const size = 20 << 20
	const rate = 4 << 20
	img := buildImage(t, "amd64", randomLayer(t, size))
	src := newLayout(t)
	src.addImage(img, "1")

	dir := t.TempDir()
	exitFile := filepath.Join(dir, "exit")
	socket := fmt.Sprintf("hubctl-e2e-rate-%d", os.Getpid())
	// stdin from /dev/null, as scripts run it (issue 13 item 3): the view must not need it.
	cmd := fmt.Sprintf("DOCKER_CONFIG=%s %s copy --rate 4MiB --progress auto oci:%s:1 %s/rate/app:1 </dev/null; echo $? > %s; sleep 60",
		dockerConfigFor(t), hubctlBin, src.Dir, p.Addr, exitFile)
	tm := func(args ...string) string {
		c := exec.Command(tmux, append([]string{"-u", "-L", socket}, args...)...)
		c.Env = append(os.Environ(), "LANG=C.UTF-8", "LC_ALL=C.UTF-8")
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	t.Cleanup(func() { _ = exec.Command(tmux, "-L", socket, "kill-server").Run() })
	tm("-f", "/dev/null", "new-session", "-d", "-s", "rate", "-x", "200", "-y", "20", "sh", "-c", cmd)

	type sample struct {
		at        time.Time
		received  int64
		shown     float64 // bytes per second on the totals line, 0 if none
		eta       time.Duration
		etaShown  bool
		screen    string
		remaining int64
	}
	var samples []sample
	var first time.Time // the first byte at the server
	deadline := time.Now().Add(90 * time.Second)
	for {
		if _, err := os.Stat(exitFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the copy did not finish in 90s:\n%s", tm("capture-pane", "-p", "-t", "rate"))
		}
		screen := tm("capture-pane", "-p", "-t", "rate")
		now, got := time.Now(), p.uploaded.Load()
		if got > 0 && first.IsZero() {
			first = now
		}
		sm := sample{at: now, received: got, screen: screen, remaining: size - got}
		if m := shownRate.FindStringSubmatch(screen); m != nil {
			v, _ := strconv.ParseFloat(m[1], 64)
			sm.shown = v * map[string]float64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[m[2]]
		}
		if m := shownETA.FindStringSubmatch(screen); m != nil {
			min, _ := strconv.Atoi(m[1])
			sec, _ := strconv.Atoi(m[2])
			sm.eta, sm.etaShown = time.Duration(min)*time.Minute+time.Duration(sec)*time.Second, true
		}
		samples = append(samples, sm)
		time.Sleep(250 * time.Millisecond)
	}
	done := time.Now()
	if code, _ := os.ReadFile(exitFile); strings.TrimSpace(string(code)) != "0" {
		t.Fatalf("copy exited %s:\n%s", code, tm("capture-pane", "-p", "-t", "rate"))
	}
	final := tm("capture-pane", "-p", "-t", "rate")
	if strings.Contains(final, "cancelreader") || strings.Contains(final, "progress view stopped") {
		t.Errorf("the view failed with stdin from /dev/null:\n%s", final)
	}
	if flag := strings.TrimSpace(tm("display-message", "-p", "-t", "rate", "#{cursor_flag}")); flag != "1" {
		t.Errorf("the cursor was left hidden (tmux cursor_flag %q)", flag)
	}
	if got := p.uploaded.Load(); got < size {
		t.Fatalf("the server received %d bytes, want at least %d", got, size)
	}
	// The cap itself holds: 20 MiB at 4 MiB/s takes about 5 s.
	if el := done.Sub(first); el < 4*time.Second {
		t.Errorf("20 MiB at --rate 4MiB took %v: the cap let more through", el)
	}

	checked := 0
	for _, sm := range samples {
		// Judge the view once the transfer has run a second and while it still runs
		// (the last moments mix the blob's end with the manifest).
		el := sm.at.Sub(first)
		if first.IsZero() || el < time.Second || sm.remaining < rate/2 || sm.shown == 0 {
			continue
		}
		checked++
		real := float64(sm.received) / el.Seconds()
		if sm.shown < 0.8*real || sm.shown > 1.2*real {
			t.Errorf("at %v the view showed %.2f MiB/s, the server had received %.2f MiB/s on average:\n%s",
				el.Round(10*time.Millisecond), sm.shown/(1<<20), real/(1<<20), sm.screen)
		}
		if sm.etaShown {
			left := done.Sub(sm.at)
			if d := (sm.eta - left).Abs(); d > time.Second+left/5 {
				t.Errorf("at %v the view showed ETA %v, the copy ended %v later", el.Round(10*time.Millisecond), sm.eta, left.Round(10*time.Millisecond))
			}
		}
	}
	if checked < 5 {
		t.Errorf("only %d samples of the speed to judge; the view showed:\n%s", checked, samples[len(samples)-1].screen)
	}
}
