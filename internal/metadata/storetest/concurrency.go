package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/metadata"
)

// Concurrently runs fn(i) for i in [0, n) in n goroutines released together, and
// returns the errors by index.
func Concurrently(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// testConcurrentPutSameTag pushes 50 manifests to one tag at once, as 50 CI jobs
// pushing :latest do. Every put must succeed and the tag moves must form one chain:
// each put saw exactly the previous put's digest, so no update was lost.
func testConcurrentPutSameTag(t *testing.T, s metadata.Store) {
	const n = 50
	cfg := pushBlob(t, s, "app", "config")
	ms := make([]metadata.Manifest, n)
	for i := range ms {
		ms[i] = newManifest("app", fmt.Sprint("build ", i))
	}
	results := make([]metadata.PutManifestResult, n)
	errs := Concurrently(n, func(i int) error {
		var err error
		results[i], err = s.PutManifest(ctx(t), ms[i], metadata.References{Blobs: []digest.Digest{cfg}}, "latest")
		return err
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent PutManifest: %v", err)
	}

	pushed, previous := CheckTagChain(t, ms, results)
	final, err := s.ResolveTag(ctx(t), "app", "latest")
	must(t, err)
	if !pushed[final] {
		t.Fatalf("latest = %s, not one of the pushed manifests", final)
	}
	if previous[final] != 0 || len(previous) != n-1 {
		t.Errorf("latest = %s but the chain of moves has %d replaced digests (final replaced %d times), want %d and 0",
			final, len(previous), previous[final], n-1)
	}
	tags, err := s.ListTags(ctx(t), "app", "", 0)
	must(t, err)
	equalStrings(t, "ListTags", tags, []string{"latest"})
	for _, m := range ms {
		if _, err := s.GetManifest(ctx(t), "app", m.Digest); err != nil {
			t.Errorf("GetManifest(%s): %v", m.Digest, err)
		}
	}
}

// testConcurrentLinkBlob links one blob into one new repository from many goroutines,
// as parallel pushes sharing a base layer do.
func testConcurrentLinkBlob(t *testing.T, s metadata.Store) {
	const n = 20
	d := digest.FromString("base layer")
	if err := errors.Join(Concurrently(n, func(int) error {
		return s.PutBlob(ctx(t), metadata.Blob{Digest: d, Size: 10})
	})...); err != nil {
		t.Fatalf("concurrent PutBlob: %v", err)
	}
	if err := errors.Join(Concurrently(n, func(i int) error {
		// Half link into the same repository, half each into their own.
		repo := "shared"
		if i%2 == 1 {
			repo = fmt.Sprint("own", i)
		}
		return s.LinkBlob(ctx(t), repo, d)
	})...); err != nil {
		t.Fatalf("concurrent LinkBlob: %v", err)
	}
	if _, err := s.RepositoryBlob(ctx(t), "shared", d); err != nil {
		t.Fatalf("RepositoryBlob(shared): %v", err)
	}
	repos, err := s.ListRepositories(ctx(t), "", 0)
	must(t, err)
	if len(repos) != 1+n/2 {
		t.Fatalf("ListRepositories = %q, want shared and %d own repositories", repos, n/2)
	}
	must(t, s.UnlinkBlob(ctx(t), "shared", d))
	// One link row existed: after one unlink there is none left.
	wantErr(t, s.UnlinkBlob(ctx(t), "shared", d), metadata.ErrBlobNotFound)
}

// testConcurrentUploadUpdate races PATCHes on one session: exactly one may win.
func testConcurrentUploadUpdate(t *testing.T, s metadata.Store) {
	const n = 20
	must(t, s.CreateUpload(ctx(t), metadata.Upload{ID: "race", Repository: "app", CreatedAt: testTime, UpdatedAt: testTime}))
	errs := Concurrently(n, func(i int) error {
		return s.UpdateUpload(ctx(t), metadata.Upload{
			ID: "race", Repository: "app", Offset: int64(100 + i), CreatedAt: testTime, UpdatedAt: testTime,
		}, 0)
	})
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			t.Fatalf("updates %d and %d both succeeded from offset 0", won, i)
		case err == nil:
			won = i
		case !errors.Is(err, metadata.ErrUploadConflict):
			t.Fatalf("update %d: %v, want nil or ErrUploadConflict", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no update succeeded")
	}
	u, err := s.GetUpload(ctx(t), "race")
	must(t, err)
	if u.Offset != int64(100+won) {
		t.Fatalf("offset = %d, want the winner's %d", u.Offset, 100+won)
	}
}

// CheckTagChain checks the results of concurrent PutManifest calls of ms to one tag:
// every put created its manifest and moved the tag, exactly one found the tag new, and
// the previous digests form one chain (each pushed digest replaced at most once), so no
// update was lost. It returns the pushed digests and how often each was replaced, for
// checks of the final state.
func CheckTagChain(t *testing.T, ms []metadata.Manifest, results []metadata.PutManifestResult) (pushed map[digest.Digest]bool, replaced map[digest.Digest]int) {
	t.Helper()
	pushed = map[digest.Digest]bool{}
	for _, m := range ms {
		pushed[m.Digest] = true
	}
	firsts := 0
	previous := map[digest.Digest]int{}
	for i, r := range results {
		if !r.Created || !r.TagMoved {
			t.Errorf("put %d = %+v, want Created and TagMoved", i, r)
		}
		if r.PreviousTagDigest == "" {
			firsts++
			continue
		}
		if !pushed[r.PreviousTagDigest] {
			t.Errorf("put %d saw previous digest %s, which nobody pushed", i, r.PreviousTagDigest)
		}
		previous[r.PreviousTagDigest]++
	}
	if firsts != 1 {
		t.Errorf("%d puts found the tag new, want exactly 1", firsts)
	}
	for d, k := range previous {
		if k != 1 {
			t.Errorf("%d puts replaced %s, want 1: an update was lost", k, d)
		}
	}
	return pushed, previous
}

// testConcurrentCommitBlob commits one pending blob from many pushes at once, each
// having stored the bytes at its own location, as parallel chunked uploads of the same
// layer do. Every commit succeeds and all of them report the one location recorded.
func testConcurrentCommitBlob(t *testing.T, s metadata.Store) {
	const n = 20
	d := digest.FromString("layer pushed in parallel")
	// The pins come first, one after another, so that each is at or after the row's
	// creation: pins racing the row's creation may be refused, which is not under test.
	pins := make([]time.Time, n)
	for i := range pins {
		var err error
		pins[i], err = s.PinBlob(ctx(t), d, -1)
		must(t, err)
	}
	locations := make([]string, n)
	if err := errors.Join(Concurrently(n, func(i int) error {
		var err error
		locations[i], err = s.CommitBlob(ctx(t), fmt.Sprint("app", i%3), metadata.Blob{Digest: d, Size: 24, Location: fmt.Sprint("by-upload/", i)}, pins[i])
		return err
	})...); err != nil {
		t.Fatalf("concurrent CommitBlob: %v", err)
	}
	want := locations[0]
	if !strings.HasPrefix(want, "by-upload/") {
		t.Fatalf("CommitBlob = %q, not a location any push stored", want)
	}
	for i, got := range locations {
		if got != want {
			t.Fatalf("CommitBlob %d = %q, CommitBlob 0 = %q: two locations recorded", i, got, want)
		}
	}
	b, err := s.GetBlob(ctx(t), d)
	must(t, err)
	if b.Location != want || b.Size != 24 {
		t.Fatalf("GetBlob = size %d, location %q; want 24, %q", b.Size, b.Location, want)
	}
}

// testConcurrentClaimUpload: purges of several replicas and the session's own commit
// race for stale sessions. For each session exactly one party wins: either one claim
// and no commit, or the commit and no claim; never two claims, never a claim and a
// commit (which would discard bytes the database records).
func testConcurrentClaimUpload(t *testing.T, s metadata.Store) {
	const sessions, claimers = 10, 8
	old := testTime.Add(-2 * time.Hour)
	cutoff := testTime.Add(-time.Hour)
	for k := range sessions {
		must(t, s.CreateUpload(ctx(t), metadata.Upload{ID: fmt.Sprint("race-", k), Repository: "app", CreatedAt: old, UpdatedAt: old}))
	}
	for k := range sessions {
		id := fmt.Sprint("race-", k)
		d := digest.FromString(id)
		pinned, err := s.PinBlob(ctx(t), d, int64(len(id)))
		must(t, err)
		claimed := make([]bool, claimers)
		// Index 0 commits the upload's blob; the others claim the session, half of them
		// as a cancel (no cutoff) and half as a purge.
		errs := Concurrently(claimers, func(i int) error {
			if i == 0 {
				_, err := s.CommitUploadedBlob(ctx(t), "app", metadata.Blob{Digest: d, Size: int64(len(id)), Location: "by-upload/" + id}, pinned, id)
				if errors.Is(err, metadata.ErrUploadNotFound) {
					return nil
				}
				claimed[0] = err == nil
				return err
			}
			staleBefore := cutoff
			if i%2 == 0 {
				staleBefore = time.Time{}
			}
			var err error
			claimed[i], err = s.ClaimUpload(ctx(t), id, staleBefore)
			return err
		})
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		winners := 0
		for _, c := range claimed {
			if c {
				winners++
			}
		}
		if winners != 1 {
			t.Fatalf("%s: %d parties won the session (commit %v, claims %v), want exactly one", id, winners, claimed[0], claimed[1:])
		}
		_, err = s.GetBlob(ctx(t), d)
		if claimed[0] {
			must(t, err)
		} else {
			wantErr(t, err, metadata.ErrBlobNotFound)
		}
	}
}
