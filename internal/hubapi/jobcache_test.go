package hubapi_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/hubtypes"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

// cacheWorkflow keeps a cache whose key the hub evaluates (run.workflow in it).
const cacheWorkflow = `name: %s
on: manual
jobs:
  build:
    image: alpine
    cache:
      key: 'deps-${{ run.workflow == "" ? "none" : "v1" }}'
      path: /root/.cache
    steps:
      - run: make
`

// entries lists a tar.gz's entries as name=content.
func entries(t *testing.T, b []byte) []string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		c, _ := io.ReadAll(tr)
		out = append(out, h.Name+"="+string(c))
	}
}

// TestJobCacheEndpoints: a job's token finds no cache under its key at first, saves
// one, and a later run of the workflow gets it byte for byte; a second save under the
// key (the same run or a later one) is refused with 409 and changes nothing; the
// key is the hub's evaluation of the workflow's (never the client's), and another
// workflow with the same key does not see it.
func TestJobCacheEndpoints(t *testing.T) {
	af := newFilesFixture(t, func(*wfengine.ArtifactOptions) {})
	af.want(af.do(asAlice, "PUT", "/api/v1/workflows/alice/cached", fmt.Sprintf(cacheWorkflow, "cached")), 200, "")
	af.want(af.do(asAlice, "PUT", "/api/v1/workflows/alice/other", fmt.Sprintf(cacheWorkflow, "other")), 200, "")
	run1, build1, tok1 := af.startRunOf("cached")
	job1 := bearer(tok1)
	base1 := fmt.Sprintf("/api/v1/runs/%d/jobs/%d/cache", run1, build1)
	af.want(af.do(job1, "GET", base1, nil), 404, "NAME_UNKNOWN")
	if r := af.do(job1, "HEAD", base1, nil); r.status != 404 {
		t.Fatalf("HEAD without a cache: %d", r.status)
	}
	first := tgz(t, "a.txt", "one", "sub/", "", "sub/b.txt", "two")
	// A key in the query is not the hub's business: the evaluated key is used.
	saved := decodeAs[hubtypes.WorkflowCache](t, af.want(af.do(job1, "PUT", base1+"?key=evil", string(first)), 201, ""))
	if saved.Size == 0 || !strings.HasPrefix(saved.Digest, "sha256:") {
		t.Fatalf("saved %+v", saved)
	}
	w, err := af.store.GetWorkflow(t.Context(), "alice", "cached")
	if err != nil {
		t.Fatal(err)
	}
	caches, err := af.store.ListWorkflowCaches(t.Context(), w.ID)
	if err != nil || len(caches) != 1 || caches[0].Key != "deps-v1" || caches[0].Digest.String() != saved.Digest {
		t.Fatalf("stored caches %+v %v", caches, err)
	}
	// The same job saves again: refused, nothing changes.
	af.want(af.do(job1, "PUT", base1, string(tgz(t, "a.txt", "changed"))), 409, "CONFLICT")

	run2, build2, tok2 := af.startRunOf("cached")
	job2 := bearer(tok2)
	base2 := fmt.Sprintf("/api/v1/runs/%d/jobs/%d/cache", run2, build2)
	if r := af.do(job2, "HEAD", base2, nil); r.status != 200 || r.header.Get("Docker-Content-Digest") != saved.Digest || len(r.body) != 0 {
		t.Fatalf("HEAD with a cache: %d %v %q", r.status, r.header, r.body)
	}
	r := af.want(af.do(job2, "GET", base2, nil), 200, "")
	if got := digest.FromBytes(r.body).String(); got != saved.Digest || r.header.Get("Docker-Content-Digest") != saved.Digest {
		t.Fatalf("downloaded %s (header %s), saved %s", got, r.header.Get("Docker-Content-Digest"), saved.Digest)
	}
	if got := fmt.Sprint(entries(t, r.body)); got != "[a.txt=one sub/= sub/b.txt=two]" {
		t.Fatalf("restored entries %s", got)
	}
	af.want(af.do(job2, "PUT", base2, string(tgz(t, "a.txt", "run 2"))), 409, "CONFLICT")
	if caches, err := af.store.ListWorkflowCaches(t.Context(), w.ID); err != nil || len(caches) != 1 || caches[0].Digest.String() != saved.Digest {
		t.Fatalf("after refused saves: %+v %v", caches, err)
	}

	// Another workflow naming the same key has its own caches.
	run3, build3, tok3 := af.startRunOf("other")
	af.want(af.do(bearer(tok3), "GET", fmt.Sprintf("/api/v1/runs/%d/jobs/%d/cache", run3, build3), nil), 404, "NAME_UNKNOWN")
}

