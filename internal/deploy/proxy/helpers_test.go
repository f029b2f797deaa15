package proxy

import (
	"context"
	"errors"
	"fmt"
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

// get fetches path through the proxy and returns the body; a status other than
// 200 is an error.
func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, b)
	}
	return string(b), nil
}

// load sends requests continuously through the proxy from several workers and
// records every outcome with its start time.
type load struct {
	stop     chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
	mu       sync.Mutex
	total    int
	failures []string
	results  []loadResult
}

type loadResult struct {
	start time.Time
	body  string
}

func startLoad(url string, workers int) *load {
	l := &load{stop: make(chan struct{})}
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for range workers {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				start := time.Now()
				body, err := get(c, url)
				l.mu.Lock()
				l.total++
				if err != nil {
					l.failures = append(l.failures, err.Error())
				} else {
					l.results = append(l.results, loadResult{start, body})
				}
				l.mu.Unlock()
			}
		})
	}
	return l
}

func (l *load) end() {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// since returns the bodies of requests started after t, counted by body.
func (l *load) since(t time.Time) map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for _, r := range l.results {
		if r.start.After(t) {
			out[r.body]++
		}
	}
	return out
}

func (l *load) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
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
