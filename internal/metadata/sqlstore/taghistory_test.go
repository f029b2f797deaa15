package sqlstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata"
)

// TestTagHistory (migration 0032): a push that moves a tag, a deletion, and a
// manifest deletion each record a move with the actor; the history is newest first,
// bounded per tag and goes with the repository. A manifest a tag moved away from is
// held from GC phase 1 and marked Held for retention while the hold lasts; one whose
// tag was deleted is not; with no hold nothing is.
func TestTagHistory(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := events.WithActor(context.Background(), events.Actor{Name: "alice"})
		s, _ := openFresh(t, b)
		m1 := putTestManifest(t, s, "team/app", "one", "", "")
		if _, err := s.PutManifest(ctx, testManifest("team/app", "one"), metadata.References{}, "v1"); err != nil {
			t.Fatal(err)
		}
		m2 := testManifest("team/app", "two")
		if _, err := s.PutManifest(ctx, m2, metadata.References{}, "v1"); err != nil {
			t.Fatal(err)
		}
		// Re-pushing the same digest is no move.
		if _, err := s.PutManifest(ctx, m2, metadata.References{}, "v1"); err != nil {
			t.Fatal(err)
		}
		m3 := putTestManifest(t, s, "team/app", "three", "gone", "")
		if _, err := s.DeleteTag(ctx, "team/app", "gone"); err != nil {
			t.Fatal(err)
		}
		h, err := s.TagHistory(ctx, "team/app", "v1", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 2 || h[0].Old != m1 || h[0].New != m2.Digest || h[1].Old != "" || h[1].New != m1 ||
			h[0].Actor != "alice" || h[0].At.IsZero() || h[0].ID <= h[1].ID {
			t.Fatalf("history of v1 = %+v", h)
		}
		if h, _ := s.TagHistory(ctx, "team/app", "gone", 0); len(h) != 2 || h[0].Old != m3 || h[0].New != "" || h[0].Actor != "alice" || h[1].Actor != "" {
			t.Fatalf("history of gone = %+v", h)
		}
		if h, err := s.TagHistory(ctx, "no/such", "v1", 0); err != nil || len(h) != 0 {
			t.Fatalf("history of a missing repository = %+v, %v", h, err)
		}

		// GC: m1 (v1 moved away from it) is held; m3 (its tag deleted) is not.
		future := time.Now().Add(time.Hour)
		ms, err := s.GCUntaggedManifests(ctx, future, true)
		if err != nil || len(ms) != 1 || ms[0].Digest != m3 {
			t.Fatalf("GC dry run = %+v, %v; want only %s", ms, err, m3)
		}
		v, err := s.RetentionView(ctx, "team/app")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range v.Manifests {
			if m.Held != (m.Digest == m1) {
				t.Fatalf("retention view: %s held %v", m.Digest, m.Held)
			}
		}
		s.SetTagHistoryHold(0)
		ms, err = s.GCUntaggedManifests(ctx, future, false)
		if err != nil || len(ms) != 2 {
			t.Fatalf("GC with no hold = %+v, %v; want m1 and m3", ms, err)
		}
		s.SetTagHistoryHold(metadata.DefaultTagHistoryHold)

		// DeleteManifest records the deletion of each tag it removes.
		if _, err := s.DeleteManifest(ctx, "team/app", m2.Digest); err != nil {
			t.Fatal(err)
		}
		if h, _ := s.TagHistory(ctx, "team/app", "v1", 1); len(h) != 1 || h[0].Old != m2.Digest || h[0].New != "" {
			t.Fatalf("after manifest delete: %+v", h)
		}

		// Bounded per tag.
		for i := range metadata.MaxTagHistory + 5 {
			putTestManifest(t, s, "team/busy", fmt.Sprint(i), "latest", "")
		}
		if h, _ := s.TagHistory(ctx, "team/busy", "latest", 1000); len(h) != metadata.MaxTagHistory {
			t.Fatalf("busy tag keeps %d moves, want %d", len(h), metadata.MaxTagHistory)
		}
		if err := s.DeleteRepository(ctx, "team/busy"); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := s.do(ctx, func(q querier) error {
			return q.QueryRow(ctx, "SELECT COUNT(*) FROM tag_history h JOIN repositories r ON r.id = h.repo_id WHERE r.name = 'team/busy'").Scan(&n)
		}); err != nil || n != 0 {
			t.Fatalf("history rows left after repository delete: %d, %v", n, err)
		}
	})
}

func testManifest(repo, content string) metadata.Manifest {
	payload := []byte(fmt.Sprintf(`{"schemaVersion":2,"x":%q}`, content))
	return metadata.Manifest{Repository: repo, Digest: digest.FromBytes(payload), MediaType: "application/vnd.oci.image.manifest.v1+json",
		Size: int64(len(payload)), Payload: payload}
}

// TestUniqueSize: the bytes only one manifest (and an index's children) references
// in its namespace; a blob shared with another repository of the namespace does not
// count, one shared only with another namespace does.
func TestUniqueSize(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s, _ := openFresh(t, b)
		blob := func(repo, content string) digest.Digest {
			t.Helper()
			d := digest.FromString(content)
			if err := s.PutBlob(ctx, metadata.Blob{Digest: d, Size: int64(len(content))}); err != nil {
				t.Fatal(err)
			}
			if err := s.LinkBlob(ctx, repo, d); err != nil {
				t.Fatal(err)
			}
			return d
		}
		put := func(repo, content, tag string, refs metadata.References) digest.Digest {
			t.Helper()
			m := testManifest(repo, content)
			if _, err := s.PutManifest(ctx, m, refs, tag); err != nil {
				t.Fatal(err)
			}
			return m.Digest
		}
		shared := blob("team/app", "shared-layer-0123456789") // 23 bytes
		own := blob("team/app", "own-layer-01234")            // 15 bytes
		blob("team/other", "shared-layer-0123456789")
		blob("elsewhere/app", "own-layer-01234")
		img := put("team/app", "img", "v1", metadata.References{Blobs: []digest.Digest{shared, own}})
		put("team/other", "other", "v1", metadata.References{Blobs: []digest.Digest{shared}})
		put("elsewhere/app", "else", "v1", metadata.References{Blobs: []digest.Digest{own}})
		if n, err := s.UniqueSize(ctx, "team/app", img); err != nil || n != 15 {
			t.Fatalf("UniqueSize(img) = %d, %v; want 15", n, err)
		}
		idx := put("team/app", "idx", "multi", metadata.References{Manifests: []digest.Digest{img}})
		if n, err := s.UniqueSize(ctx, "team/app", idx); err != nil || n != 15 {
			t.Fatalf("UniqueSize(index) = %d, %v; want 15 (its child's own layer)", n, err)
		}
		if n, err := s.UniqueSize(ctx, "team/app", digest.FromString("nothing")); err != nil || n != 0 {
			t.Fatalf("UniqueSize(missing) = %d, %v", n, err)
		}
	})
}
