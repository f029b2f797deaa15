// Package benchhub starts and stops `hubctl serve` processes for the benchmarks under
// bench/, so each benchmark measures a real hub the same way.
package benchhub

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Hub is one `hubctl serve` process.
type Hub struct {
	// Addr is the host:port it listens on.
	Addr string
	// Data is its data directory; Password its admin password.
	Data     string
	Password string
	cmd      *exec.Cmd
	log      *os.File
	done     chan struct{}
}

// Start starts `hubctl serve` (the binary bin) on a free loopback port with data
// directory data, admin password password and the extra environment env (the
// caller's HUBCTL_ variables are dropped), and waits until /readyz answers 200. The
// hub's output is appended to data/serve.log.
func Start(bin, data, password string, env []string) (*Hub, error) {
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(data, "serve.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	h := &Hub{Data: data, Password: password, log: logf, done: make(chan struct{})}
	h.cmd = exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data", data)
	var base []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HUBCTL_") {
			base = append(base, kv)
		}
	}
	h.cmd.Env = append(append(base, "HUBCTL_ADMIN_PASSWORD="+password), env...)
	h.cmd.Stdout = logf
	stderr, err := h.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := h.cmd.Start(); err != nil {
		return nil, err
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		found := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if i := strings.Index(line, "listening on "); i >= 0 && !found {
				found = true
				addr <- strings.Fields(line[i+len("listening on "):])[0]
			}
		}
		_ = h.cmd.Wait()
		close(h.done)
	}()
	select {
	case h.Addr = <-addr:
	case <-h.done:
		return nil, fmt.Errorf("hubctl serve exited before listening (log: %s)", logf.Name())
	case <-time.After(60 * time.Second):
		h.Stop()
		return nil, fmt.Errorf("hubctl serve did not listen within 60 s (log: %s)", logf.Name())
	}
	for range 600 {
		if resp, err := http.Get("http://" + h.Addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return h, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	h.Stop()
	return nil, fmt.Errorf("hubctl serve on %s never became ready (log: %s)", h.Addr, logf.Name())
}

// Stop ends the process with SIGTERM (SIGKILL after 60 s) and waits for it.
func (h *Hub) Stop() {
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.done:
	case <-time.After(60 * time.Second):
		_ = h.cmd.Process.Kill()
		<-h.done
	}
	_ = h.log.Close()
}

// Restart stops the hub and starts it again on its data with env instead.
func (h *Hub) Restart(bin string, env []string) (*Hub, error) {
	h.Stop()
	return Start(bin, h.Data, h.Password, env)
}

// PID is the process id, for its CPU time and memory.
func (h *Hub) PID() int { return h.cmd.Process.Pid }
