package ratelimit

import (
	"context"
	"time"
)

// Rates admits actions per key, at most a fixed number per window (the calls of a
// workflow's incoming URL, a webhook's test deliveries). LocalRates counts within this
// process (per replica); the one the database keeps (sqlstore.Store.ActionRates)
// counts for every replica together, so N replicas do not admit N times the limit.
type Rates interface {
	// Take counts an action of key at now unless key has used up its window, in one
	// step, and reports whether it was admitted or else how long until it would be.
	Take(ctx context.Context, key string, now time.Time) (bool, time.Duration, error)
}

// LocalRates returns the in-process Rates: max actions per key per window.
func LocalRates(max int, window time.Duration) Rates { return localRates{New(max, window)} }

type localRates struct{ l *Limiter }

func (r localRates) Take(_ context.Context, key string, now time.Time) (bool, time.Duration, error) {
	ok, wait := r.l.Take(key, now)
	return ok, wait, nil
}
