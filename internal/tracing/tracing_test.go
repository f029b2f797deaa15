package tracing

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/hubctl/hubctl/internal/tracing/tracingtest"
)

// otelVars are the variables these tests set; each test starts with all of them empty
// so that an OTEL_* of the machine running the tests does not leak in.
var otelVars = []string{
	"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
	"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_SERVICE_NAME",
	"OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
	"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
}

func clearEnv(t testing.TB) {
	for _, k := range otelVars {
		t.Setenv(k, "")
	}
}

func TestFromEnv(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  map[string]string
		want Settings
		err  string
	}{
		{name: "nothing set", want: Settings{}},
		{name: "endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
			want: Settings{Enabled: true, Protocol: ProtocolHTTP, Endpoint: "http://collector:4318"}},
		{name: "traces endpoint wins", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:4318/v1/traces"},
			want: Settings{Enabled: true, Protocol: ProtocolHTTP, Endpoint: "http://b:4318/v1/traces"}},
		{name: "grpc", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
			want: Settings{Enabled: true, Protocol: ProtocolGRPC, Endpoint: "http://c:4317"}},
		{name: "traces protocol wins", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"},
			want: Settings{Enabled: true, Protocol: ProtocolHTTP, Endpoint: "http://c:4317"}},
		{name: "user info is not shown", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://u:hunter2@c:4318?k=v"},
			want: Settings{Enabled: true, Protocol: ProtocolHTTP, Endpoint: "https://c:4318"}},
		{name: "sdk disabled", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "TRUE"}},
		{name: "exporter none", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}},
		{name: "protocol only", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}},
		{name: "http/json", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
			err: "OTEL_EXPORTER_OTLP_PROTOCOL=http/json"},
		{name: "zipkin", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "zipkin"},
			err: "OTEL_TRACES_EXPORTER=zipkin"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromEnv(func(k string) string { return tt.env[k] })
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("FromEnv = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// TestOffMakesNothing: without an endpoint (or with one and tracing disabled) Start
// makes no exporter, and the nil Tracer passes requests through untouched.
func TestOffMakesNothing(t *testing.T) {
	rc := tracingtest.NewHTTP(t)
	for _, env := range []map[string]string{
		{},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": rc.Endpoint, "OTEL_SDK_DISABLED": "true"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": rc.Endpoint, "OTEL_TRACES_EXPORTER": "none"},
	} {
		clearEnv(t)
		for k, v := range env {
			t.Setenv(k, v)
		}
		tr, err := Start(context.Background(), slog.New(slog.DiscardHandler))
		if err != nil || tr != nil {
			t.Fatalf("env %v: Start = %v, %v; want nil, nil", env, tr, err)
		}
		var sawSpan bool
		h := tr.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sawSpan = trace.SpanContextFromContext(r.Context()).IsValid()
			tr.Record(r.Context(), "db.read", time.Now(), false)
		}))
		req := httptest.NewRequest(http.MethodGet, "/v2/team/app/manifests/v1", nil)
		req.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
		h.ServeHTTP(httptest.NewRecorder(), req)
		if sawSpan || TraceID(req.Context()) != "" {
			t.Errorf("env %v: a span context reached the handler", env)
		}
		if err := tr.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if tr.Settings().String() != "off" {
			t.Errorf("Settings = %v", tr.Settings())
		}
	}
	if n := rc.Requests(); n != 0 {
		t.Errorf("the receiver got %d export requests", n)
	}
}

