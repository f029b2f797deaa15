package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
)

// env is a registry handler on real stores (a temp dir and a SQLite file) behind a
// loopback HTTP server.
type env struct {
	t      testing.TB
	srv    *httptest.Server
	h      *Handler
	events <-chan events.Event
	// auth, when set, is sent as the Authorization header of requests that set none.
	auth string
	// data is the filesystem blob store's root.
	data string
}

func newEnv(t testing.TB, opts ...func(*Options)) *env {
	t.Helper()
	dir := t.TempDir()
	fs, err := blobstore.NewFS(dir + "/data")
	if err != nil {
		t.Fatal(err)
	}
	meta, err := sqlstore.OpenSQLite(context.Background(), dir+"/meta.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	bus := events.NewBus(nil)
	ch, _ := bus.Subscribe(1000)
	o := Options{Blobs: fs, Meta: meta, Events: bus}
	for _, f := range opts {
		f(&o)
	}
	h := New(o)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, h: h, events: ch, data: dir + "/data"}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

// code returns the first OCI error code of the body, or "".
func (r resp) code() string {
	var b struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	if json.Unmarshal(r.body, &b) != nil || len(b.Errors) == 0 {
		return ""
	}
	return b.Errors[0].Code
}

func (e *env) do(method, path string, body io.Reader, hdr ...string) resp {
	e.t.Helper()
	url := path
	if !strings.HasPrefix(path, "http") {
		url = e.srv.URL + path
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	if e.auth != "" && req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", e.auth)
	}
	if b, ok := body.(*bytes.Reader); ok {
		req.ContentLength = int64(b.Len())
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

func (e *env) expect(r resp, status int, code string) {
	e.t.Helper()
	if r.status != status || r.code() != code {
		e.t.Fatalf("got %d %q (%s), want %d %q", r.status, r.code(), r.body, status, code)
	}
	if code != "" && !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		e.t.Fatalf("error response has Content-Type %q", r.header.Get("Content-Type"))
	}
}

func randomBlob(t testing.TB, n int) ([]byte, digest.Digest) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b, digest.FromBytes(b)
}

// pushBlob uploads b monolithically into repo.
func (e *env) pushBlob(repo string, b []byte) digest.Digest {
	e.t.Helper()
	d := digest.FromBytes(b)
	r := e.do("POST", fmt.Sprintf("/v2/%s/blobs/uploads/?digest=%s", repo, d), bytes.NewReader(b))
	e.expect(r, 201, "")
	return d
}

func jsonBytes(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// image pushes a config and one layer into repo and returns an image manifest for them.
func (e *env) image(repo string) (ocispec.Manifest, []byte) {
	e.t.Helper()
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	layer, _ := randomBlob(e.t, 100)
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: e.pushBlob(repo, cfg), Size: int64(len(cfg))},
		Layers:    []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: e.pushBlob(repo, layer), Size: 100}},
	}
	m.SchemaVersion = 2
	return m, jsonBytes(e.t, m)
}

func (e *env) putManifest(repo, ref, mediaType string, payload []byte) resp {
	e.t.Helper()
	return e.do("PUT", fmt.Sprintf("/v2/%s/manifests/%s", repo, ref), bytes.NewReader(payload), "Content-Type", mediaType)
}

func TestBase(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/v2/", nil)
	e.expect(r, 200, "")
	if r.header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
		t.Fatalf("missing API version header: %v", r.header)
	}
	e.expect(e.do("POST", "/v2/", nil), 405, "UNSUPPORTED")
	e.expect(e.do("GET", "/v2/foo", nil), 404, "UNSUPPORTED")
}

