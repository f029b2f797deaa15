package gc_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/gc"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/pgtest"
	"github.com/hubctl/hubctl/internal/registry"
	"github.com/hubctl/hubctl/internal/s3test"
)

func TestMain(m *testing.M) {
	code := pgtest.Run(m)
	s3test.Stop()
	os.Exit(code)
}

// env is the registry handler on real stores behind a loopback HTTP server.
type env struct {
	t     testing.TB
	meta  metadata.Store
	blobs blobstore.Store
	url   string
	c     *http.Client
}

func newEnv(t testing.TB, pg bool) *env {
	t.Helper()
	dir := t.TempDir()
	fs, err := blobstore.NewFS(dir + "/data")
	if err != nil {
		t.Fatal(err)
	}
	var meta metadata.Store
	if pg {
		meta, err = sqlstore.OpenPostgres(context.Background(), pgtest.Start(t))
	} else {
		meta, err = sqlstore.OpenSQLite(context.Background(), dir+"/meta.db")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	// The registry sees a store whose writes return a little late, as S3's do: that
	// widens the window between the existence check and the commit of a push, the
	// window the pin protocol guards.
	srv := httptest.NewServer(registry.New(registry.Options{Blobs: slowStore{fs}, Meta: meta}))
	t.Cleanup(srv.Close)
	return &env{t: t, meta: meta, blobs: fs, url: srv.URL, c: srv.Client()}
}

// slowStore delays the return of Put and CommitUpload.
type slowStore struct{ blobstore.Store }

const slowness = 2 * time.Millisecond

func (s slowStore) Put(ctx context.Context, d digest.Digest, r io.Reader, size int64) (int64, error) {
	n, err := s.Store.Put(ctx, d, r, size)
	time.Sleep(slowness)
	return n, err
}

func (s slowStore) CommitUpload(ctx context.Context, id string, st blobstore.UploadState, d digest.Digest) (string, error) {
	loc, err := s.Store.CommitUpload(ctx, id, st, d)
	time.Sleep(slowness)
	return loc, err
}

func (e *env) do(method, path string, body []byte, hdr ...string) (int, http.Header, []byte, error) {
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	if body == nil {
		req.Body = http.NoBody
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b, err
}

func (e *env) want(status int, method, path string, body []byte, hdr ...string) (http.Header, error) {
	got, h, b, err := e.do(method, path, body, hdr...)
	if err != nil {
		return nil, err
	}
	if got != status {
		return nil, fmt.Errorf("%s %s = %d, want %d: %s", method, path, got, status, b)
	}
	return h, nil
}

// pushBlob uploads content unless the repository already has it (as clients do after a
// HEAD), monolithically or in two chunks.
func (e *env) pushBlob(repo string, content []byte, chunked bool) error {
	d := digest.FromBytes(content)
	if st, _, _, err := e.do(http.MethodHead, "/v2/"+repo+"/blobs/"+d.String(), nil); err == nil && st == http.StatusOK {
		return nil
	}
	if !chunked {
		_, err := e.want(http.StatusCreated, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), content,
			"Content-Type", "application/octet-stream")
		return err
	}
	h, err := e.want(http.StatusAccepted, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil)
	if err != nil {
		return err
	}
	half := len(content) / 2
	h, err = e.want(http.StatusAccepted, http.MethodPatch, h.Get("Location"), content[:half],
		"Content-Type", "application/octet-stream", "Content-Range", fmt.Sprintf("0-%d", half-1))
	if err != nil {
		return err
	}
	_, err = e.want(http.StatusCreated, http.MethodPut, h.Get("Location")+"?digest="+d.String(), content[half:],
		"Content-Type", "application/octet-stream")
	return err
}

type image struct {
	repo     string
	manifest digest.Digest
	blobs    []digest.Digest
}

// pushImage pushes config and layers and then a manifest tagged tag.
func (e *env) pushImage(repo, tag string, config []byte, layers [][]byte, chunked bool) (image, error) {
	type desc struct {
		MediaType string        `json:"mediaType"`
		Digest    digest.Digest `json:"digest"`
		Size      int64         `json:"size"`
	}
	img := image{repo: repo}
	m := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Config        desc   `json:"config"`
		Layers        []desc `json:"layers"`
	}{2, "application/vnd.oci.image.manifest.v1+json",
		desc{"application/vnd.oci.image.config.v1+json", digest.FromBytes(config), int64(len(config))}, []desc{}}
	for i, b := range append([][]byte{config}, layers...) {
		if err := e.pushBlob(repo, b, chunked && i%2 == 1); err != nil {
			return img, err
		}
		img.blobs = append(img.blobs, digest.FromBytes(b))
		if i > 0 {
			m.Layers = append(m.Layers, desc{"application/vnd.oci.image.layer.v1.tar", digest.FromBytes(b), int64(len(b))})
		}
	}
	payload, _ := json.Marshal(m)
	img.manifest = digest.FromBytes(payload)
	_, err := e.want(http.StatusCreated, http.MethodPut, "/v2/"+repo+"/manifests/"+tag, payload,
		"Content-Type", m.MediaType)
	return img, err
}

