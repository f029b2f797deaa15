package tui

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The tmux tests run the demo program (internal/tuidemo) in a real terminal: a
// detached tmux session on a socket of our own, read back with capture-pane.

const tmuxCaseTimeout = 30 * time.Second

var (
	barLine     = regexp.MustCompile(`sha256:[0-9a-f]{12} [█░]{10,}`)
	summaryLine = regexp.MustCompile(`pushed 4 blobs \([0-9.]+ MiB\), skipped 1, mounted 1, 1 manifest in [0-9.]+s`)
	tmuxSeq     atomic.Int32
)

func TestTmux(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("tmux is required in CI for the real-terminal test: %v", err)
		}
		t.Skipf("tmux not found on PATH, skipping the real-terminal test: %v", err)
	}
	demo := buildDemo(t)

	t.Run("complete", func(t *testing.T) {
		p := startPane(t, tmux, demo, "-duration", "2500ms")
		p.waitScreen("a progress bar", func(s string) bool { return barLine.MatchString(s) })
		screen := p.waitScreen("the summary line", summaryLine.MatchString)
		if code := p.exitCode(); code != "0" {
			t.Errorf("demo exited %s, want 0\n%s", code, screen)
		}
		// The view is gone: only the printed lines and the summary remain.
		if strings.ContainsAny(screen, "█░") || strings.Contains(screen, "total ") {
			t.Errorf("the live view was left on screen:\n%s", screen)
		}
		for _, want := range []string{"✓ 127.0.0.1:5000/demo:1 sha256:", "↗ sha256:", "mounted from library/base", "= sha256:"} {
			if !strings.Contains(screen, want) {
				t.Errorf("screen lacks %q:\n%s", want, screen)
			}
		}
		p.checkSane()
		p.checkCursor()
	})

	t.Run("ctrl-c", func(t *testing.T) {
		p := startPane(t, tmux, demo, "-duration", "20s")
		p.waitScreen("a progress bar", func(s string) bool { return barLine.MatchString(s) })
		p.tmux("send-keys", "-t", p.session, "C-c")
		screen := p.waitScreen("the demo to exit", func(s string) bool { return strings.Contains(s, "cancelled") })
		if code := p.exitCode(); code != "130" {
			t.Errorf("demo exited %s after Ctrl-C, want 130\n%s", code, screen)
		}
		if !strings.Contains(screen, "context canceled") || !strings.Contains(screen, "0 manifests") {
			t.Errorf("screen after Ctrl-C lacks the failures and the summary:\n%s", screen)
		}
		p.checkSane()
		p.checkCursor()
	})

	// Scripts run commands with stdin from /dev/null (or a pipe) while stderr is still
	// the terminal: the view must draw without reading keys, not fail to poll stdin,
	// and give the cursor back.
	t.Run("stdin-devnull", func(t *testing.T) {
		p := startPaneStdin(t, tmux, demo, "/dev/null", "-duration", "2500ms")
		p.waitScreen("a progress bar", func(s string) bool { return barLine.MatchString(s) })
		screen := p.waitScreen("the summary line", summaryLine.MatchString)
		if code := p.exitCode(); code != "0" {
			t.Errorf("demo exited %s, want 0\n%s", code, screen)
		}
		if strings.Contains(screen, "cancelreader") || strings.Contains(screen, "progress view stopped") {
			t.Errorf("the view failed without a terminal on stdin:\n%s", screen)
		}
		p.checkSane()
		p.checkCursor()
	})

	t.Run("stdin-devnull-ctrl-c", func(t *testing.T) {
		p := startPaneStdin(t, tmux, demo, "/dev/null", "-duration", "20s")
		p.waitScreen("a progress bar", func(s string) bool { return barLine.MatchString(s) })
		// Without raw mode the terminal turns Ctrl-C into SIGINT.
		p.tmux("send-keys", "-t", p.session, "C-c")
		screen := p.waitScreen("the demo to exit", func(s string) bool { return strings.Contains(s, "cancelled") })
		if code := p.exitCode(); code != "130" {
			t.Errorf("demo exited %s after Ctrl-C, want 130\n%s", code, screen)
		}
		p.checkSane()
		p.checkCursor()
	})
}

// buildDemo compiles internal/tuidemo once for all cases.
func buildDemo(t *testing.T) string {
	t.Helper()
	gocmd, err := exec.LookPath("go")
	if err != nil {
		gocmd = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "tuidemo")
	// Compiling bubbletea from a cold cache on a slow machine takes a while; this
	// limit only stops a hung toolchain.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, gocmd, "build", "-o", bin, "./internal/tuidemo").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./internal/tuidemo: %v\n%s", err, out)
	}
	return bin
}

