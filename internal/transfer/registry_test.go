package transfer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hubctl/hubctl/internal/distclient"
	"github.com/hubctl/hubctl/internal/imagestore"
	"github.com/hubctl/hubctl/internal/progress"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// newEngine returns an engine whose registry client reports retries on the copy's
// event stream, as the commands wire it.
func newEngine() *Engine {
	e := &Engine{}
	e.Client = distclient.New(distclient.Options{OnRetry: e.ReportRetry})
	return e
}

// seed pushes ti from an OCI layout to ref and returns the layout's location.
func seed(t *testing.T, e *Engine, ti testIndex, ref string) string {
	t.Helper()
	src := "oci:" + writeLayout(t, ti, "v1") + ":v1"
	rec := &recorder{}
	res, err := e.Copy(context.Background(), src, ref, Options{Progress: rec.sink})
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != ti.index.desc.Digest || res.Reference != ref+"@"+ti.index.desc.Digest.String() || res.UpToDate || res.DigestChanged {
		t.Fatalf("push Result %+v", res)
	}
	checkEventOrder(t, rec.all(), res, treeOf(ti))
	if got := sorted(rec.digests(progress.BlobDone)); !slices.Equal(got, blobDigests(ti.blobs())) {
		t.Fatalf("pushed blobs %v, want %v", got, blobDigests(ti.blobs()))
	}
	return src
}

func TestCopyRegistryToRegistry(t *testing.T) {
	t.Parallel()
	a, b := startRegistry(t, "none"), startRegistry(t, "none")
	ti := newTestIndex(t, "reg", "linux/amd64", "linux/arm64")
	e := newEngine()
	ctx := context.Background()
	srcRef := a + "/src/app:v1"
	seed(t, e, ti, srcRef)

	// To another registry: every blob is sent.
	dstRef := b + "/dst/app:v1"
	rec := &recorder{}
	res, err := e.Copy(ctx, srcRef, dstRef, Options{Progress: rec.sink})
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Reference: dstRef + "@" + ti.index.desc.Digest.String(), Digest: ti.index.desc.Digest, MediaType: ocispec.MediaTypeImageIndex}
	if res != want {
		t.Fatalf("Result %+v, want %+v", res, want)
	}
	checkEventOrder(t, rec.all(), res, treeOf(ti))
	if got := sorted(rec.digests(progress.BlobDone)); !slices.Equal(got, blobDigests(ti.blobs())) {
		t.Errorf("blobs sent %v, want %v", got, blobDigests(ti.blobs()))
	}
	if n := len(rec.of(progress.BlobMounted)); n != 0 {
		t.Errorf("%d mounts across registries", n)
	}
	desc, err := e.Client.HeadManifest(ctx, distclient.Ref{Repo: distclient.Repo{Host: b, Path: "dst/app"}, Tag: "v1"})
	if err != nil || desc.Digest != ti.index.desc.Digest {
		t.Fatalf("destination tag: %+v, %v", desc, err)
	}

	// Again: the tag already names the digest, so nothing at all is sent.
	rec = &recorder{}
	res, err = e.Copy(ctx, srcRef, dstRef, Options{Progress: rec.sink})
	if err != nil {
		t.Fatal(err)
	}
	want.UpToDate = true
	if res != want {
		t.Fatalf("second Result %+v, want %+v", res, want)
	}
	for _, ev := range rec.all() {
		switch ev.Kind {
		case progress.ImageStarted, progress.ImageDone:
		case progress.ManifestExists:
			if ev.Digest != ti.index.desc.Digest.String() || ev.Tag != "v1" {
				t.Errorf("manifest-exists %+v, want the index under v1", ev)
			}
		default:
			t.Errorf("up-to-date copy emitted %s: %+v", ev.Kind, ev)
		}
	}

	// Pulled back into a layout, it is the same image.
	dir := filepath.Join(t.TempDir(), "pulled")
	if res, err := e.Copy(ctx, dstRef, "oci:"+dir+":v1", Options{}); err != nil || res.Digest != ti.index.desc.Digest {
		t.Fatalf("pull: %+v, %v", res, err)
	}
	checkLayout(t, dir, "v1", ti.index.desc, ti.blobs())
}

