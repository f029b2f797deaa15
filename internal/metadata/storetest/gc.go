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
	must(t, commitBlob(ctx(t), s, "app", metadata.Blob{Digest: d, Size: 6}, pinned))
	b, err := s.RepositoryBlob(ctx(t), "app", d)
	must(t, err)
	if b.Size != 6 {
		t.Fatalf("size after CommitBlob = %d, want 6", b.Size)
	}
	// Pinning again (another push of the same bytes) keeps the size and the link.
	again, err := s.PinBlob(ctx(t), d, -1)
	must(t, err)
	must(t, commitBlob(ctx(t), s, "web", metadata.Blob{Digest: d, Size: 6}, again))
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
	wantErr(t, commitBlob(ctx(t), s, "app", metadata.Blob{Digest: d, Size: 9}, pinned), metadata.ErrBlobReclaimed)

	// A new pin clears the mark: nothing to sweep, and the commit succeeds.
	pinned, err = s.PinBlob(ctx(t), d, -1)
	must(t, err)
	cands, err := s.GCSweepCandidates(ctx(t), time.Now().Add(time.Minute))
	must(t, err)
	if len(cands) != 0 {
		t.Fatalf("sweep candidates after a new pin = %v, want none", cands)
	}
	must(t, commitBlob(ctx(t), s, "app", metadata.Blob{Digest: d, Size: 9}, pinned))

	// Swept after the pin: the row is gone, and a row re-created by a later pin does not
	// satisfy the old pin either.
	e := digest.FromString("swept")
	old, err := s.PinBlob(ctx(t), e, -1)
	must(t, err)
	time.Sleep(time.Millisecond)
	_, err = s.GCMarkBlobs(ctx(t), time.Now(), false)
	must(t, err)
	time.Sleep(time.Millisecond)
	swept, err := s.GCSweepBlob(ctx(t), e, time.Now(), func(string) error { return nil })
	must(t, err)
	if !swept {
		t.Fatal("GCSweepBlob of a marked, unpinned blob = false")
	}
	_, err = s.PinBlob(ctx(t), e, -1)
	must(t, err)
	wantErr(t, commitBlob(ctx(t), s, "app", metadata.Blob{Digest: e, Size: 5}, old), metadata.ErrBlobReclaimed)
}

