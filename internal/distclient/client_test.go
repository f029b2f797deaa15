package distclient

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestBackoffExponentialBounds(t *testing.T) {
	t.Parallel()
	for attempt := 1; attempt <= 30; attempt++ {
		d := min(250*time.Millisecond<<(attempt-1), 10*time.Second)
		for range 50 {
			got := backoff(attempt, "")
			if got < d/2 || got > d {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempt, got, d/2, d)
			}
		}
	}
	// The ladder the doc comment promises.
	for attempt, ceil := range map[int]time.Duration{1: 250 * time.Millisecond, 2: 500 * time.Millisecond, 3: time.Second, 7: 10 * time.Second} {
		if got := backoff(attempt, ""); got > ceil || got < ceil/2 {
			t.Errorf("backoff(%d) = %v, want within [%v, %v]", attempt, got, ceil/2, ceil)
		}
	}
}

func TestBackoffRetryAfter(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		header   string
		min, max time.Duration
	}{
		{"0", 0, 0},
		{"1", time.Second, time.Second},
		{" 3 ", 3 * time.Second, 3 * time.Second},
		{"59", 59 * time.Second, 59 * time.Second},
		{"60", time.Minute, time.Minute},
		{"3600", time.Minute, time.Minute}, // capped
		{time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), 0, 0},
		{time.Now().Add(2 * time.Hour).UTC().Format(http.TimeFormat), time.Minute, time.Minute},
		{time.Now().Add(20 * time.Second).UTC().Format(http.TimeFormat), 15 * time.Second, 20 * time.Second},
		// Unreadable values fall back to the exponential backoff of attempt 1.
		{"-1", 125 * time.Millisecond, 250 * time.Millisecond},
		{"soon", 125 * time.Millisecond, 250 * time.Millisecond},
		{"1.5", 125 * time.Millisecond, 250 * time.Millisecond},
	} {
		got := backoff(1, tt.header)
		if got < tt.min || got > tt.max {
			t.Errorf("backoff(1, %q) = %v, want within [%v, %v]", tt.header, got, tt.min, tt.max)
		}
	}
}

// TestBackoffManyAttempts: the shift in backoff overflows from attempt 37 on
// (250ms<<36 > MaxInt64), giving a negative d, and rand.N panics on d/2+1 <= 0; from
// attempt 58 the wait is 0. Only reachable with Options.MaxAttempts >= 38.
func TestBackoffManyAttempts(t *testing.T) {
	t.Parallel()
	for attempt := 31; attempt <= 100; attempt++ {
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("backoff(%d) panicked: %v", attempt, p)
				}
			}()
			if got := backoff(attempt, ""); got < 5*time.Second || got > 10*time.Second {
				t.Errorf("backoff(%d) = %v, want within [5s, 10s]", attempt, got)
			}
		}()
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                                      "",
		"/v2/a/blobs/uploads/123":               "/v2/a/blobs/uploads/123",
		"/v2/a/blobs/uploads/123?_state=secret": "/v2/a/blobs/uploads/123",
		"https://s3.example/b/k?X-Amz-Signature=s": "https://s3.example/b/k",
		"http://h/p?": "http://h/p",
		"?only":       "",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func linkResponse(t *testing.T, reqURL string, links ...string) *http.Response {
	t.Helper()
	u, err := url.Parse(reqURL)
	if err != nil {
		t.Fatal(err)
	}
	resp := &http.Response{Header: http.Header{}, Request: &http.Request{URL: u}}
	for _, l := range links {
		resp.Header.Add("Link", l)
	}
	return resp
}

func TestNextLink(t *testing.T) {
	t.Parallel()
	const req = "http://127.0.0.1:5000/v2/team/app/tags/list?n=1000"
	for _, tt := range []struct {
		name  string
		links []string
		want  string
	}{
		{"none", nil, ""},
		{"relative", []string{`</v2/team/app/tags/list?n=2&last=b>; rel="next"`}, "/v2/team/app/tags/list?n=2&last=b"},
		{"unquoted rel", []string{`</v2/_catalog?last=x&n=5>; rel=next`}, "/v2/_catalog?last=x&n=5"},
		{"spaces", []string{`  </v2/_catalog?last=x>  ;  rel="next"`}, "/v2/_catalog?last=x"},
		{"absolute", []string{`<http://127.0.0.1:5000/v2/team/app/tags/list?last=c>; rel="next"`}, "/v2/team/app/tags/list?last=c"},
		{"relative to the request path", []string{`<list?last=d>; rel="next"`}, "/v2/team/app/tags/list?last=d"},
		{"prev only", []string{`</v2/_catalog?last=a>; rel="prev"`}, ""},
		{"prev then next, two headers", []string{`</v2/_catalog?last=a>; rel="prev"`, `</v2/_catalog?last=z>; rel="next"`}, "/v2/_catalog?last=z"},
		{"no rel", []string{`</v2/_catalog?last=a>`}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextLink(linkResponse(t, req, tt.links...)); got != tt.want {
				t.Errorf("nextLink(%q) = %q, want %q", tt.links, got, tt.want)
			}
		})
	}
}

