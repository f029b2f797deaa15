package transfer

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hubctl/hubctl/internal/ocilayout"
	"github.com/hubctl/hubctl/internal/progress"
	"github.com/hubctl/hubctl/internal/server/servertest"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// content is a blob or manifest with its descriptor.
type content struct {
	desc ocispec.Descriptor
	raw  []byte
}

func newContent(mediaType string, raw []byte) content {
	return content{desc: ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(raw), Size: int64(len(raw))}, raw: raw}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// platformImage is one platform's image: a config, a layer shared by every platform
// of a testIndex and a layer of its own.
type platformImage struct {
	platform ocispec.Platform
	config   content
	own      content
	manifest content
}

// testIndex is a multi-platform image: an index over platform images, with blobs
// listed once each.
type testIndex struct {
	shared content
	images []platformImage
	index  content
}

// blobs lists every config and layer once.
func (ti testIndex) blobs() []content {
	out := []content{ti.shared}
	for _, im := range ti.images {
		out = append(out, im.config, im.own)
	}
	return out
}

func (ti testIndex) image(arch string) platformImage {
	for _, im := range ti.images {
		if im.platform.Architecture == arch {
			return im
		}
	}
	panic("no image for " + arch)
}

// gzipLayer returns a gzipped tar holding one file of size pseudo-random bytes drawn
// from seed, and the digest of the uncompressed tar (its diff_id).
func gzipLayer(t testing.TB, seed string, size int) (gz []byte, diffID digest.Digest) {
	t.Helper()
	h := fnv.New64a()
	h.Write([]byte(seed))
	rng := rand.New(rand.NewPCG(h.Sum64(), 0))
	body := make([]byte, size)
	for i := range body {
		body[i] = byte(rng.Uint32())
	}
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	if err := tw.WriteHeader(&tar.Header{Name: "data/" + strings.ReplaceAll(seed, "/", "-"), Mode: 0o644, Size: int64(size)}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	if _, err := zw.Write(tb.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return zb.Bytes(), digest.FromBytes(tb.Bytes())
}

// newTestIndex builds an index of one image per platform ("linux/amd64",
// "linux/arm/v7"), each with a layer shared by all and one of its own: real gzipped
// tars with their diff_ids in the config, so docker archives take them too.
func newTestIndex(t testing.TB, seed string, platforms ...string) testIndex {
	t.Helper()
	sharedGz, sharedDiff := gzipLayer(t, "shared-"+seed, 48<<10)
	ti := testIndex{shared: newContent(ocispec.MediaTypeImageLayerGzip, sharedGz)}
	var descs []ocispec.Descriptor
	for _, p := range platforms {
		parts := strings.Split(p, "/")
		pl := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
		if len(parts) > 2 {
			pl.Variant = parts[2]
		}
		ownGz, ownDiff := gzipLayer(t, p+"-"+seed, 16<<10)
		own := newContent(ocispec.MediaTypeImageLayerGzip, ownGz)
		cfg := newContent(ocispec.MediaTypeImageConfig, mustJSON(t, map[string]any{
			"architecture": pl.Architecture, "os": pl.OS, "variant": pl.Variant,
			"rootfs": map[string]any{"type": "layers", "diff_ids": []digest.Digest{sharedDiff, ownDiff}},
		}))
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg.desc, Layers: []ocispec.Descriptor{ti.shared.desc, own.desc}}
		m.SchemaVersion = 2
		mc := newContent(ocispec.MediaTypeImageManifest, mustJSON(t, m))
		ti.images = append(ti.images, platformImage{platform: pl, config: cfg, own: own, manifest: mc})
		d := mc.desc
		d.Platform = &pl
		descs = append(descs, d)
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: descs,
		Annotations: map[string]string{"org.opencontainers.image.title": seed}}
	idx.SchemaVersion = 2
	ti.index = newContent(ocispec.MediaTypeImageIndex, mustJSON(t, idx))
	return ti
}

// writeLayout writes ti into a new OCI layout directory under the name tag and
// returns the directory.
func writeLayout(t testing.TB, ti testIndex, tag string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	w, err := ocilayout.CreateDir(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, b := range ti.blobs() {
		if err := w.PutBlob(ctx, b.desc, bytes.NewReader(b.raw)); err != nil {
			t.Fatal(err)
		}
	}
	for _, im := range ti.images {
		if err := w.PutManifest(ctx, im.manifest.desc, im.manifest.raw, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.PutManifest(ctx, ti.index.desc, ti.index.raw, tag); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

// recorder is a progress sink safe for the concurrent blob workers.
type recorder struct {
	mu     sync.Mutex
	events []progress.Event
}

func (r *recorder) sink(e progress.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) all() []progress.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]progress.Event(nil), r.events...)
}

// of returns the events of kind.
func (r *recorder) of(kind progress.Kind) []progress.Event {
	var out []progress.Event
	for _, e := range r.all() {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// digests returns the digests of the events of kind, in order.
func (r *recorder) digests(kind progress.Kind) []string {
	var out []string
	for _, e := range r.of(kind) {
		out = append(out, e.Digest)
	}
	return out
}

// checkEventOrder checks what every copy's event stream must satisfy: ImageStarted
// first and ImageDone (with the result's digest) last, each BlobStarted followed by a
// BlobDone of the same digest and size, no blob done twice, and no manifest pushed
// before the manifests it lists.
func checkEventOrder(t *testing.T, events []progress.Event, res Result, children map[string][]string) {
	t.Helper()
	if len(events) < 2 || events[0].Kind != progress.ImageStarted || events[len(events)-1].Kind != progress.ImageDone {
		t.Fatalf("stream does not run from image-started to image-done: %s", kinds(events))
	}
	if last := events[len(events)-1]; last.Digest != res.Digest.String() {
		t.Errorf("image-done digest %s, result %s", last.Digest, res.Digest)
	}
	started := map[string]int{}
	done := map[string]int{}
	pushedAt := map[string]int{}
	for i, e := range events {
		// Retries the registry client reports have no image: see TestClientRetryEventsNameTheImage.
		if e.Time.IsZero() || (e.Image == "" && !(e.Kind == progress.Retry && e.Digest == "")) {
			t.Errorf("event %d (%s) lacks time or image: %+v", i, e.Kind, e)
		}
		switch e.Kind {
		case progress.BlobStarted:
			started[e.Digest] = i
		case progress.BlobProgress:
			if _, ok := started[e.Digest]; !ok || e.Bytes > e.Size {
				t.Errorf("progress of %s outside its transfer: %+v", e.Digest, e)
			}
		case progress.BlobDone:
			s, ok := started[e.Digest]
			if !ok || s > i {
				t.Errorf("blob-done of %s without blob-started before it", e.Digest)
			}
			if e.Bytes != e.Size {
				t.Errorf("blob-done of %s: %d of %d bytes", e.Digest, e.Bytes, e.Size)
			}
			done[e.Digest]++
		case progress.ManifestPushed:
			pushedAt[e.Digest] = i
		case progress.ImageFailed, progress.BlobFailed:
			t.Errorf("failure event in a successful copy: %+v", e)
		}
	}
	for d := range started {
		if done[d] != 1 {
			t.Errorf("blob %s started, done %d times", d, done[d])
		}
	}
	for parent, kids := range children {
		p, ok := pushedAt[parent]
		if !ok {
			continue
		}
		for _, k := range kids {
			if c, ok := pushedAt[k]; ok && c > p {
				t.Errorf("manifest %s pushed after its parent %s", k, parent)
			}
		}
	}
}

func kinds(events []progress.Event) string {
	var b strings.Builder
	for _, e := range events {
		fmt.Fprintf(&b, "%s ", e.Kind)
	}
	return b.String()
}

// testAdminPassword is the admin password of the servers startRegistry runs.
const testAdminPassword = "transfer-test-admin"

// startRegistry runs a real hubctl registry in-process with auth mode "token" or
// "none" and returns its host:port.
func startRegistry(t *testing.T, authMode string) string {
	t.Helper()
	return servertest.Start(t, authMode, testAdminPassword)
}

// faultProxy puts hook in front of a real registry: it sees every request first and
// answers it (a fault) by returning true.
func faultProxy(t *testing.T, target string, hook func(http.ResponseWriter, *http.Request) bool) string {
	t.Helper()
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	rp.ErrorLog = log.New(io.Discard, "", 0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hook(w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}
