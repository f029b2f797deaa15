// Package metrics is the Prometheus instrumentation of `hubctl serve`: HTTP requests by
// route, method and status, bytes in and out, uploads in flight, blob store and
// database latencies, token issues and refusals, garbage collection, quota refusals,
// retention deletions and the Go runtime.
//
// Cardinality is bounded by construction: label values come from fixed sets (a route
// name, an HTTP method folded to a known one, a status class, an operation name), never
// from a repository, a user, a digest or a tag.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the server's collectors in a registry of its own (not the global one,
// so two servers in one test process do not collide).
type Metrics struct {
	Registry *prometheus.Registry

	requests        *prometheus.CounterVec
	duration        *prometheus.HistogramVec
	inFlight        prometheus.Gauge
	bytesIn         *prometheus.CounterVec
	bytesOut        *prometheus.CounterVec
	uploadsInFlight prometheus.Gauge
	blobOps         *prometheus.HistogramVec
	blobErrors      *prometheus.CounterVec
	dbOps           *prometheus.HistogramVec
	dbErrors        *prometheus.CounterVec
	tokensIssued    prometheus.Counter
	tokenRefusals   *prometheus.CounterVec
	gcRuns          *prometheus.CounterVec
	gcBytesFreed    prometheus.Counter
	gcBlobsSwept    prometheus.Counter
	quotaRefusals   prometheus.Counter
	retentionRuns   *prometheus.CounterVec
	retentionDelete *prometheus.CounterVec
	pullsRecorded   prometheus.Counter

	// calls, when set, hears of every blob store call too (ObserveBlobCalls).
	calls CallObserver
}

// CallObserver hears of one finished call with the caller's context: its operation,
// when it started and whether it failed as the metrics count failures.
type CallObserver func(ctx context.Context, op string, start time.Time, failed bool)

// ObserveBlobCalls passes every blob store call of the stores Blobs wraps to fn as
// well: tracing makes a span of each. Call it before the stores are used.
func (m *Metrics) ObserveBlobCalls(fn CallObserver) {
	if m != nil {
		m.calls = fn
	}
}

// latencyBuckets span a cached HEAD (sub-millisecond) to a multi-GiB blob (minutes).
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}

// storeBuckets span an in-memory lookup to a slow object store call.
var storeBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5}

// New returns the collectors, registered with the Go runtime and process collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubctl_http_requests_total", Help: "HTTP requests served, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hubctl_http_request_duration_seconds", Help: "Time to serve an HTTP request, to the last byte, by route and method.",
			Buckets: latencyBuckets,
		}, []string{"route", "method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hubctl_http_requests_in_flight", Help: "HTTP requests being served.",
		}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubctl_http_request_body_bytes_total", Help: "Request body bytes read, by route.",
		}, []string{"route"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubctl_http_response_body_bytes_total", Help: "Response body bytes written, by route.",
		}, []string{"route"}),
		uploadsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hubctl_uploads_in_flight", Help: "Blob upload requests (POST, PATCH, PUT of upload sessions) being served.",
		}),
		blobOps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hubctl_blobstore_operation_duration_seconds", Help: "Blob store call latency, by operation (for reads and writes: until the call returns, not the stream's end).",
			Buckets: storeBuckets,
		}, []string{"op"}),
		blobErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubctl_blobstore_errors_total", Help: "Blob store calls that failed (not-found excluded), by operation.",
		}, []string{"op"}),
		dbOps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hubctl_db_transaction_duration_seconds", Help: "Database transaction latency (retries included), by kind: read, write or single.",
			Buckets: storeBuckets,
		}, []string{"kind"}),
		dbErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubctl_db_errors_total", Help: "Database transactions that failed, by kind (not-found and conflicts answered to clients excluded).",
		}, []string{"kind"}),
		tokensIssued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubctl_tokens_issued_total", Help: "Registry tokens issued by /token.",
		}),
		tokenRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubctl_token_refusals_total", Help: "Token requests refused, by status code (401 bad credentials, 429 locked out, 400 bad request).",
		}, []string{"code"}),
		gcRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubctl_gc_runs_total", Help: "Scheduled garbage collections, by result (ok, busy, error).",
		}, []string{"result"}),
		gcBytesFreed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubctl_gc_freed_bytes_total", Help: "Bytes of blobs deleted by garbage collection.",
		}),
		gcBlobsSwept: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubctl_gc_swept_blobs_total", Help: "Blobs deleted by garbage collection.",
		}),
		quotaRefusals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubctl_quota_refusals_total", Help: "Pushes refused because a namespace's quota was full.",
		}),
		retentionRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubctl_retention_runs_total", Help: "Retention runs, by result (ok, busy, error).",
		}, []string{"result"}),
		retentionDelete: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubctl_retention_deleted_total", Help: "Tags and manifests deleted by retention policies, by kind (tag, manifest).",
		}, []string{"kind"}),
		pullsRecorded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubctl_pull_times_flushed_total", Help: "Manifest pull times written to the database (batched).",
		}),
	}
	r.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.inFlight, m.bytesIn, m.bytesOut, m.uploadsInFlight,
		m.blobOps, m.blobErrors, m.dbOps, m.dbErrors, m.tokensIssued, m.tokenRefusals,
		m.gcRuns, m.gcBytesFreed, m.gcBlobsSwept, m.quotaRefusals, m.retentionRuns, m.retentionDelete,
		m.pullsRecorded,
	)
	return m
}

// Handler serves the exposition format of the registry.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// GC records one scheduled garbage collection.
func (m *Metrics) GC(result string, swept int, freed int64) {
	if m == nil {
		return
	}
	m.gcRuns.WithLabelValues(result).Inc()
	m.gcBlobsSwept.Add(float64(swept))
	m.gcBytesFreed.Add(float64(freed))
}

// Retention records one retention run and what it deleted.
func (m *Metrics) Retention(result string, tags, manifests int) {
	if m == nil {
		return
	}
	m.retentionRuns.WithLabelValues(result).Inc()
	m.retentionDelete.WithLabelValues("tag").Add(float64(tags))
	m.retentionDelete.WithLabelValues("manifest").Add(float64(manifests))
}

// PullsFlushed records n pull times written.
func (m *Metrics) PullsFlushed(n int) {
	if m == nil {
		return
	}
	m.pullsRecorded.Add(float64(n))
}

// DB records one database transaction of kind (read, write, single).
func (m *Metrics) DB(kind string, d time.Duration, failed bool) {
	if m == nil {
		return
	}
	m.dbOps.WithLabelValues(kind).Observe(d.Seconds())
	if failed {
		m.dbErrors.WithLabelValues(kind).Inc()
	}
}

// blob records one blob store call.
func (m *Metrics) blob(op string, start time.Time, failed bool) {
	m.blobOps.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if failed {
		m.blobErrors.WithLabelValues(op).Inc()
	}
}

// codeLabel keeps status codes as they are: the set a server answers is small.
func codeLabel(code int) string { return strconv.Itoa(code) }
