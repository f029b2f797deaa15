// Package gc is the registry's online garbage collector (docs/design/gc.md). It runs
// while pushes and pulls go on: candidates come from the metadata store, never from a
// walk of the blob store, and the store's pin / mark / sweep protocol keeps a push that
// races the collector from losing a blob.
//
// A run has three phases:
//  1. with Untagged, manifests no tag, parent index or subject keeps, created before
//     the cutoff, are deleted;
//  2. repository links no manifest of the repository references, created before the
//     cutoff, are removed;
//  3. blobs linked nowhere whose creation and last pin are before the cutoff are marked
//     (deleting_at), then blobs marked before the cutoff and not pinned since are swept:
//     bytes deleted from the blob store, then the row, in one transaction per blob,
//     Options.Sweepers blobs at a time.
//
// The cutoff is now - Grace, taken once at the start of each phase. The sweep uses the
// same grace after the mark, so with a grace of an hour a blob marked by one run is
// swept by the first run at least an hour later; with Grace 0 the sweep of the same run
// takes the blobs it just marked.
//
// One collection runs at a time across every replica and every `hubctl gc` sharing the
// database: a run first takes the store's GC lease and, when another collector holds
// it, returns a *BusyError (errors.Is ErrBusy) without collecting, or waits with
// Options.Wait. The pin / mark / sweep protocol would keep overlapping runs from losing
// data too; the lease keeps them from doing the same work twice and contending for the
// repository locks pushes take. Dry runs change nothing and take no lease.
package gc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata"
)

// DefaultGrace is the grace period when none is configured: a push uploads its blobs
// first and the manifest last, and the blobs must survive that gap.
const DefaultGrace = time.Hour

// Options configure a run.
type Options struct {
	Meta  metadata.Store
	Blobs blobstore.Store
	// Grace is how old a manifest, link or blob must be (and how long ago a blob must
	// have been marked) before it is collected. 0 collects everything unreferenced.
	Grace time.Duration
	// Untagged deletes untagged manifests first (phase 1).
	Untagged bool
	// DryRun reports what each phase would remove without changing anything: no
	// manifest or link is removed and no blob is marked or swept. Swept and BytesFreed
	// then count the blobs that would be unreferenced after phase 2 plus those already
	// marked, i.e. what a run with Grace 0 would eventually free; manifests phase 1
	// would delete still count as references.
	DryRun bool
	// Log receives one line per phase (nil: discarded).
	Log *slog.Logger
	// Events receives a manifest.deleted event for each manifest phase 1 deletes, as
	// an API delete publishes (nil: none). Only a collection inside `hubctl serve` has
	// the server's bus to give.
	Events *events.Bus
	// Outbox, when set, records each completed run (gc.completed, with its report's
	// counts). The manifests phase 1 deletes get their manifest.deleted events from
	// the store, in the deleting transaction, whether or not Outbox is set.
	Outbox events.Store

	// Holder names this collector in the lease ("serve", "hubctl gc"); the host, the
	// process id and a random run id are appended, so every run's holder is unique.
	Holder string
	// Wait makes a run that finds the lease held wait for it, until ctx ends, instead
	// of returning a *BusyError.
	Wait bool
	// LeaseTTL is how long the lease lasts unless renewed; a run renews it every third
	// of that. 0 means DefaultLeaseTTL.
	LeaseTTL time.Duration
	// Sweepers is how many blobs are swept at once (0: DefaultSweepers). Each holds a
	// database connection and a blob store request for the time of one blob.
	Sweepers int
}

// DefaultSweepers sweeps four blobs at once: on S3 and PostgreSQL a sweep is a few
// round trips, so one at a time leaves both idle, while more would take a larger share
// of a serving replica's database connections (at least 8 per pool).
const DefaultSweepers = 4

// Actor is the actor of the events and audit entries of what GC deletes.
const Actor = "system"

// Report says what a run removed (or, in a dry run, would remove).
type Report struct {
	Manifests  int   `json:"manifests"`   // untagged manifests deleted
	Links      int   `json:"links"`       // repository links removed
	Marked     int   `json:"marked"`      // blobs marked for deletion
	Swept      int   `json:"swept"`       // blobs deleted
	BytesFreed int64 `json:"bytes_freed"` // size of the swept blobs
	// DeletedManifests lists the manifests phase 1 deleted, as repository@digest.
	DeletedManifests []string `json:"deleted_manifests,omitempty"`
}

