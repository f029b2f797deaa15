// Package events describes what happens in the hub: manifests pushed, tags moved,
// manifests, tags and repositories deleted, charts pushed. The store writes each event to
// a durable outbox in the same transaction as the change (docs/design/events.md), and
// webhooks, workflow triggers and `hubctl events ls` read it from there. Bus is the
// older in-process stream, kept while its last subscribers move to the outbox.
package events

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Type names what happened.
type Type string

// Event types.
const (
	ManifestPushed  Type = "manifest.pushed"
	TagMoved        Type = "tag.moved"
	ManifestDeleted Type = "manifest.deleted"
	TagDeleted      Type = "tag.deleted"
	BlobDeleted     Type = "blob.deleted"
	BlobMounted     Type = "blob.mounted"

	RepositoryCreated           Type = "repository.created"
	RepositoryDeleted           Type = "repository.deleted"
	RepositoryVisibilityChanged Type = "repository.visibility_changed"
	ChartPushed                 Type = "chart.pushed"
	GCCompleted                 Type = "gc.completed"
	QuotaExceeded               Type = "quota.exceeded"
	// RepositoryPulled counts the successful manifest GETs of one manifest (and tag)
	// over a window, aggregated in memory by each replica (Detail: count, windowStart,
	// windowEnd); never one event per pull.
	RepositoryPulled Type = "repository.pulled"
	// LoginLocked is written once when failed logins lock a key out for the rest of
	// its window (Detail: limit, user, failures, window, windowStart, lockedUntil).
	LoginLocked Type = "login.locked"

	// Hub-wide changes of who may sign in and do what, written by the accounts store in
	// the change's transaction (Detail names what changed; never a secret).
	AccountCreated      Type = "account.created"
	AccountUpdated      Type = "account.updated"
	AccountDeleted      Type = "account.deleted"
	OrganizationCreated Type = "organization.created"
	OrganizationDeleted Type = "organization.deleted"
	TokenCreated        Type = "token.created"
	TokenRevoked        Type = "token.revoked"
	TeamDeleted         Type = "team.deleted"
	TeamMemberAdded     Type = "team.member_added"
	TeamMemberRemoved   Type = "team.member_removed"
	TeamGrantChanged    Type = "team.grant_changed"
	QuotaChanged        Type = "quota.changed"

	// WorkflowFinished is written by the transaction that finishes a workflow run
	// (Detail: namespace, workflow, workflowId, runId, number, trigger, result, depth),
	// hub-wide (no repository): workflows of the namespace with an on.workflow trigger
	// start from it, and depth stops chains of workflows starting each other.
	WorkflowFinished Type = "workflow.finished"
)

// Types lists the types written to the outbox, for validating filters.
var Types = []Type{ManifestPushed, TagMoved, TagDeleted, ManifestDeleted, BlobDeleted, RepositoryCreated,
	RepositoryDeleted, RepositoryVisibilityChanged, ChartPushed, GCCompleted, QuotaExceeded, RepositoryPulled,
	LoginLocked, AccountCreated, AccountUpdated, AccountDeleted, OrganizationCreated, OrganizationDeleted, TokenCreated,
	TokenRevoked, TeamDeleted, TeamMemberAdded, TeamMemberRemoved, TeamGrantChanged, QuotaChanged, WorkflowFinished}

// Artifact kinds of a pushed manifest.
const (
	KindImage = "image"
	KindChart = "chart"
	KindOther = "other"
)

// Event is one change in the hub. Seq, Cursor and ID are set by the store when the
// event is written to (or read from) the outbox; the Bus leaves them empty.
type Event struct {
	// Seq is the event's number in the outbox: unique, never reused.
	Seq int64 `json:"seq,omitempty"`
	// Cursor is the event's position in the feed (Cursor.String); listing after it
	// continues with the next event.
	Cursor string `json:"cursor,omitempty"`
	// ID is unique and stable (a UUIDv7): consumers dedupe on it.
	ID   string    `json:"id,omitempty"`
	Type Type      `json:"type"`
	Time time.Time `json:"time"`
	// RepositoryID is the repository's row id at the time: a repository deleted and
	// created again under the same name has another.
	RepositoryID   int64  `json:"repositoryId,omitempty"`
	Repository     string `json:"repository,omitempty"`
	Digest         string `json:"digest,omitempty"`
	PreviousDigest string `json:"previousDigest,omitempty"`
	Tag            string `json:"tag,omitempty"`
	MediaType      string `json:"mediaType,omitempty"`
	// ArtifactType is the artifact type or config media type of a pushed manifest;
	// Kind sorts it into KindImage, KindChart or KindOther.
	ArtifactType string `json:"artifactType,omitempty"`
	Kind         string `json:"kind,omitempty"`
	// Platforms are the platforms of a pushed index ("linux/amd64", "linux/arm/v7").
	Platforms  []string `json:"platforms,omitempty"`
	Size       int64    `json:"size,omitempty"`
	Visibility string   `json:"visibility,omitempty"`
	// Chart and Version name a pushed chart.
	Chart   string `json:"chart,omitempty"`
	Version string `json:"version,omitempty"`
	// Detail is what the event's type has to add (a GC run's counts, a quota message).
	Detail    map[string]any `json:"detail,omitempty"`
	Actor     string         `json:"actor,omitempty"`
	Remote    string         `json:"remote,omitempty"`
	RequestID string         `json:"requestId,omitempty"`
}

// Bus fans events out to subscribers. Publish never blocks the request that caused the
// event: a subscriber whose buffer is full misses the event and the miss is counted and
// logged, so a slow webhook cannot stall pushes.
type Bus struct {
	mu      sync.RWMutex
	subs    map[int]chan Event
	next    int
	dropped atomic.Int64
	log     *slog.Logger
}

// NewBus returns an empty bus; log may be nil.
func NewBus(log *slog.Logger) *Bus {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Bus{subs: map[int]chan Event{}, log: log}
}

// Publish sends e to every subscriber, stamping Time if unset.
func (b *Bus) Publish(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, ch := range b.subs {
		select {
		case ch <- e:
		default:
			b.dropped.Add(1)
			b.log.Warn("event dropped: subscriber is full", "type", e.Type, "repository", e.Repository)
		}
	}
}

// Subscribe returns a channel of future events with the given buffer and a function
// that unsubscribes and closes the channel.
func (b *Bus) Subscribe(buffer int) (<-chan Event, func()) {
	ch := make(chan Event, buffer)
	b.mu.Lock()
	id := b.next
	b.next++
	b.subs[id] = ch
	b.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs, id)
			b.mu.Unlock()
			close(ch)
		})
	}
}

// Dropped is the number of events subscribers missed.
func (b *Bus) Dropped() int64 { return b.dropped.Load() }
