package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/metadata"
)

// testPinBlob: a pinned new blob is pending (invisible, not linkable) until
// CommitBlob records it and links it; pinning an existing blob changes nothing visible.
func testPinBlob(t *testing.T, s metadata.Store) {
	d := digest.FromString("pinned")
	pinned, err := s.PinBlob(ctx(t), d, 6)
	must(t, err)
	if _, err := s.GetBlob(ctx(t), d); !errors.Is(err, metadata.ErrBlobNotFound) {
		t.Fatalf("GetBlob of a pending blob = %v, want ErrBlobNotFound", err)
	}
	wantErr(t, s.LinkBlob(ctx(t), "app", d), metadata.ErrBlobNotFound)
	must(t, s.CommitBlob(ctx(t), "app", metadata.Blob{Digest: d, Size: 6}, pinned))
	b, err := s.RepositoryBlob(ctx(t), "app", d)
	must(t, err)
	if b.Size != 6 {
		t.Fatalf("size after CommitBlob = %d, want 6", b.Size)
	}
	// Pinning again (another push of the same bytes) keeps the size and the link.
	again, err := s.PinBlob(ctx(t), d, -1)
	must(t, err)
	must(t, s.CommitBlob(ctx(t), "web", metadata.Blob{Digest: d, Size: 6}, again))
	if b, err := s.GetBlob(ctx(t), d); err != nil || b.Size != 6 {
		t.Fatalf("GetBlob after second pin = %+v, %v", b, err)
	}
	// PutBlob completes a pending row too.
	p := digest.FromString("pending then put")
	_, err = s.PinBlob(ctx(t), p, -1)
	must(t, err)
	must(t, s.PutBlob(ctx(t), metadata.Blob{Digest: p, Size: 16}))
	if b, err := s.GetBlob(ctx(t), p); err != nil || b.Size != 16 {
		t.Fatalf("GetBlob after PutBlob of a pending row = %+v, %v", b, err)
	}
}

// testCommitReclaimed: a blob marked or swept after its pin cannot be committed under
// that pin; a new pin clears the mark.
func testCommitReclaimed(t *testing.T, s metadata.Store) {
	d := digest.FromString("reclaimed")
	pinned, err := s.PinBlob(ctx(t), d, -1)
	must(t, err)
	time.Sleep(time.Millisecond)
	marked, err := s.GCMarkBlobs(ctx(t), time.Now(), false)
	must(t, err)
	if !slices.ContainsFunc(marked, func(b metadata.Blob) bool { return b.Digest == d }) {
		t.Fatalf("GCMarkBlobs = %v, want %s marked", marked, d)
	}
	wantErr(t, s.CommitBlob(ctx(t), "app", metadata.Blob{Digest: d, Size: 9}, pinned), metadata.ErrBlobReclaimed)

	// A new pin clears the mark: nothing to sweep, and the commit succeeds.
	pinned, err = s.PinBlob(ctx(t), d, -1)
	must(t, err)
	cands, err := s.GCSweepCandidates(ctx(t), time.Now().Add(time.Minute))
	must(t, err)
	if len(cands) != 0 {
		t.Fatalf("sweep candidates after a new pin = %v, want none", cands)
	}
	must(t, s.CommitBlob(ctx(t), "app", metadata.Blob{Digest: d, Size: 9}, pinned))

	// Swept after the pin: the row is gone, and a row re-created by a later pin does not
	// satisfy the old pin either.
	e := digest.FromString("swept")
	old, err := s.PinBlob(ctx(t), e, -1)
	must(t, err)
	time.Sleep(time.Millisecond)
	_, err = s.GCMarkBlobs(ctx(t), time.Now(), false)
	must(t, err)
	time.Sleep(time.Millisecond)
	swept, err := s.GCSweepBlob(ctx(t), e, time.Now(), func() error { return nil })
	must(t, err)
	if !swept {
		t.Fatal("GCSweepBlob of a marked, unpinned blob = false")
	}
	_, err = s.PinBlob(ctx(t), e, -1)
	must(t, err)
	wantErr(t, s.CommitBlob(ctx(t), "app", metadata.Blob{Digest: e, Size: 5}, old), metadata.ErrBlobReclaimed)
}

