// Package tracing is the optional OpenTelemetry tracing of `hubctl serve`: one server
// span per HTTP request, named by its route template, with child spans for the blob
// store calls and database transactions made under it, exported over OTLP.
//
// It is off unless the standard OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, and then honours the standard OTEL_*
// variables, read from the process environment by the OpenTelemetry SDK itself
// (headers, timeout, compression, certificates, sampler, batch settings, resource).
//
// Span names are route templates (GET /v2/{name}/manifests/{reference}), never a
// repository, user or tag, the rule the Prometheus labels follow. Attributes come
// from a view of the request that holds only its method, route template, host,
// protocol, peer address, user agent and trace context: no path, query string or
// other header (Authorization) ever reaches an exporter.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/hubctl/hubctl/internal/metrics"
)

// DefaultServiceName is the service.name of the spans unless OTEL_SERVICE_NAME (or
// service.name in OTEL_RESOURCE_ATTRIBUTES) says otherwise.
const DefaultServiceName = "hubctl"

// instrumentationName names the tracer of the child spans.
const instrumentationName = "github.com/hubctl/hubctl/internal/tracing"

// Protocols of OTEL_EXPORTER_OTLP_PROTOCOL that serve speaks.
const (
	ProtocolHTTP = "http/protobuf"
	ProtocolGRPC = "grpc"
)

// Settings is what the environment asks of tracing.
type Settings struct {
	// Enabled is true when an OTLP endpoint is set and neither OTEL_SDK_DISABLED nor
	// OTEL_TRACES_EXPORTER=none turns tracing off.
	Enabled bool
	// Protocol is ProtocolHTTP or ProtocolGRPC.
	Protocol string
	// Endpoint is the endpoint as set, without user information (for logs).
	Endpoint string
}

// String describes the settings in one line for logs and --check-config.
func (s Settings) String() string {
	if !s.Enabled {
		return "off"
	}
	return "OTLP " + s.Protocol + " to " + s.Endpoint
}

// FromEnv reads the settings from the standard variables through getenv
// (os.Getenv). Values serve does not support are an error, so that traces do not
// silently go nowhere.
func FromEnv(getenv func(string) string) (Settings, error) {
	var s Settings
	endpoint := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
	if endpoint == "" {
		endpoint = strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_ENDPOINT"))
	}
	if endpoint == "" || strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return s, nil
	}
	switch exp := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))); exp {
	case "", "otlp":
	case "none":
		return s, nil
	default:
		return s, fmt.Errorf("OTEL_TRACES_EXPORTER=%s: serve exports traces with otlp only (or none)", exp)
	}
	proto := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"))
	if proto == "" {
		proto = strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_PROTOCOL"))
	}
	switch proto {
	case "", ProtocolHTTP:
		proto = ProtocolHTTP
	case ProtocolGRPC:
	default:
		return s, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%s: serve speaks %s and %s", proto, ProtocolHTTP, ProtocolGRPC)
	}
	return Settings{Enabled: true, Protocol: proto, Endpoint: redact(endpoint)}, nil
}

// redact drops user information from an endpoint URL.
func redact(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	u.RawQuery = ""
	return u.String()
}

// Tracer exports the server's spans. A nil *Tracer is tracing off: its methods do
// nothing and cost a nil check.
type Tracer struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
	// middleware is otelhttp's, built once; it is applied per request to a handler
	// that swaps the real request back in (Middleware).
	middleware func(http.Handler) http.Handler
	settings   Settings
}

// Start returns the Tracer the process environment asks for, or nil when tracing is
// off (then no exporter is made). Export errors are logged on log as warnings. The
// caller calls Shutdown at exit to flush what is queued.
func Start(ctx context.Context, log *slog.Logger) (*Tracer, error) {
	s, err := FromEnv(os.Getenv)
	if err != nil || !s.Enabled {
		return nil, err
	}
	// The SDK reports export failures and bad OTEL_* values to one process-wide
	// handler; without this they would go to the standard logger.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing", "err", err)
	}))
	var exp sdktrace.SpanExporter
	if s.Protocol == ProtocolGRPC {
		exp, err = otlptracegrpc.New(ctx)
	} else {
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	// Later detectors win: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override the
	// default name.
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(DefaultServiceName)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	if err != nil {
		if !errors.Is(err, resource.ErrPartialResource) {
			_ = exp.Shutdown(ctx)
			return nil, fmt.Errorf("tracing: resource: %w", err)
		}
		log.Warn("tracing: OTEL_RESOURCE_ATTRIBUTES partly ignored", "err", err)
	}
	// The sampler is the SDK's: parent-based always-on unless OTEL_TRACES_SAMPLER and
	// OTEL_TRACES_SAMPLER_ARG say otherwise.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return newTracer(tp, s), nil
}

