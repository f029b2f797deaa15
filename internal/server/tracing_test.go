package server

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/tracing/tracingtest"
)

// clearOTEL empties the variables that would turn tracing on, whatever the machine
// running the tests has set.
func clearOTEL(t testing.TB) {
	for _, k := range []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER",
		"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
	} {
		t.Setenv(k, "")
	}
}

// tracedRequests makes a token fetch, a manifest HEAD on a repository that does not
// exist and a monolithic blob upload, all naming repositories under secretNS, and
// returns the registry token it used.
func tracedRequests(t *testing.T, base string) string {
	t.Helper()
	tok := adminToken(t, base, "repository:"+secretNS+"/app:push,pull&scope=repository:"+secretNS+"/missing:pull")
	req, _ := http.NewRequest(http.MethodHead, base+"/v2/"+secretNS+"/missing/manifests/v1", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("HEAD missing manifest: %s", resp.Status)
	}
	blob := []byte("traced blob")
	dg := fmt.Sprintf("sha256:%x", sha256.Sum256(blob))
	req, _ = http.NewRequest(http.MethodPost, base+"/v2/"+secretNS+"/app/blobs/uploads/?digest="+dg, bytes.NewReader(blob))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("blob upload: %s", resp.Status)
	}
	return tok
}

// secretNS names the repositories of the traced requests: it must show in no span.
const secretNS = "secret-team"

// TestTracesExported runs the real server with OTEL_EXPORTER_OTLP_ENDPOINT pointing at
// a real OTLP/HTTP receiver, makes registry requests, stops the server (which flushes
// the spans) and checks what the receiver decoded: one server span per request named
// by its route template, with its status code and the service name, blob store and
// database spans under the upload, and no repository name, password or token anywhere
// in span names or attributes. The request log carries each request's trace id.
func TestTracesExported(t *testing.T) {
	clearOTEL(t)
	rc := tracingtest.NewHTTP(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rc.Endpoint)
	r := start(t, map[string]string{"auth.mode": "token", "metrics.addr": "off"})
	base := "http://" + r.addr
	tok := tracedRequests(t, base)
	// Probes are not traced.
	get(t, base+"/healthz", nil)
	r.stop(t)

	if p := rc.Problems(); len(p) > 0 {
		t.Fatalf("receiver: %v", p)
	}
	spans := rc.Spans()
	servers := map[string]tracingtest.Span{}
	children := map[string][]string{} // server span id → child span names
	for _, s := range spans {
		if s.Resource["service.name"] != "hubctl" {
			t.Errorf("span %s: service.name %q", s.Name, s.Resource["service.name"])
		}
		for _, bad := range []string{secretNS, testAdminPassword, tok, "sha256:"} {
			if strings.Contains(s.Name, bad) {
				t.Errorf("span name %q shows %q", s.Name, bad)
			}
			for k, v := range s.Attrs {
				if strings.Contains(k, bad) || strings.Contains(v, bad) {
					t.Errorf("span %s: attribute %s=%q shows %q", s.Name, k, v, bad)
				}
			}
		}
		if s.ParentSpanID == "" {
			servers[s.Name] = s
		}
	}
	for _, s := range spans {
		for _, srv := range servers {
			if s.ParentSpanID == srv.SpanID {
				children[srv.Name] = append(children[srv.Name], s.Name)
			}
		}
	}
	for name, code := range map[string]string{
		"GET /token":                            "200",
		"HEAD /v2/{name}/manifests/{reference}": "404",
		"POST /v2/{name}/blobs/uploads/":        "201",
	} {
		s, ok := servers[name]
		if !ok {
			t.Errorf("no server span %q; got %d spans: %v", name, len(spans), spanNames(spans))
			continue
		}
		if got := s.Attrs["http.response.status_code"]; got != code {
			t.Errorf("%s: http.response.status_code %q, want %s", name, got, code)
		}
	}
	if len(servers) != 3 {
		t.Errorf("server spans %v, want the 3 requests (probes are not traced)", spanNames(spans))
	}
	up := strings.Join(children["POST /v2/{name}/blobs/uploads/"], " ")
	if !strings.Contains(up, "blobstore.put") || !strings.Contains(up, "db.write") {
		t.Errorf("upload's child spans %q, want blobstore.put and db.write among them", up)
	}

	// The request log names the trace of each request.
	traces := map[string]bool{}
	for _, s := range servers {
		traces[s.TraceID] = true
	}
	n := 0
	for _, l := range logLines(t, r.log) {
		if l["msg"] != "request" || l["path"] == "/healthz" {
			continue
		}
		n++
		if id, _ := l["trace_id"].(string); !traces[id] {
			t.Errorf("request log line %v: trace_id %q is none of the spans' %v", l["path"], id, traces)
		}
	}
	if n != 3 {
		t.Errorf("%d request log lines, want 3", n)
	}
}

