package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/token"
	"github.com/opencontainers/go-digest"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/config"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
)

// syncBuffer is a log sink safe to read while the server writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logLines decodes the JSON log lines written so far.
func logLines(t *testing.T, b *syncBuffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// testAdminPassword is the admin password of servers started by start.
const testAdminPassword = "server-test-admin"

type running struct {
	addr    string
	entered chan struct{} // receives when a PATCH reaches the handler
	cancel  context.CancelFunc
	done    chan error
	log     *syncBuffer
	data    string
}

// start runs the server in-process on 127.0.0.1:0 and returns once it is listening.
func start(t testing.TB, flags map[string]string) *running {
	t.Helper()
	data := t.TempDir()
	// These tests are about the server's mechanics; token auth has its own test below.
	f := map[string]string{"addr": "127.0.0.1:0", "data": data, "auth.mode": "none"}
	for k, v := range flags {
		f[k] = v
	}
	env := func(k string) (string, bool) {
		if k == config.EnvAdminPassword {
			return testAdminPassword, true
		}
		return "", false
	}
	cfg, err := config.Load(config.Sources{Flags: f, LookupEnv: env})
	if err != nil {
		t.Fatal(err)
	}
	logBuf := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), log: logBuf, data: data, entered: make(chan struct{}, 1)}
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Method == http.MethodPatch {
				r.entered <- struct{}{}
			}
			next.ServeHTTP(w, req)
		})
	}
	go func() {
		err := run(ctx, cfg, log, pw, wrap)
		pw.CloseWithError(io.EOF)
		r.done <- err
	}()
	line, err := listeningLine(pr)
	if err != nil {
		t.Fatalf("server did not report its address: %v (Run: %v)", err, <-r.done)
	}
	// Drain the rest so Run never blocks writing to stderr.
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if !ok {
		t.Fatalf("first stderr line %q", line)
	}
	r.addr = addr
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	if err := <-r.done; err != nil {
		t.Fatalf("Run returned %v", err)
	}
	r.done <- nil // for the cleanup
}

func get(t *testing.T, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestRunServesHealthAndRegistry(t *testing.T) {
	r := start(t, nil)
	base := "http://" + r.addr

	resp, body := get(t, base+"/healthz", nil)
	if resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", resp.StatusCode, body)
	}

	resp, body = get(t, base+"/readyz", nil)
	var ready Readiness
	if err := json.Unmarshal([]byte(body), &ready); err != nil || resp.StatusCode != 200 ||
		ready.Status != "ready" || ready.Checks["storage"] != "ok" || ready.Checks["database"] != "ok" {
		t.Errorf("/readyz = %d %s (%v)", resp.StatusCode, body, err)
	}

	resp, _ = get(t, base+"/v2/?token=hunter2", map[string]string{"Authorization": "Bearer s3cr3t-token"})
	if resp.StatusCode != 200 || resp.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
		t.Errorf("/v2/ = %d, headers %v", resp.StatusCode, resp.Header)
	}

	// Stores were opened under the data directory, as documented.
	for _, p := range []string{"hubctl.db", "blobs", "uploads"} {
		if _, err := os.Stat(filepath.Join(r.data, p)); err != nil {
			t.Errorf("data dir: %v", err)
		}
	}

	r.stop(t)
	if _, err := net.Dial("tcp", r.addr); err == nil {
		t.Error("server still accepts connections after shutdown")
	}
	logs := r.log.String()
	for _, secret := range []string{"hunter2", "s3cr3t-token", "token="} {
		if strings.Contains(logs, secret) {
			t.Errorf("log leaks %q:\n%s", secret, logs)
		}
	}
	var paths []string
	for _, l := range logLines(t, r.log) {
		if l["msg"] == "request" {
			paths = append(paths, l["path"].(string))
			for _, k := range []string{"request_id", "method", "status", "bytes", "duration", "remote", "repository", "user"} {
				if _, ok := l[k]; !ok {
					t.Errorf("access log line lacks %s: %v", k, l)
				}
			}
		}
	}
	if strings.Join(paths, " ") != "/healthz /readyz /v2/" {
		t.Errorf("access log paths = %v", paths)
	}
}

