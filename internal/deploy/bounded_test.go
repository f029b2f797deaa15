package deploy

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestBounded: every call runs, at most maxParallel at once, all errors joined,
// one error not stopping the others.
func TestBounded(t *testing.T) {
	var running, peak, ran atomic.Int32
	boom := errors.New("boom")
	err := bounded(context.Background(), 10, func(ctx context.Context, i int) error {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		running.Add(-1)
		ran.Add(1)
		if i == 3 || i == 7 {
			return boom
		}
		return nil
	})
	if ran.Load() != 10 {
		t.Fatalf("ran %d of 10", ran.Load())
	}
	if p := peak.Load(); p > maxParallel || p < 2 {
		t.Fatalf("peak parallel %d, want 2..%d", p, maxParallel)
	}
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if err := bounded(context.Background(), 0, func(context.Context, int) error { return boom }); err != nil {
		t.Fatalf("no calls: %v", err)
	}
}