// newTracer wraps a provider; tests give one with their own exporter.
func newTracer(tp *sdktrace.TracerProvider, s Settings) *Tracer {
	t := &Tracer{provider: tp, tracer: tp.Tracer(instrumentationName), settings: s}
	t.middleware = otelhttp.NewMiddleware("",
		otelhttp.WithTracerProvider(tp),
		// The request metrics are Prometheus's (internal/metrics), not OTLP's.
		otelhttp.WithMeterProvider(noopmetric.NewMeterProvider()),
		// W3C traceparent and tracestate only: baggage is not read.
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithSpanNameFormatter(func(_ string, v *http.Request) string {
			return metrics.Method(v.Method) + " " + v.Pattern
		}),
	)
	return t
}

// Settings returns what the environment asked for.
func (t *Tracer) Settings() Settings {
	if t == nil {
		return Settings{}
	}
	return t.settings
}

// Shutdown flushes the spans queued and stops the exporter, within ctx.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// Middleware makes one server span of each request next serves, a child of the
// caller's span when the request carries a W3C traceparent. Health probes and
// scrapes (/healthz, /readyz, /metrics) are not traced.
func (t *Tracer) Middleware(next http.Handler) http.Handler {
	if t == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tmpl := metrics.Template(r.URL.Path)
		switch tmpl {
		case "/healthz", "/readyz", "/metrics":
			next.ServeHTTP(w, r)
			return
		}
		// otelhttp sees only the view; the handlers get the real request back, with
		// the span's context and otelhttp's byte-counting body.
		t.middleware(http.HandlerFunc(func(w http.ResponseWriter, v *http.Request) {
			r := r.WithContext(v.Context())
			r.Body = v.Body
			next.ServeHTTP(w, r)
		})).ServeHTTP(w, view(r, tmpl))
	})
}

// viewHeaders are the only request headers otelhttp is shown: the trace context and
// the user agent.
var viewHeaders = []string{"Traceparent", "Tracestate", "User-Agent"}

// view is what otelhttp may record of r: its path is the route template (url.path
// and http.route both carry it), and it has no query string and no other header.
func view(r *http.Request, tmpl string) *http.Request {
	h := make(http.Header, len(viewHeaders))
	for _, k := range viewHeaders {
		if v, ok := r.Header[k]; ok {
			h[k] = v
		}
	}
	v := &http.Request{
		Method:        r.Method,
		URL:           &url.URL{Path: tmpl},
		Proto:         r.Proto,
		ProtoMajor:    r.ProtoMajor,
		ProtoMinor:    r.ProtoMinor,
		Header:        h,
		Body:          r.Body,
		ContentLength: r.ContentLength,
		Host:          r.Host,
		RemoteAddr:    r.RemoteAddr,
		RequestURI:    tmpl,
		TLS:           r.TLS,
		Pattern:       tmpl,
	}
	return v.WithContext(r.Context())
}

// Record adds a finished span named name, from start to now, as a child of the span
// in ctx, marked failed if it did. Calls outside a recorded request (background work,
// requests the sampler left out) make none.
func (t *Tracer) Record(ctx context.Context, name string, start time.Time, failed bool, opts ...trace.SpanStartOption) {
	if t == nil || !trace.SpanFromContext(ctx).IsRecording() {
		return
	}
	o := make([]trace.SpanStartOption, 0, len(opts)+2)
	o = append(append(o, opts...), trace.WithTimestamp(start), trace.WithSpanKind(trace.SpanKindInternal))
	_, span := t.tracer.Start(ctx, name, o...)
	if failed {
		span.SetStatus(codes.Error, "")
	}
	span.End()
}

// DBSystem is the db.system.name attribute of the database spans for a database
// driver of the configuration (sqlite, postgres).
func DBSystem(driver string) trace.SpanStartOption {
	if driver == "postgres" {
		return trace.WithAttributes(semconv.DBSystemNamePostgreSQL)
	}
	return trace.WithAttributes(semconv.DBSystemNameSQLite)
}

// TraceID returns the trace id of the span in ctx, hex-encoded, or "" when there is
// none (tracing off): the request log's trace_id.
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}
