package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/password"
	"github.com/hubctl/hubctl/internal/auth/ratelimit"
	"github.com/hubctl/hubctl/internal/config"
	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/reqlog"
)

// ClientLimiter admits work per client key, at most a fixed number at once per key.
// localLimiter counts within this process (per replica); one kept in a shared store
// can take its place so replicas count together, without Limits changing.
type ClientLimiter interface {
	// Acquire takes one unit for key and returns its release, or ok false when key
	// already holds its limit. A shared implementation decides for itself whether an
	// unreachable store admits or refuses, and logs it.
	Acquire(ctx context.Context, key string) (release func(), ok bool)
	// Limit is the number of units one key may hold, for messages.
	Limit() int
}

// localLimiter is the in-process ClientLimiter: a count per key, forgotten at zero.
type localLimiter struct {
	max  int
	mu   sync.Mutex
	held map[string]int
}

// NewLocalLimiter returns a ClientLimiter of max units per key within this process.
func NewLocalLimiter(max int) ClientLimiter {
	return &localLimiter{max: max, held: map[string]int{}}
}

func (l *localLimiter) Limit() int { return l.max }

func (l *localLimiter) Acquire(_ context.Context, key string) (func(), bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[key] >= l.max {
		return nil, false
	}
	l.held[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.held[key]--; l.held[key] <= 0 {
				delete(l.held, key)
			}
		})
	}, true
}

// Limits keep one client from taking the server's shared capacity: requests in flight
// and blob uploads per client, and a minimum rate for request bodies and responses so
// a stalled client lets go of what it holds. A client is the account of a valid
// registry token, else the client address (an IPv6 /64): an unauthenticated client
// cannot make itself count as someone else.
type Limits struct {
	// Requests and Uploads bound each client's requests and blob upload requests in
	// flight; nil means no bound.
	Requests, Uploads ClientLimiter
	// Account returns the account a request's credentials prove, "" when they prove
	// none (no or an invalid registry token). Only cheap checks belong here: it runs
	// on every request.
	Account func(r *http.Request) string
	// MinRate is the slowest a request body or a response may move, in bytes per
	// second, once Slack is spent; 0 turns the check off.
	MinRate int64
	// Slack is how long a transfer may stall outright before it is cut.
	Slack time.Duration
	// SmallBody is the whole time a request body to /token or /api may take.
	SmallBody time.Duration
	Log       *slog.Logger
}

// Wrap returns next behind the limits.
func (l *Limits) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := l.client(r)
		if l.Requests != nil {
			release, ok := l.Requests.Acquire(r.Context(), key)
			if !ok {
				l.refuse(w, r, key, fmt.Sprintf("too many requests in flight from this client (at most %d); retry shortly", l.Requests.Limit()))
				return
			}
			defer release()
		}
		if l.Uploads != nil && isUpload(r) {
			release, ok := l.Uploads.Acquire(r.Context(), key)
			if !ok {
				l.refuse(w, r, key, fmt.Sprintf("too many uploads in progress from this client (at most %d); retry shortly", l.Uploads.Limit()))
				return
			}
			defer release()
		}
		rc := http.NewResponseController(w)
		if hasBody(r) {
			switch {
			case isSmallBodyRoute(r.URL.Path) && l.SmallBody > 0:
				_ = rc.SetReadDeadline(time.Now().Add(l.SmallBody))
				r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, l: l, r: r}
			case l.MinRate > 0:
				// Armed now as well as at each read: a handler that answers without
				// reading leaves net/http to read the rest before answering.
				_ = rc.SetReadDeadline(time.Now().Add(l.Slack))
				r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, l: l, r: r, pace: l.pacer(rc.SetReadDeadline)}
			}
		}
		if l.MinRate > 0 {
			// A keep-alive connection keeps the deadline of its last request: start clean,
			// and leave net/http's final flush of this response a bounded time.
			_ = rc.SetWriteDeadline(time.Time{})
			defer func() { _ = rc.SetWriteDeadline(time.Now().Add(l.Slack)) }()
			w = &pacedWriter{ResponseWriter: w, pace: l.pacer(rc.SetWriteDeadline), l: l, r: r}
		}
		next.ServeHTTP(w, r)
	})
}

