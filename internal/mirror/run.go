package mirror

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hubctl/hubctl/internal/progress"
)

// RunOptions tunes Run.
type RunOptions struct {
	// DryRun compares the digest of each source with its target's instead of
	// copying: an image is "up to date" when they match and "would copy" otherwise.
	// With Platforms set the engine rewrites the index, so its digest differs from
	// the source's and a dry run says "would copy" even when a copy would move nothing.
	DryRun bool
	// Jobs is how many images are copied (and repositories listed) at once: 0 means
	// DefaultJobs, and more than MaxJobs means MaxJobs.
	Jobs int
	// Sink receives an ImageStarted event and then an ImageDone or ImageFailed event
	// for each image copied, with Image the target and Source the source; the
	// engine adds its blob and manifest events. A pair that must not be copied
	// (Pair.Err) gets only ImageFailed. A dry run sends none. Nil discards.
	Sink progress.Sink
}

// Status is what happened to one image. The values are stable: a command may print
// them as they are.
type Status string

// The statuses of a Result.
const (
	// StatusCopied: the image was copied.
	StatusCopied Status = "copied"
	// StatusUpToDate: the target already had the image; nothing moved.
	StatusUpToDate Status = "up to date"
	// StatusWouldCopy: a dry run found that the target lacks the image or differs.
	StatusWouldCopy Status = "would copy"
	// StatusFailed: the image could not be copied or, in a dry run, resolved.
	StatusFailed Status = "failed"
	// StatusCanceled: the context ended before the image was done.
	StatusCanceled Status = "canceled"
)

// Result is what happened to one pair.
type Result struct {
	// Entry is the index in Spec.Mirrors of the entry the pair comes from.
	Entry int
	// Source and Target are the full references.
	Source, Target string
	Status         Status
	// Digest is the digest of the image at the target, or in a dry run the source's.
	Digest string
	// Bytes is how many blob bytes were sent.
	Bytes int64
	// UpToDate is true when the target already had the image (Status StatusUpToDate).
	UpToDate bool
	// Err says why the image failed or was canceled.
	Err error
}

// Totals counts the results of a run.
type Totals struct {
	Copied, UpToDate, WouldCopy, Failed, Canceled int
	// ListFailed counts the entries whose source could not be listed.
	ListFailed int
	// Bytes is the sum of the results' Bytes.
	Bytes int64
}

// Report is what a run did.
type Report struct {
	// DryRun is true when nothing was copied (RunOptions.DryRun).
	DryRun bool
	// Entries has one result per spec entry, in spec order: what its listing found.
	Entries []EntryResult
	// Results has one result per image, in spec order, then tag order.
	Results []Result
	Totals  Totals
}

// Failed reports whether anything went wrong: an entry that could not be listed,
// an image that failed, or an image left undone by cancellation.
func (r *Report) Failed() bool {
	return r.Totals.Failed+r.Totals.Canceled+r.Totals.ListFailed > 0
}

// Run plans spec and copies every pair through engine, opts.Jobs images at a time,
// going on past images that fail. It returns an error only for an invalid spec or
// when ctx ends: failed images are in the Report (see Report.Failed). When ctx ends
// no further image starts, the images not done are StatusCanceled, and Run returns
// the Report so far with ctx.Err(); the Report is nil only when ctx ended while
// listing or the spec is invalid.
func Run(ctx context.Context, spec *Spec, engine Engine, opts RunOptions) (*Report, error) {
	n := jobs(opts.Jobs)
	plan, err := Plan(ctx, spec, engine, PlanOptions{Jobs: n})
	if err != nil {
		return nil, err
	}
	emit := opts.Sink
	if emit == nil {
		emit = progress.Discard
	}
	rep := &Report{DryRun: opts.DryRun, Entries: plan.Entries, Results: make([]Result, len(plan.Pairs))}
	forEach(ctx, len(plan.Pairs), n, func(i int) {
		p := plan.Pairs[i]
		r := &rep.Results[i]
		switch {
		case p.Err != nil:
			*r = resultOf(p)
			r.Status, r.Err = StatusFailed, p.Err
			if !opts.DryRun {
				emit(event(progress.ImageFailed, p, "", p.Err))
			}
		case opts.DryRun:
			*r = check(ctx, engine, p)
		default:
			*r = copyImage(ctx, engine, p, emit)
		}
	})
	for i := range rep.Results {
		r := &rep.Results[i]
		if r.Status == "" {
			*r = resultOf(plan.Pairs[i])
			r.Status, r.Err = StatusCanceled, fmt.Errorf("not started: %w", ctx.Err())
		}
	}
	rep.Totals = total(rep)
	return rep, ctx.Err()
}

// copyImage copies one pair and reports it on emit.
func copyImage(ctx context.Context, engine Engine, p Pair, emit progress.Sink) Result {
	r := resultOf(p)
	emit(event(progress.ImageStarted, p, "", nil))
	res, err := engine.Copy(ctx, p.Source, p.Target,
		CopyOptions{Platforms: p.Platforms, Referrers: p.Referrers, Image: p.Target})
	if err != nil {
		r.Status, r.Err = StatusFailed, err
		if canceled(ctx, err) {
			r.Status = StatusCanceled
		}
		emit(event(progress.ImageFailed, p, "", err))
		return r
	}
	r.Digest, r.Bytes, r.UpToDate = res.Digest, res.Bytes, res.UpToDate
	r.Status = StatusCopied
	if res.UpToDate {
		r.Status = StatusUpToDate
	}
	emit(event(progress.ImageDone, p, res.Digest, nil))
	return r
}

// check is the dry run of one pair: it compares digests and copies nothing.
func check(ctx context.Context, engine Engine, p Pair) Result {
	r := resultOf(p)
	fail := func(err error) Result {
		r.Status, r.Err = StatusFailed, err
		if canceled(ctx, err) {
			r.Status = StatusCanceled
		}
		return r
	}
	src, err := engine.Digest(ctx, p.Source)
	if err != nil {
		return fail(fmt.Errorf("resolve source: %w", err))
	}
	r.Digest = src
	dst, err := engine.Digest(ctx, p.Target)
	switch {
	case errors.Is(err, ErrNotFound):
		r.Status = StatusWouldCopy
	case err != nil:
		return fail(fmt.Errorf("resolve target: %w", err))
	case dst == src:
		r.Status, r.UpToDate = StatusUpToDate, true
	default:
		r.Status = StatusWouldCopy
	}
	return r
}

func resultOf(p Pair) Result {
	return Result{Entry: p.Entry, Source: p.Source, Target: p.Target}
}

// canceled reports whether err is ctx ending rather than the image failing.
func canceled(ctx context.Context, err error) bool {
	return ctx.Err() != nil && errors.Is(err, ctx.Err())
}

func event(kind progress.Kind, p Pair, digest string, err error) progress.Event {
	e := progress.Event{Time: time.Now(), Kind: kind, Image: p.Target, Source: p.Source, Digest: digest}
	if err != nil {
		e.Error = err.Error()
	}
	return e
}

func total(rep *Report) Totals {
	var t Totals
	for _, e := range rep.Entries {
		if e.Err != nil {
			t.ListFailed++
		}
	}
	for _, r := range rep.Results {
		t.Bytes += r.Bytes
		switch r.Status {
		case StatusCopied:
			t.Copied++
		case StatusUpToDate:
			t.UpToDate++
		case StatusWouldCopy:
			t.WouldCopy++
		case StatusFailed:
			t.Failed++
		case StatusCanceled:
			t.Canceled++
		}
	}
	return t
}