// testBlobLocations: CommitBlob and PutBlob record a blob's location once, when they
// record the blob; every read and every GC phase hands it back, and GCSweepBlob gives
// it to the delete.
func testBlobLocations(t *testing.T, s metadata.Store) {
	commit := func(repo string, b metadata.Blob, pinnedAt time.Time, want string) {
		t.Helper()
		got, err := s.CommitBlob(ctx(t), repo, b, pinnedAt)
		must(t, err)
		if got != want {
			t.Fatalf("CommitBlob(%s, location %q) = %q, want %q", b.Digest, b.Location, got, want)
		}
	}
	wantLocation := func(d digest.Digest, repo, want string) {
		t.Helper()
		b, err := s.GetBlob(ctx(t), d)
		must(t, err)
		if b.Location != want {
			t.Fatalf("GetBlob(%s).Location = %q, want %q", d, b.Location, want)
		}
		b, err = s.RepositoryBlob(ctx(t), repo, d)
		must(t, err)
		if b.Location != want {
			t.Fatalf("RepositoryBlob(%s, %s).Location = %q, want %q", repo, d, b.Location, want)
		}
	}

	// The first commit records the location; a later push of the same bytes, stored
	// elsewhere, is told where the blob already is.
	d := digest.FromString("chunked upload")
	pinned, err := s.PinBlob(ctx(t), d, 14)
	must(t, err)
	commit("app", metadata.Blob{Digest: d, Size: 14, Location: "by-upload/a"}, pinned, "by-upload/a")
	wantLocation(d, "app", "by-upload/a")
	again, err := s.PinBlob(ctx(t), d, 14)
	must(t, err)
	commit("web", metadata.Blob{Digest: d, Size: 14, Location: "by-upload/b"}, again, "by-upload/a")
	wantLocation(d, "web", "by-upload/a")
	wantLocation(d, "app", "by-upload/a")

	// Two pushes pin the pending row, then commit: re-pinning keeps the row (and its
	// created_at), so both pins stay valid; the first commit's location wins and the
	// second learns it.
	r := digest.FromString("racing uploads")
	first, err := s.PinBlob(ctx(t), r, -1)
	must(t, err)
	second, err := s.PinBlob(ctx(t), r, -1)
	must(t, err)
	commit("app", metadata.Blob{Digest: r, Size: 14, Location: "x"}, first, "x")
	commit("app", metadata.Blob{Digest: r, Size: 14, Location: "y"}, second, "x")
	wantLocation(r, "app", "x")

	// The default location reads back as "".
	c := digest.FromString("content-addressed")
	pinned, err = s.PinBlob(ctx(t), c, -1)
	must(t, err)
	commit("app", metadata.Blob{Digest: c, Size: 17}, pinned, "")
	wantLocation(c, "app", "")

	// PutBlob records the location of a new blob and of a pending row, and keeps the
	// location of a committed one.
	p := digest.FromString("put with a location")
	must(t, s.PutBlob(ctx(t), metadata.Blob{Digest: p, Size: 19, Location: "by-upload/p"}))
	must(t, s.LinkBlob(ctx(t), "app", p))
	wantLocation(p, "app", "by-upload/p")
	must(t, s.PutBlob(ctx(t), metadata.Blob{Digest: p, Size: 19, Location: "by-upload/other"}))
	wantLocation(p, "app", "by-upload/p")
	q := digest.FromString("pending then put with a location")
	_, err = s.PinBlob(ctx(t), q, -1)
	must(t, err)
	must(t, s.PutBlob(ctx(t), metadata.Blob{Digest: q, Size: 32, Location: "by-upload/q"}))
	must(t, s.LinkBlob(ctx(t), "app", q))
	wantLocation(q, "app", "by-upload/q")

	// Unlinked everywhere, the blob is collected, and each GC phase carries its location.
	must(t, s.UnlinkBlob(ctx(t), "app", d))
	must(t, s.UnlinkBlob(ctx(t), "web", d))
	time.Sleep(time.Millisecond)
	wantGCLocation := func(what string, bs []metadata.Blob, err error) {
		t.Helper()
		must(t, err)
		i := slices.IndexFunc(bs, func(b metadata.Blob) bool { return b.Digest == d })
		if i < 0 {
			t.Fatalf("%s = %v, want %s", what, bs, d)
		}
		if bs[i].Location != "by-upload/a" || bs[i].Size != 14 {
			t.Fatalf("%s: %s has size %d, location %q; want 14, %q", what, d, bs[i].Size, bs[i].Location, "by-upload/a")
		}
	}
	markAt := time.Now()
	dry, err := s.GCMarkBlobs(ctx(t), markAt, true)
	wantGCLocation("GCMarkBlobs dry run", dry, err)
	marked, err := s.GCMarkBlobs(ctx(t), markAt, false)
	wantGCLocation("GCMarkBlobs", marked, err)
	time.Sleep(time.Millisecond)
	sweepAt := time.Now()
	cands, err := s.GCSweepCandidates(ctx(t), sweepAt)
	wantGCLocation("GCSweepCandidates", cands, err)
	var deleted []string
	swept, err := s.GCSweepBlob(ctx(t), d, sweepAt, func(location string) error {
		deleted = append(deleted, location)
		return nil
	})
	must(t, err)
	if !swept || !slices.Equal(deleted, []string{"by-upload/a"}) {
		t.Fatalf("GCSweepBlob = %v, del called with %q; want swept, del(%q) once", swept, deleted, "by-upload/a")
	}
	wantErr(t, func() error { _, err := s.GetBlob(ctx(t), d); return err }(), metadata.ErrBlobNotFound)
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
	swept, err := s.GCSweepBlob(ctx(t), untaggedCfg, sweepAt, func(string) error { called++; return nil })
	must(t, err)
	if swept || called != 0 {
		t.Fatalf("GCSweepBlob of a linked blob = %v (del called %d times)", swept, called)
	}
	// A failing delete rolls back: the row stays, a later sweep takes it.
	boom := errors.New("boom")
	if _, err := s.GCSweepBlob(ctx(t), loose, sweepAt, func(string) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("GCSweepBlob with a failing delete = %v, want boom", err)
	}
	swept, err = s.GCSweepBlob(ctx(t), loose, sweepAt, func(string) error { called++; return nil })
	must(t, err)
	if !swept || called != 1 {
		t.Fatalf("GCSweepBlob = %v (del called %d times), want swept once", swept, called)
	}
	wantErr(t, func() error { _, err := s.GetBlob(ctx(t), loose); return err }(), metadata.ErrBlobNotFound)
	if swept, err := s.GCSweepBlob(ctx(t), loose, sweepAt, func(string) error { called++; return nil }); err != nil || swept {
		t.Fatalf("second GCSweepBlob = %v, %v", swept, err)
	}
	for _, keep := range []digest.Digest{shared, sigCfg, untaggedCfg} {
		if _, err := s.GetBlob(ctx(t), keep); err != nil {
			t.Fatalf("blob %s was swept: %v", keep, err)
		}
	}
}

