package engine

import (
	"context"
	"io"
	"log/slog"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/blobstore/tracked"
)

// UploadRepository is the repository recorded on the upload sessions that track the
// storage of an artifact or cache blob while it is written. It is no valid repository
// name (a repository starts with a letter or digit), so no namespace's quota, listing
// or cancel ever sees these sessions; the stale-session purge treats them as any other.
const UploadRepository = ":workflows"

// UploadTracker is the part of the store that keeps upload sessions.
type UploadTracker = tracked.Sessions

// PutBlob stores an artifact or cache blob through the blob store's tracked put, as
// a push does, its session named UploadRepository.
func PutBlob(ctx context.Context, st UploadTracker, blobs blobstore.Store, d digest.Digest, r io.Reader, size int64, log *slog.Logger) (int64, error) {
	return tracked.Put(ctx, st, blobs, UploadRepository, d, r, size, log)
}