func TestMonolithicUploadAndBlobReads(t *testing.T) {
	e := newEnv(t)
	b, d := randomBlob(t, 1000)
	r := e.do("POST", "/v2/a/b/blobs/uploads/?digest="+d.String(), bytes.NewReader(b))
	e.expect(r, 201, "")
	if r.header.Get("Location") != "/v2/a/b/blobs/"+d.String() || r.header.Get("Docker-Content-Digest") != d.String() {
		t.Fatalf("headers: %v", r.header)
	}
	r = e.do("HEAD", "/v2/a/b/blobs/"+d.String(), nil)
	e.expect(r, 200, "")
	if r.header.Get("Content-Length") != "1000" || r.header.Get("Docker-Content-Digest") != d.String() || len(r.body) != 0 {
		t.Fatalf("HEAD: %v %d", r.header, len(r.body))
	}
	r = e.do("GET", "/v2/a/b/blobs/"+d.String(), nil)
	if r.status != 200 || !bytes.Equal(r.body, b) {
		t.Fatalf("GET: %d, %d bytes", r.status, len(r.body))
	}
	r = e.do("GET", "/v2/a/b/blobs/"+d.String(), nil, "Range", "bytes=10-19")
	if r.status != 206 || !bytes.Equal(r.body, b[10:20]) || r.header.Get("Content-Range") != "bytes 10-19/1000" {
		t.Fatalf("Range GET: %d %v", r.status, r.header)
	}
	// Another repository does not see the blob until it is linked there.
	e.expect(e.do("HEAD", "/v2/other/blobs/"+d.String(), nil), 404, "")
	e.expect(e.do("GET", "/v2/other/blobs/"+d.String(), nil), 404, "BLOB_UNKNOWN")
	e.expect(e.do("GET", "/v2/a/b/blobs/sha256:nothex", nil), 400, "DIGEST_INVALID")
	e.expect(e.do("GET", "/v2/a/b/blobs/md5:d41d8cd98f00b204e9800998ecf8427e", nil), 400, "DIGEST_INVALID")
}

func TestMonolithicWrongDigestStoresNothing(t *testing.T) {
	e := newEnv(t)
	b, _ := randomBlob(t, 1000)
	_, other := randomBlob(t, 10)
	e.expect(e.do("POST", "/v2/r/blobs/uploads/?digest="+other.String(), bytes.NewReader(b)), 400, "DIGEST_INVALID")
	e.expect(e.do("HEAD", "/v2/r/blobs/"+other.String(), nil), 404, "")
	if _, err := e.h.o.Blobs.Stat(context.Background(), other, ""); err == nil {
		t.Fatal("a blob with the wrong bytes was stored")
	}
}

func TestSHA512(t *testing.T) {
	e := newEnv(t)
	b, _ := randomBlob(t, 4096)
	d := digest.SHA512.FromBytes(b)
	e.expect(e.do("POST", "/v2/r/blobs/uploads/?digest="+d.String(), bytes.NewReader(b)), 201, "")
	// chunked with sha512
	r := e.do("POST", "/v2/r/blobs/uploads/", nil)
	e.expect(r, 202, "")
	loc := r.header.Get("Location")
	e.expect(e.do("PATCH", loc, bytes.NewReader(b[:100]), "Content-Range", "0-99"), 202, "")
	e.expect(e.do("PUT", loc+"?digest="+d.String(), bytes.NewReader(b[100:])), 201, "")
	r = e.do("GET", "/v2/r/blobs/"+d.String(), nil)
	if !bytes.Equal(r.body, b) {
		t.Fatal("sha512 blob round trip failed")
	}
	// A manifest addressed by a sha512 digest.
	m, payload := e.image("r")
	_ = m
	md := digest.SHA512.FromBytes(payload)
	e.expect(e.putManifest("r", md.String(), ocispec.MediaTypeImageManifest, payload), 201, "")
	r = e.do("GET", "/v2/r/manifests/"+md.String(), nil)
	if r.status != 200 || r.header.Get("Docker-Content-Digest") != md.String() {
		t.Fatalf("GET sha512 manifest: %d %v", r.status, r.header)
	}
}

