package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata"
)

// ErrNotFound is a scope without a policy.
var ErrNotFound = errors.New("no policy set")

// Stored is a policy with its scope and who set it when.
type Stored struct {
	Scope     string    `json:"scope"`
	Policy    Policy    `json:"policy"`
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by"`
}

// Document is a policy as the API answers it.
type Document struct {
	Stored
	// Effective is, for a repository, what applies after merging its namespace's.
	Effective *Policy `json:"effective,omitempty"`
}

// Pull is one recorded manifest pull.
type Pull struct {
	Repository string
	Digest     digest.Digest
	At         time.Time
}

// PullCount is how many times a manifest was pulled in a window, by Tag ("" for pulls
// by digest).
type PullCount struct {
	Repository string
	Digest     digest.Digest
	Tag        string
	Count      int64
}

// PullBatch is what one flush writes, in one transaction: the latest pull time of
// each manifest pulled, and, with Engine.PullEvents, the pull counts of the window
// [WindowStart, WindowEnd) as repository.pulled events. Overflow counts the pulls of
// the window that could not be told apart (more distinct manifests and tags than
// Engine.MaxPullKeys): one event without a repository reports them.
type PullBatch struct {
	Times                  []Pull
	Counts                 []PullCount
	Overflow               int64
	WindowStart, WindowEnd time.Time
}

// Store keeps policies and pull times (sqlstore's policies.go).
type Store interface {
	PutPolicy(ctx context.Context, scope string, p Policy, by string) error
	DeletePolicy(ctx context.Context, scope string) error
	ListPolicies(ctx context.Context) ([]Stored, error)
	RecordPulls(ctx context.Context, b PullBatch) error
	RetentionView(ctx context.Context, repo string) (View, error)
	TagsOf(ctx context.Context, repo string, d digest.Digest) ([]string, error)
	RepositoriesIn(ctx context.Context, ns string) ([]string, error)
}

// Meta is what a run needs of the registry's metadata: deletes, and the lease that
// keeps one collector (GC or retention) at work at a time.
type Meta interface {
	ResolveTag(ctx context.Context, repo, tag string) (digest.Digest, error)
	DeleteTag(ctx context.Context, repo, tag string) (digest.Digest, error)
	DeleteManifest(ctx context.Context, repo string, d digest.Digest) (metadata.DeleteManifestResult, error)
	AcquireGCLease(ctx context.Context, holder string, ttl time.Duration) (metadata.GCLease, bool, error)
	RenewGCLease(ctx context.Context, holder string, ttl time.Duration) error
	ReleaseGCLease(ctx context.Context, holder string) error
}

// cacheTTL is how long a replica serves policies from memory: a policy set on one
// replica is enforced by the others within it.
const cacheTTL = 5 * time.Second

