package engine

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/metadata"
)

// UploadRepository is the repository recorded on the upload sessions that track the
// storage of an artifact or cache blob while it is written. It is no valid repository
// name (a repository starts with a letter or digit), so no namespace's quota, listing
// or cancel ever sees these sessions; the stale-session purge treats them as any other.
const UploadRepository = ":workflows"

// UploadTracker is what a tracked put needs of the metadata store (metadata.Store's
// upload sessions; sqlstore implements it).
type UploadTracker interface {
	CreateUpload(ctx context.Context, u metadata.Upload) error
	DeleteUpload(ctx context.Context, id string) error
	ClaimUpload(ctx context.Context, id string, staleBefore time.Time) (bool, error)
	UnclaimUpload(ctx context.Context, id string) error
}

// PutBlob stores blob d from r as blobs.Put does, the way a push stores one: on a
// store that keeps storage aside while it writes (an S3 multipart upload, see
// blobstore.TrackedPutter), that storage is recorded as an upload session of
// UploadRepository before it exists, so the stale-session purge aborts what a hub
// killed mid-put leaves behind. The session is deleted when the put succeeds, and a
// failed put's storage is discarded at once. The caller pins d first (PinBlob), so
// GC never takes the blob between the put and the row that names it. log may be nil.
func PutBlob(ctx context.Context, st UploadTracker, blobs blobstore.Store, d digest.Digest, r io.Reader, size int64, log *slog.Logger) (int64, error) {
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
		if err := st.CreateUpload(ctx, metadata.Upload{ID: id, Repository: UploadRepository}); err != nil {
			return "", err
		}
		session = id
		return id, nil
	}
	n, err := tp.PutTracked(ctx, d, r, size, track)
	if session == "" {
		return n, err
	}
	bg := context.WithoutCancel(ctx)
	if err != nil {
		if derr := discardSession(bg, st, blobs, session); derr != nil {
			log.Warn("discard the storage of a failed artifact put; the stale-upload purge retries", "upload", session, "err", derr)
		}
		return n, err
	}
	if derr := st.DeleteUpload(bg, session); derr != nil {
		log.Warn("delete the session of a finished artifact put; the stale-upload purge removes it", "upload", session, "err", derr)
	}
	return n, nil
}

// discardSession claims session id, as a cancel does, and aborts what its put stored;
// when the abort fails the claim is withdrawn so the purge tries again.
func discardSession(ctx context.Context, st UploadTracker, blobs blobstore.Store, id string) error {
	claimed, err := st.ClaimUpload(ctx, id, time.Time{})
	if err != nil || !claimed {
		return err // claimed by the purge meanwhile: it discards the storage
	}
	if err := blobs.AbortUpload(ctx, id); err != nil {
		if uerr := st.UnclaimUpload(ctx, id); uerr != nil {
			return errors.Join(err, uerr)
		}
		return err
	}
	return st.DeleteUpload(ctx, id)
}
