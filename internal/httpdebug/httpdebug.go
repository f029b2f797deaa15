// Package httpdebug traces HTTP requests and responses for `--debug` (`-v`), as
// `crane -v` does: the request line and headers, then the status and headers of the
// answer, with every secret redacted (Authorization, cookies, tokens and signatures in
// query strings). Bodies are never printed: they carry blobs and tokens.
package httpdebug

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// Transport writes a trace of every round trip to Out, then hands the request to Base
// (http.DefaultTransport when nil).
type Transport struct {
	Base http.RoundTripper
	Out  io.Writer

	mu sync.Mutex // one request's lines stay together
}

// RoundTrip traces req and its response.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	var b strings.Builder
	fmt.Fprintf(&b, "--> %s %s\n", req.Method, RedactURL(req.URL))
	writeHeaders(&b, "--> ", req.Header)
	if req.ContentLength > 0 {
		fmt.Fprintf(&b, "--> (body: %d bytes)\n", req.ContentLength)
	}
	t.write(b.String())
	start := time.Now()
	resp, err := base.RoundTrip(req)
	b.Reset()
	if err != nil {
		fmt.Fprintf(&b, "<-- %s %s: %v (%s)\n", req.Method, RedactURL(req.URL), err, time.Since(start).Round(time.Millisecond))
		t.write(b.String())
		return resp, err
	}
	fmt.Fprintf(&b, "<-- %s %s %s (%s)\n", resp.Proto, resp.Status, RedactURL(req.URL), time.Since(start).Round(time.Millisecond))
	writeHeaders(&b, "<-- ", resp.Header)
	t.write(b.String())
	return resp, nil
}

func (t *Transport) write(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, _ = io.WriteString(t.Out, s)
}

// secretHeaders are never printed with their values.
var secretHeaders = map[string]bool{
	"Authorization":        true,
	"Proxy-Authorization":  true,
	"Cookie":               true,
	"Set-Cookie":           true,
	"X-Registry-Auth":      true, // the Docker engine's credentials header
	"X-Amz-Security-Token": true,
}

func writeHeaders(b *strings.Builder, prefix string, h http.Header) {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			fmt.Fprintf(b, "%s%s: %s\n", prefix, k, RedactHeader(k, v))
		}
	}
}

// RedactHeader returns v, or for a header that carries a secret, its scheme alone
// ("Bearer <redacted>").
func RedactHeader(name, v string) string {
	if !secretHeaders[http.CanonicalHeaderKey(name)] {
		if http.CanonicalHeaderKey(name) == "Location" {
			if u, err := url.Parse(v); err == nil {
				return RedactURL(u)
			}
		}
		return v
	}
	if scheme, _, ok := strings.Cut(v, " "); ok && http.CanonicalHeaderKey(name) != "Cookie" && http.CanonicalHeaderKey(name) != "Set-Cookie" {
		return scheme + " <redacted>"
	}
	return "<redacted>"
}

// secretParams are query parameters whose values are credentials: tokens, and the
// signatures of presigned object-store URLs.
var secretParams = []string{"token", "access_token", "refresh_token", "password", "signature", "x-amz-signature",
	"x-amz-credential", "x-amz-security-token", "sig", "q-signature", "q-ak"}

// RedactURL is u as text with the values of secret query parameters replaced.
func RedactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	if c.User != nil {
		c.User = url.User(c.User.Username())
	}
	q := c.Query()
	changed := false
	for k := range q {
		for _, s := range secretParams {
			if strings.EqualFold(k, s) {
				q[k] = []string{"redacted"}
				changed = true
			}
		}
	}
	if changed {
		c.RawQuery = q.Encode()
	}
	return c.String()
}
