// Package distclient is hubctl's client for the OCI distribution API: manifests, blobs
// (HEAD, GET, cross-repository mount, upload), tags, catalog and referrers, with the
// Docker token flow (Bearer and Basic) and retries with backoff. It works against any
// registry: hubctl serve, distribution, Harbor, GHCR, Docker Hub.
//
// It is written on net/http rather than go-containerregistry's remote package so the
// transfer engine can see each blob's fate (exists, mounted, sent), decide whether to
// hash bytes the destination verifies anyway, and apply one plain-HTTP policy
// (loopback and listed hosts only).
package distclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hubctl/hubctl/internal/credentials"
	"github.com/hubctl/hubctl/internal/httpdebug"
	"github.com/hubctl/hubctl/internal/tlsconf"
)

// Options configure a Client.
type Options struct {
	// Credentials finds the login for a registry; nil means anonymous everywhere.
	Credentials credentials.Resolver
	// Insecure lists registries (host[:port]) reached over plain HTTP besides loopback
	// ones, which always are.
	Insecure []string
	// UserAgent is sent with every request.
	UserAgent string
	// OnRetry, when set, hears about each retried request, with the request's context
	// (which a caller may use to tell whose request it was).
	OnRetry func(context.Context, RetryInfo)
	// MaxAttempts bounds tries per request (default 5).
	MaxAttempts int
	// MonolithicMax is the largest blob sent in one POST (default
	// DefaultMonolithicMax); negative sends every blob through an upload session.
	MonolithicMax int64
	// Transport is the HTTP transport; nil means a tuned clone of the default.
	Transport http.RoundTripper
	// Trace, when set, receives a trace of every request and response, secrets
	// redacted (--debug).
	Trace io.Writer
	// Trust adds CAs and client certificates per registry (certs.d, --ca-file) to the
	// default transport; a loopback registry with any of them is reached over HTTPS.
	Trust *tlsconf.Trust
}

// RetryInfo describes a request about to be retried.
type RetryInfo struct {
	Method, URL string
	Attempt     int
	Wait        time.Duration
	Err         error
}

// Client talks to registries. It is safe for concurrent use and caches each
// registry's auth challenge and tokens.
type Client struct {
	hc   *http.Client
	opts Options

	mu   sync.Mutex
	regs map[string]*registry
}

// New returns a Client.
func New(opts Options) *Client {
	if opts.Credentials == nil {
		opts.Credentials = credentials.AnonymousResolver{}
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "hubctl"
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.MonolithicMax == 0 {
		opts.MonolithicMax = DefaultMonolithicMax
	}
	rt := opts.Transport
	if rt == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 32
		t.MaxConnsPerHost = 0
		// Large request and response buffers halve syscalls on multi-GiB blobs.
		t.WriteBufferSize = 256 << 10
		t.ReadBufferSize = 256 << 10
		t.ResponseHeaderTimeout = 5 * time.Minute
		dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
		t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return bulkConn{c}, nil
		}
		rt = opts.Trust.Transport(t)
	}
	if opts.Trace != nil {
		rt = &httpdebug.Transport{Base: rt, Out: opts.Trace}
	}
	return &Client{
		hc: &http.Client{
			Transport: rt,
			// Redirects (blob GETs to object storage) are followed; net/http drops the
			// Authorization header when the host changes.
		},
		opts: opts,
		regs: map[string]*registry{},
	}
}

// bulkConn writes request bodies in 1 MiB chunks. net/http hands a body to the
// connection's ReadFrom, whose generic path copies 32 KiB at a time: for a GiB streamed
// from one registry into another that is 32,768 write calls instead of 1,024, and on
// loopback the syscalls are most of the client's CPU.
type bulkConn struct{ net.Conn }

var bulkBuffers = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

func (c bulkConn) ReadFrom(r io.Reader) (int64, error) {
	bp := bulkBuffers.Get().(*[]byte)
	defer bulkBuffers.Put(bp)
	return io.CopyBuffer(struct{ io.Writer }{c.Conn}, r, *bp)
}

