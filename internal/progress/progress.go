// Package progress holds the typed events that long client operations (push, pull,
// copy, mirror, build) emit, and the tally that turns a stream of them into a summary.
// The transfer engine produces events; tui/ renders them as a terminal view, plain
// lines or NDJSON. It is a leaf package of value types so both sides can import it.
package progress

import (
	"sync"
	"time"
)

// Kind names what happened. The values are stable: they are the "event" field of
// `--output json`.
type Kind string

// The event kinds, in the order they usually occur for one image.
const (
	// ImageStarted: work on one image (source → destination) began.
	ImageStarted Kind = "image-started"
	// BlobStarted: a blob began to move; Size is its length.
	BlobStarted Kind = "blob-started"
	// BlobProgress: Bytes of the blob have moved so far (cumulative, throttled).
	BlobProgress Kind = "blob-progress"
	// BlobExists: the destination already had the blob; nothing was sent.
	BlobExists Kind = "blob-exists"
	// BlobMounted: the destination linked the blob from repository From of the same
	// registry; nothing was sent.
	BlobMounted Kind = "blob-mounted"
	// BlobDone: the blob moved completely; Bytes is what was sent.
	BlobDone Kind = "blob-done"
	// BlobFailed: the blob could not be moved; Error says why.
	BlobFailed Kind = "blob-failed"
	// Retry: a request failed transiently and is retried after Wait; Error says why.
	Retry Kind = "retry"
	// ManifestPushed: a manifest (or index) was written to the destination.
	ManifestPushed Kind = "manifest-pushed"
	// ManifestExists: the destination already had the manifest with this digest.
	ManifestExists Kind = "manifest-exists"
	// Info: a message the user should see (for example, that a platform filter changed
	// the digest).
	Info Kind = "info"
	// ImageDone: the image is complete at the destination; Digest is its digest.
	ImageDone Kind = "image-done"
	// ImageFailed: the image could not be moved; Error says why.
	ImageFailed Kind = "image-failed"
)

// Event is one thing that happened during a transfer. Fields that do not apply to a
// kind are zero and left out of JSON.
type Event struct {
	Time time.Time `json:"time"`
	Kind Kind      `json:"event"`
	// Image is the destination reference the event belongs to (repository[:tag]),
	// so events of concurrent images (mirror) can be told apart.
	Image     string `json:"image,omitempty"`
	Source    string `json:"source,omitempty"`
	Digest    string `json:"digest,omitempty"`
	MediaType string `json:"mediaType,omitempty"`
	// Size is the blob's or manifest's full length in bytes.
	Size int64 `json:"size,omitempty"`
	// Bytes is how many bytes have moved (BlobProgress, BlobDone).
	Bytes int64 `json:"bytes,omitempty"`
	// From is the source repository of a cross-repository mount.
	From string `json:"from,omitempty"`
	// Tag is the tag a manifest was pushed under, empty for one pushed by digest.
	Tag string `json:"tag,omitempty"`
	// Attempt and Wait describe a retry.
	Attempt int           `json:"attempt,omitempty"`
	Wait    time.Duration `json:"wait,omitempty"`
	Message string        `json:"message,omitempty"`
	Error   string        `json:"error,omitempty"`
}

// Sink receives events. It must be safe for concurrent use and must not block for
// long: the engine calls it from its transfer goroutines.
type Sink func(Event)

// Discard is a Sink that drops every event.
func Discard(Event) {}

// Chan returns a Sink that sends every event on ch. The channel should be buffered
// and drained promptly by a renderer.
func Chan(ch chan<- Event) Sink { return func(e Event) { ch <- e } }

// Summary is what a finished operation did, the last thing every view shows.
type Summary struct {
	Images       int           `json:"images"`
	ImagesFailed int           `json:"imagesFailed"`
	Moved        int           `json:"moved"`
	Skipped      int           `json:"skipped"`
	Mounted      int           `json:"mounted"`
	Failed       int           `json:"failed"`
	Manifests    int           `json:"manifests"`
	Bytes        int64         `json:"bytes"`
	Elapsed      time.Duration `json:"elapsed"`
	// FailedImages names the images that failed with their errors, in order.
	FailedImages []ImageError `json:"failedImages,omitempty"`
}

// ImageError is one image that could not be moved.
type ImageError struct {
	Image string `json:"image"`
	Error string `json:"error"`
}

// Tally accumulates events into a Summary. It is safe for concurrent use.
type Tally struct {
	mu    sync.Mutex
	start time.Time
	s     Summary
}

// NewTally returns a Tally whose elapsed time starts now.
func NewTally() *Tally { return &Tally{start: time.Now()} }

// Add counts one event.
func (t *Tally) Add(e Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch e.Kind {
	case BlobDone:
		t.s.Moved++
		t.s.Bytes += e.Bytes
	case BlobExists:
		t.s.Skipped++
	case BlobMounted:
		t.s.Mounted++
	case BlobFailed:
		t.s.Failed++
	case ManifestPushed:
		t.s.Manifests++
	case ImageDone:
		t.s.Images++
	case ImageFailed:
		t.s.ImagesFailed++
		t.s.FailedImages = append(t.s.FailedImages, ImageError{Image: e.Image, Error: e.Error})
	}
}

// Summary returns the counts so far, with the time elapsed since NewTally.
func (t *Tally) Summary() Summary {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.s
	s.FailedImages = append([]ImageError(nil), t.s.FailedImages...)
	s.Elapsed = time.Since(t.start)
	return s
}
