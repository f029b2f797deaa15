package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hubctl/hubctl/internal/events"
)

// Login limits in the database (table login_limits), so that every replica counts the
// same failures and knows the same sign-ins (issue 16, item 8). LoginFailures
// implements ratelimit.Failures and KnownLogins ratelimit.Known; the guard that uses
// them lives in package ratelimit, which this package does not import.

// LoginFailures counts failed logins under keys prefixed by kind, max per window; see
// Store.LoginFailures.
type LoginFailures struct {
	s      *Store
	kind   string
	max    int
	window time.Duration
	fails  atomic.Uint64
}

// LoginFailures returns failure counters of one kind ("pair", "addr", "user") that lock
// a key out after max failures within window.
func (s *Store) LoginFailures(kind string, max int, window time.Duration) *LoginFailures {
	return &LoginFailures{s: s, kind: kind + ":", max: max, window: window}
}

// Blocked reports whether key has max failures in the window that includes now, and
// how long until that window ends.
func (f *LoginFailures) Blocked(ctx context.Context, key string, now time.Time) (bool, time.Duration, error) {
	var (
		count int
		since int64
	)
	err := f.s.do(ctx, func(q querier) error {
		return q.QueryRow(ctx, "SELECT count, since FROM login_limits WHERE key = $1", f.kind+key).Scan(&count, &since)
	})
	switch {
	case isNoRows(err):
		return false, 0, nil
	case err != nil:
		return false, 0, fmt.Errorf("login failures of %s: %w", f.kind+key, err)
	}
	end := fromNanos(since).Add(f.window)
	if count < f.max || !now.Before(end) {
		return false, 0, nil
	}
	return true, end.Sub(now), nil
}

// Fail records a failure of key at now: one more in its window, or the first of a new
// one. The failure that brings the window's count to max, and so locks key out, also
// writes one login.locked event in the same transaction: at most one per key and
// window, however many failures follow (a flood of guesses cannot fill the outbox).
// Now and then it also deletes the rows whose window ended.
func (f *LoginFailures) Fail(ctx context.Context, key string, now time.Time) error {
	at, expired := nanos(now), nanos(now.Add(-f.window))
	err := f.s.write(ctx, func(q querier) error {
		var (
			count int
			since int64
		)
		err := q.QueryRow(ctx, `INSERT INTO login_limits AS l (key, count, since) VALUES ($1, 1, $2)
			ON CONFLICT (key) DO UPDATE SET
				count = CASE WHEN l.since <= $3 THEN 1 ELSE l.count + 1 END,
				since = CASE WHEN l.since <= $3 THEN excluded.since ELSE l.since END
			RETURNING count, since`,
			f.kind+key, at, expired).Scan(&count, &since)
		if err != nil {
			return err
		}
		if count == f.max {
			if err := f.s.appendEvent(ctx, q, f.locked(key, count, fromNanos(since))); err != nil {
				return err
			}
		}
		if f.fails.Add(1)%64 != 0 {
			return nil
		}
		// Known sign-ins are kept longer: only failure rows of this kind go here.
		_, err = q.Exec(ctx, "DELETE FROM login_limits WHERE since <= $1 AND key >= $2 AND key < $3",
			expired, f.kind, f.kind[:len(f.kind)-1]+";")
		return err
	})
	if err != nil {
		return fmt.Errorf("record login failure of %s: %w", f.kind+key, err)
	}
	return nil
}

// lockedLimits names the limits in login.locked events by kind of key.
var lockedLimits = map[string]string{"pair:": "account-address", "addr:": "address", "user:": "account"}

// locked is the login.locked event of key, locked out by its count-th failure in the
// window that began at since. A hub-wide event (no repository): only site
// administrators and site hooks see it. The user name is the one the client sent (it
// may name no account); the address, in Remote, is for site administrators only as
// every event's is. No secret is known here to leak: only keys reach the store.
func (f *LoginFailures) locked(key string, count int, since time.Time) events.Event {
	limit := lockedLimits[f.kind]
	if limit == "" {
		limit = f.kind[:len(f.kind)-1]
	}
	var user, addr string
	switch f.kind {
	case "pair:":
		// user|address: an address key never holds "|", a user name sent by a client may.
		if i := strings.LastIndexByte(key, '|'); i >= 0 {
			user, addr = key[:i], key[i+1:]
		} else {
			user = key
		}
	case "addr:":
		addr = key
	default:
		user = key
	}
	detail := map[string]any{"limit": limit, "failures": count, "window": f.window.String(),
		"windowStart": since.UTC(), "lockedUntil": since.Add(f.window).UTC()}
	if user != "" {
		detail["user"] = user
	}
	return events.Event{Type: events.LoginLocked, Remote: addr, Detail: detail}
}

