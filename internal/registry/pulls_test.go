package registry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/policy"
)

// pullEnv is a registry whose pulls are counted by a policy engine on its own store.
func pullEnv(t testing.TB) (*env, *policy.Engine, *sqlstore.Store) {
	t.Helper()
	var eng *policy.Engine
	var meta *sqlstore.Store
	e := newEnv(t, func(o *Options) {
		meta = o.Meta.(*sqlstore.Store)
		eng = &policy.Engine{Store: meta, Meta: meta, PullEvents: true}
		o.Policy = eng
	})
	return e, eng, meta
}

// TestPullsCounted: only successful manifest GETs count, by tag or by digest; a HEAD,
// a 304, a missing tag and a refused Accept do not; nothing is written until the
// flush, which writes one repository.pulled event per manifest and tag.
func TestPullsCounted(t *testing.T) {
	e, eng, meta := pullEnv(t)
	_, p := e.image("team/app")
	r := e.putManifest("team/app", "v1", ocispec.MediaTypeImageManifest, p)
	e.expect(r, 201, "")
	d := r.header.Get("Docker-Content-Digest")
	for range 3 {
		e.expect(e.do("GET", "/v2/team/app/manifests/v1", nil), 200, "")
	}
	e.expect(e.do("GET", "/v2/team/app/manifests/"+d, nil), 200, "")
	e.expect(e.do("HEAD", "/v2/team/app/manifests/v1", nil), 200, "")
	e.expect(e.do("GET", "/v2/team/app/manifests/v1", nil, "If-None-Match", `"`+d+`"`), 304, "")
	e.expect(e.do("GET", "/v2/team/app/manifests/nope", nil), 404, "MANIFEST_UNKNOWN")
	e.expect(e.do("GET", "/v2/team/app/manifests/v1", nil, "Accept", "application/x-nothing"), 404, "MANIFEST_UNKNOWN")

	ctx := context.Background()
	list := func() []events.Event {
		p, err := meta.ListEvents(ctx, events.Query{Types: []events.Type{events.RepositoryPulled}, Access: metadata.CatalogFilter{All: true}})
		if err != nil {
			t.Fatal(err)
		}
		return p.Events
	}
	if es := list(); len(es) != 0 {
		t.Fatalf("%d pull events before the flush: a pull wrote to the database", len(es))
	}
	if err := eng.FlushPulls(ctx); err != nil {
		t.Fatal(err)
	}
	byTag := map[string]float64{}
	for _, ev := range list() {
		if ev.Repository != "team/app" || ev.Digest != d {
			t.Errorf("event %+v", ev)
		}
		byTag[ev.Tag] = ev.Detail["count"].(float64)
	}
	if len(byTag) != 2 || byTag["v1"] != 3 || byTag[""] != 1 {
		t.Fatalf("pull counts by tag %v, want v1: 3 and by digest: 1", byTag)
	}
}

// BenchmarkManifestGetPullCounter measures what counting pulls adds to a manifest GET
// (the handler over SQLite, no network): the same GETs alternate, in blocks, between
// a handler without a pull counter and one with it (pull times and pull events on),
// and the ratio of their times is reported, with the cost of Pulled alone.
//
//	go test -run XXX -bench ManifestGetPullCounter -benchtime 20000x ./internal/registry
func BenchmarkManifestGetPullCounter(b *testing.B) {
	e, eng, meta := pullEnv(b)
	_, p := e.image("team/app")
	if r := e.putManifest("team/app", "v1", ocispec.MediaTypeImageManifest, p); r.status != 201 {
		b.Fatalf("push: %d %s", r.status, r.body)
	}
	plain := New(Options{Blobs: e.h.o.Blobs, Meta: meta})
	counted := e.h
	get := func(h http.Handler) {
		req := httptest.NewRequest(http.MethodGet, "/v2/team/app/manifests/v1", nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("GET: %d %s", w.Code, w.Body)
		}
	}
	const block = 50
	var tPlain, tCounted time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; done += block {
		n := min(block, b.N-done)
		start := time.Now()
		for range n {
			get(plain)
		}
		tPlain += time.Since(start)
		start = time.Now()
		for range n {
			get(counted)
		}
		tCounted += time.Since(start)
	}
	b.StopTimer()
	start := time.Now()
	for range b.N {
		eng.Pulled("team/app", "sha256:0000000000000000000000000000000000000000000000000000000000000000", "v1")
	}
	pulled := time.Since(start)
	n := float64(b.N)
	b.ReportMetric(float64(tPlain.Nanoseconds())/n, "ns/get-plain")
	b.ReportMetric(float64(tCounted.Nanoseconds())/n, "ns/get-counted")
	b.ReportMetric(float64(tCounted)/float64(tPlain), "ratio")
	b.ReportMetric(float64(pulled.Nanoseconds())/n, "ns/Pulled")
}