// verify checks the image's manifest and every blob are served and hash right.
func (e *env) verify(img image) error {
	if _, err := e.want(http.StatusOK, http.MethodGet, "/v2/"+img.repo+"/manifests/"+img.manifest.String(), nil,
		"Accept", "application/vnd.oci.image.manifest.v1+json"); err != nil {
		return err
	}
	for _, d := range img.blobs {
		st, _, b, err := e.do(http.MethodGet, "/v2/"+img.repo+"/blobs/"+d.String(), nil)
		if err != nil {
			return err
		}
		if st != http.StatusOK {
			return fmt.Errorf("blob %s of %s@%s: status %d: %s", d, img.repo, img.manifest, st, b)
		}
		if got := digest.FromBytes(b); got != d {
			return fmt.Errorf("blob %s of %s@%s: content hashes to %s", d, img.repo, img.manifest, got)
		}
	}
	return nil
}

func content(s string, n int) []byte {
	b := make([]byte, 0, n)
	for i := 0; len(b) < n; i++ {
		h := sha256.Sum256(fmt.Appendf(nil, "%s/%d", s, i))
		b = append(b, h[:]...)
	}
	return b[:n]
}

func (e *env) stored(d digest.Digest) bool {
	_, err := e.blobs.Stat(context.Background(), d, "")
	if err != nil && !errors.Is(err, blobstore.ErrNotFound) {
		e.t.Fatal(err)
	}
	return err == nil
}