// testGC runs the phases on a small repository: what is referenced survives, what is
// not goes, dry runs change nothing.
func testGC(t *testing.T, s metadata.Store) {
	past := testTime.Add(-time.Hour)
	tagged := putImage(t, s, "app", "tagged", "latest")
	untagged := putImage(t, s, "app", "untagged", "")
	// An untagged referrer of the tagged image survives; its config too.
	sigCfg := pushBlob(t, s, "app", "signature config")
	sig := newManifest("app", "signature")
	sig.Subject = tagged.Digest
	_, err := s.PutManifest(ctx(t), sig, metadata.References{Blobs: []digest.Digest{sigCfg}}, "")
	must(t, err)
	// An untagged child of a tagged index survives.
	child := putImage(t, s, "app", "child", "")
	index := newManifest("app", "index")
	_, err = s.PutManifest(ctx(t), index, metadata.References{Manifests: []digest.Digest{child.Digest}}, "multi")
	must(t, err)
	loose := pushBlob(t, s, "app", "loose layer")
	shared := pushBlob(t, s, "app", "config of tagged") // linked and referenced

	// Nothing is old enough before the cutoff.
	ms, err := s.GCUntaggedManifests(ctx(t), past, false)
	must(t, err)
	if len(ms) != 0 {
		t.Fatalf("GCUntaggedManifests(past) = %v", ms)
	}

	future := time.Now().Add(time.Minute)
	ms, err = s.GCUntaggedManifests(ctx(t), future, true)
	must(t, err)
	if len(ms) != 1 || ms[0].Digest != untagged.Digest || ms[0].Repository != "app" {
		t.Fatalf("GCUntaggedManifests dry run = %+v, want only %s", ms, untagged.Digest)
	}
	if _, err := s.GetManifest(ctx(t), "app", untagged.Digest); err != nil {
		t.Fatalf("dry run deleted the manifest: %v", err)
	}
	ms, err = s.GCUntaggedManifests(ctx(t), future, false)
	must(t, err)
	if len(ms) != 1 || ms[0].Digest != untagged.Digest {
		t.Fatalf("GCUntaggedManifests = %+v, want only %s", ms, untagged.Digest)
	}
	wantErr(t, func() error { _, err := s.GetManifest(ctx(t), "app", untagged.Digest); return err }(), metadata.ErrManifestNotFound)
	for _, keep := range []digest.Digest{tagged.Digest, sig.Digest, child.Digest, index.Digest} {
		if _, err := s.GetManifest(ctx(t), "app", keep); err != nil {
			t.Fatalf("manifest %s was collected: %v", keep, err)
		}
	}

	// Phase 2: the loose layer and the untagged image's config lose their links.
	untaggedCfg := digest.FromString("config of untagged")
	if n, err := s.GCUnlinkUnreferenced(ctx(t), past, false); err != nil || n != 0 {
		t.Fatalf("GCUnlinkUnreferenced(past) = %d, %v; want 0", n, err)
	}
	// Dry-run mark already counts the links phase 2 would remove as gone.
	dry, err := s.GCMarkBlobs(ctx(t), future, true)
	must(t, err)
	if got := blobDigests(dry); !slices.Equal(got, sortedDigests(loose, untaggedCfg)) {
		t.Fatalf("GCMarkBlobs dry run = %v, want %v", got, sortedDigests(loose, untaggedCfg))
	}
	if n, err := s.GCUnlinkUnreferenced(ctx(t), future, true); err != nil || n != 2 {
		t.Fatalf("GCUnlinkUnreferenced dry run = %d, %v; want 2", n, err)
	}
	if n, err := s.GCUnlinkUnreferenced(ctx(t), future, false); err != nil || n != 2 {
		t.Fatalf("GCUnlinkUnreferenced = %d, %v; want 2", n, err)
	}
	wantErr(t, func() error { _, err := s.RepositoryBlob(ctx(t), "app", loose); return err }(), metadata.ErrBlobNotFound)
	for _, keep := range []digest.Digest{shared, sigCfg} {
		if _, err := s.RepositoryBlob(ctx(t), "app", keep); err != nil {
			t.Fatalf("link of %s was removed: %v", keep, err)
		}
	}

	// Phase 3: mark, then sweep.
	if cands, err := s.GCSweepCandidates(ctx(t), future); err != nil || len(cands) != 0 {
		t.Fatalf("sweep candidates before marking = %v, %v", cands, err)
	}
	marked, err := s.GCMarkBlobs(ctx(t), future, false)
	must(t, err)
	if got := blobDigests(marked); !slices.Equal(got, sortedDigests(loose, untaggedCfg)) {
		t.Fatalf("GCMarkBlobs = %v, want %v", got, sortedDigests(loose, untaggedCfg))
	}
	if again, err := s.GCMarkBlobs(ctx(t), future, false); err != nil || len(again) != 0 {
		t.Fatalf("second GCMarkBlobs = %v, %v; want none (already marked)", again, err)
	}
	// Sweep cutoff before the mark: nothing yet.
	if cands, err := s.GCSweepCandidates(ctx(t), past); err != nil || len(cands) != 0 {
		t.Fatalf("sweep candidates before the grace = %v, %v", cands, err)
	}
	sweepAt := time.Now().Add(time.Minute)
	cands, err := s.GCSweepCandidates(ctx(t), sweepAt)
	must(t, err)
	if got := blobDigests(cands); !slices.Equal(got, sortedDigests(loose, untaggedCfg)) {
		t.Fatalf("GCSweepCandidates = %v", got)
	}
	// The untagged config is re-linked (a mount) before its sweep: it survives.
	must(t, s.LinkBlob(ctx(t), "other", untaggedCfg))
	called := 0
	swept, err := s.GCSweepBlob(ctx(t), untaggedCfg, sweepAt, func() error { called++; return nil })
	must(t, err)
	if swept || called != 0 {
		t.Fatalf("GCSweepBlob of a linked blob = %v (del called %d times)", swept, called)
	}
	// A failing delete rolls back: the row stays, a later sweep takes it.
	boom := errors.New("boom")
	if _, err := s.GCSweepBlob(ctx(t), loose, sweepAt, func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("GCSweepBlob with a failing delete = %v, want boom", err)
	}
	swept, err = s.GCSweepBlob(ctx(t), loose, sweepAt, func() error { called++; return nil })
	must(t, err)
	if !swept || called != 1 {
		t.Fatalf("GCSweepBlob = %v (del called %d times), want swept once", swept, called)
	}
	wantErr(t, func() error { _, err := s.GetBlob(ctx(t), loose); return err }(), metadata.ErrBlobNotFound)
	if swept, err := s.GCSweepBlob(ctx(t), loose, sweepAt, func() error { called++; return nil }); err != nil || swept {
		t.Fatalf("second GCSweepBlob = %v, %v", swept, err)
	}
	for _, keep := range []digest.Digest{shared, sigCfg, untaggedCfg} {
		if _, err := s.GetBlob(ctx(t), keep); err != nil {
			t.Fatalf("blob %s was swept: %v", keep, err)
		}
	}
}