// Engine enforces immutable tags, records pulls and runs retention.
type Engine struct {
	Store  Store
	Meta   Meta
	Events *events.Bus
	Log    *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// OnRun hears of every run's result ("ok", "busy", "error") and deletions.
	OnRun func(result string, tags, manifests int)
	// OnFlush hears how many pull times a flush wrote.
	OnFlush func(n int)
	// PullEvents counts pulls per manifest and tag, and each flush writes the counts as
	// repository.pulled events with the pull times (pulls.go).
	PullEvents bool
	// MaxPullKeys bounds the distinct (repository, digest, tag) counted between flushes
	// (DefaultMaxPullKeys when 0); pulls past it are counted together and reported as
	// one unattributed count.
	MaxPullKeys int

	mu       sync.Mutex
	cached   map[string]Policy
	cachedAt time.Time

	pmu     sync.Mutex
	pending map[pullKey]time.Time
	counts  map[countKey]int64
	// overflow counts the pulls not in counts (full) since the last flush; windowStart
	// is when this window of counts began.
	overflow    int64
	windowStart time.Time
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// Invalidate drops the cached policies (after a change on this replica).
func (e *Engine) Invalidate() {
	e.mu.Lock()
	e.cached = nil
	e.mu.Unlock()
}

// policies returns every policy by scope, from a cache at most cacheTTL old.
func (e *Engine) policies(ctx context.Context) (map[string]Policy, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cached != nil && time.Since(e.cachedAt) < cacheTTL {
		return e.cached, nil
	}
	all, err := e.Store.ListPolicies(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[string]Policy, len(all))
	for _, s := range all {
		m[s.Scope] = s.Policy
	}
	e.cached, e.cachedAt = m, time.Now()
	return m, nil
}

// Effective is the policy that applies to repo: the union of the namespace's and the
// repository's immutable patterns, and the repository's retention or else the
// namespace's.
func (e *Engine) Effective(ctx context.Context, repo string) (Policy, error) {
	all, err := e.policies(ctx)
	if err != nil {
		return Policy{}, err
	}
	return effective(all, repo), nil
}

// EffectiveOf is Effective over a set of policies by scope.
func EffectiveOf(all map[string]Policy, repo string) Policy { return effective(all, repo) }

func effective(all map[string]Policy, repo string) Policy {
	ns, own := all[namespaceOf(repo)], all[repo]
	p := Policy{ImmutableTags: append(slices.Clone(ns.ImmutableTags), own.ImmutableTags...), Retention: own.Retention}
	if p.Retention == nil {
		p.Retention = ns.Retention
	}
	return p
}

// ImmutableTag returns, when tag of repo is immutable, the reason ("pattern v* of
// namespace team"); "" when it may move.
func (e *Engine) ImmutableTag(ctx context.Context, repo, tag string) (string, error) {
	all, err := e.policies(ctx)
	if err != nil {
		return "", err
	}
	for _, scope := range []string{repo, namespaceOf(repo)} {
		for _, pat := range all[scope].ImmutableTags {
			if Match(pat, tag) {
				return fmt.Sprintf("pattern %q of %s %s", pat, ScopeKind(scope), scope), nil
			}
		}
	}
	return "", nil
}

// ManifestImmutableTag returns an immutable tag pointing at manifest d of repo and
// why, or "" when none does: deleting the manifest would delete that tag.
func (e *Engine) ManifestImmutableTag(ctx context.Context, repo string, d digest.Digest) (string, string, error) {
	p, err := e.Effective(ctx, repo)
	if err != nil || len(p.ImmutableTags) == 0 {
		return "", "", err
	}
	tags, err := e.Store.TagsOf(ctx, repo, d)
	if err != nil {
		return "", "", err
	}
	for _, t := range tags {
		if reason, err := e.ImmutableTag(ctx, repo, t); err != nil || reason != "" {
			return t, reason, err
		}
	}
	return "", "", nil
}

// Report is what a retention run did, or with DryRun would do.
type Report struct {
	DryRun bool   `json:"dry_run"`
	Plans  []Plan `json:"plans"`
	// DeletedTags and DeletedManifests count what went (what would go, dry).
	DeletedTags      int `json:"deleted_tags"`
	DeletedManifests int `json:"deleted_manifests"`
	// Errors are deletions that failed; the run goes on past them.
	Errors []string `json:"errors,omitempty"`
}

// ErrBusy is a run refused because another collection (GC or retention) holds the
// lease.
var ErrBusy = errors.New("another garbage collection or retention run is in progress")

// Actor is who retention's deletions are by, in events and the audit log. Events by
// Actor are already audited when they are published.
const Actor = "retention"

// leaseHolder names retention in the GC lease.
const leaseHolder = "retention"

// leaseTTL is how long the lease outlives a run that died without releasing it; a
// living run renews it every leaseTTL/3.
const leaseTTL = time.Minute

// renew keeps holder's lease until ctx ends.
func (e *Engine) renew(ctx context.Context, holder string) {
	t := time.NewTicker(leaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := e.Meta.RenewGCLease(ctx, holder, leaseTTL); err != nil && ctx.Err() == nil {
				e.Log.Warn("renew the lease of a retention run", "err", err)
			}
		}
	}
}

// Run applies the retention policies of scope ("" for every scope with one; a
// namespace for its repositories; a repository for it alone). Deletions are
// published on Events as the registry's are (audited, webhooks) with actor
// "retention". Pull times noted so far are flushed first.
func (e *Engine) Run(ctx context.Context, scope string, dryRun bool) (Report, error) {
	rep := Report{DryRun: dryRun}
	if err := e.FlushPulls(ctx); err != nil {
		e.Log.Warn("flush pull times before retention", "err", err)
	}
	if !dryRun {
		holder := fmt.Sprintf("%s:%d", leaseHolder, time.Now().UnixNano())
		_, ok, err := e.Meta.AcquireGCLease(ctx, holder, leaseTTL)
		if err != nil {
			e.report("error", rep)
			return rep, err
		}
		if !ok {
			e.report("busy", rep)
			return rep, ErrBusy
		}
		renewCtx, stopRenew := context.WithCancel(ctx)
		renewed := make(chan struct{})
		go func() {
			defer close(renewed)
			e.renew(renewCtx, holder)
		}()
		defer func() {
			stopRenew()
			<-renewed
			if err := e.Meta.ReleaseGCLease(context.WithoutCancel(ctx), holder); err != nil {
				e.Log.Warn("release the lease after retention", "err", err)
			}
		}()
	}
	all, err := e.policies(ctx)
	if err != nil {
		e.report("error", rep)
		return rep, err
	}
	repos, err := e.reposFor(ctx, all, scope)
	if err != nil {
		e.report("error", rep)
		return rep, err
	}
	for _, repo := range repos {
		p := effective(all, repo)
		if p.Retention == nil || accounts.IsSystemRepository(repo) {
			// The hub's own images are kept whatever a policy says: a running
			// replica's jobs pull its agent image by digest.
			continue
		}
		v, err := e.Store.RetentionView(ctx, repo)
		if err != nil {
			rep.Errors = append(rep.Errors, err.Error())
			continue
		}
		plan := PlanRetention(v, *p.Retention, p.ImmutableTags, e.now())
		if len(plan.Tags) == 0 && len(plan.Manifests) == 0 {
			continue
		}
		rep.Plans = append(rep.Plans, plan)
		if dryRun {
			rep.DeletedTags += len(plan.Tags)
			rep.DeletedManifests += len(plan.Manifests)
			continue
		}
		e.apply(ctx, plan, &rep)
	}
	result := "ok"
	if len(rep.Errors) > 0 {
		result = "error"
	}
	e.report(result, rep)
	if !dryRun && (rep.DeletedTags > 0 || rep.DeletedManifests > 0) {
		e.Log.Info("retention", "scope", scope, "deleted_tags", rep.DeletedTags, "deleted_manifests", rep.DeletedManifests, "errors", len(rep.Errors))
	}
	return rep, nil
}