func TestRun(t *testing.T) {
	e := newEnv(t, false)
	ctx := t.Context()
	shared := content("shared layer", 4096)
	kept, err := e.pushImage("app", "v1", content("config v1", 100), [][]byte{shared, content("layer v1", 2000)}, true)
	if err != nil {
		t.Fatal(err)
	}
	untagged, err := e.pushImage("app", "v2", content("config v2", 100), [][]byte{shared, content("layer v2", 3000)}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.want(http.StatusAccepted, http.MethodDelete, "/v2/app/manifests/v2", nil); err != nil {
		t.Fatal(err)
	}
	loose := content("loose blob", 5000)
	if err := e.pushBlob("app", loose, false); err != nil {
		t.Fatal(err)
	}
	looseD := digest.FromBytes(loose)

	// A dry run with grace 0 reports the loose blob (and with --untagged the v2 manifest)
	// and changes nothing.
	rep, err := gc.Run(ctx, gc.Options{Meta: e.meta, Blobs: e.blobs, Grace: 0, DryRun: true, Untagged: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Manifests != 1 || rep.Links != 1 || rep.Swept != 1 || rep.BytesFreed != int64(len(loose)) {
		t.Fatalf("dry run report = %+v, want 1 manifest, 1 link, 1 blob of %d bytes", rep, len(loose))
	}
	if !e.stored(looseD) {
		t.Fatal("dry run deleted bytes")
	}
	if _, err := e.meta.RepositoryBlob(ctx, "app", looseD); err != nil {
		t.Fatalf("dry run removed a link: %v", err)
	}
	if err := e.verify(untagged); err != nil {
		t.Fatalf("dry run deleted the untagged image: %v", err)
	}

	// Within the grace nothing goes.
	rep, err = gc.Run(ctx, gc.Options{Meta: e.meta, Blobs: e.blobs, Grace: time.Hour, Untagged: true})
	if err != nil {
		t.Fatal(err)
	}
	if !empty(rep) {
		t.Fatalf("report within the grace = %+v, want nothing", rep)
	}

	// After it: the untagged image and the loose blob go, in one run with grace 0.
	rep, err = gc.Run(ctx, gc.Options{Meta: e.meta, Blobs: e.blobs, Grace: 0, Untagged: true})
	if err != nil {
		t.Fatal(err)
	}
	// Links: the loose blob, v2's config and its own layer (the shared layer stays linked).
	wantFreed := int64(len(loose) + 100 + 3000)
	if rep.Manifests != 1 || rep.Links != 3 || rep.Marked != 3 || rep.Swept != 3 || rep.BytesFreed != wantFreed {
		t.Fatalf("report = %+v, want 1 manifest, 3 links, 3 marked and swept, %d bytes", rep, wantFreed)
	}
	for _, d := range []digest.Digest{looseD, untagged.blobs[0], untagged.blobs[2]} {
		if e.stored(d) {
			t.Errorf("blob %s survived", d)
		}
		if _, err := e.meta.GetBlob(ctx, d); !errors.Is(err, metadata.ErrBlobNotFound) {
			t.Errorf("row of blob %s survived: %v", d, err)
		}
	}
	if err := e.verify(kept); err != nil {
		t.Fatalf("referenced image damaged: %v", err)
	}
	// Pushing a collected blob again stores it again.
	if _, err := e.pushImage("app", "v2", content("config v2", 100), [][]byte{shared, content("layer v2", 3000)}, false); err != nil {
		t.Fatal(err)
	}
	// A second run finds nothing.
	rep, err = gc.Run(ctx, gc.Options{Meta: e.meta, Blobs: e.blobs, Grace: 0})
	if err != nil {
		t.Fatal(err)
	}
	if !empty(rep) {
		t.Fatalf("second report = %+v, want nothing", rep)
	}
}

// TestRunGraceBetweenMarkAndSweep: with a grace, a blob marked by one run is swept only
// by a run a grace later.
func TestRunGraceBetweenMarkAndSweep(t *testing.T) {
	e := newEnv(t, false)
	ctx := t.Context()
	loose := content("loose", 1000)
	if err := e.pushBlob("app", loose, false); err != nil {
		t.Fatal(err)
	}
	grace := 300 * time.Millisecond
	time.Sleep(grace)
	rep, err := gc.Run(ctx, gc.Options{Meta: e.meta, Blobs: e.blobs, Grace: grace})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Links != 1 || rep.Marked != 1 || rep.Swept != 0 {
		t.Fatalf("first run = %+v, want 1 link, 1 marked, 0 swept", rep)
	}
	time.Sleep(grace)
	rep, err = gc.Run(ctx, gc.Options{Meta: e.meta, Blobs: e.blobs, Grace: grace})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Swept != 1 || rep.BytesFreed != 1000 || e.stored(digest.FromBytes(loose)) {
		t.Fatalf("second run = %+v, want the blob swept", rep)
	}
}

func TestPushRacingGC(t *testing.T)         { testPushRacingGC(t, false) }
func TestPushRacingGCPostgres(t *testing.T) { testPushRacingGC(t, true) }

// testPushRacingGC pushes images sharing blobs from several goroutines, deleting most
// of them again so the shared blobs keep becoming garbage, while GC runs in a loop with
// grace 0. A push may fail (GC unlinked a blob between upload and manifest: the client
// is told and retries), but every manifest whose push succeeded and that was kept must
// have all its blobs readable and intact at the end.
func testPushRacingGC(t *testing.T, pg bool) {
	e := newEnv(t, pg)
	ctx := t.Context()
	const (
		pushers = 4
		pushes  = 60
		tries   = 1000
	)
	layers := make([][]byte, 6)
	for i := range layers {
		layers[i] = content(fmt.Sprintf("shared layer %d", i), 8192+i)
	}

	stop := make(chan struct{})
	var gcRuns, gcSwept atomic.Int64
	var gcErr error
	var gcDone sync.WaitGroup
	gcDone.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			rep, err := gc.Run(ctx, gc.Options{Meta: e.meta, Blobs: e.blobs, Grace: 0, Untagged: true})
			if err != nil {
				gcErr = err
				return
			}
			gcRuns.Add(1)
			gcSwept.Add(int64(rep.Swept))
			// A pause of 0-10 ms between runs. With grace 0 a blob's pin protects it only
			// until the next mark, so a GC looping faster than an upload takes would fail
			// every push of a new blob (safely: the client is told to upload again).
			time.Sleep(time.Duration(rand.IntN(10)) * time.Millisecond)
		}
	})

	var (
		mu       sync.Mutex
		kept     []image
		failures atomic.Int64
		errs     = make(chan error, 2*pushers)
		wg       sync.WaitGroup
	)
	for g := range pushers {
		wg.Go(func() {
			repo := fmt.Sprintf("race/p%d", g%2) // two pushers per repository
			for i := range pushes {
				ls := [][]byte{layers[(g+i)%len(layers)], layers[(g+2*i+1)%len(layers)]}
				if bytes.Equal(ls[0], ls[1]) {
					ls = ls[:1]
				}
				cfg := content(fmt.Sprintf("config %d/%d", g%2, i%3), 200) // shared between pushers too
				tag := fmt.Sprintf("g%d-%d", g, i)
				var img image
				var err error
				for try := 0; ; try++ {
					if img, err = e.pushImage(repo, tag, cfg, ls, (g+i+try)%2 == 0); err == nil {
						break
					}
					failures.Add(1)
					if try == tries {
						errs <- fmt.Errorf("push %s:%s failed %d times, last: %v", repo, tag, tries, err)
						return
					}
				}
				if i%3 == 0 {
					mu.Lock()
					kept = append(kept, img)
					mu.Unlock()
					continue
				}
				// Drop the tag: the untagged manifest, then its blobs, become garbage.
				if _, err := e.want(http.StatusAccepted, http.MethodDelete, "/v2/"+repo+"/manifests/"+tag, nil); err != nil {
					errs <- fmt.Errorf("delete tag %s:%s: %w", repo, tag, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	gcDone.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if gcErr != nil {
		t.Fatalf("gc: %v", gcErr)
	}
	// One more collection after the pushes, then everything kept must be intact.
	if _, err := gc.Run(ctx, gc.Options{Meta: e.meta, Blobs: e.blobs, Grace: 0}); err != nil {
		t.Fatal(err)
	}
	for _, img := range kept {
		if err := e.verify(img); err != nil {
			t.Errorf("kept image lost data: %v", err)
		}
	}
	t.Logf("%d images kept, %d push attempts failed and were retried, %d gc runs swept %d blobs",
		len(kept), failures.Load(), gcRuns.Load(), gcSwept.Load())
	if gcSwept.Load() == 0 {
		t.Error("gc never swept anything: the test did not race")
	}
}

func empty(r gc.Report) bool {
	return r.Manifests == 0 && r.Links == 0 && r.Marked == 0 && r.Swept == 0 && r.BytesFreed == 0
}
