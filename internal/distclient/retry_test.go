package distclient

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// retryLog records OnRetry calls.
type retryLog struct {
	mu    sync.Mutex
	calls []RetryInfo
}

func (l *retryLog) add(_ context.Context, ri RetryInfo) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, ri)
}

func (l *retryLog) get() []RetryInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]RetryInfo(nil), l.calls...)
}

// retryFixture is a real registry (auth none) holding team/app:v1, behind a proxy
// whose hook injects faults, and a client through the proxy that logs retries.
func retryFixture(t *testing.T, maxAttempts int, hook func(http.ResponseWriter, *http.Request) bool) (*Client, *faultProxy, Ref, *retryLog) {
	t.Helper()
	host := startRegistry(t, "none")
	push(t, New(Options{}), Repo{Host: host, Path: "team/app"}, newImage(t, "retry"), "v1")
	p := newFaultProxy(t, host, hook)
	rl := &retryLog{}
	c := New(Options{OnRetry: rl.add, MaxAttempts: maxAttempts})
	return c, p, Ref{Repo: Repo{Host: p.Host, Path: "team/app"}, Tag: "v1"}, rl
}

const manifestsPath = "/v2/team/app/manifests/"

func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	c, p, ref, rl := retryFixture(t, 0, failFirst(2, manifestsPath, http.StatusTooManyRequests, "1"))
	start := time.Now()
	if _, _, err := c.GetManifest(context.Background(), ref); err != nil {
		t.Fatalf("GetManifest after two 429s: %v", err)
	}
	if elapsed := time.Since(start); elapsed < 2*time.Second-50*time.Millisecond {
		t.Errorf("took %v; two Retry-After: 1 should take 2 s", elapsed)
	}
	calls := rl.get()
	if len(calls) != 2 {
		t.Fatalf("OnRetry called %d times, want 2: %+v", len(calls), calls)
	}
	for i, ri := range calls {
		if ri.Wait != time.Second || ri.Attempt != i+2 || ri.Method != http.MethodGet || !strings.HasPrefix(ri.URL, manifestsPath) {
			t.Errorf("retry %d = %+v, want GET %s… attempt %d waiting 1s", i, ri, manifestsPath, i+2)
		}
		var e *Error
		if !errors.As(ri.Err, &e) || e.Status != http.StatusTooManyRequests || !e.HasCode("TOOMANYREQUESTS") {
			t.Errorf("retry %d cause = %v, want the 429", i, ri.Err)
		}
	}
	if n := p.count("GET", manifestsPath); n != 3 {
		t.Errorf("%d GETs of the manifest, want 3", n)
	}
}

func TestRetry503BacksOff(t *testing.T) {
	t.Parallel()
	c, _, ref, rl := retryFixture(t, 0, failFirst(2, manifestsPath, http.StatusServiceUnavailable, ""))
	if _, err := c.HeadManifest(context.Background(), ref); err != nil {
		t.Fatalf("HeadManifest after two 503s: %v", err)
	}
	calls := rl.get()
	if len(calls) != 2 {
		t.Fatalf("OnRetry called %d times, want 2", len(calls))
	}
	// Exponential with jitter: attempt 1 waits within [125ms, 250ms], attempt 2 [250ms, 500ms].
	for i, ri := range calls {
		ceil := 250 * time.Millisecond << i
		if ri.Wait < ceil/2 || ri.Wait > ceil {
			t.Errorf("retry %d waited %v, want within [%v, %v]", i, ri.Wait, ceil/2, ceil)
		}
		if ri.Method != http.MethodHead {
			t.Errorf("retry %d method %s", i, ri.Method)
		}
	}
}

func TestClientErrorsAreNotRetried(t *testing.T) {
	t.Parallel()
	c, p, ref, rl := retryFixture(t, 0, failFirst(1, manifestsPath, http.StatusBadRequest, ""))
	_, _, err := c.GetManifest(context.Background(), ref)
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusBadRequest || !e.HasCode("TOOMANYREQUESTS") {
		t.Fatalf("got %v, want the 400 with its error body", err)
	}
	// A 404 from the registry itself is final too.
	_, _, err = c.GetManifest(context.Background(), Ref{Repo: ref.Repo, Tag: "missing"})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v, want a 404", err)
	}
	if calls := rl.get(); len(calls) != 0 {
		t.Fatalf("OnRetry called for a client error: %+v", calls)
	}
	if n := p.count("GET", manifestsPath); n != 2 {
		t.Fatalf("%d GETs, want 1 per call", n)
	}
}

func TestRetriesGiveUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	c, p, ref, rl := retryFixture(t, 3, failFirst(1000, manifestsPath, http.StatusServiceUnavailable, "0"))
	_, _, err := c.GetManifest(context.Background(), ref)
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable {
		t.Fatalf("got %v, want the last 503", err)
	}
	if n := p.count("GET", manifestsPath); n != 3 {
		t.Errorf("%d attempts, want MaxAttempts = 3", n)
	}
	if calls := rl.get(); len(calls) != 2 || calls[0].Wait != 0 {
		t.Errorf("OnRetry calls %+v, want 2 waiting 0 (Retry-After: 0)", calls)
	}
}

func TestCancelDuringRetryWait(t *testing.T) {
	t.Parallel()
	c, _, ref, rl := retryFixture(t, 0, failFirst(1000, manifestsPath, http.StatusTooManyRequests, "30"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.opts.OnRetry = func(ctx context.Context, ri RetryInfo) {
		rl.add(ctx, ri)
		time.AfterFunc(50*time.Millisecond, cancel)
	}
	start := time.Now()
	_, _, err := c.GetManifest(ctx, ref)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	// The registry asked for 30 s; a cancelled caller must not sit them out.
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Fatalf("returned after %v", elapsed)
	}
	if calls := rl.get(); len(calls) != 1 || calls[0].Wait != 30*time.Second {
		t.Fatalf("OnRetry calls %+v", calls)
	}
}

// dropFirst hijacks the first n requests matching method and prefix and closes their
// connection without an answer.
func dropFirst(n int, method, prefix string) func(http.ResponseWriter, *http.Request) bool {
	var seen atomic.Int64
	return func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != method || !strings.HasPrefix(r.URL.Path, prefix) || seen.Add(1) > int64(n) {
			return false
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return true
	}
}

func TestDroppedConnectionIsRetried(t *testing.T) {
	t.Parallel()
	c, p, ref, rl := retryFixture(t, 0, dropFirst(1, http.MethodGet, manifestsPath))
	// Fresh connections only: net/http replays an idempotent request dropped on a
	// reused connection by itself, which would hide the client's own retry.
	c.hc.Transport = &http.Transport{DisableKeepAlives: true}
	if _, _, err := c.GetManifest(context.Background(), ref); err != nil {
		t.Fatalf("GetManifest after a dropped connection: %v", err)
	}
	calls := rl.get()
	if len(calls) != 1 || calls[0].Err == nil {
		t.Fatalf("OnRetry calls %+v, want one with the transport error", calls)
	}
	if n := p.count("GET", manifestsPath); n != 2 {
		t.Errorf("%d GETs, want 2", n)
	}
}

// TestStreamedUploadIsNotRetried: UploadBlob's PUT reads its body once, so a dropped
// connection is the caller's to retry from a fresh reader.
func TestStreamedUploadIsNotRetried(t *testing.T) {
	t.Parallel()
	c, p, ref, rl := retryFixture(t, 0, dropFirst(1, http.MethodPut, "/v2/team/app/blobs/uploads/"))
	c.hc.Transport = &http.Transport{DisableKeepAlives: true}
	c.opts.MonolithicMax = -1 // a small blob, sent as large ones are
	b := newBlob("application/octet-stream", bytes.Repeat([]byte("u"), 64<<10))
	err := c.UploadBlob(context.Background(), ref.Repo, b.desc.Digest, b.desc.Size, bytes.NewReader(b.raw), "")
	if err == nil {
		t.Fatal("upload through a dropped connection succeeded")
	}
	if n := p.count("PUT", "/v2/team/app/blobs/uploads/"); n != 1 {
		t.Errorf("%d PUTs, want 1", n)
	}
	if calls := rl.get(); len(calls) != 0 {
		t.Errorf("OnRetry called for a one-shot body: %+v", calls)
	}
	// The caller's retry from a fresh reader works.
	if err := c.UploadBlob(context.Background(), ref.Repo, b.desc.Digest, b.desc.Size, bytes.NewReader(b.raw), ""); err != nil {
		t.Fatal(err)
	}
}

// TestExpiredTokenIsRenewed: a 401 on a request that carried a token makes the client
// fetch a fresh token once and try again, without counting it as a retry.
func TestExpiredTokenIsRenewed(t *testing.T) {
	t.Parallel()
	host := startRegistry(t, "token")
	push(t, New(Options{Credentials: admin}), Repo{Host: host, Path: "team/app"}, newImage(t, "renew"), "v1")
	var refused atomic.Bool
	var p *faultProxy
	p = newFaultProxy(t, host, func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasPrefix(r.URL.Path, manifestsPath) || refused.Swap(true) {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="http://`+p.Host+`/token",service="hubctl",error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
		return true
	})
	rl := &retryLog{}
	c := New(Options{Credentials: admin, OnRetry: rl.add})
	if _, err := c.HeadManifest(context.Background(), Ref{Repo: Repo{Host: p.Host, Path: "team/app"}, Tag: "v1"}); err != nil {
		t.Fatal(err)
	}
	if n := p.count("", "/token"); n != 2 {
		t.Errorf("%d token requests, want 2 (the first and its renewal)", n)
	}
	if calls := rl.get(); len(calls) != 0 {
		t.Errorf("OnRetry calls %+v", calls)
	}
}

// TestFailedPingIsNotCached: the client learns a registry's challenge once
// (registry.ping, a sync.Once) and keeps the *error* too, so one cancelled call or
// one outage at first contact makes the Client unusable for that host for good.
func TestFailedPingIsNotCached(t *testing.T) {
	t.Parallel()
	host := startRegistry(t, "none")
	c := New(Options{})
	repo := Repo{Host: host, Path: "team/app"}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Tags(ctx, repo); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v", err)
	}
	if _, err := c.Tags(context.Background(), repo); errors.Is(err, context.Canceled) {
		t.Fatalf("a later call with a live context still fails: %v", err)
	}

	// The same after an outage at first contact.
	var down atomic.Bool
	down.Store(true)
	p := newFaultProxy(t, host, func(w http.ResponseWriter, r *http.Request) bool {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	c = New(Options{MaxAttempts: 1})
	repo = Repo{Host: p.Host, Path: "team/app"}
	if _, err := c.Tags(context.Background(), repo); err == nil {
		t.Fatal("call during the outage succeeded")
	}
	down.Store(false)
	if _, err := c.Tags(context.Background(), repo); err != nil && !errors.Is(err, ErrNotFound) {
		t.Fatalf("call after the outage: %v", err)
	}
}

// deadAddr is a 127.0.0.1 address nobody listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestErrorsDoNotCarryURLQueries: redact keeps the query of upload locations and
// presigned URLs out of messages, but send wraps the *url.Error of net/http, whose
// message repeats the whole URL, query included.
func TestErrorsDoNotCarryURLQueries(t *testing.T) {
	t.Parallel()
	dead := deadAddr(t)
	host := startRegistry(t, "none")
	p := newFaultProxy(t, host, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v2/team/app/blobs/") {
			http.Redirect(w, r, "http://"+dead+"/bucket/blob?X-Amz-Signature=s3cr3t", http.StatusTemporaryRedirect)
			return true
		}
		return false
	})
	c := New(Options{MaxAttempts: 1})
	repo := Repo{Host: p.Host, Path: "team/app"}
	b := newBlob("application/octet-stream", []byte("x"))
	_, err := c.GetBlob(context.Background(), repo, b.desc.Digest)
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("GetBlob via a presigned redirect: %v", err)
	}
	err = c.UploadBlob(context.Background(), repo, b.desc.Digest, b.desc.Size, bytes.NewReader(b.raw),
		"http://"+dead+"/v2/team/app/blobs/uploads/1?_state=s3cr3t")
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("UploadBlob to a dead location: %v", err)
	}
}

// TestSharedTokenFetchOutlivesItsStarter: concurrent requests for one scope share one
// token fetch, which runs on the context of the request that started it. When that
// request is cancelled, every request waiting on the fetch fails with its
// context.Canceled, though their own contexts are live.
func TestSharedTokenFetchOutlivesItsStarter(t *testing.T) {
	t.Parallel()
	host := startRegistry(t, "token")
	push(t, New(Options{Credentials: admin}), Repo{Host: host, Path: "team/app"}, newImage(t, "shared"), "v1")
	p := newFaultProxy(t, host, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/token" {
			time.Sleep(300 * time.Millisecond)
		}
		return false
	})
	c := New(Options{Credentials: admin})
	ref := Ref{Repo: Repo{Host: p.Host, Path: "team/app"}, Tag: "v1"}
	starter, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	go func() { _, _ = c.HeadManifest(starter, ref) }()
	time.Sleep(50 * time.Millisecond)
	if _, err := c.HeadManifest(context.Background(), ref); err != nil {
		t.Fatalf("a live request failed with the cancelled one's error: %v", err)
	}
}