func TestCopyWithinRegistryMounts(t *testing.T) {
	t.Parallel()
	a := startRegistry(t, "none")
	ti := newTestIndex(t, "mount", "linux/amd64", "linux/arm64")
	e := newEngine()
	ctx := context.Background()
	srcRef := a + "/src/app:v1"
	seed(t, e, ti, srcRef)

	rec := &recorder{}
	res, err := e.Copy(ctx, srcRef, a+"/other/app:v2", Options{Progress: rec.sink})
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != ti.index.desc.Digest || res.UpToDate {
		t.Fatalf("Result %+v", res)
	}
	checkEventOrder(t, rec.all(), res, treeOf(ti))
	mounted := rec.of(progress.BlobMounted)
	var got []string
	for _, ev := range mounted {
		got = append(got, ev.Digest)
		if ev.From != "src/app" {
			t.Errorf("mounted %s from %q, want src/app", ev.Digest, ev.From)
		}
	}
	if !slices.Equal(sorted(got), blobDigests(ti.blobs())) {
		t.Errorf("mounted %v, want every blob %v", sorted(got), blobDigests(ti.blobs()))
	}
	if n := len(rec.of(progress.BlobStarted)) + len(rec.of(progress.BlobDone)); n != 0 {
		t.Errorf("blobs sent although mountable: %s", kinds(rec.all()))
	}
	if n := len(rec.of(progress.ManifestPushed)); n != 3 {
		t.Errorf("%d manifests pushed, want 3", n)
	}
	repo := distclient.Repo{Host: a, Path: "other/app"}
	for _, b := range ti.blobs() {
		if ok, err := e.Client.BlobExists(ctx, repo, b.desc.Digest); err != nil || !ok {
			t.Errorf("blob %s not in other/app: %v, %v", b.desc.Digest, ok, err)
		}
	}

	// A copy within one repository (a new tag) has nothing to mount from.
	rec = &recorder{}
	if _, err := e.Copy(ctx, srcRef, a+"/src/app:v3", Options{Progress: rec.sink}); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.of(progress.BlobMounted)) + len(rec.of(progress.BlobStarted)); n != 0 {
		t.Errorf("retagging moved blobs: %s", kinds(rec.all()))
	}
}

func TestCopyRegistryPlatformFilter(t *testing.T) {
	t.Parallel()
	a := startRegistry(t, "none")
	ti := newTestIndex(t, "regplat", "linux/amd64", "linux/arm64", "linux/s390x")
	e := newEngine()
	ctx := context.Background()
	srcRef := a + "/src/app:v1"
	seed(t, e, ti, srcRef)

	arm := ti.image("arm64")
	res, err := e.Copy(ctx, srcRef, a+"/one/app:v1", Options{Platforms: platforms(t, "linux/arm64")})
	if err != nil || res.Digest != arm.manifest.desc.Digest || res.MediaType != ocispec.MediaTypeImageManifest {
		t.Fatalf("single platform: %+v, %v", res, err)
	}
	res, err = e.Copy(ctx, srcRef, a+"/two/app:v1", Options{Platforms: platforms(t, "linux/amd64,linux/arm64")})
	if err != nil || !res.DigestChanged || res.MediaType != ocispec.MediaTypeImageIndex {
		t.Fatalf("two platforms: %+v, %v", res, err)
	}
	_, raw, err := e.Client.GetManifest(ctx, distclient.Ref{Repo: distclient.Repo{Host: a, Path: "two/app"}, Tag: "v1"})
	if err != nil || digest.FromBytes(raw) != res.Digest {
		t.Fatalf("filtered index: %v", err)
	}
	// The second time the filtered index is up to date: the filter is deterministic.
	res2, err := e.Copy(ctx, srcRef, a+"/two/app:v1", Options{Platforms: platforms(t, "linux/amd64,linux/arm64")})
	if err != nil || !res2.UpToDate || res2.Digest != res.Digest {
		t.Fatalf("second filtered copy: %+v, %v", res2, err)
	}
}

