package metadata

import (
	"time"

	digest "github.com/opencontainers/go-digest"
)

// DefaultTagHistoryHold is how long a manifest a tag moved away from is kept from
// garbage collection and retention unless configured otherwise, so the tag can be
// restored to it (docs/design/web.md, slice 4).
const DefaultTagHistoryHold = 30 * 24 * time.Hour

// MaxTagHistory is how many moves of one tag the store keeps; older ones are dropped
// as new ones are recorded.
const MaxTagHistory = 100

// TagMove is one entry of a tag's history: a push or restore that pointed the tag at
// New (Old empty for a new tag), or a deletion (New empty).
type TagMove struct {
	ID    int64
	Tag   string
	Old   digest.Digest
	New   digest.Digest
	Actor string // who moved it, as the change's events name them; "" when unknown
	At    time.Time
}