func blobDigests(bs []metadata.Blob) []digest.Digest {
	out := make([]digest.Digest, 0, len(bs))
	for _, b := range bs {
		out = append(out, b.Digest)
	}
	slices.Sort(out)
	return out
}

func sortedDigests(ds ...digest.Digest) []digest.Digest {
	slices.Sort(ds)
	return ds
}

func testUnpinBlob(t *testing.T, s metadata.Store) {
	ctx := context.Background()
	d := digest.FromString("refused upload")
	pinned, err := s.PinBlob(ctx, d, 14)
	must(t, err)
	must(t, s.UnpinBlob(ctx, d, pinned))
	if _, err := s.GetBlob(ctx, d); !errors.Is(err, metadata.ErrBlobNotFound) {
		t.Fatalf("GetBlob after unpin: %v", err)
	}
	// A pin that another push renewed, or a committed blob, is left alone.
	first, err := s.PinBlob(ctx, d, 14)
	must(t, err)
	second, err := s.PinBlob(ctx, d, 14)
	must(t, err)
	must(t, s.CommitBlob(ctx, "app", metadata.Blob{Digest: d, Size: 14}, second))
	must(t, s.UnpinBlob(ctx, d, first))
	must(t, s.UnpinBlob(ctx, d, second))
	if b, err := s.RepositoryBlob(ctx, "app", d); err != nil || b.Size != 14 {
		t.Fatalf("committed blob after unpins: %+v %v", b, err)
	}
}