// PlainHTTP reports whether host is reached over HTTP instead of HTTPS.
func (c *Client) PlainHTTP(host string) bool {
	if credentials.IsLoopback(host) {
		return !c.opts.Trust.HasCA(credentials.RegistryHost(host))
	}
	for _, h := range c.opts.Insecure {
		if strings.EqualFold(credentials.NormalizeHost(h), credentials.NormalizeHost(host)) {
			return true
		}
	}
	return false
}

func (c *Client) registry(host string) *registry {
	key := credentials.NormalizeHost(host)
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.regs[key]
	if r == nil {
		scheme := "https"
		if c.PlainHTTP(host) {
			scheme = "http"
		}
		r = &registry{c: c, host: host, base: scheme + "://" + apiHost(host), tokens: map[string]token{}}
		c.regs[key] = r
	}
	return r
}

// Error is a registry's refusal: the HTTP status and the OCI error codes of its body.
type Error struct {
	Method, URL string
	Status      int
	Codes       []ErrorDetail
	// Hint tells the user what to do about a refusal (log in, check rights).
	Hint string

	// Host is the registry, Repository the repository the request was about
	// (host/name, "" when none), User the login it was made with ("" anonymous), and
	// Action the strongest thing it asked for (pull, push or delete): what Summary
	// tells people.
	Host, Repository, User, Action string
}

// ErrorDetail is one entry of an OCI error body.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
	for i, d := range e.Codes {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(d.Code)
		if d.Message != "" {
			b.WriteString(" " + d.Message)
		}
	}
	if e.Hint != "" {
		b.WriteString(": " + e.Hint)
	}
	return b.String()
}

// HasCode reports whether the registry answered with the OCI error code.
func (e *Error) HasCode(code string) bool {
	for _, d := range e.Codes {
		if d.Code == code {
			return true
		}
	}
	return false
}

// ErrNotFound is a manifest, blob or repository the registry does not have.
var ErrNotFound = errors.New("not found")

// ErrUnauthorized is a registry refusing the request for want of credentials or rights.
var ErrUnauthorized = errors.New("unauthorized")

// Is makes 404s match ErrNotFound and 401/403 match ErrUnauthorized.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	}
	return false
}

// request is one API call: how to build it (again, on retry) and which scopes it needs.
type request struct {
	method string
	path   string // after the base URL, starting with /v2/
	url    string // absolute URL (upload locations); overrides path
	header http.Header
	// body returns a fresh body for each attempt; nil for none. A body that cannot be
	// replayed returns the same reader and sets once.
	body   func() (io.Reader, error)
	length int64
	once   bool
	scopes []string
}

// do sends the request with auth and retries, and returns the response when its
// status is one of ok; any other status becomes an *Error. The caller closes the body.
func (c *Client) do(ctx context.Context, host string, rq request, ok ...int) (*http.Response, error) {
	reg := c.registry(host)
	if err := reg.ping(ctx); err != nil {
		return nil, err
	}
	attempts := c.opts.MaxAttempts
	if rq.once {
		attempts = 1
	}
	reauthed := false
	var lastErr error
	for attempt := 1; ; attempt++ {
		resp, err := c.send(ctx, reg, rq)
		if err == nil && resp.StatusCode == http.StatusUnauthorized && !reauthed && !rq.once {
			// A token can expire or lack a scope the registry wants; one fresh token per
			// request is worth a try.
			reauthed = true
			drain(resp)
			reg.invalidate(rq.scopes)
			attempt--
			continue
		}
		if err == nil {
			for _, s := range ok {
				if resp.StatusCode == s {
					return resp, nil
				}
			}
			if resp.StatusCode == http.StatusUnauthorized {
				// A body that cannot be replayed gets no second try here, but the caller's
				// next attempt must not reuse the token that was refused.
				reg.invalidate(rq.scopes)
			}
			apiErr := readError(rq, resp)
			if e, ok := apiErr.(*Error); ok {
				e.Host, e.User, e.Action = reg.host, reg.creds.Username, actionOf(rq.scopes)
				if name := repositoryOf(e.URL); name != "" {
					e.Repository = reg.host + "/" + name
				}
			}
			if e, ok := apiErr.(*Error); ok && (e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden) {
				if reg.creds.IsAnonymous() {
					e.Hint = fmt.Sprintf("run 'hubctl login %s'", reg.host)
				} else {
					e.Hint = fmt.Sprintf("the login for %s has no access to this; check the name and your rights", reg.host)
				}
			}
			if !retryableStatus(resp.StatusCode) || attempt >= attempts {
				return nil, apiErr
			}
			lastErr = apiErr
			wait := backoff(attempt, resp.Header.Get("Retry-After"))
			if werr := c.wait(ctx, rq, attempt, wait, apiErr); werr != nil {
				return nil, werr
			}
			continue
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !retryableErr(err) || attempt >= attempts {
			if lastErr != nil && errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("%w (after %v)", err, lastErr)
			}
			return nil, err
		}
		lastErr = err
		if werr := c.wait(ctx, rq, attempt, backoff(attempt, ""), err); werr != nil {
			return nil, werr
		}
	}
}

