package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/auth/ratelimit"
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
