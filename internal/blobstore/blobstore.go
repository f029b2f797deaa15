// Package blobstore stores content-addressed blobs and the data of in-progress uploads.
// The filesystem implementation (FS) is the default; S3/COS implement the same interface.
//
// A blob becomes visible only after its bytes were verified against its digest and made
// durable (temp file, fsync, rename), so a reader never sees a half-written blob.
package blobstore

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
)

// Sentinel errors.
var (
	ErrNotFound       = errors.New("blob not found")
	ErrUploadNotFound = errors.New("upload data not found")
	// ErrDigestMismatch means the bytes did not hash to the expected digest; nothing was stored.
	ErrDigestMismatch = errors.New("content does not match digest")
	// ErrSizeMismatch means fewer or more bytes arrived than declared; nothing was stored.
	ErrSizeMismatch = errors.New("content length does not match declared size")
	// ErrUnavailable means the backing store could not be reached or kept failing; the
	// registry answers 503 so clients retry later.
	ErrUnavailable = errors.New("blob store unavailable")
)

// Store is a blob store. Implementations are safe for concurrent use.
//
// A blob's bytes live at its digest's own key unless CommitUpload put them elsewhere:
// then it returns a location, the registry records it with the blob (metadata.Blob's
// Location), and every later Stat, Open, Delete and RedirectURL of the blob passes it
// back. loc "" means the digest's own key; stores that never return a location (the
// filesystem) ignore it. A location names bytes of exactly one digest and never moves.
type Store interface {
	// Ping checks the store is reachable and writable.
	Ping(ctx context.Context) error

	// Stat returns the size of a stored blob, or ErrNotFound.
	Stat(ctx context.Context, d digest.Digest, loc string) (int64, error)
	// Open returns a reader of a stored blob and its size, or ErrNotFound. The filesystem
	// store returns an *os.File so net/http can send it with sendfile.
	Open(ctx context.Context, d digest.Digest, loc string) (io.ReadSeekCloser, int64, error)
	// Put streams r into the store as blob d at its own key. When size >= 0 exactly
	// size bytes must arrive (else ErrSizeMismatch). The digest is verified while
	// streaming (else ErrDigestMismatch) and the blob is visible only once durable.
	// Putting a blob that exists verifies the bytes and keeps the existing copy.
	// Returns the bytes written.
	Put(ctx context.Context, d digest.Digest, r io.Reader, size int64) (int64, error)
	// Delete removes a stored blob (idempotent).
	Delete(ctx context.Context, d digest.Digest, loc string) error

	// CreateUpload prepares storage for upload id and returns opaque backend state
	// (nil for the filesystem) that the caller keeps in the metadata store.
	CreateUpload(ctx context.Context, id string) ([]byte, error)
	// AppendUpload appends r at offset of upload id. st is the upload's state as last
	// returned (offset, sha256 hash state, backend state); anything past offset left by
	// a crashed request is discarded first. It returns the new state. On error the
	// upload is unchanged at st.
	AppendUpload(ctx context.Context, id string, st UploadState, r io.Reader) (UploadState, error)
	// CommitUpload verifies the upload's bytes against d (ErrDigestMismatch, and the
	// upload data is kept so the client may retry) and makes it the blob d. It returns
	// the blob's location ("" for the digest's own key). A location's bytes are
	// the caller's from then on: when the registry already holds d elsewhere, it
	// deletes them with Delete(d, loc).
	CommitUpload(ctx context.Context, id string, st UploadState, d digest.Digest) (loc string, err error)
	// AbortUpload discards what upload id stored (idempotent), including the bytes at
	// a location a CommitUpload of it returned, but never bytes at a digest's own key.
	// The caller must own the upload: the registry claims its session first, after
	// which no commit can record that location (metadata.Store.ClaimUpload).
	AbortUpload(ctx context.Context, id string) error
}

// TrackedPutter is implemented by stores whose Put keeps storage outside the blob's key
// while it writes (S3: a multipart upload at the key, invisible until completed),
// which a process killed mid-Put would leave behind for ever. PutTracked is Put that,
// before it creates such storage, calls track: track records an upload session in the
// metadata store and returns its id, and the store records under that id what
// AbortUpload(id) must remove. The caller deletes the session once PutTracked
// returned nil, and discards it (as a cancel does) when it failed; a session left by a
// dead process is aborted by the stale-session purge. Stores that leave nothing after
// a crash (the filesystem clears its temp directory at start) do not implement it.
type TrackedPutter interface {
	PutTracked(ctx context.Context, d digest.Digest, r io.Reader, size int64, track func(context.Context) (string, error)) (int64, error)
}

// UploadState is the resumable state of an upload between requests.
type UploadState struct {
	Offset int64
	// HashState is the marshalled sha256 state after Offset bytes.
	HashState []byte
	// Backend is opaque per-store state (e.g. S3 upload id and part list).
	Backend []byte
}

// Redirector is implemented by stores that can hand a client a short-lived URL to fetch
// a blob from directly (a presigned S3/COS GET), so blob bytes need not pass through the
// registry.
type Redirector interface {
	RedirectURL(ctx context.Context, d digest.Digest, loc string, ttl time.Duration) (string, error)
}
