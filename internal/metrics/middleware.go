package metrics

import (
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/reqlog"
)

// Route names a request's endpoint from a fixed set, whatever repository or reference
// it names: the label value of every HTTP series.
func Route(path string) string {
	switch {
	case path == "/v2" || path == "/v2/":
		return "v2"
	case path == "/v2/_catalog":
		return "catalog"
	case strings.HasPrefix(path, "/v2/"):
		switch {
		case strings.Contains(path, "/blobs/uploads"):
			return "blob_upload"
		case strings.HasSuffix(path, "/tags/list"):
			return "tags_list"
		case strings.Contains(path, "/manifests/"):
			return "manifest"
		case strings.Contains(path, "/blobs/"):
			return "blob"
		case strings.Contains(path, "/referrers/"):
			return "referrers"
		}
		return "v2_other"
	case path == "/token" || strings.HasPrefix(path, "/token/"):
		return "token"
	case strings.HasPrefix(path, "/api/v1/"):
		return "api"
	case strings.HasPrefix(path, "/charts/"), strings.HasPrefix(path, "/api/"):
		return "charts"
	case path == "/healthz", path == "/readyz", path == "/metrics":
		return path[1:]
	}
	return "other"
}

// templates are the route templates of the routes whose path has one shape.
var templates = map[string]string{
	"v2":        "/v2/",
	"catalog":   "/v2/_catalog",
	"manifest":  "/v2/{name}/manifests/{reference}",
	"blob":      "/v2/{name}/blobs/{digest}",
	"tags_list": "/v2/{name}/tags/list",
	"referrers": "/v2/{name}/referrers/{digest}",
	"v2_other":  "/v2/*",
	"api":       "/api/v1/*",
	"healthz":   "/healthz",
	"readyz":    "/readyz",
	"metrics":   "/metrics",
	"other":     "/*",
}

// Template names a request's endpoint as a route template (the distribution spec's
// /v2/{name}/manifests/{reference}): the name of its trace span. It refines Route
// where a route has a few fixed shapes (an upload's start or its session, the token
// or its key set) and, like Route, never carries a repository, reference or user.
func Template(path string) string {
	switch route := Route(path); route {
	case "blob_upload":
		if strings.HasSuffix(path, "/blobs/uploads/") || strings.HasSuffix(path, "/blobs/uploads") {
			return "/v2/{name}/blobs/uploads/"
		}
		return "/v2/{name}/blobs/uploads/{reference}"
	case "token":
		if path == "/token" || path == "/token/jwks.json" {
			return path
		}
		return "/token/*"
	case "charts":
		switch {
		case !strings.HasPrefix(path, "/charts/"):
			return "/api/*" // the ChartMuseum API
		case strings.HasSuffix(path, "/index.yaml"):
			return "/charts/{namespace}/index.yaml"
		}
		return "/charts/*"
	default:
		return templates[route]
	}
}

// Method folds the request method to a known set: "OTHER" for the rest.
func Method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// Middleware counts and times every request next serves. It must sit inside the
// request-id middleware, whose reqlog.Info carries a refusal's reason back out.
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		route, meth := Route(r.URL.Path), Method(r.Method)
		m.inFlight.Inc()
		upload := route == "blob_upload" && r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodDelete
		if upload {
			m.uploadsInFlight.Inc()
		}
		var body *countingBody
		if r.Body != nil && r.Body != http.NoBody {
			body = &countingBody{ReadCloser: r.Body}
			r.Body = body
		}
		rw := &statusWriter{ResponseWriter: w}
		defer func() {
			m.inFlight.Dec()
			if upload {
				m.uploadsInFlight.Dec()
			}
			code := rw.status
			if code == 0 {
				code = http.StatusOK
			}
			// A panic is answered 500 by the recovery middleware inside, or aborts.
			if p := recover(); p != nil {
				code = http.StatusInternalServerError
				defer panic(p)
			}
			m.requests.WithLabelValues(route, meth, codeLabel(code)).Inc()
			m.duration.WithLabelValues(route, meth).Observe(time.Since(start).Seconds())
			if body != nil {
				m.bytesIn.WithLabelValues(route).Add(float64(body.n))
			}
			m.bytesOut.WithLabelValues(route).Add(float64(rw.bytes))
			if route == "token" && r.URL.Path == "/token" {
				switch {
				case code == http.StatusOK:
					m.tokensIssued.Inc()
				case code >= 400 && code < 500:
					m.tokenRefusals.WithLabelValues(codeLabel(code)).Inc()
				}
			}
			if reqlog.From(r.Context()).Refusal == reqlog.RefusalQuota {
				m.quotaRefusals.Inc()
			}
		}()
		next.ServeHTTP(rw, r)
	})
}

type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// statusWriter records the status and bytes written. It forwards ReadFrom (sendfile
// for blob GETs) and Unwrap (http.ResponseController: deadlines, flush, hijack).
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
	}
	w.bytes += n
	return n, err
}

func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// headerWritten lets the panic middleware inside see that the status went out.
func (w *statusWriter) headerWritten() bool { return w.status != 0 }