func (c *Client) wait(ctx context.Context, rq request, attempt int, d time.Duration, cause error) error {
	if c.opts.OnRetry != nil {
		c.opts.OnRetry(ctx, RetryInfo{Method: rq.method, URL: rq.url + rq.path, Attempt: attempt + 1, Wait: d, Err: cause})
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (c *Client) send(ctx context.Context, reg *registry, rq request) (*http.Response, error) {
	u := rq.url
	if u == "" {
		u = reg.base + rq.path
	}
	var body io.Reader
	if rq.body != nil {
		b, err := rq.body()
		if err != nil {
			return nil, err
		}
		body = b
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, u, body)
	if err != nil {
		return nil, err
	}
	if rq.body != nil {
		req.ContentLength = rq.length
		if rq.length == 0 {
			req.Body = http.NoBody
		}
	}
	for k, v := range rq.header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", c.opts.UserAgent)
	if err := reg.authorize(ctx, req, rq.scopes); err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// *url.Error repeats the whole URL, query included: upload state and presigned
		// signatures must not reach messages.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s %s: %w", rq.method, redact(u), err)
	}
	return resp, nil
}

func retryableStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable,
		http.StatusGatewayTimeout, http.StatusInternalServerError, http.StatusRequestTimeout:
		return true
	}
	return false
}

// retryableErr tells transient transport failures (a refused or reset connection, a
// timeout, a body cut short) from ones that will not heal by trying again: a
// certificate the client does not trust, HTTP spoken to an HTTPS client.
func retryableErr(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var recordErr tls.RecordHeaderError
	if errors.As(err, &certErr) || errors.As(err, &unknownAuth) || errors.As(err, &hostErr) ||
		errors.As(err, &invalid) || errors.As(err, &recordErr) ||
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return false
	}
	var opErr *net.OpError
	var ne net.Error
	if errors.As(err, &opErr) || (errors.As(err, &ne) && ne.Timeout()) {
		return true
	}
	msg := err.Error()
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		strings.Contains(msg, "connection reset") || strings.Contains(msg, "connection refused")
}

// backoff is exponential with jitter (0.25 s, 0.5 s, 1 s, … capped at 10 s), or what
// the registry's Retry-After asks for, capped at one minute.
func backoff(attempt int, retryAfter string) time.Duration {
	if retryAfter != "" {
		if s, err := strconv.Atoi(strings.TrimSpace(retryAfter)); err == nil && s >= 0 {
			return min(time.Duration(s)*time.Second, time.Minute)
		}
		if t, err := http.ParseTime(retryAfter); err == nil {
			return min(max(time.Until(t), 0), time.Minute)
		}
	}
	d := min(250*time.Millisecond<<min(max(attempt-1, 0), 6), 10*time.Second)
	return d/2 + rand.N(d/2+1)
}

func readError(rq request, resp *http.Response) error {
	defer drain(resp)
	u := rq.url
	if u == "" {
		u = rq.path
	}
	e := &Error{Method: rq.method, URL: redact(u), Status: resp.StatusCode}
	if rq.method != http.MethodHead {
		var body struct {
			Errors []ErrorDetail `json:"errors"`
		}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if jsonUnmarshal(data, &body) == nil {
			e.Codes = body.Errors
		}
	}
	return e
}

// redact drops the query of a URL for messages: upload locations and presigned URLs
// carry state and signatures there.
func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}
