package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testSecret = "0123456789abcdef-test-secret"

// task is a real HTTP server on loopback standing for one task of a service: "/"
// answers its version, "/up" its health, "/slow?ms=N" its version after N ms.
type task struct {
	addr     string
	version  string
	healthy  atomic.Bool
	requests atomic.Int64 // requests other than health checks
	srv      *http.Server
}

func startTask(t testing.TB, version string, healthy bool) *task {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tk := &task{addr: ln.Addr().String(), version: version}
	tk.healthy.Store(healthy)
	mux := http.NewServeMux()
	mux.HandleFunc("/up", func(w http.ResponseWriter, r *http.Request) {
		if !tk.healthy.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		tk.requests.Add(1)
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		io.WriteString(w, tk.version)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		tk.requests.Add(1)
		w.Header().Set("X-Seen-Host", r.Host)
		io.WriteString(w, tk.version)
	})
	tk.srv = &http.Server{Handler: mux}
	go tk.srv.Serve(ln)
	t.Cleanup(func() { tk.srv.Close() })
	return tk
}

// stop shuts the task down gracefully, as the engine's stop would after the drain.
func (tk *task) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tk.srv.Shutdown(ctx)
}

// testProxy is a Proxy with its public and control listeners on loopback.
type testProxy struct {
	p       *Proxy
	url     string // public
	control string
	client  *Client
	close   func()
}

func startProxy(t testing.TB, stateFile string) *testProxy {
	t.Helper()
	p, err := New(Options{StateFile: stateFile})
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := p.Control([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	pub := serve(t, p)
	cs := serve(t, ctl)
	c, err := NewClient("http://"+cs.addr, testSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	tp := &testProxy{p: p, url: "http://" + pub.addr, control: "http://" + cs.addr, client: c}
	var once sync.Once
	tp.close = func() {
		once.Do(func() {
			pub.srv.Close()
			cs.srv.Close()
			p.Close()
		})
	}
	t.Cleanup(tp.close)
	return tp
}

type served struct {
	addr string
	srv  *http.Server
}

func serve(t testing.TB, h http.Handler) served {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go s.Serve(ln)
	return served{ln.Addr().String(), s}
}

// fastHealth checks every 20 ms, two passes in a row.
var fastHealth = HealthCheck{Path: "/up", Interval: Duration(20 * time.Millisecond), Timeout: Duration(time.Second), Threshold: 2}

func targets(ts ...*task) []string {
	out := make([]string, len(ts))
	for i, tk := range ts {
		out[i] = tk.addr
	}
	return out
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func isErr(err, target error) bool { return errors.Is(err, target) }