// TestNextLinkCombinedHeader: RFC 8288 lets one Link header carry several links
// separated by commas. nextLink cuts at the first ";" and then looks for rel="next"
// anywhere in the rest, so it returns the *prev* target here, and Tags/Catalog loop
// between the two pages for ever when a registry sends both.
func TestNextLinkCombinedHeader(t *testing.T) {
	t.Parallel()
	resp := linkResponse(t, "http://h/v2/_catalog?n=2", `</v2/_catalog?last=a&n=2>; rel="prev", </v2/_catalog?last=c&n=2>; rel="next"`)
	if got, want := nextLink(resp), "/v2/_catalog?last=c&n=2"; got != want {
		t.Fatalf("nextLink = %q, want %q", got, want)
	}
}

func TestErrorMessageAndIs(t *testing.T) {
	t.Parallel()
	e := &Error{Method: "GET", URL: "/v2/a/manifests/v1", Status: 404,
		Codes: []ErrorDetail{{Code: "MANIFEST_UNKNOWN", Message: "manifest unknown"}, {Code: "NAME_UNKNOWN"}}}
	if got, want := e.Error(), "GET /v2/a/manifests/v1: 404 Not Found: MANIFEST_UNKNOWN manifest unknown; NAME_UNKNOWN"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !e.HasCode("NAME_UNKNOWN") || e.HasCode("DENIED") {
		t.Error("HasCode")
	}
	wrapped := fmt.Errorf("manifest x: %w", e)
	if !errors.Is(wrapped, ErrNotFound) || errors.Is(wrapped, ErrUnauthorized) {
		t.Error("a 404 should match ErrNotFound only")
	}
	for _, status := range []int{401, 403} {
		e := &Error{Method: "HEAD", URL: "/v2/", Status: status, Hint: "run 'hubctl login h'"}
		if !errors.Is(e, ErrUnauthorized) || errors.Is(e, ErrNotFound) {
			t.Errorf("%d should match ErrUnauthorized only", status)
		}
		if !strings.HasSuffix(e.Error(), ": run 'hubctl login h'") {
			t.Errorf("Error() = %q lacks the hint", e.Error())
		}
	}
}

func TestRetryableStatus(t *testing.T) {
	t.Parallel()
	for code, want := range map[int]bool{
		200: false, 400: false, 401: false, 403: false, 404: false, 405: false, 409: false,
		408: true, 429: true, 500: true, 502: true, 503: true, 504: true, 501: false,
	} {
		if got := retryableStatus(code); got != want {
			t.Errorf("retryableStatus(%d) = %v", code, got)
		}
	}
}

func TestRetryableErr(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{io.ErrUnexpectedEOF, true},
		{fmt.Errorf("read: %w", io.EOF), true},
		{errors.New("read tcp: connection reset by peer"), true},
		{errors.New("dial tcp: connection refused"), true},
		{&url.Error{Op: "Get", URL: "http://h", Err: context.Canceled}, false},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), false},
		{errors.New("something else"), false},
		{fmt.Errorf("token: %w", ErrUnauthorized), false},
	} {
		if got := retryableErr(tt.err); got != tt.want {
			t.Errorf("retryableErr(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestScopeKey(t *testing.T) {
	t.Parallel()
	a := scopeKey([]string{"repository:b:pull", "repository:a:pull,push", "repository:b:pull"})
	b := scopeKey([]string{"repository:a:pull,push", "repository:b:pull"})
	if a != b || a != "repository:a:pull,push repository:b:pull" {
		t.Errorf("scopeKey: %q vs %q", a, b)
	}
}

func TestPlainHTTP(t *testing.T) {
	t.Parallel()
	c := New(Options{Insecure: []string{"registry.lan:5000", "http://other.lan/"}})
	for host, want := range map[string]bool{
		"127.0.0.1:5000":    true,
		"localhost:5000":    true,
		"[::1]:5000":        true,
		"registry.lan:5000": true,
		"registry.lan":      false,
		"other.lan":         true,
		"ghcr.io":           false,
		"index.docker.io":   false,
	} {
		if got := c.PlainHTTP(host); got != want {
			t.Errorf("PlainHTTP(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestRetryableErrTLS: every error of http.Client.Do is a *url.Error, which implements
// net.Error, so retryableErr's errors.As(err, &net.Error) holds for all of them:
// certificate and protocol errors that no retry can fix are retried MaxAttempts times
// with backoff (about 4 s by default) before the user sees them.
func TestRetryableErrTLS(t *testing.T) {
	t.Parallel()
	for _, err := range []error{
		&url.Error{Op: "Get", URL: "https://h/v2/", Err: x509.UnknownAuthorityError{}},
		&url.Error{Op: "Get", URL: "https://h/v2/", Err: x509.HostnameError{Certificate: &x509.Certificate{}, Host: "h"}},
		&url.Error{Op: "Get", URL: "https://h/v2/", Err: errors.New("http: server gave HTTP response to HTTPS client")},
	} {
		if retryableErr(err) {
			t.Errorf("retryableErr(%v) = true", err)
		}
	}
}