func TestRequestID(t *testing.T) {
	r := start(t, nil)
	resp, _ := get(t, "http://"+r.addr+"/healthz", map[string]string{RequestIDHeader: "edge-4f2a:7"})
	if got := resp.Header.Get(RequestIDHeader); got != "edge-4f2a:7" {
		t.Errorf("sane incoming id: echoed %q", got)
	}
	for _, bad := range []string{"has space", "quote\"d", strings.Repeat("a", 129)} {
		resp, _ := get(t, "http://"+r.addr+"/healthz", map[string]string{RequestIDHeader: bad})
		got := resp.Header.Get(RequestIDHeader)
		if got == "" || got == bad || !saneRequestID(got) {
			t.Errorf("incoming id %q: response id %q, want a fresh one", bad, got)
		}
	}
	a, _ := get(t, "http://"+r.addr+"/healthz", nil)
	b, _ := get(t, "http://"+r.addr+"/healthz", nil)
	if a.Header.Get(RequestIDHeader) == "" || a.Header.Get(RequestIDHeader) == b.Header.Get(RequestIDHeader) {
		t.Errorf("generated ids %q, %q", a.Header.Get(RequestIDHeader), b.Header.Get(RequestIDHeader))
	}
	r.stop(t)
	if !strings.Contains(r.log.String(), `"request_id":"edge-4f2a:7"`) {
		t.Errorf("access log lacks the incoming id:\n%s", r.log.String())
	}
}

// startUpload opens an upload session and returns its absolute URL.
func startUpload(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Post(base+"/v2/shutdown/test/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start upload: %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	if strings.HasPrefix(loc, "/") {
		loc = base + loc
	}
	return loc
}

// patchInFlight starts a PATCH whose body stays open until the returned writer is closed.
func patchInFlight(t *testing.T, r *running, url string) (*io.PipeWriter, chan *http.Response, chan error) {
	t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPatch, url, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	respc, errc := make(chan *http.Response, 1), make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			errc <- err
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		respc <- resp
	}()
	if _, err := pw.Write(bytes.Repeat([]byte("a"), 4096)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.entered:
	case err := <-errc:
		t.Fatalf("PATCH: %v", err)
	}
	return pw, respc, errc
}

// waitRefused waits until the listener is closed, which Shutdown does first.
func waitRefused(addr string) {
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		c.Close()
		runtime.Gosched()
	}
}

func TestShutdownLetsInFlightRequestsFinish(t *testing.T) {
	r := start(t, nil)
	base := "http://" + r.addr
	pw, respc, errc := patchInFlight(t, r, startUpload(t, base))

	r.cancel()
	waitRefused(r.addr)
	select {
	case err := <-r.done:
		t.Fatalf("Run returned (%v) while a request was in flight", err)
	default:
	}
	if _, err := pw.Write(bytes.Repeat([]byte("b"), 4096)); err != nil {
		t.Fatalf("in-flight request was cut: %v", err)
	}
	pw.Close()
	select {
	case resp := <-respc:
		if resp.StatusCode != http.StatusAccepted {
			t.Errorf("in-flight PATCH finished with %d", resp.StatusCode)
		}
	case err := <-errc:
		t.Fatalf("in-flight PATCH failed: %v", err)
	}
	if err := <-r.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	r.done <- nil
}

func TestShutdownTimeoutCutsStuckRequests(t *testing.T) {
	r := start(t, map[string]string{"shutdown_timeout": "1ms"})
	pw, _, _ := patchInFlight(t, r, startUpload(t, "http://"+r.addr))
	defer pw.Close()
	r.cancel()
	// The body is never finished: Run must still return once the timeout forces it.
	if err := <-r.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	r.done <- nil
	if !strings.Contains(r.log.String(), "shutdown timeout reached") {
		t.Errorf("no warning about the forced close:\n%s", r.log.String())
	}
}

func TestRunFailsOnBusyAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg, err := config.Load(config.Sources{Flags: map[string]string{"addr": ln.Addr().String(), "data": t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	err = Run(context.Background(), cfg, slog.New(slog.DiscardHandler), &stderr)
	if err == nil || !strings.Contains(err.Error(), "listen on "+ln.Addr().String()) {
		t.Fatalf("Run on a busy address: %v", err)
	}
	// It binds before the first start creates anything: no one-time password was
	// shown, and the admin account is still to be created by the next start.
	if strings.Contains(stderr.String(), "password") {
		t.Errorf("a start that could not bind printed: %q", stderr.String())
	}
	db, err := OpenDatabase(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.GetUser(context.Background(), AdminUser); err == nil {
		t.Error("a start that could not bind created the admin account")
	}
}

// TestAdminPasswordIgnoredSaysWhy: once the admin account exists, a set
// HUBCTL_ADMIN_PASSWORD changes nothing, and serve says so with the way out.
func TestAdminPasswordIgnoredSaysWhy(t *testing.T) {
	data := t.TempDir()
	cfg, err := config.Load(config.Sources{Flags: map[string]string{"data": data},
		LookupEnv: func(k string) (string, bool) {
			if k == config.EnvAdminPassword {
				return "first-password", true
			}
			return "", false
		}})
	if err != nil {
		t.Fatal(err)
	}
	db, err := openMetaStore(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var stderr bytes.Buffer
	if err := ensureAdmin(context.Background(), db, cfg, &stderr); err != nil {
		t.Fatal(err)
	}
	if got := stderr.String(); !strings.Contains(got, "with the password from HUBCTL_ADMIN_PASSWORD") {
		t.Errorf("first start: %q", got)
	}
	stderr.Reset()
	cfg.Auth.AdminPassword = "second-password"
	if err := ensureAdmin(context.Background(), db, cfg, &stderr); err != nil {
		t.Fatal(err)
	}
	want := "HUBCTL_ADMIN_PASSWORD is ignored: the admin account already exists in " + cfg.DB.Path +
		" (the variable sets its password only at the first start); to change it: hubctl admin reset-password admin --data " + data + "\n"
	if got := stderr.String(); got != want {
		t.Errorf("second start with the variable set:\n got %q\nwant %q", got, want)
	}
	stderr.Reset()
	cfg.Auth.AdminPassword = ""
	if err := ensureAdmin(context.Background(), db, cfg, &stderr); err != nil || stderr.Len() != 0 {
		t.Errorf("start without the variable: %v %q", err, stderr.String())
	}
}

func TestReadyzReportsFailedStores(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	blobs, err := blobstore.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := sqlstore.OpenSQLite(ctx, filepath.Join(dir, "hubctl.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	logBuf := &syncBuffer{}
	h := NewHandler(slog.New(slog.NewJSONHandler(logBuf, nil)), Routes{V2: http.NotFoundHandler()}, []Check{
		{Name: "storage", Ping: blobs.Ping},
		{Name: "database", Ping: meta.Ping},
	})
	srv := newTestServer(t, h)

	check := func(wantStatus int, wantFailed string) {
		t.Helper()
		resp, body := get(t, srv+"/readyz", nil)
		var ready Readiness
		if err := json.Unmarshal([]byte(body), &ready); err != nil {
			t.Fatalf("/readyz body %q: %v", body, err)
		}
		if resp.StatusCode != wantStatus || strings.Join(ready.Failed, ",") != wantFailed {
			t.Fatalf("/readyz = %d %s; want %d failed=%q", resp.StatusCode, body, wantStatus, wantFailed)
		}
	}
	check(200, "")

	// Root may write anywhere, so break the store's temp dir by replacing it with a file.
	tmp := filepath.Join(dir, "tmp")
	if err := os.RemoveAll(tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmp, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	check(503, "storage")

	if err := meta.Close(); err != nil {
		t.Fatal(err)
	}
	check(503, "database,storage")
	if strings.Contains(body503(t, srv), dir) {
		t.Error("/readyz leaks filesystem paths to clients")
	}
	if !strings.Contains(logBuf.String(), "readiness check failed") {
		t.Error("failures were not logged")
	}
}

func body503(t *testing.T, base string) string {
	_, body := get(t, base+"/readyz", nil)
	return body
}

func TestRunRefusesADataDirectoryInUse(t *testing.T) {
	r := start(t, nil)
	cfg, err := config.Load(config.Sources{Flags: map[string]string{"addr": "127.0.0.1:0", "data": r.data}})
	if err != nil {
		t.Fatal(err)
	}
	err = Run(context.Background(), cfg, slog.New(slog.DiscardHandler), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "in use by another hubctl serve") {
		t.Fatalf("second server on %s: %v", r.data, err)
	}
	// The first one still serves, and once it stops the directory is free again.
	if resp, _ := get(t, "http://"+r.addr+"/healthz", nil); resp.StatusCode != 200 {
		t.Fatalf("first server: %d", resp.StatusCode)
	}
	r.stop(t)
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, slog.New(slog.DiscardHandler), pw); pw.Close() }()
	line, err := listeningLine(pr)
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	cancel()
	if !strings.HasPrefix(line, "listening on ") {
		t.Fatalf("after the first stopped: %q, %v, Run: %v", line, err, <-done)
	}
	if err := <-done; err != nil {
		t.Fatalf("after the first stopped: %v", err)
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

func TestTokenAuth(t *testing.T) {
	r := start(t, map[string]string{"auth.mode": "token"})
	base := "http://" + r.addr

	resp, _ := get(t, base+"/v2/", nil)
	want := `Bearer realm="` + base + `/token",service="hubctl"`
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != want {
		t.Fatalf("/v2/ without a token = %d %q, want 401 %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), want)
	}
	resp, body := get(t, base+"/token?service=hubctl&scope=repository:admin/app:pull", nil)
	var tok struct {
		Token     string `json:"token"`
		ExpiresIn int    `json:"expires_in"`
	}
	if err := json.Unmarshal([]byte(body), &tok); err != nil || resp.StatusCode != 200 || tok.Token == "" || tok.ExpiresIn != 300 {
		t.Fatalf("anonymous token: %d %s", resp.StatusCode, body)
	}
	resp, _ = get(t, base+"/v2/", map[string]string{"Authorization": "Bearer " + tok.Token})
	if resp.StatusCode != 200 {
		t.Fatalf("/v2/ with an anonymous token = %d", resp.StatusCode)
	}
	// The anonymous token holds no pull on a private repository: log in and retry.
	resp, _ = get(t, base+"/v2/admin/app/tags/list", map[string]string{"Authorization": "Bearer " + tok.Token})
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
		t.Fatalf("private repo with an anonymous token = %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp, body = get(t, base+"/token/jwks.json", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"alg":"ES256"`) {
		t.Fatalf("jwks = %d %s", resp.StatusCode, body)
	}
	// The hub API is mounted and takes the admin's password.
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+testAdminPassword))
	resp, body = get(t, base+"/api/v1/user", map[string]string{"Authorization": basic})
	if resp.StatusCode != 200 || !strings.Contains(body, `"admin"`) {
		t.Fatalf("/api/v1/user = %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, base+"/api/v1/user", nil); resp.StatusCode != 401 {
		t.Fatalf("/api/v1/user without credentials = %d", resp.StatusCode)
	}
	// No secret reaches the log.
	if strings.Contains(r.log.String(), testAdminPassword) {
		t.Fatalf("the log holds the admin password: %s", r.log.String())
	}
}

func TestPushesAndDeletesAreAudited(t *testing.T) {
	r := start(t, nil)
	base := "http://" + r.addr
	cfg := []byte(`{}`)
	cd := digest.FromBytes(cfg)
	resp, err := http.Post(base+"/v2/audit/app/blobs/uploads/?digest="+cd.String(), "application/octet-stream", bytes.NewReader(cfg))
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("push blob: %v %v", err, resp)
	}
	resp.Body.Close()
	m := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + cd.String() + `","size":2},"layers":[]}`)
	req, _ := http.NewRequest("PUT", base+"/v2/audit/app/manifests/v1", bytes.NewReader(m))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	if resp, err = http.DefaultClient.Do(req); err != nil || resp.StatusCode != 201 {
		t.Fatalf("push manifest: %v %v", err, resp)
	}
	resp.Body.Close()
	req, _ = http.NewRequest("DELETE", base+"/v2/audit/app/manifests/v1", nil)
	if resp, err = http.DefaultClient.Do(req); err != nil || resp.StatusCode != 202 {
		t.Fatalf("delete tag: %v %v", err, resp)
	}
	resp.Body.Close()
	r.stop(t) // drains the audit writer

	store, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(r.data, "hubctl.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	entries, err := store.ListAudit(context.Background(), accounts.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Action+" "+e.Target+" "+e.Actor+" "+e.Remote)
	}
	want := []string{"delete audit/app:v1 anonymous 127.0.0.1", "push audit/app:v1 anonymous 127.0.0.1"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("audit log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestReloadKeysPicksUpARotation(t *testing.T) {
	dir := t.TempDir()
	keys, err := token.LoadOrCreateKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { reloadKeys(ctx, slog.New(slog.DiscardHandler), keys, 10*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	other, err := token.LoadOrCreateKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := other.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for keys.SigningKeyID() != kid {
		if time.Now().After(deadline) {
			t.Fatalf("the rotation to %s was not picked up", kid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