func TestChunkedUpload(t *testing.T) {
	e := newEnv(t)
	b, d := randomBlob(t, 3000)
	r := e.do("POST", "/v2/r/blobs/uploads/", nil)
	e.expect(r, 202, "")
	loc, id := r.header.Get("Location"), r.header.Get("Docker-Upload-UUID")
	if !strings.HasPrefix(loc, "/v2/r/blobs/uploads/") || id == "" || r.header.Get("Range") != "0-0" {
		t.Fatalf("POST headers: %v", r.header)
	}
	r = e.do("PATCH", loc, bytes.NewReader(b[:1000]), "Content-Range", "0-999", "Content-Type", "application/octet-stream")
	e.expect(r, 202, "")
	if r.header.Get("Range") != "0-999" {
		t.Fatalf("Range after first chunk: %q", r.header.Get("Range"))
	}
	// Out of order: starts at 1500 but the upload holds 1000 bytes.
	r = e.do("PATCH", loc, bytes.NewReader(b[1500:2000]), "Content-Range", "1500-1999")
	if r.status != 416 || r.header.Get("Range") != "0-999" {
		t.Fatalf("out-of-order chunk: %d %v", r.status, r.header)
	}
	// A chunk without Content-Range is streamed on.
	e.expect(e.do("PATCH", loc, bytes.NewReader(b[1000:2000])), 202, "")
	r = e.do("GET", loc, nil)
	e.expect(r, 204, "")
	if r.header.Get("Range") != "0-1999" || r.header.Get("Docker-Upload-UUID") != id {
		t.Fatalf("status: %v", r.header)
	}
	// A wrong digest on completion is refused and the session survives for a retry.
	_, wrong := randomBlob(t, 5)
	e.expect(e.do("PUT", loc+"?digest="+wrong.String(), bytes.NewReader(b[2000:]), "Content-Range", "2000-2999"), 400, "DIGEST_INVALID")
	e.expect(e.do("HEAD", "/v2/r/blobs/"+wrong.String(), nil), 404, "")
	e.expect(e.do("PUT", loc+"?digest="+d.String(), nil), 201, "")
	r = e.do("GET", "/v2/r/blobs/"+d.String(), nil)
	if !bytes.Equal(r.body, b) {
		t.Fatal("chunked blob differs")
	}
	// The session is gone after completion.
	e.expect(e.do("GET", loc, nil), 404, "BLOB_UPLOAD_UNKNOWN")
}

func TestUploadErrors(t *testing.T) {
	e := newEnv(t)
	e.expect(e.do("GET", "/v2/r/blobs/uploads/nope", nil), 404, "BLOB_UPLOAD_UNKNOWN")
	e.expect(e.do("PATCH", "/v2/r/blobs/uploads/nope", strings.NewReader("x")), 404, "BLOB_UPLOAD_UNKNOWN")
	e.expect(e.do("PUT", "/v2/r/blobs/uploads/nope?digest="+digest.FromString("x").String(), nil), 404, "BLOB_UPLOAD_UNKNOWN")
	e.expect(e.do("DELETE", "/v2/r/blobs/uploads/nope", nil), 404, "BLOB_UPLOAD_UNKNOWN")

	r := e.do("POST", "/v2/r/blobs/uploads/", nil)
	loc := r.header.Get("Location")
	// A session belongs to its repository.
	e.expect(e.do("GET", strings.Replace(loc, "/v2/r/", "/v2/s/", 1), nil), 404, "BLOB_UPLOAD_UNKNOWN")
	e.expect(e.do("PUT", loc, nil), 400, "DIGEST_INVALID")
	e.expect(e.do("PUT", loc+"?digest=sha256:zz", nil), 400, "DIGEST_INVALID")
	// Content-Length that disagrees with Content-Range.
	r = e.do("PATCH", loc, bytes.NewReader([]byte("abc")), "Content-Range", "0-9")
	if r.status != 416 {
		t.Fatalf("length/range mismatch: %d %s", r.status, r.body)
	}
	e.expect(e.do("PATCH", loc, bytes.NewReader([]byte("abc")), "Content-Range", "bogus"), 416, "BLOB_UPLOAD_INVALID")
	e.expect(e.do("DELETE", loc, nil), 204, "")
	e.expect(e.do("GET", loc, nil), 404, "BLOB_UPLOAD_UNKNOWN")
}

func TestTooManyUploads(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxConcurrentUploads = 1 })
	r := e.do("POST", "/v2/r/blobs/uploads/", nil)
	loc := e.srv.URL + r.header.Get("Location")
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequest("PATCH", loc, pr)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}()
	defer func() { pw.Close(); <-done }()
	// The first PATCH holds the only slot while its body is open.
	if _, err := pw.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	for len(e.h.uploadSlots) == 0 {
		time.Sleep(time.Millisecond)
	}
	r = e.do("POST", "/v2/r/blobs/uploads/", nil)
	e.expect(r, 429, "TOOMANYREQUESTS")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	pw.Close()
	<-done
	e.expect(e.do("POST", "/v2/r/blobs/uploads/", nil), 202, "")
}

