package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/hubctl/hubctl/internal/metadata"
)

// Store is the durable outbox (docs/design/events.md). The changes that raise events
// (metadata.Store's PutManifest, DeleteTag, DeleteManifest, …) write them themselves,
// in their own transactions; AppendEvent is for events that change nothing else.
type Store interface {
	// AppendEvent writes e on its own, stamping its ID and Time when unset, and
	// returns it as stored.
	AppendEvent(ctx context.Context, e Event) (Event, error)
	// ListEvents returns the events q selects after q.After, in feed order, and the
	// cursor to continue from (q.After when there were none).
	ListEvents(ctx context.Context, q Query) (Page, error)
	// PurgeEvents deletes events written before before, at most batch per
	// transaction, and returns how many went. Replicas may run it concurrently.
	PurgeEvents(ctx context.Context, before time.Time, batch int) (int, error)
}

// MaxPage bounds Query.Limit; DefaultPage is the limit when none is given.
const (
	MaxPage     = 1000
	DefaultPage = 100
)

// Query selects events.
type Query struct {
	// After is the cursor to continue from; the zero cursor starts at the oldest kept.
	After Cursor
	// Types, when not empty, keeps only events of these types.
	Types []Type
	// Repository, when not empty, keeps only the events of this repository;
	// Namespace only those of repositories under namespace/.
	Repository string
	Namespace  string
	// Access is what the caller may read (authz.Policy.CatalogFilter): only events of
	// repositories it selects are returned, and hub-wide events only with Access.All.
	// The zero value selects nothing.
	Access metadata.CatalogFilter
	// Limit is at most MaxPage; 0 means DefaultPage.
	Limit int
	// Newest returns no events, only the cursor after the newest event the query
	// selects (After when none): where to follow from "now".
	Newest bool
}

// Page is one answer of ListEvents.
type Page struct {
	Events []Event
	// Next is the cursor after the last event returned, or the query's own when none.
	Next Cursor
}

// Cursor is a position in the feed: the writing transaction's id (PostgreSQL; 0 on
// SQLite) and the event's Seq. The feed is ordered by (XID, Seq).
type Cursor struct {
	XID uint64
	Seq int64
}

// IsZero reports the cursor before every event.
func (c Cursor) IsZero() bool { return c.XID == 0 && c.Seq == 0 }

// String is "seq" when XID is 0 (SQLite), else "xid.seq".
func (c Cursor) String() string {
	if c.XID == 0 {
		return strconv.FormatInt(c.Seq, 10)
	}
	return strconv.FormatUint(c.XID, 10) + "." + strconv.FormatInt(c.Seq, 10)
}

// ErrEventNotKept is returned by ListEvents for a cursor given as a bare event number
// that is not (or no longer) in the outbox.
var ErrEventNotKept = errors.New("event is not kept: purged by retention, or never written")

// ErrBadCursor is returned by ParseCursor for text that is not a cursor.
var ErrBadCursor = errors.New("not an event cursor")

// ParseCursor reads a cursor written by Cursor.String, or a bare event number (a Seq
// with no XID), which the store resolves to the position of that event.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	x, q, found := strings.Cut(s, ".")
	if !found {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return Cursor{}, fmt.Errorf("%q: %w", s, ErrBadCursor)
		}
		return Cursor{Seq: n}, nil
	}
	xid, err1 := strconv.ParseUint(x, 10, 64)
	seq, err2 := strconv.ParseInt(q, 10, 64)
	if err1 != nil || err2 != nil || seq < 0 || xid > 1<<62 {
		return Cursor{}, fmt.Errorf("%q: %w", s, ErrBadCursor)
	}
	return Cursor{XID: xid, Seq: seq}, nil
}

// NewID returns a new event id: a UUIDv7, unique without coordination and ordered by
// time of creation.
func NewID() string {
	id, err := uuid.NewV7()
	if err != nil {
		// Only a failing system random source errs; NewRandom reports it the same way.
		return uuid.NewString()
	}
	return id.String()
}

// Actor is who makes a change: the store records it on the change's events.
type Actor struct {
	Name      string // a user or robot name, "anonymous", or a job ("hubctl-gc")
	Remote    string // the client address
	RequestID string
	// Token names the access token the actor used, if any: the audit entries of the
	// change say so.
	Token string
}

type actorKey struct{}

// WithActor returns ctx carrying a: the store writes it on the events of the changes
// made with ctx. Callers acting for someone set it explicitly at the call.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor WithActor set, or the zero Actor.
func ActorFrom(ctx context.Context) Actor {
	a, _ := ctx.Value(actorKey{}).(Actor)
	return a
}

// Stamp fills e's actor fields from ctx where e has none, its ID and its Time.
func (e *Event) Stamp(ctx context.Context) {
	a := ActorFrom(ctx)
	if e.Actor == "" {
		e.Actor = a.Name
	}
	if e.Remote == "" {
		e.Remote = a.Remote
	}
	if e.RequestID == "" {
		e.RequestID = a.RequestID
	}
	if e.ID == "" {
		e.ID = NewID()
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
}

// Media types that tell an artifact's kind.
const (
	helmConfig        = "application/vnd.cncf.helm.config.v1+json"
	ociImageConfig    = "application/vnd.oci.image.config.v1+json"
	dockerImageConfig = "application/vnd.docker.container.image.v1+json"
	ociIndex          = "application/vnd.oci.image.index.v1+json"
	dockerList        = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// Describe returns the kind of a manifest (KindImage, KindChart, KindOther) from its
// media type, artifact type (metadata.Manifest.ArtifactType) and bytes, and the
// platforms of an index. payload is only parsed for an index.
func Describe(mediaType, artifactType string, payload []byte) (kind string, platforms []string) {
	switch mediaType {
	case ociIndex, dockerList:
		var idx struct {
			Manifests []struct {
				Platform *struct {
					OS           string `json:"os"`
					Architecture string `json:"architecture"`
					Variant      string `json:"variant"`
				} `json:"platform"`
			} `json:"manifests"`
		}
		if json.Unmarshal(payload, &idx) == nil {
			for _, m := range idx.Manifests {
				if p := m.Platform; p != nil && p.OS != "" && p.OS != "unknown" {
					s := p.OS + "/" + p.Architecture
					if p.Variant != "" {
						s += "/" + p.Variant
					}
					platforms = append(platforms, s)
				}
			}
		}
	}
	switch artifactType {
	case helmConfig:
		return KindChart, platforms
	case "", ociImageConfig, dockerImageConfig:
		return KindImage, platforms
	}
	return KindOther, platforms
}