// TestNoTracesByDefault: with no endpoint set the server makes no exporter and logs
// no trace id; with an endpoint but OTEL_SDK_DISABLED=true nothing reaches it.
func TestNoTracesByDefault(t *testing.T) {
	clearOTEL(t)
	rc := tracingtest.NewHTTP(t)
	for _, disabled := range []bool{false, true} {
		if disabled {
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rc.Endpoint)
			t.Setenv("OTEL_SDK_DISABLED", "true")
		}
		r := start(t, map[string]string{"auth.mode": "token", "metrics.addr": "off"})
		tracedRequests(t, "http://"+r.addr)
		r.stop(t)
		for _, l := range logLines(t, r.log) {
			if _, ok := l["trace_id"]; ok {
				t.Errorf("log line with a trace id: %v", l)
			}
			if l["msg"] == "serving" && l["tracing"] != "off" {
				t.Errorf("serving line says tracing %v", l["tracing"])
			}
		}
	}
	if n := rc.Requests(); n != 0 {
		t.Errorf("the receiver got %d export requests", n)
	}
}

func spanNames(spans []tracingtest.Span) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name
	}
	return out
}

// BenchmarkTracing measures what tracing costs a whole request: manifest HEADs (404,
// one database lookup) from a keep-alive client to the real server in this process,
// tracing off, on (every request sampled, exported in batches over OTLP/HTTP to a
// server here that drains the bodies) and on with one trace in ten sampled. Besides
// wall time it reports the process's CPU time per request (client, server, exporter
// and sink together) and the ratios to off.
func BenchmarkTracing(b *testing.B) {
	clearOTEL(b)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer sink.Close()
	results := map[string][2]float64{} // wall ns/op, CPU ns/op
	for _, mode := range []string{"off", "on", "on-10%"} {
		b.Run(mode, func(b *testing.B) {
			if mode != "off" {
				b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", sink.URL)
			}
			if mode == "on-10%" {
				b.Setenv("OTEL_TRACES_SAMPLER", "traceidratio")
				b.Setenv("OTEL_TRACES_SAMPLER_ARG", "0.1")
			}
			r := start(b, map[string]string{"metrics.addr": "off", "log.level": "error"})
			url := "http://" + r.addr + "/v2/team/app/manifests/v1"
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			head := func() {
				resp, err := c.Head(url)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNotFound {
					b.Fatal(resp.Status)
				}
			}
			head()
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				head()
			}
			b.StopTimer()
			c.CloseIdleConnections()
			r.stop(b) // flushes what is queued: its export counts
			cpu := float64(cpuTime()-cpu0) / float64(b.N)
			b.ReportMetric(cpu, "cpu-ns/op")
			results[mode] = [2]float64{float64(b.Elapsed().Nanoseconds()) / float64(b.N), cpu}
		})
	}
	off := results["off"]
	for _, mode := range []string{"on", "on-10%"} {
		if on := results[mode]; off[0] > 0 && on[0] > 0 {
			b.Logf("tracing %s/off per request: wall %.1f/%.1f µs = %.2fx, CPU %.1f/%.1f µs = %.2fx",
				mode, on[0]/1e3, off[0]/1e3, on[0]/off[0], on[1]/1e3, off[1]/1e3, on[1]/off[1])
		}
	}
}