// TestJobCacheAttacks: run A's token cannot read or write run B's cache; a user, even
// the run's owner, cannot use the endpoints; a job that declares no cache has none;
// an upload past workflows.cache.max_size, climbing out with .., an absolute name, a
// link leaving the tree, cut short or not gzip keeps nothing (no row, no blob); a job
// run that ended saves nothing.
func TestJobCacheAttacks(t *testing.T) {
	af := newFilesFixture(t, func(o *wfengine.ArtifactOptions) { o.CacheMaxSize = 1 << 10 })
	af.want(af.do(asAlice, "PUT", "/api/v1/workflows/alice/cached", fmt.Sprintf(cacheWorkflow, "cached")), 200, "")
	af.want(af.do(asAlice, "PUT", "/api/v1/workflows/alice/pipe", artifactWorkflow), 200, "")
	runA, buildA, tokA := af.startRunOf("cached")
	runB, buildB, tokB := af.startRunOf("cached")
	a := bearer(tokA)
	good := string(tgz(t, "a.txt", "ok"))
	pathA := fmt.Sprintf("/api/v1/runs/%d/jobs/%d/cache", runA, buildA)
	pathB := fmt.Sprintf("/api/v1/runs/%d/jobs/%d/cache", runB, buildB)
	// Run A's token on run B's path, and on run A's path naming B's job.
	af.want(af.do(a, "PUT", pathB, good), 404, "NAME_UNKNOWN")
	af.want(af.do(a, "GET", pathB, nil), 404, "NAME_UNKNOWN")
	af.want(af.do(a, "PUT", fmt.Sprintf("/api/v1/runs/%d/jobs/%d/cache", runA, buildB), good), 404, "NAME_UNKNOWN")
	// A user does not use these endpoints; nor does a request without credentials.
	af.want(af.do(asAlice, "PUT", pathA, good), 403, "DENIED")
	af.want(af.do(asAlice, "GET", pathA, nil), 403, "DENIED")
	if r := af.do(anon, "PUT", pathA, good); r.status != 401 {
		t.Fatalf("anonymous: %d %s", r.status, r.body)
	}
	// A job that declares no cache.
	runP, buildP, tokP := af.startRunOf("pipe")
	af.want(af.do(bearer(tokP), "PUT", fmt.Sprintf("/api/v1/runs/%d/jobs/%d/cache", runP, buildP), good), 404, "NAME_UNKNOWN")

	tarOf := func(hs ...*tar.Header) string {
		var b bytes.Buffer
		gz := gzip.NewWriter(&b)
		tw := tar.NewWriter(gz)
		for _, h := range hs {
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			if h.Size > 0 {
				_, _ = tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
			}
		}
		_ = tw.Close()
		_ = gz.Close()
		return b.String()
	}
	for _, c := range []struct{ what, body, msg string }{
		{"past the cap", string(tgz(t, "big", strings.Repeat("x", 2<<10))), "workflows.cache.max_size"},
		{"climbing out", string(tgz(t, "../../etc/cron.d/evil", "x")), "climbs out"},
		{"absolute", string(tgz(t, "/etc/passwd", "x")), "absolute"},
		{"a link leaving the tree", tarOf(&tar.Header{Name: "escape", Typeflag: tar.TypeSymlink, Linkname: "../../../etc", Mode: 0o777}), "points outside"},
		{"under a link", tarOf(&tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "sub", Mode: 0o777},
			&tar.Header{Name: "l/x", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}), "under the symbolic link"},
		{"a device", tarOf(&tar.Header{Name: "dev", Typeflag: tar.TypeChar, Mode: 0o644}), "special file"},
		{"cut short", good[:len(good)/2], ""},
		{"not gzip", "hello", "not gzip"},
	} {
		if r := af.do(a, "PUT", pathA, c.body); r.status != 400 || r.code() != "BLOB_UPLOAD_INVALID" || !strings.Contains(string(r.body), c.msg) {
			t.Errorf("%s: %d %s", c.what, r.status, r.body)
		}
	}
	w, err := af.store.GetWorkflow(t.Context(), "alice", "cached")
	if err != nil {
		t.Fatal(err)
	}
	if caches, err := af.store.ListWorkflowCaches(t.Context(), w.ID); err != nil || len(caches) != 0 {
		t.Fatalf("refused uploads kept %+v %v", caches, err)
	}
	if n := af.storedBlobs(); n != 0 {
		t.Fatalf("refused uploads left %d blobs", n)
	}
	// A job run that ended saves nothing, even with its run's token.
	if err := af.store.FinishWorkflowJob(t.Context(), buildA, "e1", wfengine.Finish{State: wfengine.StateFailed}); err != nil {
		t.Fatal(err)
	}
	af.want(af.do(a, "PUT", pathA, good), 403, "DENIED")
	// B's own token still saves B's.
	af.want(af.do(bearer(tokB), "PUT", pathB, good), 201, "")
}
