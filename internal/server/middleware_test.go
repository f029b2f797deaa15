package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/reqlog"
)

func newTestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestSaneRequestID(t *testing.T) {
	tests := map[string]bool{
		"abc":                      true,
		"4f2a-11:ee/x+y=":          true,
		"a_b.c":                    true,
		"":                         false,
		"a b":                      false,
		"a\nb":                     false,
		`a"b`:                      false,
		"ünïcode":                  false,
		strings.Repeat("x", 128):   true,
		strings.Repeat("x", 129):   false,
		"level=ERROR msg=injected": false,
	}
	for in, want := range tests {
		if got := saneRequestID(in); got != want {
			t.Errorf("saneRequestID(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestPanicBecomes500JSON(t *testing.T) {
	logBuf := &syncBuffer{}
	v2 := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("secret internal state")
	})
	base := newTestServer(t, NewHandler(slog.New(slog.NewJSONHandler(logBuf, nil)), Routes{V2: v2}, nil))
	resp, body := get(t, base+"/v2/x/manifests/latest", nil)
	if resp.StatusCode != 500 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var e struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || len(e.Errors) != 1 || e.Errors[0].Code != "UNKNOWN" {
		t.Fatalf("body %q (%v)", body, err)
	}
	if strings.Contains(body, "secret") || strings.Contains(body, "goroutine") {
		t.Errorf("panic detail reached the client: %s", body)
	}
	if resp.Header.Get(RequestIDHeader) == "" {
		t.Error("no request id on the error response")
	}
	logs := logBuf.String()
	if !strings.Contains(logs, "secret internal state") || !strings.Contains(logs, "goroutine") {
		t.Errorf("panic and stack not logged:\n%s", logs)
	}
	if !strings.Contains(logs, `"status":500`) {
		t.Errorf("access log does not record the 500:\n%s", logs)
	}
}

func TestPanicAfterHeadersAbortsConnection(t *testing.T) {
	v2 := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		_, _ = w.Write([]byte("partial"))
		panic("midway")
	})
	base := newTestServer(t, NewHandler(slog.New(slog.DiscardHandler), Routes{V2: v2}, nil))
	resp, err := http.Get(base + "/v2/x/blobs/sha256:0")
	if err != nil {
		return // aborted before the client saw headers: also correct
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Error("client read a complete body from a handler that panicked midway")
	}
}

func TestAccessLogReadsReqlogInfo(t *testing.T) {
	logBuf := &syncBuffer{}
	v2 := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := reqlog.From(r.Context())
		info.Repository = "library/alpine"
		info.User = "alice"
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte("12345"))
	})
	base := newTestServer(t, NewHandler(slog.New(slog.NewJSONHandler(logBuf, nil)), Routes{V2: v2}, nil))
	resp, _ := get(t, base+"/v2/library/alpine/manifests/1", map[string]string{RequestIDHeader: "rid-1"})
	if resp.StatusCode != 201 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	lines := waitLogLines(t, logBuf, 1)
	if len(lines) != 1 {
		t.Fatalf("want one access log line, got %d", len(lines))
	}
	l := lines[0]
	for k, want := range map[string]any{
		"request_id": "rid-1", "method": "GET", "path": "/v2/library/alpine/manifests/1",
		"repository": "library/alpine", "user": "alice", "status": float64(201), "bytes": float64(5),
	} {
		if l[k] != want {
			t.Errorf("%s = %v, want %v", k, l[k], want)
		}
	}
}

// TestResponseWriterKeepsCapabilities serves a file the way blob GETs do and checks that
// the wrapper still offers io.ReaderFrom (sendfile) and, through Unwrap, the
// ResponseController features of the real connection.
func TestResponseWriterKeepsCapabilities(t *testing.T) {
	logBuf := &syncBuffer{}
	p := filepath.Join(t.TempDir(), "blob")
	content := strings.Repeat("0123456789", 100_000)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	checks := make(chan error, 3)
	v2 := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(io.ReaderFrom); !ok {
			checks <- errors.New("wrapper hides io.ReaderFrom")
		}
		if _, ok := w.(interface{ Unwrap() http.ResponseWriter }).Unwrap().(io.ReaderFrom); !ok {
			checks <- errors.New("unwrapped writer is not the net/http response")
		}
		if err := http.NewResponseController(w).SetWriteDeadline(time.Time{}); err != nil {
			checks <- err
		}
		close(checks)
		f, err := os.Open(p)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, "", time.Time{}, f)
	})
	base := newTestServer(t, NewHandler(slog.New(slog.NewJSONHandler(logBuf, nil)), Routes{V2: v2}, nil))
	resp, body := get(t, base+"/v2/x/blobs/sha256:1", nil)
	for err := range checks {
		t.Error(err)
	}
	if resp.StatusCode != 200 || body != content {
		t.Fatalf("status %d, body %d bytes", resp.StatusCode, len(body))
	}
	if l := waitLogLines(t, logBuf, 1); len(l) != 1 || l[0]["bytes"] != float64(len(content)) {
		t.Errorf("access log bytes: %v", l)
	}
}

