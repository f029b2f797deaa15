package accountstest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/metadata"
)

// newUploadSession creates upload session id in repo holding offset bytes.
func newUploadSession(t *testing.T, m metadata.Store, id, repo string, offset int64) {
	t.Helper()
	must(t, m.CreateUpload(t.Context(), metadata.Upload{ID: id, Repository: repo, CreatedAt: testTime, UpdatedAt: testTime}))
	if offset > 0 {
		must(t, m.UpdateUpload(t.Context(), metadata.Upload{ID: id, Repository: repo, Offset: offset, UpdatedAt: testTime}, 0))
	}
}

func wantHeadroom(t *testing.T, m metadata.Store, repo string, d digest.Digest, want int64, wantLimited bool) {
	t.Helper()
	got, limited, err := m.QuotaHeadroom(t.Context(), repo, d, -1)
	must(t, err)
	if limited != wantLimited || (limited && got != want) {
		t.Errorf("QuotaHeadroom(%s, %s) = %d, %v; want %d, %v", repo, d, got, limited, want, wantLimited)
	}
}

// testUploadQuota (issue 12): bytes received by and reserved for open upload sessions
// count against the namespace's quota, for links and reservations alike; a commit
// moves a session's bytes from the session to the blob without counting them twice.
func testUploadQuota(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	m := metaStore(t, s)
	newOrg(t, s, "acme", "alice")
	must(t, s.SetQuota(ctx, "acme", 100))
	a := putSized(t, m, "a", 30)
	must(t, m.LinkBlob(ctx, "acme/app", a))
	x := digest.FromString("x")
	wantHeadroom(t, m, "acme/app", x, 70, true)
	wantHeadroom(t, m, "acme/web", a, 0, false) // already in the namespace: free
	wantHeadroom(t, m, "alice/app", x, 0, false)

	// A session holding 40 bytes leaves 30.
	newUploadSession(t, m, "s1", "acme/team/app", 40)
	wantHeadroom(t, m, "acme/app", x, 30, true)
	if _, _, err := m.QuotaHeadroom(ctx, "acme/app", x, 30); err != nil {
		t.Errorf("QuotaHeadroom of a blob that fits exactly: %v", err)
	}
	_, _, err := m.QuotaHeadroom(ctx, "acme/app", x, 31)
	wantErr(t, "QuotaHeadroom of a blob too large", err, metadata.ErrQuotaExceeded)
	if !strings.Contains(err.Error(), "40 bytes in open uploads") {
		t.Errorf("%q does not count the session", err)
	}
	b := putSized(t, m, "b", 31)
	err = m.LinkBlob(ctx, "acme/app", b)
	wantErr(t, "LinkBlob past open uploads", err, metadata.ErrQuotaExceeded)
	for _, part := range []string{"acme", "quota of 100 bytes", "30 bytes used", "40 bytes in open uploads", "31 bytes"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("%q does not say %q", err, part)
		}
	}
	wantUsage(t, s, "acme", 30, 100) // Usage is what is linked

	// Reservations: exact, then "up to".
	newUploadSession(t, m, "s2", "acme/app", 0)
	got, limited, err := m.ReserveUpload(ctx, "s2", 20, 20)
	must(t, err)
	if got != 20 || !limited {
		t.Fatalf("ReserveUpload(20, 20) = %d, %v; want 20, true", got, limited)
	}
	wantHeadroom(t, m, "acme/app", x, 10, true)
	_, _, err = m.ReserveUpload(ctx, "s1", 11, 11)
	wantErr(t, "ReserveUpload past the quota", err, metadata.ErrQuotaExceeded)
	if !strings.Contains(err.Error(), "60 bytes in open uploads") {
		t.Errorf("%q does not count the reservation", err)
	}
	got, _, err = m.ReserveUpload(ctx, "s1", 1, 64)
	must(t, err)
	if got != 10 {
		t.Fatalf("ReserveUpload(1, 64) = %d, want the 10 left", got)
	}
	_, _, err = m.ReserveUpload(ctx, "s1", 1, 64)
	wantErr(t, "ReserveUpload with nothing left", err, metadata.ErrQuotaExceeded)

	// UpdateUpload turns s2's reservation into received bytes; ReleaseUpload drops s1's.
	must(t, m.UpdateUpload(ctx, metadata.Upload{ID: "s2", Repository: "acme/app", Offset: 5, UpdatedAt: testTime}, 0))
	wantHeadroom(t, m, "acme/app", x, 15, true) // 100 - 30 linked - (40 + 10) s1 - 5 s2
	must(t, m.ReleaseUpload(ctx, "s1"))
	must(t, m.ReleaseUpload(ctx, "s1")) // idempotent
	wantHeadroom(t, m, "acme/app", x, 25, true)

	// Committing s1's 40 bytes counts them once: as the blob, no longer as the session.
	c := digest.FromString("c")
	pinned, err := m.PinBlob(ctx, c, 40)
	must(t, err)
	_, err = m.CommitUploadedBlob(ctx, "acme/team/app", metadata.Blob{Digest: c, Size: 40}, pinned, "s1")
	must(t, err)
	wantUsage(t, s, "acme", 70, 100)
	wantHeadroom(t, m, "acme/app", x, 25, true)

	// Gone or claimed sessions reserve nothing; other namespaces are not limited.
	_, _, err = m.ReserveUpload(ctx, "s1", 1, 1)
	wantErr(t, "ReserveUpload(committed)", err, metadata.ErrUploadNotFound)
	claimed, err := m.ClaimUpload(ctx, "s2", testTime.Add(-1))
	must(t, err)
	if claimed {
		t.Fatal("ClaimUpload with a stale cutoff before the session's update claimed it")
	}
	newUploadSession(t, m, "free", "alice/app", 1000)
	got, limited, err = m.ReserveUpload(ctx, "free", 1, 1<<30)
	must(t, err)
	if limited || got != 1<<30 {
		t.Fatalf("ReserveUpload in a namespace without quota = %d, %v; want all, false", got, limited)
	}
	// A namespace without an account row is unlimited too.
	newUploadSession(t, m, "noacct", "ghost/app", 0)
	if _, limited, err := m.ReserveUpload(ctx, "noacct", 1, 1); err != nil || limited {
		t.Fatalf("ReserveUpload without a namespace row = %v, %v", limited, err)
	}
}

// testUploadQuotaConcurrent: reservations from many sessions at once never add up to
// more than the quota.
func testUploadQuotaConcurrent(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	m := metaStore(t, s)
	newOrg(t, s, "acme", "alice")
	const n, fit, size = 20, 10, 7
	must(t, s.SetQuota(ctx, "acme", fit*size))
	for i := range n {
		newUploadSession(t, m, fmt.Sprint("s", i), fmt.Sprintf("acme/app%d", i%3), 0)
	}
	ok, over := raceForQuota(t, n, func(i int) error {
		_, _, err := m.ReserveUpload(ctx, fmt.Sprint("s", i), size, size)
		return err
	})
	if ok != fit || over != n-fit {
		t.Errorf("%d reservations succeeded and %d were refused; want %d and %d", ok, over, fit, n-fit)
	}
	wantHeadroom(t, m, "acme/x", digest.FromString("x"), 0, true)
}
