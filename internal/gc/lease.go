package gc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hubctl/hubctl/internal/metadata"
)

// DefaultLeaseTTL is how long a run's lease lasts unless renewed. A collector that dies
// without releasing it holds up the others for at most this long.
const DefaultLeaseTTL = time.Minute

// waitPoll is how often a run with Wait tries the lease again.
const waitPoll = 500 * time.Millisecond

// ErrBusy is what a *BusyError is: another collection holds the lease.
var ErrBusy = errors.New("another garbage collection is running")

// BusyError is returned by Run when another collector holds the GC lease: the run
// collected nothing. The schedule of serve logs it and tries again at its next tick.
type BusyError struct {
	Lease metadata.GCLease // the other collector's lease
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("another garbage collection is running (holder %s, lease expires %s); skipped",
		e.Lease.Holder, e.Lease.ExpiresAt.Local().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrBusy) true.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// ErrLeaseLost is the error of a run stopped because another collector took its lease
// over (it expired unrenewed, e.g. while the database was unreachable).
var ErrLeaseLost = errors.New("gc: lost the lease to another collector; stopped")

// holderName returns a lease holder unique to this run.
func holderName(name string) string {
	if name == "" {
		name = "gc"
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	id := make([]byte, 4)
	_, _ = rand.Read(id)
	return fmt.Sprintf("%s on %s pid %d run %s", name, host, os.Getpid(), hex.EncodeToString(id))
}

// acquire takes the lease (waiting for it with o.Wait) and keeps renewing it. It
// returns a context that ends when ctx does or the lease is lost, and release, which
// stops the renewal, gives the lease up and returns ErrLeaseLost if it was lost.
func acquire(ctx context.Context, o Options) (context.Context, func() error, error) {
	ttl := o.LeaseTTL
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	holder := holderName(o.Holder)
	waiting := false
	for {
		l, ok, err := o.Meta.AcquireGCLease(ctx, holder, ttl)
		if err != nil {
			return nil, nil, fmt.Errorf("gc: %w", err)
		}
		if ok {
			break
		}
		busy := &BusyError{Lease: l}
		if !o.Wait {
			return nil, nil, busy
		}
		if !waiting {
			o.Log.InfoContext(ctx, "gc: waiting for another collection to finish", "holder", l.Holder, "expires", l.ExpiresAt)
			waiting = true
		}
		t := time.NewTimer(waitPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, fmt.Errorf("gc: waiting for the lease: %w (%w)", ctx.Err(), busy)
		case <-t.C:
		}
	}
	o.Log.DebugContext(ctx, "gc: lease acquired", "holder", holder, "ttl", ttl)

	runCtx, cancel := context.WithCancelCause(ctx)
	stop := make(chan struct{})
	var renewer sync.WaitGroup
	renewer.Go(func() {
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-runCtx.Done():
				return
			case <-t.C:
			}
			err := o.Meta.RenewGCLease(runCtx, holder, ttl)
			switch {
			case errors.Is(err, metadata.ErrGCLeaseLost):
				// Stop collecting: another collector runs now. Overlapping would be safe
				// (docs/design/gc.md) but is what the lease exists to prevent.
				cancel(ErrLeaseLost)
				return
			case err != nil && runCtx.Err() == nil:
				// Try again at the next tick; the lease outlives two missed renewals.
				o.Log.WarnContext(runCtx, "gc: renew lease", "holder", holder, "err", err)
			}
		}
	})
	release := func() error {
		close(stop)
		renewer.Wait()
		lost := context.Cause(runCtx)
		cancel(nil)
		// Release even when ctx ended; if it fails the lease expires after ttl.
		rctx, done := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer done()
		if err := o.Meta.ReleaseGCLease(rctx, holder); err != nil {
			o.Log.WarnContext(ctx, "gc: release lease", "holder", holder, "err", err)
		}
		if errors.Is(lost, ErrLeaseLost) {
			return ErrLeaseLost
		}
		return nil
	}
	return runCtx, release, nil
}
