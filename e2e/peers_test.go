package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// distribution is one running CNCF distribution registry (v3.1.2), the reference peer
// the client tests copy to and from.
type distribution struct {
	Addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// startDistribution starts the distribution registry on a free loopback port with its
// storage in a temp dir, deletes enabled, and stops it at cleanup.
func startDistribution(t testing.TB) *distribution {
	t.Helper()
	return startDistributionWith(t, "")
}

// startDistributionWith starts distribution with extra top-level configuration (YAML).
func startDistributionWith(t testing.TB, extra string) *distribution {
	t.Helper()
	bin := tool(t, "registry")
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s`, filepath.Join(dir, "data"), addr, extra)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	d := &distribution{Addr: addr, done: make(chan struct{})}
	d.cmd = exec.Command(bin, "serve", cfgPath)
	d.cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start distribution: %v", err)
	}
	go func() { _ = d.cmd.Wait(); logf.Close(); close(d.done) }()
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		<-d.done
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Logf("distribution log:\n%s", truncate(b, 4000))
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 || resp.StatusCode == 401 {
				return d
			}
		}
		select {
		case <-d.done:
			t.Fatalf("distribution exited before answering /v2/")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("distribution did not answer /v2/ on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// countingProxy sits in front of a registry and counts what clients upload, so tests
// can prove that only missing blobs move.
type countingProxy struct {
	Addr string
	// uploaded is the request body bytes of blob upload requests (POST/PATCH/PUT under
	// /blobs/uploads/).
	uploaded atomic.Int64
	// mounts counts cross-repository mounts the registry accepted (201).
	mounts atomic.Int64
	// blobPuts counts uploads completed (PUT …?digest=, or a monolithic POST …?digest=,
	// answered 201).
	blobPuts atomic.Int64

	// sessions counts upload sessions opened (POST …/blobs/uploads/ not answered by a
	// successful mount).
	sessions atomic.Int64
	// manifestPuts counts manifests written (PUT …/manifests/…).
	manifestPuts atomic.Int64
	// downloaded is the response body bytes of blob reads (GET …/blobs/sha256:…).
	downloaded atomic.Int64

	// throttle is how many of the next requests the proxy answers itself with 429 and
	// Retry-After: 1, as a busy registry would.
	throttle atomic.Int64
	// throttled counts the requests it answered so.
	throttled atomic.Int64

	mu      sync.Mutex
	digests []string // digests of completed uploads, in order
}

func startCountingProxy(t testing.TB, backend string) *countingProxy {
	t.Helper()
	target, _ := url.Parse("http://" + backend)
	rp := httputil.NewSingleHostReverseProxy(target)
	p := &countingProxy{}
	rp.ModifyResponse = func(resp *http.Response) error {
		r := resp.Request
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") && resp.StatusCode == http.StatusCreated {
			p.manifestPuts.Add(1)
		}
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") && !strings.Contains(r.URL.Path, "/blobs/uploads/") {
			resp.Body = &countingBody{ReadCloser: resp.Body, n: &p.downloaded}
		}
		if !strings.Contains(r.URL.Path, "/blobs/uploads/") {
			return nil
		}
		if r.Method == http.MethodPost && !(r.URL.Query().Get("mount") != "" && resp.StatusCode == http.StatusCreated) {
			p.sessions.Add(1)
		}
		if r.Method == http.MethodPost && r.URL.Query().Get("mount") != "" && resp.StatusCode == http.StatusCreated {
			p.mounts.Add(1)
		}
		monolithic := r.Method == http.MethodPost && r.URL.Query().Get("digest") != ""
		if (r.Method == http.MethodPut || monolithic) && resp.StatusCode == http.StatusCreated {
			p.blobPuts.Add(1)
			p.mu.Lock()
			p.digests = append(p.digests, r.URL.Query().Get("digest"))
			p.mu.Unlock()
		}
		return nil
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/" && p.throttle.Add(-1) >= 0 {
			p.throttled.Add(1)
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}`)
			return
		}
		if strings.Contains(r.URL.Path, "/blobs/uploads/") && r.Body != nil {
			r.Body = &countingBody{ReadCloser: r.Body, n: &p.uploaded}
		}
		rp.ServeHTTP(w, r)
	})
	// The proxy must be on loopback too, and keep the Host the client used so the
	// registry's Location headers point back through the proxy.
	srv := httptest.NewUnstartedServer(h)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	p.Addr = l.Addr().String()
	return p
}

// reset zeroes the counters between steps of a test.
func (p *countingProxy) reset() {
	p.uploaded.Store(0)
	p.mounts.Store(0)
	p.blobPuts.Store(0)
	p.sessions.Store(0)
	p.manifestPuts.Store(0)
	p.downloaded.Store(0)
	p.mu.Lock()
	p.digests = nil
	p.mu.Unlock()
}

func (p *countingProxy) uploadedDigests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.digests...)
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}
