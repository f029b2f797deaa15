package searchindex_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/searchindex"
)

type fixture struct {
	t     *testing.T
	store *sqlstore.Store
	blobs *blobstore.FS
	ix    *searchindex.Indexer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := sqlstore.OpenSQLite(context.Background(), t.TempDir()+"/db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fs, err := blobstore.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, store: st, blobs: fs, ix: &searchindex.Indexer{Store: st, Blobs: fs}}
}

// blob stores b in repo.
func (f *fixture) blob(repo string, b []byte) digest.Digest {
	f.t.Helper()
	ctx := context.Background()
	d := digest.FromBytes(b)
	if _, err := f.blobs.Put(ctx, d, bytes.NewReader(b), int64(len(b))); err != nil {
		f.t.Fatal(err)
	}
	if err := f.store.PutBlob(ctx, metadata.Blob{Digest: d, Size: int64(len(b))}); err != nil {
		f.t.Fatal(err)
	}
	if err := f.store.LinkBlob(ctx, repo, d); err != nil {
		f.t.Fatal(err)
	}
	return d
}

// manifest stores a manifest with config cfg of media type cmt under tag.
func (f *fixture) manifest(repo, tag, cmt string, cfg []byte, annotations map[string]string) metadata.Manifest {
	f.t.Helper()
	cd := f.blob(repo, cfg)
	doc, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": cmt, "digest": cd, "size": len(cfg)}, "layers": []any{}, "annotations": annotations})
	m := metadata.Manifest{Repository: repo, Digest: digest.FromBytes(doc), MediaType: "application/vnd.oci.image.manifest.v1+json",
		Size: int64(len(doc)), Payload: doc}
	if _, err := f.store.PutManifest(context.Background(), m, metadata.References{Blobs: []digest.Digest{cd}}, tag); err != nil {
		f.t.Fatal(err)
	}
	return m
}

func (f *fixture) hit(repo string) metadata.SearchHit {
	f.t.Helper()
	res, err := f.store.Search(context.Background(), metadata.CatalogFilter{All: true, Restricted: true, Patterns: []string{repo}}, metadata.SearchQuery{})
	if err != nil || len(res.Hits) != 1 {
		f.t.Fatalf("search %s: %+v %v", repo, res, err)
	}
	return res.Hits[0]
}

func TestIndexKindsAndLabels(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	img := f.manifest("a/img", "v1", "application/vnd.oci.image.config.v1+json",
		[]byte(`{"config":{"Labels":{"org.opencontainers.image.description":"An <b>app</b>","team":"core"}}}`), nil)
	chart := f.manifest("a/chart", "1.0.0", "application/vnd.cncf.helm.config.v1+json",
		[]byte(`{"name":"c","version":"1.0.0","description":"A chart","keywords":["db","cache"]}`), nil)
	art := f.manifest("a/sbom", "v1", "application/vnd.example.sbom", []byte(`{}`),
		map[string]string{"org.opencontainers.image.description": "an SBOM"})
	// Big configs are not read: the repository is indexed without labels.
	big := append([]byte(`{"config":{"Labels":{"x":"`), bytes.Repeat([]byte("y"), searchindex.MaxConfigSize)...)
	bigM := f.manifest("a/big", "v1", "application/vnd.oci.image.config.v1+json", append(big, []byte(`"}}}`)...), nil)
	for _, m := range []metadata.Manifest{img, chart, art, bigM} {
		if err := f.ix.Index(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if h := f.hit("a/img"); h.Kind != "image" || h.Description != "An <b>app</b>" || h.Labels["team"] != "core" {
		t.Errorf("image: %+v", h)
	}
	if h := f.hit("a/chart"); h.Kind != "chart" || h.Description != "A chart" || h.Labels["keyword.1"] != "cache" {
		t.Errorf("chart: %+v", h)
	}
	if h := f.hit("a/sbom"); h.Kind != "artifact" || h.Description != "an SBOM" || len(h.Labels) != 0 {
		t.Errorf("artifact: %+v", h)
	}
	if h := f.hit("a/big"); h.Kind != "image" || len(h.Labels) != 0 {
		t.Errorf("big config: %+v", h)
	}

	// An index takes its first child's labels and its own description annotation.
	child := f.manifest("a/multi", "", "application/vnd.oci.image.config.v1+json", []byte(`{"config":{"Labels":{"arch":"amd64"}}}`), nil)
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
		"manifests":   []any{map[string]any{"mediaType": child.MediaType, "digest": child.Digest, "size": child.Size}},
		"annotations": map[string]string{"org.opencontainers.image.description": "multi-arch"}})
	im := metadata.Manifest{Repository: "a/multi", Digest: digest.FromBytes(idx), MediaType: "application/vnd.oci.image.index.v1+json", Size: int64(len(idx)), Payload: idx}
	if _, err := f.store.PutManifest(ctx, im, metadata.References{Manifests: []digest.Digest{child.Digest}}, "v1"); err != nil {
		t.Fatal(err)
	}
	stored, err := f.ix.CheckManifest(ctx, im, []string{"v1"})
	if err != nil || stored == nil {
		t.Fatal(err)
	}
	if err := stored(ctx); err != nil {
		t.Fatal(err)
	}
	if h := f.hit("a/multi"); h.Kind != "image" || h.Description != "multi-arch" || h.Labels["arch"] != "amd64" {
		t.Errorf("index: %+v", h)
	}
	// An untagged put (an index's child) changes nothing.
	if fn, err := f.ix.CheckManifest(ctx, child, []string{""}); fn != nil || err != nil {
		t.Errorf("untagged put hooked: %v", err)
	}
	// A manifest that does not parse is an error of Index, never of the push.
	bad := metadata.Manifest{Repository: "a/img", Digest: digest.FromString("x"), Payload: []byte("not json")}
	if err := f.ix.Index(ctx, bad); err == nil {
		t.Error("Index of garbage succeeded")
	}
	if fn, _ := f.ix.CheckManifest(ctx, bad, []string{"v2"}); fn(ctx) != nil {
		t.Error("the push hook failed a push")
	}
}

// TestBackfill: repositories stored before search existed (their search rows never
// written) are indexed by Backfill, in batches, once; a second run does nothing and a
// push indexed meanwhile is not replaced.
func TestBackfill(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	n := searchindex.BackfillBatch + 5
	for i := range n {
		f.manifest(fmt.Sprintf("old/r%03d", i), "v1", "application/vnd.oci.image.config.v1+json",
			[]byte(fmt.Sprintf(`{"config":{"Labels":{"n":"label-%03d"}}}`, i)), nil)
	}
	if err := f.store.EnsureRepository(ctx, "old/untagged"); err != nil {
		t.Fatal(err)
	}
	pushed := f.manifest("old/r000", "v2", "application/vnd.oci.image.config.v1+json", []byte(`{"config":{"Labels":{"n":"pushed"}}}`), nil)
	if err := f.ix.Index(ctx, pushed); err != nil {
		t.Fatal(err)
	}
	got, err := f.ix.Backfill(ctx)
	if err != nil || got != n { // every old/rNNN but r000, and old/untagged
		t.Fatalf("backfill indexed %d, %v; want %d", got, err, n)
	}
	if h := f.hit("old/r123"); h.Labels["n"] != "label-123" || h.Kind != "image" {
		t.Errorf("backfilled: %+v", h)
	}
	if h := f.hit("old/r000"); h.Labels["n"] != "pushed" {
		t.Errorf("backfill replaced a push's labels: %+v", h)
	}
	if h := f.hit("old/untagged"); h.Kind != "" || h.IndexedAt.IsZero() {
		t.Errorf("untagged: %+v", h)
	}
	if again, err := f.ix.Backfill(ctx); err != nil || again != 0 {
		t.Errorf("second backfill: %d, %v", again, err)
	}
	res, err := f.store.Search(ctx, metadata.CatalogFilter{All: true}, metadata.SearchQuery{Text: "label-20"})
	if err != nil || len(res.Hits) != 5 || !strings.HasPrefix(res.Hits[0].Repository, "old/r20") {
		t.Errorf("search label-20: %+v %v", res, err)
	}
}
