package server

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/reqlog"
	"github.com/hubctl/hubctl/internal/tracing"
)

// RequestIDHeader carries the request id in both directions: a proxy in front may set
// it so its logs and ours share one id, and every response echoes it.
const RequestIDHeader = "X-Request-Id"

// maxRequestIDLen bounds an accepted incoming id so a client cannot bloat every log line.
const maxRequestIDLen = 128

// saneRequestID accepts ids made only of characters that cannot forge log structure or
// headers (no spaces, quotes, control characters).
func saneRequestID(s string) bool {
	if s == "" || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '+', c == '/', c == '=':
		default:
			return false
		}
	}
	return true
}

// withRequestID assigns the request its id and the reqlog.Info the handlers fill in.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !saneRequestID(id) {
			id = rand.Text()
		}
		w.Header().Set(RequestIDHeader, id)
		remote := r.RemoteAddr
		if host, _, err := net.SplitHostPort(remote); err == nil {
			remote = host
		}
		info := &reqlog.Info{RequestID: id, Remote: remote}
		next.ServeHTTP(w, r.WithContext(reqlog.With(r.Context(), info)))
	})
}

// accessLog writes one line per request when it ends. Only the path is logged: query
// strings may carry secrets (presigned parameters, tokens) and headers are never logged.
func accessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &responseWriter{ResponseWriter: w}
		defer func() {
			p := recover()
			info := reqlog.From(r.Context())
			status := rw.status
			if status == 0 {
				// net/http sends 200 for a handler that wrote nothing.
				status = http.StatusOK
			}
			level := slog.LevelInfo
			if status >= 500 || p != nil {
				level = slog.LevelError
			}
			attrs := []slog.Attr{
				slog.String("request_id", info.RequestID),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.String("repository", info.Repository),
				slog.String("user", info.User),
				slog.Int("status", status),
				slog.Int64("bytes", rw.bytes),
				slog.Duration("duration", time.Since(start)),
				slog.String("remote", r.RemoteAddr),
			}
			if id := tracing.TraceID(r.Context()); id != "" {
				attrs = append(attrs, slog.String("trace_id", id))
			}
			if p != nil {
				attrs = append(attrs, slog.Bool("aborted", true))
			}
			log.LogAttrs(r.Context(), level, "request", attrs...)
			if p != nil {
				// Logged; let net/http abort the connection as it would have.
				panic(p)
			}
		}()
		next.ServeHTTP(rw, r)
	})
}

// recoverPanics turns a handler panic into a 500 with the spec's JSON error body; the
// stack goes to the log only, never to the client.
func recoverPanics(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			log.LogAttrs(r.Context(), slog.LevelError, "panic serving request",
				slog.String("request_id", reqlog.From(r.Context()).RequestID),
				slog.String("panic", fmt.Sprint(p)),
				slog.String("stack", string(debug.Stack())))
			if hw, ok := w.(interface{ headerWritten() bool }); ok && hw.headerWritten() {
				// Too late for an error status: abort so the client sees a broken response
				// rather than a truncated one that looks complete.
				panic(http.ErrAbortHandler)
			}
			errcode.Write(w, errors.New("panic"))
		}()
		next.ServeHTTP(w, r)
	})
}

// responseWriter records the status and byte count for the access log. It forwards
// ReadFrom so io.Copy from an *os.File still reaches net/http's sendfile path, and
// Unwrap so http.ResponseController reaches Flush, deadlines and Hijack.
type responseWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *responseWriter) headerWritten() bool { return w.status != 0 }

func (w *responseWriter) WriteHeader(code int) {
	// 1xx responses are informational and may precede the real status.
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom implements io.ReaderFrom by delegating, which keeps zero-copy blob GETs.
func (w *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		// Hide our own ReadFrom from io.Copy, which would otherwise recurse into it.
		n, err = io.Copy(writerOnly{w.ResponseWriter}, r)
	}
	w.bytes += n
	return n, err
}

// Flush implements http.Flusher for handlers that assert it directly.
func (w *responseWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController find the underlying writer's capabilities.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type writerOnly struct{ io.Writer }
