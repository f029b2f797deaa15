// Package events is the registry's internal event stream: manifests pushed, tags moved,
// manifests, tags and blobs deleted. Webhooks and workflow triggers subscribe to it.
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
)

// Event is one change in the registry.
type Event struct {
	Type           Type      `json:"type"`
	Time           time.Time `json:"time"`
	Repository     string    `json:"repository"`
	Digest         string    `json:"digest,omitempty"`
	PreviousDigest string    `json:"previousDigest,omitempty"`
	Tag            string    `json:"tag,omitempty"`
	MediaType      string    `json:"mediaType,omitempty"`
	Size           int64     `json:"size,omitempty"`
	Actor          string    `json:"actor,omitempty"`
	Remote         string    `json:"remote,omitempty"`
	RequestID      string    `json:"requestId,omitempty"`
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