// client is the key a request counts under.
func (l *Limits) client(r *http.Request) string {
	if l.Account != nil {
		if a := l.Account(r); a != "" {
			return "account:" + a
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "address:" + ratelimit.AddressKey(host)
}

func (l *Limits) refuse(w http.ResponseWriter, r *http.Request, key, msg string) {
	l.Log.WarnContext(r.Context(), "request refused: client over its limit", "request_id", reqlog.From(r.Context()).RequestID,
		"client", key, "method", r.Method, "path", r.URL.Path)
	w.Header().Set("Retry-After", "1")
	// Closing spares net/http reading the unread body before it answers, which a
	// stalled client would hold up for ever.
	w.Header().Set("Connection", "close")
	errcode.Write(w, errcode.New(errcode.TooManyRequests, "%s", msg))
}

// isUpload reports whether r streams blob bytes into an upload (or starts one): the
// requests that hold the registry's shared upload slots.
func isUpload(r *http.Request) bool {
	switch r.Method {
	case http.MethodPost, http.MethodPatch, http.MethodPut:
		return strings.HasPrefix(r.URL.Path, "/v2/") && strings.Contains(r.URL.Path, "/blobs/uploads")
	}
	return false
}

// isSmallBodyRoute reports whether path takes only small bodies: the token service's
// forms and the hub API's JSON. (The rest of /api/ is the ChartMuseum API, whose chart
// uploads are held to the rate floor like other uploads.)
func isSmallBodyRoute(path string) bool {
	return path == "/token" || strings.HasPrefix(path, "/token/") || strings.HasPrefix(path, "/api/v1/")
}

// hasBody reports whether r has a body to read. A request without one must get no read
// deadline: net/http is already reading the connection in the background for it and
// would take the deadline as the client going away.
func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

// pacer keeps a transfer above a minimum rate: every byte moved earns 1/rate seconds
// of allowance, capped at slack, and time spent blocked in a read or write spends it;
// the connection's deadline is set to when the allowance runs out, so a transfer that
// falls behind is cut by net/http itself. Time the handler spends elsewhere (hashing,
// the database, a slow blob store) is not counted against the client.
type pacer struct {
	rate      float64 // bytes per second
	slack     time.Duration
	allowance time.Duration
	set       func(time.Time) error
	cut       bool
}

func (l *Limits) pacer(set func(time.Time) error) *pacer {
	return &pacer{rate: float64(l.MinRate), slack: l.Slack, allowance: l.Slack, set: set}
}

// start arms the deadline for moving n bytes in one call (0 when unknown: a read).
func (p *pacer) start(n int) time.Time {
	now := time.Now()
	_ = p.set(now.Add(p.allowance + p.earn(int64(n))))
	return now
}

// done settles a call that moved n bytes since started.
func (p *pacer) done(started time.Time, n int64) {
	p.allowance = min(p.slack, p.allowance+p.earn(n)-time.Since(started))
}

func (p *pacer) earn(n int64) time.Duration {
	return time.Duration(float64(n) / p.rate * float64(time.Second))
}

// chunk is how many bytes one ReadFrom call may move under one deadline: enough for
// sendfile to pay off, small enough that a reader who stops is cut within about two
// slacks.
func (p *pacer) chunk() int64 {
	return min(max(int64(p.rate*p.slack.Seconds()), 256<<10), 8<<20)
}

// isTimeout reports whether err is a connection deadline passing.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// errTooSlow is what a handler reads from a body that was cut off.
type errTooSlow struct{ what string }

func (e *errTooSlow) Error() string { return e.what }

// deadlineBody is a request body under a read deadline: the pacer's, or (without one)
// the fixed deadline of a small-body route. It lifts the deadline once the body has
// been read, so the handler's own work and net/http's watch for a closed connection
// are not cut.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	pace *pacer
	l    *Limits
	r    *http.Request
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.done {
		return b.ReadCloser.Read(p)
	}
	var started time.Time
	if b.pace != nil {
		started = b.pace.start(0)
	}
	n, err := b.ReadCloser.Read(p)
	if b.pace != nil {
		b.pace.done(started, int64(n))
	}
	switch {
	case err == io.EOF:
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	case err != nil && isTimeout(err):
		b.done = true
		what := fmt.Sprintf("request body cut off: slower than %d bytes/s for over %s", b.l.MinRate, b.l.Slack)
		if b.pace == nil {
			what = fmt.Sprintf("request body cut off: not received within %s", b.l.SmallBody)
		}
		b.l.Log.WarnContext(b.r.Context(), what, "request_id", reqlog.From(b.r.Context()).RequestID,
			"client", b.l.client(b.r), "method", b.r.Method, "path", b.r.URL.Path)
		return n, &errTooSlow{what: what}
	}
	return n, err
}

// pacedWriter is a response under the pacer's write deadline. It keeps the
// capabilities of the writer it wraps: ReadFrom (sendfile), Flush and, through Unwrap,
// whatever http.ResponseController reaches.
type pacedWriter struct {
	http.ResponseWriter
	pace *pacer
	l    *Limits
	r    *http.Request
}

func (w *pacedWriter) Write(p []byte) (int, error) {
	started := w.pace.start(len(p))
	n, err := w.ResponseWriter.Write(p)
	w.pace.done(started, int64(n))
	w.check(err)
	return n, err
}

// ReadFrom moves src in chunks, each under its own deadline, handing every chunk to
// the wrapped writer's ReadFrom so a file still goes by sendfile: that needs the chunk
// to be an *io.LimitedReader directly over the *os.File, so a LimitedReader src is
// unwrapped rather than nested.
func (w *pacedWriter) ReadFrom(src io.Reader) (int64, error) {
	rf, ok := w.ResponseWriter.(io.ReaderFrom)
	if !ok {
		return io.Copy(writerOnly{w}, src)
	}
	remaining := int64(-1)
	if lr, ok := src.(*io.LimitedReader); ok {
		src, remaining = lr.R, lr.N
		defer func() { lr.N = remaining }()
	}
	var total int64
	for remaining != 0 {
		size := w.pace.chunk()
		if remaining > 0 {
			size = min(size, remaining)
		}
		started := w.pace.start(int(size))
		n, err := rf.ReadFrom(&io.LimitedReader{R: src, N: size})
		w.pace.done(started, n)
		total += n
		if remaining > 0 {
			remaining -= n
		}
		if err != nil {
			w.check(err)
			return total, err
		}
		if n < size {
			break // src is exhausted
		}
	}
	return total, nil
}

// Flush implements http.Flusher.
func (w *pacedWriter) Flush() {
	started := w.pace.start(0)
	err := http.NewResponseController(w.ResponseWriter).Flush()
	w.pace.done(started, 0)
	w.check(err)
}

// Unwrap lets http.ResponseController reach the wrapped writer.
func (w *pacedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// check logs, once, a response cut off because the client read it too slowly.
func (w *pacedWriter) check(err error) {
	if err == nil || w.pace.cut || !isTimeout(err) {
		return
	}
	w.pace.cut = true
	w.l.Log.WarnContext(w.r.Context(), "response cut off: the client read it slower than "+strconv.FormatInt(w.l.MinRate, 10)+" bytes/s",
		"request_id", reqlog.From(w.r.Context()).RequestID, "client", w.l.client(w.r), "method", w.r.Method, "path", w.r.URL.Path)
}

// newLimits builds the configured limits; with token auth a valid registry token makes
// the client its account.
func newLimits(c config.Limits, log *slog.Logger, ap *authParts) *Limits {
	l := &Limits{MinRate: int64(c.MinBodyRate), Slack: c.SlowTimeout, SmallBody: c.SmallBodyTimeout, Log: log}
	if c.RequestsPerClient > 0 {
		l.Requests = NewLocalLimiter(c.RequestsPerClient)
	}
	if c.UploadsPerClient > 0 {
		l.Uploads = NewLocalLimiter(c.UploadsPerClient)
	}
	if ap != nil {
		l.Account = func(r *http.Request) string {
			scheme, raw, ok := strings.Cut(r.Header.Get("Authorization"), " ")
			raw = strings.TrimSpace(raw)
			if !ok || !strings.EqualFold(scheme, "Bearer") || strings.HasPrefix(raw, password.AccessTokenPrefix) {
				return ""
			}
			// Verified tokens are cached, so the registry's own check after this one
			// costs a map lookup.
			c, err := ap.verifier.Verify(raw)
			if err != nil || c.Subject == "" || c.Subject == authz.Anonymous {
				return ""
			}
			return c.Subject
		}
	}
	return l
}