func TestCrossRepositoryMount(t *testing.T) {
	e := newEnv(t)
	b, _ := randomBlob(t, 500)
	d := e.pushBlob("src", b)
	r := e.do("POST", fmt.Sprintf("/v2/dst/blobs/uploads/?mount=%s&from=src", d), nil)
	e.expect(r, 201, "")
	if r.header.Get("Location") != "/v2/dst/blobs/"+d.String() {
		t.Fatalf("mount Location: %q", r.header.Get("Location"))
	}
	e.expect(e.do("HEAD", "/v2/dst/blobs/"+d.String(), nil), 200, "")
	// Not mountable (the source lacks it): a regular session starts.
	_, missing := randomBlob(t, 5)
	r = e.do("POST", fmt.Sprintf("/v2/dst/blobs/uploads/?mount=%s&from=src", missing), nil)
	e.expect(r, 202, "")
	if r.header.Get("Docker-Upload-UUID") == "" {
		t.Fatal("fallback session has no uuid")
	}
	e.expect(e.do("POST", "/v2/dst/blobs/uploads/?mount=bad&from=src", nil), 400, "DIGEST_INVALID")
	e.expect(e.do("POST", fmt.Sprintf("/v2/dst/blobs/uploads/?mount=%s&from=Bad", d), nil), 202, "")
}

func TestManifestLifecycle(t *testing.T) {
	e := newEnv(t)
	_, payload := e.image("app")
	d := digest.FromBytes(payload)
	r := e.putManifest("app", "v1", ocispec.MediaTypeImageManifest, payload)
	e.expect(r, 201, "")
	if r.header.Get("Docker-Content-Digest") != d.String() || r.header.Get("Location") != "/v2/app/manifests/"+d.String() {
		t.Fatalf("PUT headers: %v", r.header)
	}
	for _, ref := range []string{"v1", d.String()} {
		r = e.do("GET", "/v2/app/manifests/"+ref, nil, "Accept", ocispec.MediaTypeImageManifest)
		if r.status != 200 || !bytes.Equal(r.body, payload) || r.header.Get("Content-Type") != ocispec.MediaTypeImageManifest || r.header.Get("Docker-Content-Digest") != d.String() {
			t.Fatalf("GET %s: %d %v", ref, r.status, r.header)
		}
		r = e.do("HEAD", "/v2/app/manifests/"+ref, nil)
		if r.status != 200 || r.header.Get("Content-Length") != fmt.Sprint(len(payload)) || len(r.body) != 0 {
			t.Fatalf("HEAD %s: %d %v", ref, r.status, r.header)
		}
	}
	// Accept negotiation: a client that accepts only Docker types does not get an OCI manifest.
	e.expect(e.do("GET", "/v2/app/manifests/v1", nil, "Accept", mediaTypeDockerManifest), 404, "MANIFEST_UNKNOWN")
	e.expect(e.do("GET", "/v2/app/manifests/v1", nil, "Accept", "application/json, */*;q=0.1"), 200, "")
	// Events: pushed and tag moved.
	if ev := <-e.events; ev.Type != events.ManifestPushed || ev.Digest != d.String() {
		t.Fatalf("first event: %+v", ev)
	}
	if ev := <-e.events; ev.Type != events.TagMoved || ev.Tag != "v1" {
		t.Fatalf("second event: %+v", ev)
	}
	// Tag delete removes the tag only.
	e.expect(e.do("DELETE", "/v2/app/manifests/v1", nil), 202, "")
	e.expect(e.do("GET", "/v2/app/manifests/v1", nil), 404, "MANIFEST_UNKNOWN")
	e.expect(e.do("GET", "/v2/app/manifests/"+d.String(), nil), 200, "")
	e.expect(e.putManifest("app", "v2", ocispec.MediaTypeImageManifest, payload), 201, "")
	// Digest delete removes the manifest and its tags.
	e.expect(e.do("DELETE", "/v2/app/manifests/"+d.String(), nil), 202, "")
	e.expect(e.do("GET", "/v2/app/manifests/v2", nil), 404, "MANIFEST_UNKNOWN")
	e.expect(e.do("DELETE", "/v2/app/manifests/"+d.String(), nil), 404, "MANIFEST_UNKNOWN")
	e.expect(e.do("DELETE", "/v2/app/manifests/nosuchtag", nil), 404, "MANIFEST_UNKNOWN")
	e.expect(e.do("GET", "/v2/nosuchrepo/manifests/latest", nil), 404, "MANIFEST_UNKNOWN")
}