// TestSpansReachACollector serves requests through the middleware with the exporter
// pointed at a real OTLP receiver, over HTTP and over gRPC, and checks what arrives:
// route-template names, the caller's trace, child spans, the service name, and no
// path, query string or header value beyond the allowed ones.
func TestSpansReachACollector(t *testing.T) {
	for _, proto := range []string{ProtocolHTTP, ProtocolGRPC} {
		t.Run(proto, func(t *testing.T) {
			clearEnv(t)
			var rc *tracingtest.Receiver
			if proto == ProtocolGRPC {
				rc = tracingtest.NewGRPC(t)
				t.Setenv("OTEL_SERVICE_NAME", "hub-east")
			} else {
				rc = tracingtest.NewHTTP(t)
			}
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rc.Endpoint)
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", proto)
			tr, err := Start(context.Background(), slog.New(slog.DiscardHandler))
			if err != nil || tr == nil {
				t.Fatalf("Start = %v, %v", tr, err)
			}
			var handlerSaw *http.Request
			var body string
			h := tr.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				handlerSaw = r
				b, _ := io.ReadAll(r.Body)
				body = string(b)
				start := time.Now()
				tr.Record(r.Context(), "db.read", start, false, DBSystem("sqlite"))
				tr.Record(r.Context(), "blobstore.stat", start, true)
				w.WriteHeader(http.StatusNotFound)
			}))

			req := httptest.NewRequest(http.MethodPut, "/v2/secret-team/app/manifests/v1?token=hunter2", strings.NewReader("manifest body"))
			req.Header.Set("Authorization", "Bearer sekrit-token")
			req.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
			req.Header.Set("User-Agent", "crane/0.20")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			// Handlers get the real request back.
			if handlerSaw.URL.Path != "/v2/secret-team/app/manifests/v1" || handlerSaw.URL.RawQuery != "token=hunter2" ||
				handlerSaw.Header.Get("Authorization") != "Bearer sekrit-token" || body != "manifest body" {
				t.Fatalf("handler saw %s %q %v body %q", handlerSaw.URL.Path, handlerSaw.URL.RawQuery, handlerSaw.Header, body)
			}
			if TraceID(handlerSaw.Context()) != "0af7651916cd43dd8448eb211c80319c" {
				t.Errorf("TraceID = %q, want the caller's", TraceID(handlerSaw.Context()))
			}
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/healthz", nil))
			if err := tr.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}

			if p := rc.Problems(); len(p) > 0 {
				t.Fatalf("receiver problems: %v", p)
			}
			spans := rc.Spans()
			if len(spans) != 3 {
				t.Fatalf("got %d spans, want 3 (server, db.read, blobstore.stat): %+v", len(spans), spans)
			}
			byName := map[string]tracingtest.Span{}
			for _, s := range spans {
				byName[s.Name] = s
				for k, v := range s.Attrs {
					for _, secret := range []string{"secret-team", "hunter2", "sekrit"} {
						if strings.Contains(k, secret) || strings.Contains(v, secret) {
							t.Errorf("span %s: attribute %s=%q shows %q", s.Name, k, v, secret)
						}
					}
				}
				if s.TraceID != "0af7651916cd43dd8448eb211c80319c" {
					t.Errorf("span %s in trace %s, not the caller's", s.Name, s.TraceID)
				}
				wantService := "hubctl"
				if proto == ProtocolGRPC {
					wantService = "hub-east"
				}
				if s.Resource["service.name"] != wantService {
					t.Errorf("service.name = %q, want %q", s.Resource["service.name"], wantService)
				}
			}
			srv, ok := byName["PUT /v2/{name}/manifests/{reference}"]
			if !ok {
				t.Fatalf("no server span named by its route template: %v", byName)
			}
			if srv.Kind != tracepb.Span_SPAN_KIND_SERVER || srv.ParentSpanID != "b7ad6b7169203331" {
				t.Errorf("server span: kind %v parent %s", srv.Kind, srv.ParentSpanID)
			}
			for k, want := range map[string]string{
				"http.request.method":       "PUT",
				"http.response.status_code": "404",
				"http.route":                "/v2/{name}/manifests/{reference}",
				"url.path":                  "/v2/{name}/manifests/{reference}",
				"user_agent.original":       "crane/0.20",
				"http.request.body.size":    "13",
			} {
				if got := srv.Attrs[k]; got != want {
					t.Errorf("server span %s = %q, want %q", k, got, want)
				}
			}
			if _, ok := srv.Attrs["url.query"]; ok {
				t.Error("server span has url.query")
			}
			db, blob := byName["db.read"], byName["blobstore.stat"]
			if db.ParentSpanID != srv.SpanID || blob.ParentSpanID != srv.SpanID {
				t.Errorf("child spans' parents %s, %s; want %s", db.ParentSpanID, blob.ParentSpanID, srv.SpanID)
			}
			if db.Attrs["db.system.name"] != "sqlite" || db.StatusError || !blob.StatusError {
				t.Errorf("db span %+v, blob span %+v", db, blob)
			}
		})
	}
}

// BenchmarkMiddleware measures what a traced request costs beyond an untraced one:
// the middleware around a handler that makes two store calls, tracing off and on
// (every request sampled, exported in batches to an HTTP server in this process that
// drains the bodies). It reports the on/off ratio of wall time, and CPU time per
// request beside it (the exporter's goroutine and the receiving server included).
func BenchmarkMiddleware(b *testing.B) {
	clearEnv(b)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer sink.Close()
	results := map[string][2]float64{} // wall ns/op, CPU ns/op
	for _, mode := range []string{"off", "on"} {
		b.Run(mode, func(b *testing.B) {
			var tr *Tracer
			if mode == "on" {
				b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", sink.URL)
				var err error
				if tr, err = Start(context.Background(), slog.New(slog.DiscardHandler)); err != nil || tr == nil {
					b.Fatal(tr, err)
				}
				defer tr.Shutdown(context.Background())
			}
			h := tr.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				start := time.Now()
				tr.Record(r.Context(), "db.single", start, false)
				tr.Record(r.Context(), "blobstore.stat", start, false)
				w.WriteHeader(http.StatusNotFound)
			}))
			req := httptest.NewRequest(http.MethodHead, "/v2/team/app/manifests/v1", nil)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				h.ServeHTTP(w, req)
			}
			b.StopTimer()
			if tr != nil {
				_ = tr.Shutdown(context.Background()) // the export of what is queued counts
			}
			cpu := float64(cpuTime()-cpu0) / float64(b.N)
			b.ReportMetric(cpu, "cpu-ns/op")
			results[mode] = [2]float64{float64(b.Elapsed().Nanoseconds()) / float64(b.N), cpu}
		})
	}
	if off, on := results["off"], results["on"]; off[0] > 0 && on[0] > 0 {
		b.Logf("tracing on/off: wall %.0f/%.0f ns = %.1fx, CPU %.0f/%.0f ns = %.1fx; extra per request: %.1f µs wall, %.1f µs CPU",
			on[0], off[0], on[0]/off[0], on[1], off[1], on[1]/off[1], (on[0]-off[0])/1e3, (on[1]-off[1])/1e3)
	}
}