// Succeed forgets key's failures.
func (f *LoginFailures) Succeed(ctx context.Context, key string) error {
	err := f.s.write(ctx, func(q querier) error {
		_, err := q.Exec(ctx, "DELETE FROM login_limits WHERE key = $1", f.kind+key)
		return err
	})
	if err != nil {
		return fmt.Errorf("forget login failures of %s: %w", f.kind+key, err)
	}
	return nil
}

// KnownLogins remembers the account|address pairs that signed in, for ttl.
type KnownLogins struct {
	s   *Store
	ttl time.Duration
	n   atomic.Uint64
}

// KnownLogins returns the sign-in memory of the per-account login ceiling.
func (s *Store) KnownLogins(ttl time.Duration) *KnownLogins { return &KnownLogins{s: s, ttl: ttl} }

// Known reports whether key signed in within ttl before now.
func (k *KnownLogins) Known(ctx context.Context, key string, now time.Time) (bool, error) {
	var known bool
	err := k.s.do(ctx, func(q querier) error {
		return q.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM login_limits WHERE key = $1 AND since > $2)",
			"known:"+key, nanos(now.Add(-k.ttl))).Scan(&known)
	})
	if err != nil {
		return false, fmt.Errorf("known login %s: %w", key, err)
	}
	return known, nil
}

// Remember records a sign-in of key at now; now and then it forgets those older than
// ttl.
func (k *KnownLogins) Remember(ctx context.Context, key string, now time.Time) error {
	err := k.s.write(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO login_limits (key, count, since) VALUES ($1, 0, $2)
			ON CONFLICT (key) DO UPDATE SET since = excluded.since`, "known:"+key, nanos(now))
		if err != nil || k.n.Add(1)%64 != 0 {
			return err
		}
		_, err = q.Exec(ctx, "DELETE FROM login_limits WHERE since <= $1 AND key >= 'known:' AND key < 'known;'", nanos(now.Add(-k.ttl)))
		return err
	})
	if err != nil {
		return fmt.Errorf("remember login %s: %w", key, err)
	}
	return nil
}

// ActionRates counts actions per key in the database (rows of login_limits under the
// prefix "rate-" and the kind), so every replica admits from one count: it implements
// ratelimit.Rates. See Store.ActionRates.
type ActionRates struct {
	s      *Store
	prefix string
	max    int
	window time.Duration
	n      atomic.Uint64
}

// ActionRates returns the shared rate limit of one kind of action ("hook" for the calls
// of workflows' incoming URLs): at most max per key in a fixed window.
func (s *Store) ActionRates(kind string, max int, window time.Duration) *ActionRates {
	return &ActionRates{s: s, prefix: "rate-" + kind + ":", max: max, window: window}
}

// Take counts an action of key at now, unless key already took max in its window, in
// one statement (so two replicas taking at once cannot both pass the last unit), and
// reports whether it was admitted or else how long until its window ends. A refused
// take leaves the count at max+1: it admits nothing and bounds the number. Now and then
// it also deletes the rows of this kind whose window ended.
func (r *ActionRates) Take(ctx context.Context, key string, now time.Time) (bool, time.Duration, error) {
	at, expired := nanos(now), nanos(now.Add(-r.window))
	var (
		count int
		since int64
	)
	err := r.s.write(ctx, func(q querier) error {
		err := q.QueryRow(ctx, `INSERT INTO login_limits AS l (key, count, since) VALUES ($1, 1, $2)
			ON CONFLICT (key) DO UPDATE SET
				count = CASE WHEN l.since <= $3 THEN 1 WHEN l.count > $4 THEN l.count ELSE l.count + 1 END,
				since = CASE WHEN l.since <= $3 THEN excluded.since ELSE l.since END
			RETURNING count, since`,
			r.prefix+key, at, expired, r.max).Scan(&count, &since)
		if err != nil || r.n.Add(1)%64 != 0 {
			return err
		}
		_, err = q.Exec(ctx, "DELETE FROM login_limits WHERE since <= $1 AND key >= $2 AND key < $3",
			expired, r.prefix, r.prefix[:len(r.prefix)-1]+";")
		return err
	})
	if err != nil {
		return false, 0, fmt.Errorf("rate of %s: %w", r.prefix+key, err)
	}
	if count <= r.max {
		return true, 0, nil
	}
	return false, fromNanos(since).Add(r.window).Sub(now), nil
}
