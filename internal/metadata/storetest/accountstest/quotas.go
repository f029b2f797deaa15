package accountstest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/metadata/storetest"
)

// putSized records a blob of size bytes and returns its digest.
func putSized(t *testing.T, m metadata.Store, name string, size int64) digest.Digest {
	t.Helper()
	d := digest.FromString(name)
	must(t, m.PutBlob(t.Context(), metadata.Blob{Digest: d, Size: size, CreatedAt: testTime}))
	return d
}

func wantUsage(t *testing.T, s accounts.Store, ns string, wantUsed, wantQuota int64) {
	t.Helper()
	used, quota, err := s.Usage(t.Context(), ns)
	must(t, err)
	if used != wantUsed || quota != wantQuota {
		t.Errorf("Usage(%s) = %d, %d; want %d, %d", ns, used, quota, wantUsed, wantQuota)
	}
}

func testUsage(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	m := metaStore(t, s)
	newOrg(t, s, "acme", "alice")
	newOrg(t, s, "acme_x", "alice") // '_' must not act as a wildcard
	wantUsage(t, s, "acme", 0, 0)

	a := putSized(t, m, "a", 100)
	b := putSized(t, m, "b", 20)
	// One blob in two repositories of a namespace counts once.
	must(t, m.LinkBlob(ctx, "acme/app", a))
	must(t, m.LinkBlob(ctx, "acme/team/web", a))
	must(t, m.LinkBlob(ctx, "acme/app", b))
	wantUsage(t, s, "acme", 120, 0)
	// A blob in two namespaces counts in each; neighbouring names are not included.
	must(t, m.LinkBlob(ctx, "alice/tools", a))
	must(t, m.LinkBlob(ctx, "acmex/app", b))
	must(t, m.LinkBlob(ctx, "acme_x/app", b))
	wantUsage(t, s, "alice", 100, 0)
	wantUsage(t, s, "acme", 120, 0)
	wantUsage(t, s, "acme_x", 20, 0)
	// A single-component repository belongs to the namespace of its name.
	must(t, m.LinkBlob(ctx, "alice", b))
	wantUsage(t, s, "alice", 120, 0)

	must(t, s.SetQuota(ctx, "acme", 1000))
	wantUsage(t, s, "acme", 120, 1000)
	must(t, s.SetQuota(ctx, "acme", 0)) // clears it
	wantUsage(t, s, "acme", 120, 0)
	must(t, s.SetQuota(ctx, "acme", 500))
	must(t, s.SetQuota(ctx, "acme", -1))
	wantUsage(t, s, "acme", 120, 0)

	wantErr(t, "SetQuota(missing)", s.SetQuota(ctx, "ghost", 10), accounts.ErrNotFound)
	_, _, err := s.Usage(ctx, "ghost")
	wantErr(t, "Usage(missing)", err, accounts.ErrNotFound)

	// Unlinking gives the bytes back.
	must(t, m.UnlinkBlob(ctx, "acme/app", b))
	wantUsage(t, s, "acme", 100, 0)
}

func testQuotaEnforced(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	m := metaStore(t, s)
	newOrg(t, s, "acme", "alice")
	a := putSized(t, m, "a", 60)
	b := putSized(t, m, "b", 40)
	c := putSized(t, m, "c", 1)
	must(t, s.SetQuota(ctx, "acme", 100))

	must(t, m.LinkBlob(ctx, "acme/app", a))
	must(t, m.LinkBlob(ctx, "acme/app", b)) // exactly at the quota
	wantUsage(t, s, "acme", 100, 100)
	// Already in the namespace: free, in the same repository or another.
	must(t, m.LinkBlob(ctx, "acme/app", a))
	must(t, m.LinkBlob(ctx, "acme/web", a))
	wantUsage(t, s, "acme", 100, 100)

	err := m.LinkBlob(ctx, "acme/web", c)
	wantErr(t, "LinkBlob over quota", err, metadata.ErrQuotaExceeded)
	for _, part := range []string{"acme", "100 bytes", "100 bytes used"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("LinkBlob over quota: %q does not name %q", err, part)
		}
	}
	if _, err := m.RepositoryBlob(ctx, "acme/web", c); !errors.Is(err, metadata.ErrBlobNotFound) {
		t.Errorf("refused blob is linked: RepositoryBlob = %v", err)
	}
	// A refused link into a new repository does not create it.
	wantErr(t, "LinkBlob over quota, new repository", m.LinkBlob(ctx, "acme/new", c), metadata.ErrQuotaExceeded)
	if ok, err := m.RepositoryExists(ctx, "acme/new"); err != nil || ok {
		t.Errorf("RepositoryExists(acme/new) = %v, %v after a refused link", ok, err)
	}
	// Other namespaces and namespaces without an account are not limited.
	must(t, m.LinkBlob(ctx, "alice/app", c))
	must(t, m.LinkBlob(ctx, "noaccount/app", c))

	// Raising the quota, or freeing space, lets the push through.
	must(t, m.UnlinkBlob(ctx, "acme/app", b))
	must(t, m.LinkBlob(ctx, "acme/web", c))
	wantUsage(t, s, "acme", 61, 100)
	must(t, s.SetQuota(ctx, "acme", 0))
	must(t, m.LinkBlob(ctx, "acme/web", b))
	wantUsage(t, s, "acme", 101, 0)
}

// testQuotaConcurrent links distinct blobs into one namespace from many goroutines:
// the quota fits exactly ten of them, and exactly ten links must succeed.
func testQuotaConcurrent(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	m := metaStore(t, s)
	newOrg(t, s, "acme", "alice")
	const n, fit, size = 20, 10, 7
	must(t, s.SetQuota(ctx, "acme", fit*size))
	ds := make([]digest.Digest, n)
	for i := range ds {
		ds[i] = putSized(t, m, fmt.Sprint("blob ", i), size)
	}
	ok, over := raceForQuota(t, n, func(i int) error {
		// Two repositories, so the check cannot rely on a per-repository lock.
		return m.LinkBlob(ctx, fmt.Sprintf("acme/app%d", i%2), ds[i])
	})
	if ok != fit || over != n-fit {
		t.Errorf("%d links succeeded and %d were refused; want %d and %d", ok, over, fit, n-fit)
	}
	wantUsage(t, s, "acme", fit*size, fit*size)
}

// raceForQuota runs try(i) for i in [0, n) all at once and counts the calls that
// succeeded and those refused for the quota; any other error fails the test.
func raceForQuota(t *testing.T, n int, try func(i int) error) (ok, over int) {
	t.Helper()
	for i, err := range storetest.Concurrently(n, try) {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, metadata.ErrQuotaExceeded):
			over++
		default:
			t.Errorf("call %d: %v", i, err)
		}
	}
	return ok, over
}