func TestManifestErrors(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxManifestSize = 2048 })
	m, payload := e.image("app")
	mt := ocispec.MediaTypeImageManifest

	e.expect(e.putManifest("app", "v1", mt, []byte("{not json")), 400, "MANIFEST_INVALID")
	e.expect(e.putManifest("app", "v1", mt, []byte(`{"schemaVersion":1}`)), 400, "MANIFEST_INVALID")
	e.expect(e.putManifest("app", "v1", ocispec.MediaTypeImageIndex, payload), 400, "MANIFEST_INVALID")
	e.expect(e.putManifest("app", "v1", "application/x-unknown", []byte(`{"schemaVersion":2}`)), 400, "MANIFEST_INVALID")
	e.expect(e.putManifest("app", "bad:tag:", mt, payload), 400, "DIGEST_INVALID")
	e.expect(e.putManifest("app", ".badtag", mt, payload), 400, "MANIFEST_INVALID")
	e.expect(e.putManifest("app", digest.FromString("other").String(), mt, payload), 400, "DIGEST_INVALID")
	big := bytes.Repeat([]byte(" "), 4096)
	e.expect(e.putManifest("app", "v1", mt, append(big, payload...)), 413, "SIZE_INVALID")

	missing := m
	missing.Layers = append([]ocispec.Descriptor{}, m.Layers...)
	missing.Layers = append(missing.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("absent"), Size: 6})
	r := e.putManifest("app", "v1", mt, jsonBytes(t, missing))
	e.expect(r, 400, "MANIFEST_BLOB_UNKNOWN")
	e.expect(e.do("GET", "/v2/app/manifests/v1", nil), 404, "MANIFEST_UNKNOWN")

	// A blob of another repository does not count.
	other, _ := e.image("other")
	e.expect(e.putManifest("app", "v1", mt, jsonBytes(t, other)), 400, "MANIFEST_BLOB_UNKNOWN")

	// Non-distributable layers need not be present.
	foreign := m
	foreign.Layers = append([]ocispec.Descriptor{}, m.Layers...)
	foreign.Layers = append(foreign.Layers, ocispec.Descriptor{MediaType: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", Digest: digest.FromString("elsewhere"), Size: 9, URLs: []string{"https://example.invalid/x"}})
	e.expect(e.putManifest("app", "foreign", mt, jsonBytes(t, foreign)), 201, "")

	// An index whose child is not in the repository.
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{{MediaType: mt, Digest: digest.FromString("nochild"), Size: 10}}}
	idx.SchemaVersion = 2
	e.expect(e.putManifest("app", "idx", ocispec.MediaTypeImageIndex, jsonBytes(t, idx)), 400, "MANIFEST_BLOB_UNKNOWN")
	e.expect(e.do("POST", "/v2/app/manifests/v1", nil), 405, "UNSUPPORTED")
}

