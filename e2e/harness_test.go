// Package e2e drives the real hubctl binary against real peers: the Docker engine, crane,
// skopeo, oras and the official OCI conformance suite. Nothing here is mocked; every test
// talks to a `hubctl serve` process bound to 127.0.0.1 with its own data directory.
package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/hubctl/hubctl/internal/pgtest"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // driver "sqlite": tests read the server's metadata DB read-only
)

// hubctlBin is the binary TestMain builds once for the whole package.
var hubctlBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "hubctl-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	hubctlBin = filepath.Join(dir, "hubctl")
	// Build from the module root (the parent of e2e/) so the tests exercise exactly the
	// code in this tree, not an installed hubctl.
	build := exec.Command("go", "build", "-o", hubctlBin, "./cmd/hubctl")
	build.Dir = ".."
	// As released (.goreleaser.yaml): a static binary, which also starts three times
	// faster than one linked against libc.
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout = os.Stderr
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: go build ./cmd/hubctl:", err)
		return 1
	}
	// pgtest stops the PostgreSQL cluster, if a test started one, after the run.
	return pgtest.Run(m)
}

// inCI reports whether missing tools must fail the run instead of skipping: CI never
// skips silently.
func inCI() bool { return os.Getenv("CI") == "true" }

// skipOrFatal skips a test whose prerequisite is missing, or fails it under CI=true.
func skipOrFatal(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if inCI() {
		t.Fatalf("%s (CI=true: missing prerequisites fail the run; see e2e/install-tools.sh and .ci/run)", msg)
	}
	t.Skipf("%s (run e2e/install-tools.sh; with CI=true this is a failure)", msg)
}

// toolsDir is where e2e/install-tools.sh puts the go-installed tools.
func toolsDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "hubctl", "bin")
}

// tool returns the path of a third-party binary, preferring the pinned copy installed by
// e2e/install-tools.sh over whatever is on PATH.
func tool(t testing.TB, name string) string {
	t.Helper()
	if d := toolsDir(); d != "" {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	skipOrFatal(t, "%s not found in %s or PATH", name, toolsDir())
	return ""
}

var (
	dockerOnce sync.Once
	dockerErr  error
)

// requireDocker skips (or fails under CI) when no Docker engine answers.
func requireDocker(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		skipOrFatal(t, "docker CLI not found on PATH")
	}
	dockerOnce.Do(func() {
		out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput()
		if err != nil {
			dockerErr = fmt.Errorf("docker info: %v: %s", err, bytes.TrimSpace(out))
		}
	})
	if dockerErr != nil {
		skipOrFatal(t, "Docker engine not available: %v", dockerErr)
	}
}

// server is one running `hubctl serve` process.
type server struct {
	t       testing.TB
	DataDir string
	Addr    string // 127.0.0.1:PORT
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	waitErr error
	stopped bool
	args    []string    // extra serve flags, kept for Restart
	env     []string    // extra environment (e.g. storage credentials), kept for Restart
	addrCh  chan string // the listening address, once the process prints it
	// Scheme is https when a --tls flag turned TLS on (tls_test.go), else http.
	Scheme string
}

// adminPassword is the admin password of servers started with token auth.
const adminPassword = "e2e-admin-password"

// startServer starts `hubctl serve` on a free loopback port with a fresh data directory
// and returns once /readyz answers 200. The process is stopped with SIGTERM at cleanup.
// It runs with --auth=none: these tests are about the distribution API; token auth has
// tests of its own (startAuthServer).
// e2eSecretsKey seals stored secrets on the hubs of these tests that run on PostgreSQL.
const e2eSecretsKey = "e2e=ZTJlLXNlY3JldHMta2V5LTMyLWJ5dGVzLWxvbmchISE="

func startServer(t testing.TB) *server {
	t.Helper()
	return startServerWith(t, t.TempDir(), "--auth=none")
}

// startAuthServer starts a server with token auth on (the default) whose admin
// password is adminPassword.
func startAuthServer(t testing.TB) *server {
	t.Helper()
	return startServerWith(t, t.TempDir())
}

// startServerOn starts a server without auth on an existing data directory (used to
// restart after a crash or a clean stop).
func startServerOn(t testing.TB, dataDir string) *server {
	t.Helper()
	return startServerWith(t, dataDir, "--auth=none")
}

// startServerWith starts a server on dataDir with extra serve flags.
func startServerWith(t testing.TB, dataDir string, args ...string) *server {
	t.Helper()
	return startServerEnv(t, dataDir, nil, args...)
}

// startServerEnv is startServerWith with extra environment variables, for settings
// that must not appear on a command line (secrets).
func startServerEnv(t testing.TB, dataDir string, env []string, args ...string) *server {
	t.Helper()
	s := launchServerEnv(t, dataDir, env, args...)
	s.await()
	return s
}

