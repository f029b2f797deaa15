package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/metadata"
)

// acquire calls AcquireGCLease and checks whether holder got the lease and who holds it.
func acquire(t *testing.T, s metadata.Store, holder string, ttl time.Duration, want bool, wantHolder string) metadata.GCLease {
	t.Helper()
	l, ok, err := s.AcquireGCLease(ctx(t), holder, ttl)
	must(t, err)
	if ok != want || l.Holder != wantHolder {
		t.Fatalf("AcquireGCLease(%q) = %+v, acquired %v; want acquired %v, holder %q", holder, l, ok, want, wantHolder)
	}
	if !l.ExpiresAt.After(l.AcquiredAt) {
		t.Fatalf("lease %+v expires before it was acquired", l)
	}
	return l
}

// testGCLease: one holder at a time; the holder may take it again and renew it;
// others cannot renew or release it; once released anybody may take it.
func testGCLease(t *testing.T, s metadata.Store) {
	first := acquire(t, s, "a", time.Hour, true, "a")
	if d := first.ExpiresAt.Sub(first.AcquiredAt); d < 59*time.Minute || d > 61*time.Minute {
		t.Fatalf("lease of 1h runs for %s", d)
	}
	acquire(t, s, "b", time.Hour, false, "a")
	wantErr(t, s.RenewGCLease(ctx(t), "b", time.Hour), metadata.ErrGCLeaseLost)
	must(t, s.ReleaseGCLease(ctx(t), "b")) // not b's: nothing happens
	acquire(t, s, "b", time.Hour, false, "a")

	// Taking it again extends it and keeps the time it was first acquired.
	again := acquire(t, s, "a", 2*time.Hour, true, "a")
	if !again.AcquiredAt.Equal(first.AcquiredAt) || !again.ExpiresAt.After(first.ExpiresAt) {
		t.Fatalf("re-acquired lease %+v, first %+v: want the same acquired_at and a later expiry", again, first)
	}
	must(t, s.RenewGCLease(ctx(t), "a", time.Hour))

	must(t, s.ReleaseGCLease(ctx(t), "a"))
	must(t, s.ReleaseGCLease(ctx(t), "a")) // idempotent
	wantErr(t, s.RenewGCLease(ctx(t), "a", time.Hour), metadata.ErrGCLeaseLost)
	acquire(t, s, "b", time.Hour, true, "b")
	acquire(t, s, "a", time.Hour, false, "b")
}

// testGCLeaseExpiry: an expired lease nobody took can still be renewed by its holder;
// once another collector takes it over, the old holder has lost it.
func testGCLeaseExpiry(t *testing.T, s metadata.Store) {
	acquire(t, s, "a", time.Millisecond, true, "a")
	time.Sleep(20 * time.Millisecond)
	must(t, s.RenewGCLease(ctx(t), "a", time.Millisecond))
	time.Sleep(20 * time.Millisecond)
	acquire(t, s, "b", time.Hour, true, "b")
	wantErr(t, s.RenewGCLease(ctx(t), "a", time.Hour), metadata.ErrGCLeaseLost)
	must(t, s.ReleaseGCLease(ctx(t), "a"))
	acquire(t, s, "c", time.Hour, false, "b")
}

// testConcurrentGCLease: of collectors racing for a free lease exactly one gets it,
// and every other one is told who holds it.
func testConcurrentGCLease(t *testing.T, s metadata.Store) {
	const n = 8
	type result struct {
		holder string
		lease  metadata.GCLease
		ok     bool
		err    error
	}
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			h := fmt.Sprintf("collector %d", i)
			l, ok, err := s.AcquireGCLease(ctx(t), h, time.Hour)
			results[i] = result{h, l, ok, err}
		})
	}
	close(start)
	wg.Wait()
	winner := ""
	for _, r := range results {
		must(t, r.err)
		if r.ok {
			if winner != "" {
				t.Fatalf("both %s and %s acquired the lease", winner, r.holder)
			}
			winner = r.holder
		}
	}
	if winner == "" {
		t.Fatal("nobody acquired the lease")
	}
	for _, r := range results {
		if r.lease.Holder != winner {
			t.Errorf("%s was told the holder is %q, want %q", r.holder, r.lease.Holder, winner)
		}
	}
}
