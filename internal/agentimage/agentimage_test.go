package agentimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hubctl/hubctl/internal/agentimage/agentimagetest"
	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/blobstore/s3store"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/pgtest"
	"github.com/hubctl/hubctl/internal/s3test"
	"github.com/hubctl/hubctl/internal/selfimage"
	"github.com/hubctl/hubctl/layering"
)

func TestMain(m *testing.M) {
	code := pgtest.Run(m)
	s3test.Stop()
	agentimagetest.Cleanup()
	os.Exit(code)
}

func staticBinary(t *testing.T) string { return agentimagetest.StaticBinary(t) }

func build(t *testing.T) *selfimage.Image {
	t.Helper()
	cache, err := layering.OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	img, err := Build(context.Background(), selfimage.WithBinary(staticBinary(t)), selfimage.WithCache(cache))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// readBlob reads blob d of the repository back through the metadata and blob stores,
// and checks its digest.
func readBlob(t *testing.T, st *sqlstore.Store, blobs blobstore.Store, d digest.Digest) []byte {
	t.Helper()
	ctx := context.Background()
	b, err := st.RepositoryBlob(ctx, Repository, d)
	if err != nil {
		t.Fatalf("blob %s is not linked into %s: %v", d, Repository, err)
	}
	rc, _, err := blobs.Open(ctx, d, b.Location)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if digest.FromBytes(data) != d {
		t.Fatalf("blob %s holds bytes of %s", d, digest.FromBytes(data))
	}
	return data
}

// checkPublished checks the hub's stores hold img as a pull would read it: the tag,
// the manifest's bytes, the config (entrypoint /hubctl workflow-agent) and the one
// layer with the binary alone at /hubctl.
func checkPublished(t *testing.T, st *sqlstore.Store, blobs blobstore.Store, img *selfimage.Image, tag string) {
	t.Helper()
	ctx := context.Background()
	if d, err := st.ResolveTag(ctx, Repository, tag); err != nil || d != img.Desc.Digest {
		t.Fatalf("tag %s: %s, %v; want %s", tag, d, err, img.Desc.Digest)
	}
	m, err := st.GetManifest(ctx, Repository, img.Desc.Digest)
	if err != nil || !bytes.Equal(m.Payload, img.Raw) || m.MediaType != ocispec.MediaTypeImageManifest {
		t.Fatalf("manifest: %v, %s", err, m.MediaType)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(readBlob(t, st, blobs, img.ConfigDesc.Digest), &cfg); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Config.Entrypoint, []string{"/hubctl", "workflow-agent"}) || len(cfg.Config.ExposedPorts) != 0 {
		t.Errorf("config: entrypoint %q ports %v", cfg.Config.Entrypoint, cfg.Config.ExposedPorts)
	}
	zr, err := gzip.NewReader(bytes.NewReader(readBlob(t, st, blobs, img.Layer.Digest)))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(staticBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		got, _ := io.ReadAll(tr)
		if h.Name == "hubctl" && (!bytes.Equal(got, want) || h.Mode&0o111 == 0) {
			t.Errorf("/hubctl in the layer is not the binary (mode %o)", h.Mode)
		}
	}
	if !slices.Equal(names, []string{"hubctl"}) {
		t.Errorf("layer entries %q; want hubctl alone", names)
	}
}

// TestPublishSQLite: the first publish stores both blobs, the manifest and its tag;
// a second writes nothing; the stores then hold what a pull reads.
func TestPublishSQLite(t *testing.T) {
	ctx := context.Background()
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	blobs, err := blobstore.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	img := build(t)
	tag := Tag("v1.2.3+dirty", img.Desc.Digest)
	if want := "v1.2.3-dirty-" + img.Desc.Digest.Encoded()[:12]; tag != want {
		t.Errorf("tag %q; want %q", tag, want)
	}
	pub, err := Publish(ctx, st, blobs, img, tag, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pub.Blobs != 2 || !pub.Manifest || pub.Digest != img.Desc.Digest {
		t.Errorf("first publish: %+v; want 2 blobs and the manifest", pub)
	}
	checkPublished(t, st, blobs, img, tag)
	again, err := Publish(ctx, st, blobs, img, tag, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.Blobs != 0 || again.Manifest {
		t.Errorf("second publish wrote %+v; want nothing", again)
	}
	// A blob the hub has (pushed elsewhere) is linked, not stored again; a manifest
	// whose tag is gone gets it back.
	if _, err := st.DeleteTag(ctx, Repository, tag); err != nil {
		t.Fatal(err)
	}
	back, err := Publish(ctx, st, blobs, img, tag, nil)
	if err != nil || back.Blobs != 0 || !back.Manifest {
		t.Errorf("publish after the tag went: %+v, %v; want the tag back and no blob", back, err)
	}
	checkPublished(t, st, blobs, img, tag)
}

// TestPublishReplicasPostgresS3: four replicas (each its own store connection and S3
// client) publish one image at once into one PostgreSQL database and one bucket:
// all succeed with one digest, the stores hold one image, no multipart upload or
// upload session is left, and a fifth start writes nothing.
func TestPublishReplicasPostgresS3(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t)
	endpoint, ak, sk, bucket := s3test.Start(t)
	img := build(t)
	tag := Tag("v1", img.Desc.Digest)
	type replica struct {
		st    *sqlstore.Store
		blobs *s3store.Store
	}
	var reps []replica
	for range 5 {
		st, err := sqlstore.OpenPostgres(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		blobs, err := s3store.New(ctx, s3store.Options{Endpoint: endpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk,
			PathStyle: true, Prefix: "hub"})
		if err != nil {
			t.Fatal(err)
		}
		reps = append(reps, replica{st, blobs})
	}
	var wg sync.WaitGroup
	results := make([]Published, 4)
	errs := make([]error, 4)
	for i := range 4 {
		wg.Go(func() { results[i], errs[i] = Publish(ctx, reps[i].st, reps[i].blobs, img, tag, nil) })
	}
	wg.Wait()
	manifests := 0
	for i := range 4 {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		if results[i].Digest != img.Desc.Digest {
			t.Errorf("replica %d published %s", i, results[i].Digest)
		}
		if results[i].Manifest {
			manifests++
		}
	}
	if manifests < 1 {
		t.Errorf("no replica stored the manifest: %+v", results)
	}
	checkPublished(t, reps[4].st, reps[4].blobs, img, tag)
	if ups := s3test.MultipartUploads(t, bucket); len(ups) != 0 {
		t.Errorf("multipart uploads left: %v", ups)
	}
	if stale, err := reps[4].st.StaleUploads(ctx, time.Now().Add(time.Hour)); err != nil || len(stale) != 0 {
		t.Errorf("upload sessions left: %v, %v", stale, err)
	}
	last, err := Publish(ctx, reps[4].st, reps[4].blobs, img, tag, nil)
	if err != nil || last.Blobs != 0 || last.Manifest {
		t.Errorf("a start after the others: %+v, %v; want nothing written", last, err)
	}
}
