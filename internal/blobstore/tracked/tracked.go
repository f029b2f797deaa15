// Package tracked stores a blob so that what a killed process leaves behind is found
// and removed: on a store that keeps storage aside while it writes (an S3 multipart
// upload, blobstore.TrackedPutter), that storage is recorded as an upload session in
// the metadata store before it exists, and the stale-session purge aborts it. The
// registry's pushes and the workflow engine's artifact and cache saves both store
// through Put.
package tracked

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/metadata"
)

// Sessions is the part of the metadata store that keeps upload sessions.
type Sessions interface {
	CreateUpload(ctx context.Context, u metadata.Upload) error
	DeleteUpload(ctx context.Context, id string) error
	ClaimUpload(ctx context.Context, id string, staleBefore time.Time) (bool, error)
	UnclaimUpload(ctx context.Context, id string) error
}

// Put stores blob d from r as blobs.Put does. On a TrackedPutter the storage is an
// upload session of repository while it is written; the session goes when the put
// ends, and a failed put's storage is discarded at once (or by the purge, which the
// log line says, when that fails). Other stores are written with a plain Put: they
// clean their own temporary files.
func Put(ctx context.Context, st Sessions, blobs blobstore.Store, repository string, d digest.Digest, r io.Reader, size int64, log *slog.Logger) (int64, error) {
	tp, ok := blobs.(blobstore.TrackedPutter)
	if !ok {
		return blobs.Put(ctx, d, r, size)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var session string
	track := func(ctx context.Context) (string, error) {
		id := uuid.NewString()
		if err := st.CreateUpload(ctx, metadata.Upload{ID: id, Repository: repository}); err != nil {
			return "", err
		}
		session = id
		return id, nil
	}
	n, err := tp.PutTracked(ctx, d, r, size, track)
	if session == "" {
		return n, err
	}
	ctx = context.WithoutCancel(ctx)
	if err != nil {
		if _, derr := Discard(ctx, st, blobs, session, time.Time{}, log); derr != nil {
			log.WarnContext(ctx, "discard the storage of a failed put; the purge retries", "upload", session, "error", derr)
		}
		return n, err
	}
	if derr := st.DeleteUpload(ctx, session); derr != nil {
		log.WarnContext(ctx, "delete the session of a finished put; the purge removes it", "upload", session, "error", derr)
	}
	return n, nil
}

// Discard claims upload session id (only if it was last touched before staleBefore;
// the zero time claims it whatever its age), aborts its storage and deletes it. It
// answers false, with no error, when another process claimed it first: that one
// discards it. When the abort fails, the claim is withdrawn so the purge retries.
func Discard(ctx context.Context, st Sessions, blobs blobstore.Store, id string, staleBefore time.Time, log *slog.Logger) (bool, error) {
	claimed, err := st.ClaimUpload(ctx, id, staleBefore)
	if err != nil || !claimed {
		return false, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx = context.WithoutCancel(ctx)
	if err := blobs.AbortUpload(ctx, id); err != nil {
		if uerr := st.UnclaimUpload(ctx, id); uerr != nil {
			log.WarnContext(ctx, "upload storage not discarded and its claim not withdrawn; the purge retries after uploads.max_age", "upload", id, "error", uerr)
		}
		return true, fmt.Errorf("upload %s: %w", id, err)
	}
	if err := st.DeleteUpload(ctx, id); err != nil {
		log.WarnContext(ctx, "upload discarded but its session not deleted; the purge finishes it after uploads.max_age", "upload", id, "error", err)
	}
	return true, nil
}
