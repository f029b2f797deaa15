package commands

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/iostreams"
)

// startServe runs `hubctl serve` in-process and returns its address and exit code channel.
func startServe(t *testing.T, ctx context.Context) (string, chan int) {
	t.Helper()
	ios, _, _, _ := iostreams.Test()
	pr, pw := io.Pipe()
	ios.ErrOut = pw
	f := NewFactory(ios, BuildInfo{})
	f.LookupEnv = func(string) (string, bool) { return "", false }
	code := make(chan int, 1)
	go func() {
		c := Execute(ctx, f, []string{"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "error"})
		pw.Close()
		code <- c
	}()
	line, err := listeningLine(pr)
	if err != nil {
		t.Fatalf("no listening line: %v (exit %d)", err, <-code)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if !ok {
		t.Fatalf("stderr line %q", line)
	}
	return addr, code
}

func TestServeRunsAndStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, code := startServe(t, ctx)
	resp, err := http.Get("http://" + addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// Token auth is on unless --auth=none says otherwise.
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer realm=") {
		t.Errorf("/v2/ = %d %q, want a 401 Bearer challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	cancel()
	if c := <-code; c != 0 {
		t.Errorf("exit code %d after cancel, want 0", c)
	}
}

// listeningLine reads stderr lines until the "listening on" one (the first start may
// print the generated admin password before it).
func listeningLine(r io.Reader) (string, error) {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if err != nil || strings.HasPrefix(line, "listening on ") {
			return line, err
		}
	}
}