// readerFromRecorder is an http.ResponseWriter that notes whether ReadFrom was used.
type readerFromRecorder struct {
	*httptest.ResponseRecorder
	readFrom bool
}

func (r *readerFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	r.readFrom = true
	return io.Copy(r.ResponseRecorder, src)
}

func TestResponseWriterDelegatesReadFrom(t *testing.T) {
	under := &readerFromRecorder{ResponseRecorder: httptest.NewRecorder()}
	w := &responseWriter{ResponseWriter: under}
	// A LimitedReader, like the one http.ServeContent copies from, has no WriteTo, so
	// io.Copy goes through ReadFrom.
	n, err := io.Copy(w, io.LimitReader(strings.NewReader("hello"), 5))
	if err != nil || n != 5 || !under.readFrom || w.bytes != 5 || w.status != 200 {
		t.Fatalf("n=%d err=%v delegated=%v bytes=%d status=%d", n, err, under.readFrom, w.bytes, w.status)
	}
	// Without an underlying ReaderFrom, ReadFrom must copy rather than recurse.
	plain := &responseWriter{ResponseWriter: httptest.NewRecorder()}
	if n, err := plain.ReadFrom(strings.NewReader("abc")); err != nil || n != 3 || plain.bytes != 3 {
		t.Fatalf("fallback: n=%d err=%v bytes=%d", n, err, plain.bytes)
	}
}

func TestHealthzNeedsNoDependencies(t *testing.T) {
	failing := []Check{{Name: "database", Ping: func(context.Context) error { return errors.New("down") }}}
	base := newTestServer(t, NewHandler(slog.New(slog.DiscardHandler), Routes{V2: http.NotFoundHandler()}, failing))
	if resp, body := get(t, base+"/healthz", nil); resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q with a failing dependency", resp.StatusCode, body)
	}
	if resp, _ := get(t, base+"/readyz", nil); resp.StatusCode != 503 {
		t.Errorf("/readyz = %d with a failing dependency", resp.StatusCode)
	}
}

func TestJanitor(t *testing.T) {
	logBuf := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logBuf, nil))
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan struct{})
	done := make(chan struct{})
	n := 0
	go func() {
		// An hour-long interval: the calls seen here are the one at start, then none,
		// unless the ticker fires, which it cannot within this test.
		runJanitor(ctx, log, time.Hour, func(context.Context) (int, error) {
			n++
			calls <- struct{}{}
			if n == 1 {
				return 3, nil
			}
			return 0, errors.New("db gone")
		})
		close(done)
	}()
	<-calls // the start-up pass ran without waiting for the interval
	cancel()
	<-done
	if !strings.Contains(logBuf.String(), `"msg":"cleaned stale uploads","count":3`) {
		t.Errorf("log:\n%s", logBuf.String())
	}

	// With a short interval it keeps calling and logs failures.
	logBuf2 := &syncBuffer{}
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan struct{})
	count := 0
	go func() {
		runJanitor(ctx2, slog.New(slog.NewJSONHandler(logBuf2, nil)), time.Millisecond, func(context.Context) (int, error) {
			count++
			if count == 3 {
				cancel2()
			}
			return 0, errors.New("db gone")
		})
		close(done2)
	}()
	<-done2
	if count != 3 {
		t.Errorf("clean called %d times, want 3", count)
	}
	if strings.Count(logBuf2.String(), "clean stale uploads") != 2 {
		// The third failure happened after cancel and is expected noise, not logged.
		t.Errorf("log:\n%s", logBuf2.String())
	}
}

// waitLogLines returns the log lines once there are at least n: the access log line is
// written when the handler returns, which may be after the client has read the whole
// response.
func waitLogLines(t *testing.T, b *syncBuffer, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lines := logLines(t, b)
		if len(lines) >= n || time.Now().After(deadline) {
			return lines
		}
		time.Sleep(5 * time.Millisecond)
	}
}