func (e *Engine) report(result string, rep Report) {
	if e.OnRun != nil && !rep.DryRun {
		e.OnRun(result, rep.DeletedTags, rep.DeletedManifests)
	}
}

// reposFor lists the repositories a run over scope visits.
func (e *Engine) reposFor(ctx context.Context, all map[string]Policy, scope string) ([]string, error) {
	if ScopeKind(scope) == "repository" {
		return []string{scope}, nil
	}
	namespaces := map[string]bool{}
	var repos []string
	for s, p := range all {
		switch {
		case scope != "" && namespaceOf(s) != scope:
		case ScopeKind(s) == "namespace" && p.Retention != nil:
			namespaces[s] = true
		case ScopeKind(s) == "repository" && p.Retention != nil:
			repos = append(repos, s)
		}
	}
	if scope != "" {
		namespaces[scope] = true
	}
	for ns := range namespaces {
		rs, err := e.Store.RepositoriesIn(ctx, ns)
		if err != nil {
			return nil, err
		}
		repos = append(repos, rs...)
	}
	slices.Sort(repos)
	return slices.Compact(repos), nil
}

// apply deletes what plan says, re-checking each tag still points where the plan saw
// it (a push since the view moved it: keep it).
func (e *Engine) apply(ctx context.Context, plan Plan, rep *Report) {
	// The store writes the events of these deletions, and their audit entries, in the
	// deleting transactions, with this actor.
	ctx = events.WithActor(ctx, events.Actor{Name: Actor})
	publish := func(ev events.Event) {
		ev.Actor, ev.Time = Actor, time.Now().UTC()
		if e.Events != nil {
			e.Events.Publish(ev)
		}
	}
	for _, t := range plan.Tags {
		if reason, err := e.ImmutableTag(ctx, plan.Repository, t.Name); err != nil || reason != "" {
			continue
		}
		// Pushed again since the view was read: the new push is judged next run. (A
		// push between this look and the delete is a window of one statement.)
		if cur, err := e.Meta.ResolveTag(ctx, plan.Repository, t.Name); err != nil || cur != t.Digest {
			continue
		}
		d, err := e.Meta.DeleteTag(ctx, plan.Repository, t.Name)
		switch {
		case errors.Is(err, metadata.ErrTagNotFound):
			continue
		case err != nil:
			rep.Errors = append(rep.Errors, fmt.Sprintf("delete tag %s:%s: %v", plan.Repository, t.Name, err))
			continue
		}
		rep.DeletedTags++
		publish(events.Event{Type: events.TagDeleted, Repository: plan.Repository, Digest: d.String(), Tag: t.Name})
	}
	for _, d := range plan.Manifests {
		// Tagged since the view was read: it stays.
		if tags, err := e.Store.TagsOf(ctx, plan.Repository, d); err != nil || len(tags) > 0 {
			continue
		}
		res, err := e.Meta.DeleteManifest(ctx, plan.Repository, d)
		var referenced *metadata.ReferencedManifestError
		switch {
		case errors.Is(err, metadata.ErrManifestNotFound), errors.As(err, &referenced):
			continue
		case err != nil:
			rep.Errors = append(rep.Errors, fmt.Sprintf("delete manifest %s@%s: %v", plan.Repository, d, err))
			continue
		}
		rep.DeletedManifests++
		for _, t := range res.Tags {
			publish(events.Event{Type: events.TagDeleted, Repository: plan.Repository, Digest: d.String(), Tag: t})
		}
		publish(events.Event{Type: events.ManifestDeleted, Repository: plan.Repository, Digest: d.String(), MediaType: res.Manifest.MediaType})
	}
}

// Schedule runs retention over every scope every interval, and flushes pull times
// every flushEvery, until ctx ends; pull times are flushed once more on the way out.
func (e *Engine) Schedule(ctx context.Context, interval, flushEvery time.Duration) {
	flush := time.NewTicker(flushEvery)
	defer flush.Stop()
	var runC <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		runC = t.C
	}
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if err := e.FlushPulls(fctx); err != nil {
				e.Log.Warn("flush pull times at shutdown", "err", err)
			}
			cancel()
			return
		case <-flush.C:
			if err := e.FlushPulls(ctx); err != nil && ctx.Err() == nil {
				e.Log.Warn("flush pull times", "err", err)
			}
		case <-runC:
			if _, err := e.Run(ctx, "", false); errors.Is(err, ErrBusy) {
				e.Log.Info("retention skipped: another collection is running")
			} else if err != nil && ctx.Err() == nil {
				e.Log.Warn("retention", "err", err)
			}
		}
	}
}