func TestCopyRegistryErrors(t *testing.T) {
	t.Parallel()
	a := startRegistry(t, "none")
	e := newEngine()
	ctx := context.Background()
	dst := "oci:" + filepath.Join(t.TempDir(), "d") + ":v1"
	_, err := e.Copy(ctx, a+"/nothing/here:v1", dst, Options{})
	if !errors.Is(err, imagestore.ErrNotFound) || !errors.Is(err, distclient.ErrNotFound) || !strings.Contains(err.Error(), a+"/nothing/here:v1") {
		t.Fatalf("missing source: %v", err)
	}

	// Without credentials on a token-auth registry: the login hint reaches the caller.
	tok := startRegistry(t, "token")
	_, err = e.Copy(ctx, "oci:"+writeLayout(t, newTestIndex(t, "denied", "linux/amd64"), "v1")+":v1", tok+"/team/app:v1", Options{})
	if !errors.Is(err, distclient.ErrUnauthorized) || !strings.Contains(err.Error(), "hubctl login "+tok) {
		t.Fatalf("push without login: %v", err)
	}
}

// TestCopyRetries puts a proxy before the destination registry: manifest checks fail
// twice with 503 (the client retries them and the engine reports it), and the first
// streamed upload of a blob is answered 500 (the engine sends that blob again from the
// source). The client sends every blob through a session here, as it does large ones.
func TestCopyRetries(t *testing.T) {
	t.Parallel()
	b := startRegistry(t, "none")
	var heads, puts atomic.Int64
	proxy := faultProxy(t, b, func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/manifests/") && heads.Add(1) <= 2:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") && puts.Add(1) == 1:
			w.WriteHeader(http.StatusInternalServerError)
			return true
		}
		return false
	})
	ti := newTestIndex(t, "retry", "linux/amd64")
	src := "oci:" + writeLayout(t, ti, "v1") + ":v1"
	e := &Engine{}
	e.Client = distclient.New(distclient.Options{OnRetry: e.ReportRetry, MonolithicMax: -1})
	rec := &recorder{}
	res, err := e.Copy(context.Background(), src, proxy+"/dst/app:v1", Options{Progress: rec.sink, Jobs: 1})
	if err != nil {
		t.Fatal(err)
	}
	checkEventOrder(t, rec.all(), res, treeOf(ti))
	var clientRetries, blobRetries int
	for _, ev := range rec.of(progress.Retry) {
		switch {
		case ev.Digest == "" && strings.HasPrefix(ev.Message, "HEAD /v2/dst/app/manifests/"):
			clientRetries++
			if ev.Attempt != clientRetries+1 || ev.Wait != 0 || !strings.Contains(ev.Error, "503") {
				t.Errorf("client retry %+v", ev)
			}
		case ev.Digest != "":
			blobRetries++
			if ev.Attempt != 2 || !strings.Contains(ev.Error, "500") {
				t.Errorf("blob retry %+v", ev)
			}
		default:
			t.Errorf("unexpected retry %+v", ev)
		}
	}
	if clientRetries != 2 || blobRetries != 1 {
		t.Fatalf("%d client and %d blob retries, want 2 and 1: %s", clientRetries, blobRetries, kinds(rec.all()))
	}
}

