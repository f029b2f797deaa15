package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestGuardLimitsAnAddressAcrossNames(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	g := NewGuard(GuardOptions{MaxAddressFailures: 20, Now: func() time.Time { return now }})
	ctx := context.Background()
	bad := func() (bool, error) { return true, errors.New("bad") }
	good := func() (bool, error) { return false, nil }
	// A spray: one guess per name never reaches the per-account limit…
	for i := range 20 {
		if err := g.Login(ctx, fmt.Sprintf("user%d", i), "198.51.100.7", true, bad); err == nil || isTooMany(err) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	// …but the address is locked out now, for every name, and a login that works from
	// it does not lift that.
	if err := g.Login(ctx, "someone-else", "198.51.100.7", true, good); !isTooMany(err) {
		t.Fatalf("after 20 failures from one address: %v, want TooManyError", err)
	}
	// Another address is not.
	if err := g.Login(ctx, "user1", "198.51.100.8", true, good); err != nil {
		t.Fatalf("another address: %v", err)
	}
	// Neither is another address of a different /64, but the same /64 is.
	if err := g.Login(ctx, "x", "2001:db8:0:1::1", true, bad); isTooMany(err) {
		t.Fatal(err)
	}
	for i := range 19 {
		_ = g.Login(ctx, fmt.Sprint("x", i), "2001:db8:0:1::1", true, bad)
	}
	if err := g.Login(ctx, "y", "2001:db8:0:1:ffff::2", true, good); !isTooMany(err) {
		t.Fatalf("same /64: %v", err)
	}
	if err := g.Login(ctx, "y", "2001:db8:0:2::1", true, good); err != nil {
		t.Fatalf("another /64: %v", err)
	}
	// The window passes.
	now = now.Add(DefaultWindow)
	if err := g.Login(ctx, "someone-else", "198.51.100.7", true, good); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

func TestGuardWithoutAddressLimits(t *testing.T) {
	g := NewGuard(GuardOptions{MaxAddressFailures: -1})
	bad := func() (bool, error) { return true, nil }
	for i := range 100 {
		if err := g.Login(context.Background(), fmt.Sprint("u", i), "192.0.2.1", true, bad); isTooMany(err) {
			t.Fatalf("guess %d refused: %v", i, err)
		}
	}
	for range DefaultMaxFailures {
		_ = g.Login(context.Background(), "alice", "192.0.2.1", true, bad)
	}
	if err := g.Login(context.Background(), "alice", "192.0.2.1", true, bad); !isTooMany(err) {
		t.Fatalf("the account limit is off too: %v", err)
	}
}

func TestGuardKeepsTheAccountLimit(t *testing.T) {
	g := NewGuard(GuardOptions{})
	bad := func() (bool, error) { return true, nil }
	for range DefaultMaxFailures {
		_ = g.Login(context.Background(), "Alice", "192.0.2.1", false, bad)
	}
	if err := g.Login(context.Background(), "alice", "192.0.2.1", false, bad); !isTooMany(err) {
		t.Fatalf("after %d failures: %v", DefaultMaxFailures, err)
	}
}

// TestGuardRunsOnePasswordCheckPerAddress: concurrent password checks from one address
// run one at a time and at most MaxWaitingPerAddress wait; the rest are refused at once,
// so one address never holds more than one of the hashing slots other clients need.
func TestGuardRunsOnePasswordCheckPerAddress(t *testing.T) {
	g := NewGuard(GuardOptions{MaxAddressFailures: 1000, MaxFailures: 1000, MaxWaitingPerAddress: 8})
	var running, peak atomic.Int32
	release := make(chan struct{})
	check := func() (bool, error) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		running.Add(-1)
		return true, nil
	}
	var wg sync.WaitGroup
	var refused atomic.Int32
	for i := range 40 {
		wg.Go(func() {
			if err := g.Login(context.Background(), fmt.Sprint("u", i), "203.0.113.9", true, check); isTooMany(err) {
				refused.Add(1)
			}
		})
	}
	// Every check that is not refused is queued before the first one ends.
	deadline := time.Now().Add(30 * time.Second)
	for refused.Load() < 32 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	// Another address gets its turn while the first one's queue is full.
	other := make(chan error, 1)
	go func() {
		other <- g.Login(context.Background(), "bob", "203.0.113.10", true, func() (bool, error) { return false, nil })
	}()
	select {
	case err := <-other:
		if err != nil {
			t.Fatalf("another address: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("another address waited behind the first one's queue")
	}
	close(release)
	wg.Wait()
	if peak.Load() != 1 || refused.Load() != 32 {
		t.Fatalf("peak concurrent checks of one address %d, refused %d; want 1 and 32", peak.Load(), refused.Load())
	}
	if len(g.gates) != 0 {
		t.Fatalf("gates left behind: %d", len(g.gates))
	}
}

func TestGuardWaitEndsWithTheContext(t *testing.T) {
	g := NewGuard(GuardOptions{})
	hold := make(chan struct{})
	go func() {
		_ = g.Login(context.Background(), "a", "192.0.2.5", true, func() (bool, error) { <-hold; return false, nil })
	}()
	for {
		g.mu.Lock()
		n := 0
		if gt := g.gates["192.0.2.5"]; gt != nil {
			n = gt.waiting
		}
		g.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.Login(ctx, "b", "192.0.2.5", true, func() (bool, error) { return false, nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	close(hold)
}

func TestAddressKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":          "192.0.2.1",
		"::ffff:192.0.2.1":   "192.0.2.1",
		"2001:db8::1":        "2001:db8::/64",
		"2001:db8::ffff:1:2": "2001:db8::/64",
		"not an address":     "not an address",
	} {
		if got := AddressKey(in); got != want {
			t.Errorf("AddressKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func isTooMany(err error) bool {
	var tm *TooManyError
	return errors.As(err, &tm)
}

// TestGuardAccountCeiling: guesses at one account from many addresses, each under the
// per-address limits, reach the per-account ceiling; the account then refuses
// addresses it never signed in from, but never its owner at an address the owner used
// before, whatever the guesses elsewhere (issue 16, item 8).
func TestGuardAccountCeiling(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	g := NewGuard(GuardOptions{MaxAccountFailures: 10, Now: func() time.Time { return now }})
	ctx := context.Background()
	bad := func() (bool, error) { return true, errors.New("bad") }
	good := func() (bool, error) { return false, nil }
	if err := g.Login(ctx, "alice", "192.0.2.1", true, good); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		err := g.Login(ctx, "Alice", fmt.Sprintf("198.51.100.%d", i), true, bad)
		if i < 10 && isTooMany(err) {
			t.Fatalf("guess %d refused before the ceiling: %v", i, err)
		}
		if i >= 10 && !isTooMany(err) {
			t.Fatalf("guess %d from a new address after the ceiling: %v, want TooManyError", i, err)
		}
	}
	if err := g.Login(ctx, "alice", "192.0.2.1", true, good); err != nil {
		t.Fatalf("the owner at a known address: %v", err)
	}
	if err := g.Login(ctx, "alice", "203.0.113.9", true, good); !isTooMany(err) {
		t.Fatalf("the right password from an unknown address during the ceiling: %v, want TooManyError", err)
	}
	if err := g.Login(ctx, "bob", "203.0.113.9", true, good); err != nil {
		t.Fatalf("another account: %v", err)
	}
	now = now.Add(DefaultWindow)
	if err := g.Login(ctx, "alice", "203.0.113.9", true, good); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	// Off, the ceiling refuses nothing.
	g = NewGuard(GuardOptions{MaxAccountFailures: -1})
	for i := range 100 {
		if err := g.Login(ctx, "carol", fmt.Sprintf("198.51.100.%d", i), true, bad); isTooMany(err) {
			t.Fatalf("guess %d with the ceiling off: %v", i, err)
		}
	}
}
