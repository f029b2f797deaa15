package storetest

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/metadata"
)

func equalUpload(t *testing.T, got, want metadata.Upload) {
	t.Helper()
	if got.ID != want.ID || got.Repository != want.Repository || got.Offset != want.Offset ||
		!bytes.Equal(got.HashState, want.HashState) || !bytes.Equal(got.BackendState, want.BackendState) ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Fatalf("upload = %+v\nwant %+v", got, want)
	}
}

func testUploads(t *testing.T, s metadata.Store) {
	_, err := s.GetUpload(ctx(t), "nope")
	wantErr(t, err, metadata.ErrUploadNotFound)

	u := metadata.Upload{
		ID: "u1", Repository: "app", HashState: []byte{0, 1, 2}, BackendState: []byte(`{"uploadId":"x"}`),
		CreatedAt: testTime, UpdatedAt: testTime,
	}
	must(t, s.CreateUpload(ctx(t), u))
	if err := s.CreateUpload(ctx(t), u); err == nil {
		t.Fatal("CreateUpload with an existing id succeeded")
	}
	got, err := s.GetUpload(ctx(t), "u1")
	must(t, err)
	equalUpload(t, got, u)

	next := u
	next.Offset = 1 << 20
	next.HashState = []byte("state at 1 MiB")
	next.BackendState = nil
	next.UpdatedAt = testTime.Add(time.Minute)
	must(t, s.UpdateUpload(ctx(t), next, 0))
	got, err = s.GetUpload(ctx(t), "u1")
	must(t, err)
	equalUpload(t, got, next)

	// A session created without times gets them.
	must(t, s.CreateUpload(ctx(t), metadata.Upload{ID: "u2", Repository: "app"}))
	got, err = s.GetUpload(ctx(t), "u2")
	must(t, err)
	if got.CreatedAt.IsZero() || got.UpdatedAt.IsZero() {
		t.Fatalf("upload without times = %+v, want them set", got)
	}

	must(t, s.DeleteUpload(ctx(t), "u1"))
	must(t, s.DeleteUpload(ctx(t), "u1")) // idempotent
	_, err = s.GetUpload(ctx(t), "u1")
	wantErr(t, err, metadata.ErrUploadNotFound)
	wantErr(t, s.UpdateUpload(ctx(t), next, next.Offset), metadata.ErrUploadNotFound)
}

func testUploadCompareAndSet(t *testing.T, s metadata.Store) {
	u := metadata.Upload{ID: "cas", Repository: "app", CreatedAt: testTime, UpdatedAt: testTime}
	must(t, s.CreateUpload(ctx(t), u))
	at10 := u
	at10.Offset, at10.HashState, at10.UpdatedAt = 10, []byte("10"), testTime.Add(time.Second)
	must(t, s.UpdateUpload(ctx(t), at10, 0))

	for _, prev := range []int64{0, 5, 20} { // stale, never-seen and future offsets
		stale := u
		stale.Offset, stale.HashState = prev+7, []byte("lost")
		wantErr(t, s.UpdateUpload(ctx(t), stale, prev), metadata.ErrUploadConflict)
	}
	got, err := s.GetUpload(ctx(t), "cas")
	must(t, err)
	equalUpload(t, got, at10) // the conflicting updates changed nothing

	at25 := at10
	at25.Offset, at25.HashState, at25.UpdatedAt = 25, []byte("25"), testTime.Add(2*time.Second)
	must(t, s.UpdateUpload(ctx(t), at25, 10))
	got, err = s.GetUpload(ctx(t), "cas")
	must(t, err)
	equalUpload(t, got, at25)
}

