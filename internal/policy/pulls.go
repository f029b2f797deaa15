package policy

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/events"
)

// Pulls are noted in memory on the pull path and written in one transaction per
// flush: the latest pull time of each manifest (retention's pulled_within, and the
// web UI's "last pulled"), and with PullEvents the counts per manifest and tag as
// repository.pulled events. A pull never writes to the database itself.

// maxPending bounds the pull times held between flushes.
const maxPending = 50000

// DefaultMaxPullKeys bounds the distinct (repository, digest, tag) whose pulls are
// counted between two flushes.
const DefaultMaxPullKeys = 10000

type pullKey struct {
	repo string
	d    digest.Digest
}

type countKey struct {
	repo string
	d    digest.Digest
	tag  string
}

// Pulled notes a successful GET of manifest d of repo, by tag ("" when by digest);
// FlushPulls writes the notes. It costs a clock read and a map update or two under a
// lock, never a database write, and its memory is bounded (maxPending pull times,
// MaxPullKeys counts; a pull past them is counted as overflow only).
func (e *Engine) Pulled(repo string, d digest.Digest, tag string) {
	at := e.now()
	e.pmu.Lock()
	if e.pending == nil {
		e.pending = map[pullKey]time.Time{}
	}
	if len(e.pending) < maxPending {
		e.pending[pullKey{repo, d}] = at
	} else if _, ok := e.pending[pullKey{repo, d}]; ok {
		e.pending[pullKey{repo, d}] = at
	}
	if e.PullEvents {
		if e.counts == nil {
			e.counts = map[countKey]int64{}
		}
		if e.windowStart.IsZero() {
			e.windowStart = at
		}
		k := countKey{repo, d, tag}
		if n, ok := e.counts[k]; ok || len(e.counts) < e.maxPullKeys() {
			e.counts[k] = n + 1
		} else {
			e.overflow++
		}
	}
	e.pmu.Unlock()
}

func (e *Engine) maxPullKeys() int {
	if e.MaxPullKeys > 0 {
		return e.MaxPullKeys
	}
	return DefaultMaxPullKeys
}

// FlushPulls writes the pull times and counts noted since the last flush in one
// transaction. A failed write puts them back for the next flush (counts added to
// those noted meanwhile, within the same bounds), so the next window reports them.
func (e *Engine) FlushPulls(ctx context.Context) error {
	e.pmu.Lock()
	pending, counts, overflow := e.pending, e.counts, e.overflow
	b := PullBatch{WindowStart: e.windowStart, WindowEnd: e.now(), Overflow: overflow}
	e.pending, e.counts, e.overflow = nil, nil, 0
	if e.PullEvents {
		// The next window begins where this one ends, so windows tile.
		e.windowStart = b.WindowEnd
	}
	e.pmu.Unlock()
	if len(pending) == 0 && len(counts) == 0 && overflow == 0 {
		return nil
	}
	b.Times = make([]Pull, 0, len(pending))
	for k, at := range pending {
		b.Times = append(b.Times, Pull{Repository: k.repo, Digest: k.d, At: at})
	}
	// A stable order keeps two replicas' batches from deadlocking on PostgreSQL.
	slices.SortFunc(b.Times, func(x, y Pull) int {
		if c := strings.Compare(x.Repository, y.Repository); c != 0 {
			return c
		}
		return strings.Compare(string(x.Digest), string(y.Digest))
	})
	b.Counts = make([]PullCount, 0, len(counts))
	for k, n := range counts {
		b.Counts = append(b.Counts, PullCount{Repository: k.repo, Digest: k.d, Tag: k.tag, Count: n})
	}
	slices.SortFunc(b.Counts, func(x, y PullCount) int {
		if c := strings.Compare(x.Repository, y.Repository); c != 0 {
			return c
		}
		if c := strings.Compare(string(x.Digest), string(y.Digest)); c != 0 {
			return c
		}
		return strings.Compare(x.Tag, y.Tag)
	})
	// Nobody in particular pulled: the events of a flush carry no actor, even when a
	// retention run started by someone flushes first.
	ctx = events.WithActor(ctx, events.Actor{})
	if err := e.Store.RecordPulls(ctx, b); err != nil {
		e.putBack(pending, counts, overflow, b.WindowStart)
		return err
	}
	if e.OnFlush != nil {
		e.OnFlush(len(b.Times))
	}
	if overflow > 0 && e.Log != nil {
		e.Log.Warn("more manifests pulled than pull counting keeps apart: their pulls are reported as one unattributed count",
			"unattributed", overflow, "max_keys", e.maxPullKeys())
	}
	return nil
}

// putBack returns the notes of a failed flush, within the bounds, and moves the
// window's start back to theirs.
func (e *Engine) putBack(pending map[pullKey]time.Time, counts map[countKey]int64, overflow int64, start time.Time) {
	e.pmu.Lock()
	defer e.pmu.Unlock()
	if e.pending == nil {
		e.pending = map[pullKey]time.Time{}
	}
	for k, at := range pending {
		if cur, ok := e.pending[k]; (!ok || cur.Before(at)) && (ok || len(e.pending) < maxPending) {
			e.pending[k] = at
		}
	}
	if !e.PullEvents {
		return
	}
	if e.counts == nil {
		e.counts = map[countKey]int64{}
	}
	e.overflow += overflow
	for k, n := range counts {
		if cur, ok := e.counts[k]; ok || len(e.counts) < e.maxPullKeys() {
			e.counts[k] = cur + n
		} else {
			e.overflow += n
		}
	}
	if !start.IsZero() {
		e.windowStart = start
	}
}
