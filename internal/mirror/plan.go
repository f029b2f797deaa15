package mirror

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// Engine is what the mirror needs from the transfer engine.
type Engine interface {
	// Tags lists the tags of a repository ("host[:port]/path").
	Tags(ctx context.Context, repo string) ([]string, error)
	// Copy copies src to dst (full references "host/path:tag"), sending only what
	// dst lacks.
	Copy(ctx context.Context, src, dst string, o CopyOptions) (CopyResult, error)
	// Digest returns the digest of a reference's manifest, or an error wrapping
	// ErrNotFound when there is none. A dry run uses it to tell "up to date" from
	// "would copy".
	Digest(ctx context.Context, ref string) (string, error)
}

// ErrNotFound is the error, wrapped, that an Engine's Digest returns when the
// reference has no manifest. The adapter over the transfer engine must wrap it
// (fmt.Errorf("…: %w", mirror.ErrNotFound)) for the registry's MANIFEST_UNKNOWN /
// 404, and only for that: any other error fails the image in a dry run.
var ErrNotFound = errors.New("manifest not found")

// CopyOptions is how one image is copied.
type CopyOptions struct {
	// Platforms keeps only these platforms of an index; empty keeps all.
	Platforms []string
	// Referrers also copies the artifacts that refer to the image.
	Referrers bool
	// Image labels the engine's progress events (the destination reference).
	Image string
}

// CopyResult is what copying one image did.
type CopyResult struct {
	// Digest is the digest of the manifest at the destination.
	Digest string
	// Bytes is how many blob bytes were sent.
	Bytes int64
	// UpToDate is true when the destination already had this manifest and nothing moved.
	UpToDate bool
}

// The bounds of PlanOptions.Jobs and RunOptions.Jobs.
const (
	// DefaultJobs is how many repositories are listed, or images copied, at once
	// when Jobs is 0.
	DefaultJobs = 2
	// MaxJobs caps Jobs: registries throttle clients that open many more
	// connections, and each image copy already moves several blobs at once.
	MaxJobs = 32
)

// PlanOptions tunes Plan.
type PlanOptions struct {
	// Jobs is how many repositories are listed at once: 0 means DefaultJobs, and
	// more than MaxJobs means MaxJobs.
	Jobs int
}

// Pair is one image to copy.
type Pair struct {
	// Entry is the index in Spec.Mirrors of the entry the pair comes from.
	Entry int
	// Source and Target are full references ("host/path:tag" or "host/path@digest").
	Source, Target string
	// Platforms and Referrers come from the entry.
	Platforms []string
	Referrers bool
	// Err is set when the pair must not be copied: an earlier pair writes the same
	// target. Run reports such a pair as failed without copying it.
	Err error
}

// EntryResult is what planning one spec entry found.
type EntryResult struct {
	// Entry is the index in Spec.Mirrors.
	Entry int
	// Source is the entry's source.
	Source string
	// Listed is how many tags the source repository has; 0 when the source names
	// one reference.
	Listed int
	// Selected is how many pairs the entry produced.
	Selected int
	// Err is why the source could not be listed; the entry produced no pairs.
	Err error
}

// PlanResult is what Plan found to copy.
type PlanResult struct {
	// Entries has one result per spec entry, in spec order.
	Entries []EntryResult
	// Pairs are the images to copy, in spec order and, within an entry, from the
	// lowest tag to the highest (the order of SelectTags).
	Pairs []Pair
}

// Failed reports whether any entry could not be listed or any pair cannot be copied.
func (p *PlanResult) Failed() bool {
	return slices.ContainsFunc(p.Entries, func(e EntryResult) bool { return e.Err != nil }) ||
		slices.ContainsFunc(p.Pairs, func(p Pair) bool { return p.Err != nil })
}

// Plan lists the source repositories of spec and selects their tags, producing the
// images to copy. An entry whose listing fails is recorded in its EntryResult and
// the others go on. Plan returns an error only for an invalid spec or when ctx ends.
func Plan(ctx context.Context, spec *Spec, engine Engine, opts PlanOptions) (*PlanResult, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	n := len(spec.Mirrors)
	entries := make([]EntryResult, n)
	pairs := make([][]Pair, n)
	forEach(ctx, n, jobs(opts.Jobs), func(i int) {
		entries[i], pairs[i] = planEntry(ctx, engine, i, spec.Mirrors[i])
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res := &PlanResult{Entries: entries}
	first := make(map[string]Pair)
	for _, ps := range pairs {
		for _, p := range ps {
			if f, dup := first[p.Target]; dup {
				p.Err = fmt.Errorf("target %s is also written from %s (mirrors[%d])", p.Target, f.Source, f.Entry)
			} else {
				first[p.Target] = p
			}
			res.Pairs = append(res.Pairs, p)
		}
	}
	return res, nil
}

// planEntry lists and filters one entry, which Validate has checked.
func planEntry(ctx context.Context, engine Engine, i int, m Mirror) (EntryResult, []Pair) {
	er := EntryResult{Entry: i, Source: m.Source}
	src, err := parseRef(m.Source)
	if err != nil {
		er.Err = err
		return er, nil
	}
	dst, err := parseRef(m.Target)
	if err != nil {
		er.Err = err
		return er, nil
	}
	base := Pair{Entry: i, Platforms: slices.Clone(m.Platforms), Referrers: m.Referrers}
	if src.exact() {
		p := base
		p.Source = m.Source
		switch {
		case dst.Tag != "":
			p.Target = m.Target
		case src.Tag != "":
			p.Target = dst.Repo + ":" + src.Tag
		default:
			p.Target = dst.Repo + "@" + src.Digest
		}
		er.Selected = 1
		return er, []Pair{p}
	}
	tags, err := engine.Tags(ctx, src.Repo)
	if err != nil {
		er.Err = fmt.Errorf("list tags of %s: %w", src.Repo, err)
		return er, nil
	}
	er.Listed = len(tags)
	// SelectTags drops tags that are not valid, so a registry's answer cannot
	// smuggle a path or digest into the references built here.
	selected, err := SelectTags(tags, m.Tags)
	if err != nil {
		er.Err = err
		return er, nil
	}
	out := make([]Pair, len(selected))
	for j, t := range selected {
		out[j] = base
		out[j].Source = src.Repo + ":" + t
		out[j].Target = dst.Repo + ":" + t
	}
	er.Selected = len(out)
	return er, out
}

// jobs applies the default and the cap to a Jobs option.
func jobs(n int) int {
	if n <= 0 {
		return DefaultJobs
	}
	return min(n, MaxJobs)
}

// forEach calls fn for 0…n-1 in order of start, at most workers at a time. Once
// ctx ends no further call starts; the indexes never started are simply not
// called, and callers tell them by their zero results.
func forEach(ctx context.Context, n, workers int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}
