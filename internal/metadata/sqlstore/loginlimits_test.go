package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/auth/ratelimit"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata"
)

// sharedGuard is the login guard serve builds on replica s.
func sharedGuard(s *Store, now func() time.Time) *ratelimit.Guard {
	const window = 5 * time.Minute
	return ratelimit.NewGuard(ratelimit.GuardOptions{
		MaxFailures: 5, MaxAddressFailures: 20, MaxAccountFailures: 12, Window: window, Now: now,
		Accounts:  s.LoginFailures("pair", 5, window),
		Addresses: s.LoginFailures("addr", 20, window),
		Users:     s.LoginFailures("user", 12, window),
		Known:     s.KnownLogins(24 * time.Hour),
	})
}

// TestLoginLimitsShared: failed logins counted by one replica count on the other (issue
// 16, item 8): a guesser alternating between two replicas gets the limit once, not
// twice; the per-account ceiling holds across replicas and addresses, and a sign-in
// seen by one replica keeps its address known to the other.
func TestLoginLimitsShared(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		rs := replicas(t, b)
		now := time.Unix(2_000_000, 0)
		clock := func() time.Time { return now }
		g := [2]*ratelimit.Guard{sharedGuard(rs[0], clock), sharedGuard(rs[1], clock)}
		ctx := context.Background()
		bad := func() (bool, error) { return true, errors.New("bad password") }
		good := func() (bool, error) { return false, nil }
		tooMany := func(err error) bool {
			var tm *ratelimit.TooManyError
			return errors.As(err, &tm)
		}

		// The owner signs in on replica 0.
		if err := g[0].Login(ctx, "alice", "192.0.2.1", true, good); err != nil {
			t.Fatal(err)
		}
		// Per account and address: 5 guesses over both replicas, then both refuse.
		for i := range 5 {
			if err := g[i%2].Login(ctx, "alice", "198.51.100.1", true, bad); tooMany(err) {
				t.Fatalf("guess %d refused: %v", i, err)
			}
		}
		for i := range 2 {
			if err := g[i].Login(ctx, "alice", "198.51.100.1", true, good); !tooMany(err) {
				t.Fatalf("replica %d after 5 guesses over both: %v, want TooManyError", i, err)
			}
		}
		// Per address across names.
		for i := range 20 {
			_ = g[i%2].Login(ctx, fmt.Sprint("u", i), "198.51.100.2", true, bad)
		}
		if err := g[1].Login(ctx, "bob", "198.51.100.2", true, good); !tooMany(err) {
			t.Fatalf("an address after 20 guesses over both replicas: %v, want TooManyError", err)
		}
		// The per-account ceiling: 5 guesses so far, 7 more from new addresses.
		for i := range 7 {
			_ = g[i%2].Login(ctx, "alice", fmt.Sprintf("203.0.113.%d", i), true, bad)
		}
		if err := g[1].Login(ctx, "alice", "203.0.113.200", true, good); !tooMany(err) {
			t.Fatalf("the right password from an unknown address at the ceiling: %v, want TooManyError", err)
		}
		// The owner, at the address replica 0 saw, is let in by replica 1.
		if err := g[1].Login(ctx, "alice", "192.0.2.1", true, good); err != nil {
			t.Fatalf("the owner at a known address on the other replica: %v", err)
		}
		now = now.Add(5 * time.Minute)
		for i := range 2 {
			if err := g[i].Login(ctx, "alice", "198.51.100.1", true, good); err != nil {
				t.Fatalf("replica %d after the window: %v", i, err)
			}
		}
		// Rows whose window ended go (64 failures of one kind trigger a sweep).
		pairs := rs[0].LoginFailures("pair", 5, 5*time.Minute)
		for i := range 64 {
			if err := pairs.Fail(ctx, fmt.Sprint("k", i), now.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		var n int
		if err := rs[0].e.pool().QueryRow(ctx, "SELECT COUNT(*) FROM login_limits WHERE key LIKE 'pair:%'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 64 {
			t.Fatalf("%d pair rows after the sweep, want the 64 in the current window", n)
		}
	})
}