// testUploadWrite: one writer at a time holds a session (issue 16, item 6); only the
// holder records a chunk; a hold lapses when not renewed, and another writer may then
// take the session over, after which the first can neither renew nor record.
func testUploadWrite(t *testing.T, s metadata.Store) {
	must(t, s.CreateUpload(ctx(t), metadata.Upload{ID: "w", Repository: "app", CreatedAt: testTime, UpdatedAt: testTime}))
	wantErr(t, s.BeginUploadWrite(ctx(t), "nope", 0, "a", time.Minute), metadata.ErrUploadNotFound)
	wantErr(t, s.BeginUploadWrite(ctx(t), "w", 5, "a", time.Minute), metadata.ErrUploadConflict)
	must(t, s.BeginUploadWrite(ctx(t), "w", 0, "a", time.Minute))
	wantErr(t, s.BeginUploadWrite(ctx(t), "w", 0, "b", time.Minute), metadata.ErrUploadBusy)
	must(t, s.RenewUploadWrite(ctx(t), "w", "a", time.Minute))
	wantErr(t, s.RenewUploadWrite(ctx(t), "w", "b", time.Minute), metadata.ErrUploadConflict)

	// Neither another writer nor a caller without a hold records a chunk meanwhile.
	for _, writer := range []string{"b", ""} {
		wantErr(t, s.UpdateUpload(ctx(t), metadata.Upload{ID: "w", Repository: "app", Offset: 9, Writer: writer, UpdatedAt: testTime}, 0),
			metadata.ErrUploadConflict)
	}
	must(t, s.UpdateUpload(ctx(t), metadata.Upload{ID: "w", Repository: "app", Offset: 10, Writer: "a", UpdatedAt: testTime}, 0))
	// The update ended the hold: the next chunk's writer takes it at the new offset.
	must(t, s.BeginUploadWrite(ctx(t), "w", 10, "b", time.Minute))
	must(t, s.EndUploadWrite(ctx(t), "w", "a")) // not a's: changes nothing
	wantErr(t, s.BeginUploadWrite(ctx(t), "w", 10, "c", time.Minute), metadata.ErrUploadBusy)
	must(t, s.EndUploadWrite(ctx(t), "w", "b"))
	must(t, s.UpdateUpload(ctx(t), metadata.Upload{ID: "w", Repository: "app", Offset: 20, UpdatedAt: testTime}, 10))

	// A lapsed hold is taken over; its first holder has lost it.
	must(t, s.BeginUploadWrite(ctx(t), "w", 20, "d", time.Millisecond))
	time.Sleep(20 * time.Millisecond)
	must(t, s.BeginUploadWrite(ctx(t), "w", 20, "e", time.Minute))
	wantErr(t, s.RenewUploadWrite(ctx(t), "w", "d", time.Minute), metadata.ErrUploadConflict)
	wantErr(t, s.UpdateUpload(ctx(t), metadata.Upload{ID: "w", Repository: "app", Offset: 30, Writer: "d", UpdatedAt: testTime}, 20),
		metadata.ErrUploadConflict)

	// A claimed session has no writer to renew.
	claimed, err := s.ClaimUpload(ctx(t), "w", time.Time{})
	must(t, err)
	if !claimed {
		t.Fatal("ClaimUpload = false")
	}
	wantErr(t, s.RenewUploadWrite(ctx(t), "w", "e", time.Minute), metadata.ErrUploadNotFound)
	wantErr(t, s.BeginUploadWrite(ctx(t), "w", 20, "f", time.Minute), metadata.ErrUploadNotFound)
}

// uploadIDs returns the sessions' ids, in order.
func uploadIDs(us []metadata.Upload) []string {
	out := []string{}
	for _, u := range us {
		out = append(out, u.ID)
	}
	return out
}

func testStaleUploads(t *testing.T, s metadata.Store) {
	got, err := s.StaleUploads(ctx(t), testTime)
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("StaleUploads on an empty store = %+v", got)
	}
	for i, age := range []time.Duration{3 * time.Hour, time.Hour, 2 * time.Hour, 0} {
		at := testTime.Add(-age)
		must(t, s.CreateUpload(ctx(t), metadata.Upload{ID: string(rune('a' + i)), Repository: "app", CreatedAt: at, UpdatedAt: at}))
	}
	for _, tc := range []struct {
		before time.Time
		want   []string
	}{
		{testTime.Add(-90 * time.Minute), []string{"a", "c"}}, // oldest first
		{testTime.Add(-time.Hour), []string{"a", "c"}},        // strictly before
		{testTime, []string{"a", "c", "b"}},
		{testTime.Add(time.Nanosecond * 1000), []string{"a", "c", "b", "d"}},
		{testTime.Add(-4 * time.Hour), []string{}},
	} {
		got, err := s.StaleUploads(ctx(t), tc.before)
		must(t, err)
		equalStrings(t, "StaleUploads("+tc.before.String()+")", uploadIDs(got), tc.want)
	}

	// An update refreshes a session so it is no longer stale.
	a, err := s.GetUpload(ctx(t), "a")
	must(t, err)
	a.Offset, a.UpdatedAt = 1, testTime
	must(t, s.UpdateUpload(ctx(t), a, 0))
	got, err = s.StaleUploads(ctx(t), testTime.Add(-90*time.Minute))
	must(t, err)
	equalStrings(t, "StaleUploads after update", uploadIDs(got), []string{"c"})
}