func TestIndexAndDockerTypes(t *testing.T) {
	e := newEnv(t)
	_, p1 := e.image("multi")
	d1 := digest.FromBytes(p1)
	e.expect(e.putManifest("multi", d1.String(), ocispec.MediaTypeImageManifest, p1), 201, "")

	// Docker schema 2 manifest, content type taken from the header.
	m2, _ := e.image("multi")
	dm := map[string]any{"schemaVersion": 2, "mediaType": mediaTypeDockerManifest,
		"config": map[string]any{"mediaType": "application/vnd.docker.container.image.v1+json", "digest": m2.Config.Digest, "size": m2.Config.Size},
		"layers": []any{map[string]any{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": m2.Layers[0].Digest, "size": m2.Layers[0].Size}}}
	p2 := jsonBytes(t, dm)
	d2 := digest.FromBytes(p2)
	e.expect(e.putManifest("multi", d2.String(), mediaTypeDockerManifest, p2), 201, "")

	list := map[string]any{"schemaVersion": 2, "mediaType": mediaTypeDockerManifestList, "manifests": []any{
		map[string]any{"mediaType": mediaTypeDockerManifest, "digest": d2, "size": len(p2), "platform": map[string]string{"os": "linux", "architecture": "arm64"}},
	}}
	e.expect(e.putManifest("multi", "list", mediaTypeDockerManifestList, jsonBytes(t, list)), 201, "")

	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{
		{MediaType: ocispec.MediaTypeImageManifest, Digest: d1, Size: int64(len(p1)), Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"}},
		{MediaType: mediaTypeDockerManifest, Digest: d2, Size: int64(len(p2)), Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64"}},
	}}
	idx.SchemaVersion = 2
	r := e.putManifest("multi", "latest", ocispec.MediaTypeImageIndex, jsonBytes(t, idx))
	e.expect(r, 201, "")
	r = e.do("GET", "/v2/multi/manifests/latest", nil)
	if r.header.Get("Content-Type") != ocispec.MediaTypeImageIndex {
		t.Fatalf("index content type %q", r.header.Get("Content-Type"))
	}
	r = e.do("GET", "/v2/multi/manifests/list", nil, "Accept", mediaTypeDockerManifestList)
	if r.status != 200 || r.header.Get("Content-Type") != mediaTypeDockerManifestList {
		t.Fatalf("manifest list: %d %v", r.status, r.header)
	}
}

// TestDeleteIndexChild: DELETE of a manifest an index of the repository lists is
// refused with 409 DENIED naming the index; the tag delete, the index delete and then
// the child delete succeed.
func TestDeleteIndexChild(t *testing.T) {
	e := newEnv(t)
	_, p := e.image("multi")
	child := digest.FromBytes(p)
	e.expect(e.putManifest("multi", "child", ocispec.MediaTypeImageManifest, p), 201, "")
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{
		{MediaType: ocispec.MediaTypeImageManifest, Digest: child, Size: int64(len(p)), Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"}},
	}}
	idx.SchemaVersion = 2
	ip := jsonBytes(t, idx)
	index := digest.FromBytes(ip)
	e.expect(e.putManifest("multi", "latest", ocispec.MediaTypeImageIndex, ip), 201, "")

	r := e.do("DELETE", "/v2/multi/manifests/"+child.String(), nil)
	e.expect(r, http.StatusConflict, "DENIED")
	if !strings.Contains(string(r.body), index.String()) {
		t.Fatalf("refusal does not name the index %s: %s", index, r.body)
	}
	e.expect(e.do("GET", "/v2/multi/manifests/latest", nil), 200, "")
	e.expect(e.do("GET", "/v2/multi/manifests/"+child.String(), nil), 200, "")
	e.expect(e.do("DELETE", "/v2/multi/manifests/child", nil), 202, "")
	e.expect(e.do("DELETE", "/v2/multi/manifests/"+index.String(), nil), 202, "")
	e.expect(e.do("DELETE", "/v2/multi/manifests/"+child.String(), nil), 202, "")
}

func TestReferrers(t *testing.T) {
	e := newEnv(t)
	_, p := e.image("app")
	subject := digest.FromBytes(p)
	// Referrers may be pushed before their subject.
	empty := []byte("{}")
	emptyD := e.pushBlob("app", empty)
	art := func(artifactType, note string) []byte {
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: artifactType,
			Config:      ocispec.Descriptor{MediaType: "application/vnd.oci.empty.v1+json", Digest: emptyD, Size: 2},
			Layers:      []ocispec.Descriptor{{MediaType: "application/vnd.oci.empty.v1+json", Digest: emptyD, Size: 2}},
			Subject:     &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: subject, Size: int64(len(p))},
			Annotations: map[string]string{"note": note}}
		m.SchemaVersion = 2
		return jsonBytes(t, m)
	}
	sig, sbom := art("application/vnd.example.sig", "a"), art("application/vnd.example.sbom", "b")
	for _, a := range [][]byte{sig, sbom} {
		r := e.putManifest("app", digest.FromBytes(a).String(), ocispec.MediaTypeImageManifest, a)
		e.expect(r, 201, "")
		if r.header.Get("OCI-Subject") != subject.String() {
			t.Fatalf("OCI-Subject = %q", r.header.Get("OCI-Subject"))
		}
	}
	e.expect(e.putManifest("app", "v1", ocispec.MediaTypeImageManifest, p), 201, "")

	get := func(query string) (ocispec.Index, resp) {
		r := e.do("GET", "/v2/app/referrers/"+subject.String()+query, nil)
		e.expect(r, 200, "")
		var idx ocispec.Index
		if err := json.Unmarshal(r.body, &idx); err != nil {
			t.Fatal(err)
		}
		return idx, r
	}
	idx, r := get("")
	if len(idx.Manifests) != 2 || r.header.Get("Content-Type") != ocispec.MediaTypeImageIndex || r.header.Get("OCI-Filters-Applied") != "" {
		t.Fatalf("referrers: %s %v", r.body, r.header)
	}
	idx, r = get("?artifactType=application/vnd.example.sbom")
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != digest.FromBytes(sbom) || idx.Manifests[0].ArtifactType != "application/vnd.example.sbom" ||
		idx.Manifests[0].Annotations["note"] != "b" || r.header.Get("OCI-Filters-Applied") != "artifactType" {
		t.Fatalf("filtered referrers: %s %v", r.body, r.header)
	}
	// Deleting a referrer removes it from the list.
	e.expect(e.do("DELETE", "/v2/app/manifests/"+digest.FromBytes(sig).String(), nil), 202, "")
	if idx, _ = get(""); len(idx.Manifests) != 1 {
		t.Fatalf("after delete: %d referrers", len(idx.Manifests))
	}
	// Unknown repositories and subjects give an empty list, never 404.
	r = e.do("GET", "/v2/nothing/referrers/"+subject.String(), nil)
	e.expect(r, 200, "")
	if !strings.Contains(string(r.body), `"manifests":[]`) {
		t.Fatalf("empty referrers body: %s", r.body)
	}
	e.expect(e.do("GET", "/v2/app/referrers/sha256:123", nil), 400, "DIGEST_INVALID")
}

func TestTagsAndCatalogPagination(t *testing.T) {
	e := newEnv(t)
	_, p := e.image("app")
	for _, tag := range []string{"c", "a", "b", "d"} {
		e.expect(e.putManifest("app", tag, ocispec.MediaTypeImageManifest, p), 201, "")
	}
	list := func(path string) ([]string, string) {
		r := e.do("GET", path, nil)
		e.expect(r, 200, "")
		var v struct {
			Name         string
			Tags         []string
			Repositories []string
		}
		if err := json.Unmarshal(r.body, &v); err != nil {
			t.Fatal(err)
		}
		if v.Tags != nil {
			return v.Tags, r.header.Get("Link")
		}
		return v.Repositories, r.header.Get("Link")
	}
	tags, link := list("/v2/app/tags/list")
	if strings.Join(tags, ",") != "a,b,c,d" || link != "" {
		t.Fatalf("all tags: %v %q", tags, link)
	}
	tags, link = list("/v2/app/tags/list?n=2")
	if strings.Join(tags, ",") != "a,b" || link != `</v2/app/tags/list?last=b&n=2>; rel="next"` {
		t.Fatalf("page 1: %v %q", tags, link)
	}
	tags, link = list("/v2/app/tags/list?n=2&last=b")
	if strings.Join(tags, ",") != "c,d" || link != "" {
		t.Fatalf("page 2: %v %q", tags, link)
	}
	r := e.do("GET", "/v2/app/tags/list?n=0", nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"tags":[]`) {
		t.Fatalf("n=0: %d %s", r.status, r.body)
	}
	e.expect(e.do("GET", "/v2/app/tags/list?n=-1", nil), 400, "UNSUPPORTED")
	e.expect(e.do("GET", "/v2/nope/tags/list", nil), 404, "NAME_UNKNOWN")
	e.expect(e.do("GET", "/v2/nope/tags/list?n=0", nil), 404, "NAME_UNKNOWN")

	e.pushBlob("zzz/last", []byte("x"))
	e.pushBlob("mid", []byte("y"))
	repos, _ := list("/v2/_catalog")
	if strings.Join(repos, ",") != "app,mid,zzz/last" {
		t.Fatalf("catalog: %v", repos)
	}
	repos, link = list("/v2/_catalog?n=1&last=app")
	if strings.Join(repos, ",") != "mid" || !strings.Contains(link, "last=mid") {
		t.Fatalf("catalog page: %v %q", repos, link)
	}
}

func TestBlobDelete(t *testing.T) {
	e := newEnv(t)
	d := e.pushBlob("r", []byte("bye"))
	e.expect(e.do("DELETE", "/v2/r/blobs/"+d.String(), nil), 202, "")
	e.expect(e.do("HEAD", "/v2/r/blobs/"+d.String(), nil), 404, "")
	e.expect(e.do("DELETE", "/v2/r/blobs/"+d.String(), nil), 404, "BLOB_UNKNOWN")
	if ev := <-e.events; ev.Type != events.BlobDeleted || ev.Digest != d.String() {
		t.Fatalf("event: %+v", ev)
	}
}

func TestInvalidNames(t *testing.T) {
	e := newEnv(t)
	for _, name := range []string{"Upper", "a//b", "-lead", "trail-", strings.Repeat("a", 256), "a/../b"} {
		r := e.do("GET", "/v2/"+name+"/tags/list", nil)
		if r.status != 400 || r.code() != "NAME_INVALID" {
			t.Errorf("%q: %d %s", name, r.status, r.body)
		}
	}
	e.expect(e.do("POST", "/v2/Bad/blobs/uploads/", nil), 400, "NAME_INVALID")
}

func TestRouteParsing(t *testing.T) {
	for _, tc := range []struct {
		path            string
		kind, name, ref string
	}{
		{"/v2/", "base", "", ""},
		{"/v2/_catalog", "catalog", "", ""},
		{"/v2/a/tags/list", "tags", "a", ""},
		{"/v2/a/b/c/manifests/latest", "manifest", "a/b/c", "latest"},
		{"/v2/manifests/manifests/x", "manifest", "manifests", "x"},
		{"/v2/a/blobs/uploads/", "uploads", "a", ""},
		{"/v2/a/blobs/uploads", "uploads", "a", ""},
		{"/v2/a/blobs/uploads/123", "upload", "a", "123"},
		{"/v2/blobs/blobs/sha256:1", "blob", "blobs", "sha256:1"},
		{"/v2/a/referrers/sha256:1", "referrers", "a", "sha256:1"},
	} {
		rt, ok := parseRoute(tc.path)
		if !ok || rt.kind != tc.kind || rt.name != tc.name || rt.ref != tc.ref {
			t.Errorf("%s: got %+v %v", tc.path, rt, ok)
		}
	}
	if _, ok := parseRoute("/v2/a/unknown"); ok {
		t.Error("unknown route parsed")
	}
}

func TestCleanStaleUploads(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/v2/r/blobs/uploads/", nil)
	loc := r.header.Get("Location")
	e.expect(e.do("PATCH", loc, bytes.NewReader([]byte("data"))), 202, "")
	n, err := e.h.CleanStaleUploads(context.Background(), 0)
	if err != nil || n != 1 {
		t.Fatalf("cleaned %d, %v", n, err)
	}
	e.expect(e.do("GET", loc, nil), 404, "BLOB_UPLOAD_UNKNOWN")
}

func TestTagParameter(t *testing.T) {
	e := newEnv(t)
	_, p := e.image("app")
	d := digest.SHA512.FromBytes(p)
	r := e.putManifest("app", d.String()+"?tag=a&tag=b", ocispec.MediaTypeImageManifest, p)
	e.expect(r, 201, "")
	if got := strings.Join(r.header.Values("OCI-Tag"), ","); got != "a,b" {
		t.Fatalf("OCI-Tag = %q", got)
	}
	for _, tag := range []string{"a", "b"} {
		r = e.do("HEAD", "/v2/app/manifests/"+tag, nil)
		if r.status != 200 || r.header.Get("Docker-Content-Digest") != d.String() {
			t.Fatalf("tag %s: %d %v", tag, r.status, r.header)
		}
	}
	e.expect(e.putManifest("app", d.String()+"?tag=.bad", ocispec.MediaTypeImageManifest, p), 400, "MANIFEST_INVALID")
}

func TestStoreFailureIsOpaque(t *testing.T) {
	e := newEnv(t)
	if err := e.h.o.Meta.Close(); err != nil {
		t.Fatal(err)
	}
	r := e.do("GET", "/v2/app/tags/list", nil)
	e.expect(r, 500, "UNKNOWN")
	if strings.Contains(string(r.body), "sql") || strings.Contains(string(r.body), "closed") {
		t.Fatalf("internal detail leaked: %s", r.body)
	}
	if r := e.do("HEAD", "/v2/app/manifests/x", nil); r.status != 500 || len(r.body) != 0 {
		t.Fatalf("HEAD on a failing store: %d %q", r.status, r.body)
	}
}