// launchServerEnv starts the process of startServerEnv and returns at once, without
// waiting for it to listen (see await): tests that start several servers together.
func launchServerEnv(t testing.TB, dataDir string, env []string, args ...string) *server {
	t.Helper()
	logDir := t.TempDir()
	s := &server{
		t:       t,
		DataDir: dataDir,
		logPath: filepath.Join(logDir, "server.log"),
		done:    make(chan struct{}),
		args:    args,
		env:     env,
		Scheme:  "http",
	}
	for _, a := range args {
		if strings.HasPrefix(a, "--tls") && a != "--tls=off" && !strings.HasPrefix(a, "--tls-redirect") {
			s.Scheme = "https"
		}
	}
	logf, err := os.Create(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(hubctlBin, append([]string{"serve", "--addr", "127.0.0.1:0", "--data", dataDir}, args...)...)
	// A stray HUBCTL_* variable in the developer's shell must not change the server the
	// tests believe they started.
	s.cmd.Env = append(append(cleanEnv("HUBCTL_"), "HUBCTL_ADMIN_PASSWORD="+adminPassword), env...)
	// A hub on PostgreSQL refuses to start without the keys that seal stored secrets,
	// which its replicas must share: give every one the same.
	if slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "HUBCTL_DB_PATH=postgres") }) &&
		!slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "HUBCTL_SECRETS_") }) {
		s.cmd.Env = append(s.cmd.Env, "HUBCTL_SECRETS_KEY="+e2eSecretsKey)
	}
	s.cmd.Dir = logDir
	s.cmd.Stdout = logf
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start hubctl serve: %v", err)
	}
	addrCh := make(chan string, 1)
	go func() {
		// Copy every stderr line into the log and pick out the bound address.
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		found := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if !found {
				if i := strings.Index(line, "listening on "); i >= 0 {
					f := strings.Fields(line[i+len("listening on "):])
					if len(f) > 0 {
						found = true
						addrCh <- strings.TrimPrefix(strings.TrimPrefix(f[0], "http://"), "https://")
					}
				}
			}
		}
		_, _ = io.Copy(logf, stderr)
		s.waitErr = s.cmd.Wait()
		_ = logf.Close()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			s.dumpLog(200)
		}
	})
	s.addrCh = addrCh
	return s
}

// await waits until a launched server listens and answers /readyz.
func (s *server) await() {
	t := s.t
	t.Helper()
	select {
	case s.Addr = <-s.addrCh:
	case <-s.done:
		s.dumpLog(100)
		t.Fatalf("hubctl serve exited before listening: %v", s.waitErr)
	}
	if !strings.HasPrefix(s.Addr, "127.0.0.1:") {
		t.Fatalf("hubctl serve is listening on %q, want 127.0.0.1:PORT", s.Addr)
	}
	s.waitReady()
}

// waitReady polls /readyz until it answers 200. The loop is a hang guard, not a
// performance assertion: a healthy server is ready within milliseconds.
func (s *server) waitReady() {
	s.t.Helper()
	var last string
	for i := 0; i < 600; i++ {
		select {
		case <-s.done:
			s.dumpLog(100)
			s.t.Fatalf("hubctl serve exited before ready: %v", s.waitErr)
		default:
		}
		resp, err := harnessClient.Get(s.URL("/readyz"))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%s: %s", resp.Status, bytes.TrimSpace(b))
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("hubctl serve on %s never became ready: %s", s.Addr, last)
}

// URL returns SCHEME://ADDR + path (http for a server value made by hand).
func (s *server) URL(path string) string {
	if s.Scheme == "" {
		return "http://" + s.Addr + path
	}
	return s.Scheme + "://" + s.Addr + path
}

// Stop sends SIGTERM and waits for a graceful exit; a non-zero exit after SIGTERM is a
// test failure because graceful shutdown is part of the contract.
func (s *server) Stop() {
	if s.stopped {
		return
	}
	s.stopped = true
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		// Hang guard only: a stuck shutdown must not hang the whole suite.
		_ = s.cmd.Process.Kill()
		<-s.done
		s.t.Errorf("hubctl serve did not exit within 60s of SIGTERM")
		return
	}
	if s.waitErr != nil {
		s.t.Errorf("hubctl serve exited uncleanly after SIGTERM: %v", s.waitErr)
	}
}

// Kill sends SIGKILL (kill -9) and waits for the process to be gone: crash tests.
func (s *server) Kill() {
	s.t.Helper()
	if s.stopped {
		return
	}
	s.stopped = true
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		s.t.Fatalf("kill -9: %v", err)
	}
	<-s.done
}

// Restart stops the server if it still runs and starts a new one on the same data dir.
func (s *server) Restart() *server {
	s.t.Helper()
	s.Stop()
	return startServerEnv(s.t, s.DataDir, s.env, s.args...)
}

func (s *server) dumpLog(lines int) {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	s.t.Logf("last %d lines of hubctl serve (%s, data %s):\n%s", len(all), s.Addr, s.DataDir, strings.Join(all, "\n"))
}