// TestCopyReferrers copies an image with a signature-like referrer of its index
// between two registries with the referrers API.
func TestCopyReferrers(t *testing.T) {
	t.Parallel()
	a, b := startRegistry(t, "none"), startRegistry(t, "none")
	ti := newTestIndex(t, "refs", "linux/amd64")
	e := newEngine()
	ctx := context.Background()
	srcRef := a + "/src/app:v1"
	seed(t, e, ti, srcRef)

	srcRepo := distclient.Repo{Host: a, Path: "src/app"}
	empty := newContent("application/vnd.oci.empty.v1+json", []byte("{}"))
	if err := e.Client.UploadBlob(ctx, srcRepo, empty.desc.Digest, empty.desc.Size, bytes.NewReader(empty.raw), ""); err != nil {
		t.Fatal(err)
	}
	subject := ti.index.desc
	sig := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: "application/vnd.example.sig",
		Config: empty.desc, Layers: []ocispec.Descriptor{empty.desc}, Subject: &subject}
	sig.SchemaVersion = 2
	raw, _ := json.Marshal(sig)
	sd := digest.FromBytes(raw)
	if _, err := e.Client.PutManifest(ctx, distclient.Ref{Repo: srcRepo, Digest: sd.String()}, ocispec.MediaTypeImageManifest, raw); err != nil {
		t.Fatal(err)
	}

	// Without Referrers the signature stays behind.
	if _, err := e.Copy(ctx, srcRef, b+"/plain/app:v1", Options{}); err != nil {
		t.Fatal(err)
	}
	if refs, err := e.Client.Referrers(ctx, distclient.Repo{Host: b, Path: "plain/app"}, subject.Digest); err != nil || len(refs) != 0 {
		t.Fatalf("referrers copied without being asked: %+v, %v", refs, err)
	}
	rec := &recorder{}
	if _, err := e.Copy(ctx, srcRef, b+"/dst/app:v1", Options{Referrers: true, Progress: rec.sink}); err != nil {
		t.Fatal(err)
	}
	refs, err := e.Client.Referrers(ctx, distclient.Repo{Host: b, Path: "dst/app"}, subject.Digest)
	if err != nil || len(refs) != 1 || refs[0].Digest != sd {
		t.Fatalf("referrers at the destination: %+v, %v", refs, err)
	}
	if !slices.Contains(rec.digests(progress.ManifestPushed), sd.String()) {
		t.Errorf("no manifest-pushed for the referrer: %s", kinds(rec.all()))
	}
	// Up to date, the referrers are still looked at (and found there).
	rec = &recorder{}
	res, err := e.Copy(ctx, srcRef, b+"/dst/app:v1", Options{Referrers: true, Progress: rec.sink})
	if err != nil || !res.UpToDate {
		t.Fatalf("second copy: %+v, %v", res, err)
	}
	if !slices.Contains(rec.digests(progress.ManifestExists), sd.String()) {
		t.Errorf("referrer not checked on an up-to-date copy: %s", kinds(rec.all()))
	}

	// Between local forms, Referrers is skipped with a note.
	rec = &recorder{}
	if _, err := e.Copy(ctx, srcRef, "oci:"+filepath.Join(t.TempDir(), "l")+":v1", Options{Referrers: true, Progress: rec.sink}); err != nil {
		t.Fatal(err)
	}
	if infos := rec.of(progress.Info); len(infos) != 1 || !strings.Contains(infos[0].Message, "referrers are copied between registries only") {
		t.Errorf("info events %+v", infos)
	}
}

// TestClientRetryEventsNameTheImage: every event of a copy names its image (Options.Label)
// except the registry client's retries: ReportRetry sends them to the stored sink
// without Image, and the sink is one per Engine, so with concurrent copies (mirror)
// they land on whichever copy started last.
func TestClientRetryEventsNameTheImage(t *testing.T) {
	t.Parallel()
	b := startRegistry(t, "none")
	var heads atomic.Int64
	proxy := faultProxy(t, b, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/manifests/") && heads.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	src := "oci:" + writeLayout(t, newTestIndex(t, "label", "linux/amd64"), "v1") + ":v1"
	rec := &recorder{}
	if _, err := newEngine().Copy(context.Background(), src, proxy+"/dst/app:v1", Options{Progress: rec.sink, Label: "app"}); err != nil {
		t.Fatal(err)
	}
	retries := rec.of(progress.Retry)
	if len(retries) != 1 || retries[0].Image != "app" {
		t.Fatalf("retry events %+v, want one naming the image", retries)
	}
}