// Run runs one garbage collection: it takes the GC lease (unless DryRun), collects,
// and releases the lease. When another collector holds the lease it returns a
// *BusyError at once, or with Wait waits for the lease.
func Run(ctx context.Context, o Options) (Report, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Meta == nil || o.Blobs == nil {
		return Report{}, errors.New("gc: Meta and Blobs are required")
	}
	if o.DryRun {
		return collect(ctx, o)
	}
	ctx = events.WithActor(ctx, events.Actor{Name: Actor})
	runCtx, release, err := acquire(ctx, o)
	if err != nil {
		return Report{}, err
	}
	rep, err := collect(runCtx, o)
	if lost := release(); err != nil && lost != nil {
		// The run stopped because another collector took the lease over: say so rather
		// than "context canceled".
		err = lost
	}
	if err == nil && o.Outbox != nil {
		if _, aerr := o.Outbox.AppendEvent(ctx, events.Event{Type: events.GCCompleted, Detail: map[string]any{
			"manifests": rep.Manifests, "links": rep.Links, "marked": rep.Marked, "swept": rep.Swept, "bytesFreed": rep.BytesFreed,
			"holder": o.Holder,
		}}); aerr != nil {
			o.Log.WarnContext(ctx, "gc: record gc.completed event", "err", aerr)
		}
	}
	return rep, err
}

// collect runs the phases; the caller holds the lease (or is a dry run).
func collect(ctx context.Context, o Options) (Report, error) {
	var rep Report
	log := o.Log
	cutoff := func() time.Time { return time.Now().Add(-o.Grace) }

	if o.Untagged {
		ms, err := o.Meta.GCUntaggedManifests(ctx, cutoff(), o.DryRun)
		if err != nil {
			return rep, err
		}
		rep.Manifests = len(ms)
		for _, m := range ms {
			rep.DeletedManifests = append(rep.DeletedManifests, m.Repository+"@"+m.Digest.String())
			log.InfoContext(ctx, "gc: untagged manifest", "repository", m.Repository, "digest", m.Digest.String(), "dry_run", o.DryRun)
			if o.Events != nil && !o.DryRun {
				// What an API delete publishes; no tag pointed at the manifest, so there
				// is no tag.deleted to go with it.
				o.Events.Publish(events.Event{Type: events.ManifestDeleted, Repository: m.Repository,
					Digest: m.Digest.String(), MediaType: m.MediaType, Actor: Actor})
			}
		}
	}

	n, err := o.Meta.GCUnlinkUnreferenced(ctx, cutoff(), o.DryRun)
	if err != nil {
		return rep, err
	}
	rep.Links = n

	if o.DryRun {
		// Nothing was unlinked: the store's dry-run mark counts the links phase 2 would
		// remove as gone. Blobs already marked and sweepable are added. Manifests phase 1
		// would delete still count as references (their blobs go on the next run).
		marked, err := o.Meta.GCMarkBlobs(ctx, cutoff(), true)
		if err != nil {
			return rep, err
		}
		cands, err := o.Meta.GCSweepCandidates(ctx, cutoff())
		if err != nil {
			return rep, err
		}
		rep.Marked = len(marked)
		seen := map[string]bool{}
		for _, b := range append(marked, cands...) {
			if seen[b.Digest.String()] {
				continue
			}
			seen[b.Digest.String()] = true
			rep.Swept++
			rep.BytesFreed += max(b.Size, 0)
		}
		log.InfoContext(ctx, "gc dry run", "manifests", rep.Manifests, "links", rep.Links, "blobs", rep.Swept, "bytes", rep.BytesFreed)
		return rep, nil
	}

	marked, err := o.Meta.GCMarkBlobs(ctx, cutoff(), false)
	if err != nil {
		return rep, err
	}
	rep.Marked = len(marked)

	sweepBefore := cutoff()
	cands, err := o.Meta.GCSweepCandidates(ctx, sweepBefore)
	if err != nil {
		return rep, err
	}
	sweepers := o.Sweepers
	if sweepers <= 0 {
		sweepers = DefaultSweepers
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(sweepers)
	var mu sync.Mutex
	for _, b := range cands {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			d := b.Digest
			swept, err := o.Meta.GCSweepBlob(gctx, d, sweepBefore, func(loc string) error {
				if err := o.Blobs.Delete(gctx, d, loc); err != nil {
					return fmt.Errorf("delete blob %s from storage: %w", d, err)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if swept {
				mu.Lock()
				rep.Swept++
				rep.BytesFreed += max(b.Size, 0)
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return rep, err
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	log.InfoContext(ctx, "gc done", "manifests", rep.Manifests, "links", rep.Links, "marked", rep.Marked, "swept", rep.Swept, "bytes_freed", rep.BytesFreed)
	return rep, nil
}