// commitBlob is CommitBlob for tests that do not look at the location.
func commitBlob(ctx context.Context, s metadata.Store, repo string, b metadata.Blob, pinnedAt time.Time) error {
	_, err := s.CommitBlob(ctx, repo, b, pinnedAt)
	return err
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
	must(t, commitBlob(ctx, s, "app", metadata.Blob{Digest: d, Size: 14}, second))
	must(t, s.UnpinBlob(ctx, d, first))
	must(t, s.UnpinBlob(ctx, d, second))
	if b, err := s.RepositoryBlob(ctx, "app", d); err != nil || b.Size != 14 {
		t.Fatalf("committed blob after unpins: %+v %v", b, err)
	}
}

// testDiscardBlob: a refused push's pending row and bytes go at once, but only when
// that push's pin created the row and nobody pinned it since; otherwise, or once
// committed, they are left (to the other push, or to garbage collection).
func testDiscardBlob(t *testing.T, s metadata.Store) {
	ctx := context.Background()
	d := digest.FromString("refused for quota")
	var deleted []string
	del := func(loc string) error { deleted = append(deleted, loc); return nil }

	pinned, err := s.PinBlob(ctx, d, 17)
	must(t, err)
	ok, err := s.DiscardBlob(ctx, d, pinned, del)
	must(t, err)
	if !ok || len(deleted) != 1 || deleted[0] != "" {
		t.Fatalf("DiscardBlob of its own pending row = %v, deleted %q; want true, [\"\"]", ok, deleted)
	}
	if _, err := s.GetBlob(ctx, d); !errors.Is(err, metadata.ErrBlobNotFound) {
		t.Fatalf("GetBlob after discard: %v", err)
	}
	// Pinned again since: another push relies on the bytes.
	first, err := s.PinBlob(ctx, d, 17)
	must(t, err)
	second, err := s.PinBlob(ctx, d, 17)
	must(t, err)
	deleted = nil
	if ok, err := s.DiscardBlob(ctx, d, first, del); err != nil || ok || deleted != nil {
		t.Fatalf("DiscardBlob under a later pin = %v, %v, deleted %q; want false, nothing deleted", ok, err, deleted)
	}
	// Created by an earlier pin: that push may be about to commit the bytes.
	if ok, err := s.DiscardBlob(ctx, d, second, del); err != nil || ok || deleted != nil {
		t.Fatalf("DiscardBlob of a row another pin created = %v, %v, deleted %q; want false", ok, err, deleted)
	}
	// Committed: never.
	must(t, commitBlob(ctx, s, "app", metadata.Blob{Digest: d, Size: 17}, second))
	if ok, err := s.DiscardBlob(ctx, d, second, del); err != nil || ok || deleted != nil {
		t.Fatalf("DiscardBlob of a committed blob = %v, %v, deleted %q; want false", ok, err, deleted)
	}
	if b, err := s.RepositoryBlob(ctx, "app", d); err != nil || b.Size != 17 {
		t.Fatalf("committed blob after discards: %+v %v", b, err)
	}
	// A failing delete keeps the row, so a later attempt or GC can find the bytes.
	other := digest.FromString("store down")
	pinned, err = s.PinBlob(ctx, other, 3)
	must(t, err)
	if ok, err := s.DiscardBlob(ctx, other, pinned, func(string) error { return errors.New("store down") }); err == nil || ok {
		t.Fatalf("DiscardBlob with a failing delete = %v, %v; want an error", ok, err)
	}
	if ok, err := s.DiscardBlob(ctx, other, pinned, del); err != nil || !ok {
		t.Fatalf("DiscardBlob after the store came back = %v, %v; want true", ok, err)
	}
}