// TestLoginLockedEvent: the failure that locks a key out writes one login.locked event
// in its transaction, never one per failure: more failures in the window (a flood of
// guesses, from both replicas) write nothing more, and the next window may write one
// again. The event names the user and the address but never the password, and it is
// hub-wide: only a reader with Access.All sees it.
func TestLoginLockedEvent(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		rs := replicas(t, b)
		ctx := context.Background()
		now := time.Unix(2_000_000, 0)
		clock := func() time.Time { return now }
		g := [2]*ratelimit.Guard{sharedGuard(rs[0], clock), sharedGuard(rs[1], clock)}
		const secret = "hunter2-is-the-password"
		bad := func() (bool, error) { return true, errors.New("bad password " + secret) }
		locked := func(access metadata.CatalogFilter) []events.Event {
			t.Helper()
			p, err := rs[1].ListEvents(ctx, events.Query{Access: access, Types: []events.Type{events.LoginLocked}, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			return p.Events
		}
		for i := range 5 {
			_ = g[i%2].Login(ctx, "Alice", "198.51.100.1", true, bad)
		}
		es := locked(metadata.CatalogFilter{All: true})
		if len(es) != 1 {
			t.Fatalf("%d login.locked events after 5 failures, want 1: %+v", len(es), es)
		}
		e := es[0]
		if e.Repository != "" || e.Remote != "198.51.100.1" || e.Detail["user"] != "alice" ||
			e.Detail["limit"] != "account-address" || e.Detail["failures"] != float64(5) || e.Detail["window"] != "5m0s" {
			t.Errorf("event %+v", e)
		}
		if start, _ := e.Detail["windowStart"].(string); start != now.UTC().Format(time.RFC3339) {
			t.Errorf("windowStart %v, want %v", e.Detail["windowStart"], now.UTC())
		}
		// The counters go on (the guard refuses before it checks, so Fail it directly, as
		// two replicas racing past Blocked would): no second event in the window.
		pairs := rs[0].LoginFailures("pair", 5, 5*time.Minute)
		for range 20 {
			if err := pairs.Fail(ctx, "alice|198.51.100.1", now.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		if es := locked(metadata.CatalogFilter{All: true}); len(es) != 1 {
			t.Fatalf("%d login.locked events after 25 failures in one window, want 1", len(es))
		}
		// The per-address limit (20 across names) writes its own, with no user.
		for i := range 20 {
			_ = g[i%2].Login(ctx, fmt.Sprint("u", i), "198.51.100.2", true, bad)
		}
		es = locked(metadata.CatalogFilter{All: true})
		if len(es) != 2 || es[1].Detail["limit"] != "address" || es[1].Remote != "198.51.100.2" || es[1].Detail["user"] != nil {
			t.Fatalf("after the address limit: %+v", es)
		}
		// Nobody but a reader of everything sees them.
		if es := locked(metadata.CatalogFilter{Public: true, Namespaces: []string{"alice"}, Member: "alice"}); len(es) != 0 {
			t.Errorf("a user sees %d login.locked events", len(es))
		}
		// A new window locks again, with one new event.
		now = now.Add(6 * time.Minute)
		for i := range 5 {
			_ = g[i%2].Login(ctx, "alice", "198.51.100.1", true, bad)
		}
		if es := locked(metadata.CatalogFilter{All: true}); len(es) != 3 {
			t.Fatalf("%d login.locked events after a second window, want 3", len(es))
		}
		var n int
		if err := rs[0].e.pool().QueryRow(ctx, "SELECT COUNT(*) FROM events WHERE CAST(payload AS TEXT) LIKE $1",
			"%"+secret+"%").Scan(&n); err != nil || n != 0 {
			t.Errorf("%d events hold the password (%v)", n, err)
		}
	})
}

// TestActionRatesShared: the calls of a workflow's incoming URL that two replicas admit
// together stay within the one limit (issue 19): a caller alternating between replicas,
// or calling both at once, gets max per window in all, not max per replica; a new
// window admits again; keys and kinds count apart.
func TestActionRatesShared(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		rs := replicas(t, b)
		const max, window = 6, time.Minute
		r := [2]ratelimit.Rates{rs[0].ActionRates("hook", max, window), rs[1].ActionRates("hook", max, window)}
		ctx := context.Background()
		now := time.Unix(3_000_000, 0)
		for i := range max {
			if ok, _, err := r[i%2].Take(ctx, "7", now); err != nil || !ok {
				t.Fatalf("take %d: %v %v, want admitted", i, ok, err)
			}
		}
		for i := range 2 {
			ok, wait, err := r[i].Take(ctx, "7", now.Add(10*time.Second))
			if err != nil || ok || wait != 50*time.Second {
				t.Fatalf("replica %d after %d over both: %v %v %v, want refused for 50s", i, max, ok, wait, err)
			}
		}
		if ok, _, err := r[0].Take(ctx, "8", now); err != nil || !ok {
			t.Fatalf("another key: %v %v, want admitted", ok, err)
		}
		if ok, _, err := rs[1].ActionRates("hooktest", 1, window).Take(ctx, "7", now); err != nil || !ok {
			t.Fatalf("another kind: %v %v, want admitted", ok, err)
		}
		if ok, _, err := r[1].Take(ctx, "7", now.Add(window)); err != nil || !ok {
			t.Fatalf("next window: %v %v, want admitted", ok, err)
		}

		// Both replicas at once, in a fresh window: exactly max admitted.
		later := now.Add(10 * window)
		var admitted atomic.Int32
		var wg sync.WaitGroup
		for i := range 4 * max {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, _, err := r[i%2].Take(ctx, "9", later)
				if err != nil {
					t.Error(err)
				}
				if ok {
					admitted.Add(1)
				}
			}()
		}
		wg.Wait()
		if n := admitted.Load(); n != max {
			t.Fatalf("%d admitted at once over two replicas, want %d", n, max)
		}
	})
}