// pane is one detached tmux session running the demo under sh, which afterwards
// records the demo's exit code and the terminal settings in files, then sleeps so
// the screen can still be read.
type pane struct {
	t                   *testing.T
	tmuxPath, socket    string
	session             string
	exitFile, sttyFile  string
	deadline            time.Time
	lastScreen, lastErr string
}

func startPane(t *testing.T, tmuxPath, demo string, args ...string) *pane {
	t.Helper()
	return startPaneStdin(t, tmuxPath, demo, "", args...)
}

// startPaneStdin is startPane with the demo's stdin redirected from stdin (a path),
// the terminal itself when empty.
func startPaneStdin(t *testing.T, tmuxPath, demo, stdin string, args ...string) *pane {
	t.Helper()
	dir := t.TempDir()
	n := tmuxSeq.Add(1)
	p := &pane{
		t:        t,
		tmuxPath: tmuxPath,
		// A socket of our own keeps a user's tmux server (and its config) out of it.
		socket:   fmt.Sprintf("hubctl-tui-test-%d-%d", os.Getpid(), n),
		session:  fmt.Sprintf("tui%d", n),
		exitFile: filepath.Join(dir, "exit"),
		sttyFile: filepath.Join(dir, "stty"),
		deadline: time.Now().Add(tmuxCaseTimeout),
	}
	cmd := shellQuote(demo)
	for _, a := range args {
		cmd += " " + shellQuote(a)
	}
	if stdin != "" {
		cmd += " <" + shellQuote(stdin)
	}
	// sh catches SIGINT (a Ctrl-C without raw mode reaches the whole foreground group)
	// so it outlives the demo and records its exit; the demo starts with the default.
	script := fmt.Sprintf("trap : INT; %s; echo $? > %s; stty -a > %s; sleep 60", cmd, shellQuote(p.exitFile), shellQuote(p.sttyFile))
	t.Cleanup(func() {
		// Ends the session, the demo and the sleep; errors mean it is gone already.
		_ = exec.Command(tmuxPath, "-L", p.socket, "kill-server").Run()
	})
	p.tmux("-f", "/dev/null", "new-session", "-d", "-s", p.session, "-x", "120", "-y", "30", "sh", "-c", script)
	return p
}

// tmux runs a tmux command against the pane's server.
func (p *pane) tmux(args ...string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.tmuxPath, append([]string{"-u", "-L", p.socket}, args...)...)
	// UTF-8 so that the bar glyphs come back from capture-pane as they went in.
	cmd.Env = append(os.Environ(), "LANG=C.UTF-8", "LC_ALL=C.UTF-8")
	out, err := cmd.CombinedOutput()
	if err != nil {
		p.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// waitScreen polls the pane until ok accepts its text, and fails at the deadline.
func (p *pane) waitScreen(what string, ok func(string) bool) string {
	p.t.Helper()
	for {
		s := p.tmux("capture-pane", "-p", "-t", p.session)
		if ok(s) {
			return s
		}
		if time.Now().After(p.deadline) {
			p.t.Fatalf("timed out after %v waiting for %s; screen:\n%s", tmuxCaseTimeout, what, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitFile waits for sh to have written path, and returns its content.
func (p *pane) waitFile(path string) string {
	p.t.Helper()
	for {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return string(b)
		}
		if time.Now().After(p.deadline) {
			p.t.Fatalf("timed out after %v waiting for %s; screen:\n%s", tmuxCaseTimeout, filepath.Base(path),
				p.tmux("capture-pane", "-p", "-t", p.session))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *pane) exitCode() string { return strings.TrimSpace(p.waitFile(p.exitFile)) }

// checkSane checks that the demo gave the terminal back in cooked mode with echo,
// as stty saw it right after the demo exited.
func (p *pane) checkSane() {
	p.t.Helper()
	p.waitFile(p.exitFile)
	stty := p.waitFile(p.sttyFile)
	fields := strings.Fields(stty)
	for _, flag := range []string{"icanon", "echo", "isig"} {
		found := false
		for _, f := range fields {
			if f == flag {
				found = true
			}
		}
		if !found {
			p.t.Errorf("terminal left without %s after the demo:\n%s", flag, stty)
		}
	}
}

// checkCursor checks that the cursor is visible once the demo has exited: a view
// that hid it must show it again, whatever ended it.
func (p *pane) checkCursor() {
	p.t.Helper()
	p.waitFile(p.exitFile)
	if flag := strings.TrimSpace(p.tmux("display-message", "-p", "-t", p.session, "#{cursor_flag}")); flag != "1" {
		p.t.Errorf("cursor left hidden after the demo (tmux cursor_flag %q)", flag)
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