// cleanEnv returns the environment without variables starting with any of prefixes.
func cleanEnv(prefixes ...string) []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}

// run executes a command and returns its stdout; it fails the test on a non-zero exit,
// showing stdout and stderr.
func run(t testing.TB, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, errOut, err := runErr(t, dir, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(name), strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// runErr executes a command and returns stdout, stderr and the error.
func runErr(t testing.TB, dir string, env []string, name string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	// A child left running in the background (a README block's `cmd &`) keeps the
	// output pipes open: without a bound Run would wait for it until the test's timeout.
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// do sends one request and returns the response with its body read.
func do(t testing.TB, method, url string, body io.Reader, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if cl, ok := hdr["Content-Length"]; ok {
		var n int64
		fmt.Sscan(cl, &n)
		req.ContentLength = n
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, b
}

// noRedirect shows redirects to the test instead of following them: a registry that
// redirects where the spec wants an error must be visible.
var noRedirect = &http.Client{Transport: harnessTransport, CheckRedirect: func(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}}

// harnessTransport is the harness's own: it does not verify a TLS server's certificate
// (tls_test.go proves the chain with the real clients, given only the CA; the
// harness's requests only set up and read back).
var harnessTransport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	return t
}()

// harnessClient follows redirects, as http.Get does.
var harnessClient = &http.Client{Transport: harnessTransport}

// specError is the distribution spec's error body.
type specError struct {
	Errors []struct {
		Code    string          `json:"code"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	} `json:"errors"`
}

// errorCodes parses a spec error body and returns its codes; it fails the test when the
// body is not one.
func errorCodes(t testing.TB, resp *http.Response, body []byte) []string {
	t.Helper()
	var e specError
	if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) == 0 {
		t.Fatalf("%s %s: %s: want a spec error body, got %q", resp.Request.Method, resp.Request.URL, resp.Status, truncate(body, 300))
	}
	var codes []string
	for _, it := range e.Errors {
		codes = append(codes, it.Code)
	}
	return codes
}

// wantError asserts status and that the body is a spec error carrying one of codes.
func wantError(t testing.TB, resp *http.Response, body []byte, statuses []int, codes ...string) {
	t.Helper()
	okStatus := false
	for _, s := range statuses {
		okStatus = okStatus || resp.StatusCode == s
	}
	if !okStatus {
		t.Errorf("%s %s: status %s, want one of %v; body %q", resp.Request.Method, resp.Request.URL, resp.Status, statuses, truncate(body, 300))
		return
	}
	got := errorCodes(t, resp, body)
	for _, g := range got {
		for _, c := range codes {
			if g == c {
				return
			}
		}
	}
	t.Errorf("%s %s: error codes %v, want one of %v", resp.Request.Method, resp.Request.URL, got, codes)
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// sha256Digest returns the sha256 digest string of b.
func sha256Digest(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// pushBlob uploads b to repo monolithically (POST ?digest=) and returns its digest.
func pushBlob(t testing.TB, s *server, repo string, b []byte) string {
	t.Helper()
	d := sha256Digest(b)
	resp, body := do(t, http.MethodPost, s.URL("/v2/"+repo+"/blobs/uploads/?digest="+d), bytes.NewReader(b),
		map[string]string{"Content-Type": "application/octet-stream"})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push blob %s to %s: %s %q", d, repo, resp.Status, truncate(body, 300))
	}
	return d
}

// pushManifest PUTs a manifest under ref and returns the response.
func pushManifest(t testing.TB, s *server, repo, ref, mediaType string, b []byte) (*http.Response, []byte) {
	t.Helper()
	return do(t, http.MethodPut, s.URL("/v2/"+repo+"/manifests/"+ref), bytes.NewReader(b),
		map[string]string{"Content-Type": mediaType})
}

// openDB opens the server's SQLite metadata read-only. The server keeps running; a
// read-only connection cannot disturb it.
func openDB(t testing.TB, dataDir string) *sql.DB {
	t.Helper()
	path := filepath.Join(dataDir, "hubctl.db")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("metadata DB: %v", err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// count runs a COUNT query against the server's DB.
func count(t testing.TB, dataDir, query string, args ...any) int {
	t.Helper()
	db := openDB(t, dataDir)
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// files lists the regular files under dataDir/sub (relative to dataDir); a missing sub
// directory is an empty list.
func files(t testing.TB, dataDir, sub string) []string {
	t.Helper()
	var out []string
	root := filepath.Join(dataDir, sub)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dataDir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// blobPath is where the filesystem store keeps a verified blob: blobs/<alg>/<2 hex>/<hex>.
func blobPath(dataDir, dgst string) string {
	alg, hexPart, _ := strings.Cut(dgst, ":")
	if len(hexPart) < 2 {
		return filepath.Join(dataDir, "blobs", alg, hexPart)
	}
	return filepath.Join(dataDir, "blobs", alg, hexPart[:2], hexPart)
}

// exists reports whether path exists.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