// testClaimUpload: a session is claimed once; a claim hides it from every reader and
// the commit; the purge takes over a claim older than its cutoff; a stale cutoff spares
// a session updated since; a commit of a claimed session's blob commits nothing.
func testClaimUpload(t *testing.T, s metadata.Store) {
	old := testTime.Add(-2 * time.Hour)
	for _, id := range []string{"old", "fresh", "mine"} {
		at := old
		if id == "fresh" {
			at = testTime
		}
		must(t, s.CreateUpload(ctx(t), metadata.Upload{ID: id, Repository: "app", CreatedAt: at, UpdatedAt: at}))
	}
	claim := func(id string, staleBefore time.Time, want bool) {
		t.Helper()
		got, err := s.ClaimUpload(ctx(t), id, staleBefore)
		must(t, err)
		if got != want {
			t.Fatalf("ClaimUpload(%s, %v) = %v, want %v", id, staleBefore, got, want)
		}
	}
	cutoff := testTime.Add(-time.Hour)
	claim("fresh", cutoff, false) // updated since the cutoff: not stale, kept
	claim("old", cutoff, true)
	claim("old", cutoff, false) // claimed just now: somebody else's claim
	claim("old", time.Time{}, false)
	// A claimed session is gone for everyone but the claimer and the purge.
	_, err := s.GetUpload(ctx(t), "old")
	wantErr(t, err, metadata.ErrUploadNotFound)
	err = s.UpdateUpload(ctx(t), metadata.Upload{ID: "old", Repository: "app", Offset: 5, UpdatedAt: testTime}, 0)
	wantErr(t, err, metadata.ErrUploadNotFound)
	stale, err := s.StaleUploads(ctx(t), cutoff)
	must(t, err)
	if ids := uploadIDs(stale); !slices.Contains(ids, "old") {
		t.Fatalf("StaleUploads = %v, want the claimed session listed too", ids)
	}
	// A claim older than the purge's cutoff is a dead claimer's: the purge takes it over.
	claim("old", time.Now().Add(time.Minute), true)
	// A claimer that could not discard the upload puts the session back.
	must(t, s.UnclaimUpload(ctx(t), "old"))
	if u, err := s.GetUpload(ctx(t), "old"); err != nil || u.Offset != 0 {
		t.Fatalf("GetUpload after UnclaimUpload = %+v, %v", u, err)
	}
	claim("old", cutoff, true)
	must(t, s.DeleteUpload(ctx(t), "old"))
	claim("old", time.Now().Add(time.Minute), false) // deleted: nothing to take over
	claim("nope", time.Time{}, false)
	claim("fresh", time.Time{}, true) // a cancel claims whatever its age
	claim("fresh", time.Time{}, false)
	_, err = s.GetUpload(ctx(t), "fresh")
	wantErr(t, err, metadata.ErrUploadNotFound)

	// The commit of an upload finishes its session in the same transaction.
	d := digest.FromString("claimed upload")
	pinned, err := s.PinBlob(ctx(t), d, 14)
	must(t, err)
	loc, err := s.CommitUploadedBlob(ctx(t), "app", metadata.Blob{Digest: d, Size: 14, Location: "by-upload/mine"}, pinned, "mine")
	must(t, err)
	if loc != "by-upload/mine" {
		t.Fatalf("CommitUploadedBlob = %q, want by-upload/mine", loc)
	}
	_, err = s.GetUpload(ctx(t), "mine")
	wantErr(t, err, metadata.ErrUploadNotFound)
	claim("mine", time.Time{}, false) // committed: nothing left to claim

	// A session claimed first: the commit fails and records nothing.
	must(t, s.CreateUpload(ctx(t), metadata.Upload{ID: "lost", Repository: "app", CreatedAt: old, UpdatedAt: old}))
	claim("lost", cutoff, true)
	e := digest.FromString("blob of a claimed upload")
	pinned, err = s.PinBlob(ctx(t), e, 24)
	must(t, err)
	_, err = s.CommitUploadedBlob(ctx(t), "app", metadata.Blob{Digest: e, Size: 24, Location: "by-upload/lost"}, pinned, "lost")
	wantErr(t, err, metadata.ErrUploadNotFound)
	_, err = s.GetBlob(ctx(t), e)
	wantErr(t, err, metadata.ErrBlobNotFound)
	_, err = s.RepositoryBlob(ctx(t), "app", e)
	wantErr(t, err, metadata.ErrBlobNotFound)
}
