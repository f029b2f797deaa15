package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/metadata"
)

// A request writes to an upload session's storage only while it holds the session's
// write in the database (metadata.Store.BeginUploadWrite), so two PATCHes of one
// session on two replicas never write at once: on S3 both would upload the same part
// number and the second would replace the first, whatever the database then records,
// and the commit would fail for ever (issue 16, item 6). The hold is renewed while the
// request writes; a request that cannot renew it in time stops writing before it
// lapses, so no other writer can have taken the session while its parts still go up.

const (
	// writeHoldTTL is how long a hold lasts unless renewed: also how long a session
	// stays busy after the replica writing it died.
	writeHoldTTL = 15 * time.Second
	// writeHoldRenew is how often a hold is renewed while the request writes.
	writeHoldRenew = writeHoldTTL / 3
	// writeHoldMargin is how long before the hold lapses a writer that could not
	// renew it stops: time for a part upload in flight to be cut off.
	writeHoldMargin = writeHoldTTL / 3
	// writeHoldPoll is how often a request that found the session held tries again.
	writeHoldPoll = 250 * time.Millisecond
)

// errWriteLost is the cause of a writing request's cancellation when it lost, or could
// not renew, its hold on the session.
var errWriteLost = errors.New("lost the hold on the upload session")

// writeHold is a request's hold on an upload session's write.
type writeHold struct {
	h      *Handler
	id     string
	writer string
	cancel context.CancelCauseFunc
	done   chan struct{}
	// recorded is set once UpdateUpload or the commit ended the hold in the database.
	recorded bool
}

// beginWrite takes the write of session u at u.Offset for this request and returns a
// context that is cancelled when the hold is lost, and the hold, whose release must be
// deferred. A session held by another request is waited for, at most as long as a hold
// lasts: a holder that died (a replica killed mid-PATCH) stops renewing and its hold
// lapses, so the client's resume goes on; a holder that is still writing keeps it, and
// this request is answered 416 with the session's Range, as is one that finds the
// session moved past the offset it read.
func (h *Handler) beginWrite(ctx context.Context, w http.ResponseWriter, name string, u *metadata.Upload) (context.Context, *writeHold, error) {
	writer := uuid.NewString()
	deadline := time.Now().Add(writeHoldTTL + time.Second)
	for {
		err := h.o.Meta.BeginUploadWrite(ctx, u.ID, u.Offset, writer, writeHoldTTL)
		if err == nil {
			break
		}
		switch {
		case errors.Is(err, metadata.ErrUploadBusy) && time.Now().Before(deadline):
			select {
			case <-time.After(writeHoldPoll):
				continue
			case <-ctx.Done():
				return ctx, nil, ctx.Err()
			}
		case errors.Is(err, metadata.ErrUploadNotFound):
			return ctx, nil, uploadUnknown(name, u.ID)
		case errors.Is(err, metadata.ErrUploadBusy), errors.Is(err, metadata.ErrUploadConflict):
			return ctx, nil, h.busy(ctx, w, name, *u, err)
		}
		return ctx, nil, err
	}
	u.Writer = writer
	wctx, cancel := context.WithCancelCause(ctx)
	hold := &writeHold{h: h, id: u.ID, writer: writer, cancel: cancel, done: make(chan struct{})}
	go hold.renew(wctx)
	return wctx, hold, nil
}

// busy answers a chunk or commit that found the session written by another request,
// or moved past the offset this request read: 416 with the session's current Range.
func (h *Handler) busy(ctx context.Context, w http.ResponseWriter, name string, u metadata.Upload, cause error) error {
	offset := u.Offset
	if cur, err := h.o.Meta.GetUpload(ctx, u.ID); err == nil {
		offset = cur.Offset
	}
	w.Header().Set("Location", uploadURL(name, u.ID))
	w.Header().Set("Range", rangeHeader(offset))
	w.Header().Set("Docker-Upload-UUID", u.ID)
	msg := "upload %s is being written by another request; retry from its Range when that one ends"
	if errors.Is(cause, metadata.ErrUploadConflict) {
		msg = "upload %s changed since this request read it; continue from its Range"
	}
	return errcode.New(errcode.BlobUploadInvalid, msg, u.ID).WithStatus(http.StatusRequestedRangeNotSatisfiable)
}

// renew extends the hold every writeHoldRenew until release, and cancels the request's
// context when the hold was taken over or could not be renewed before writeHoldMargin
// of it is left.
func (wh *writeHold) renew(ctx context.Context) {
	defer close(wh.done)
	t := time.NewTicker(writeHoldRenew)
	defer t.Stop()
	held := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := wh.h.o.Meta.RenewUploadWrite(ctx, wh.id, wh.writer, writeHoldTTL)
		switch {
		case err == nil:
			held = time.Now()
		case errors.Is(err, metadata.ErrUploadConflict), errors.Is(err, metadata.ErrUploadNotFound):
			wh.cancel(fmt.Errorf("upload %s: %w: %w", wh.id, errWriteLost, err))
			return
		case ctx.Err() != nil:
			return
		case time.Since(held) > writeHoldTTL-writeHoldMargin:
			wh.cancel(fmt.Errorf("upload %s: %w: could not renew it: %w", wh.id, errWriteLost, err))
			return
		default:
			wh.h.o.Log.WarnContext(ctx, "renew the write of an upload session", "upload", wh.id, "error", err)
		}
	}
}

// release stops the renewals and, unless the session recorded the write, gives the
// hold up so the next chunk need not wait for it to lapse.
func (wh *writeHold) release() {
	if wh == nil {
		return
	}
	wh.cancel(nil)
	<-wh.done
	if wh.recorded {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := wh.h.o.Meta.EndUploadWrite(ctx, wh.id, wh.writer); err != nil {
		wh.h.o.Log.Warn("give up the write of an upload session; it lapses by itself", "upload", wh.id, "error", err)
	}
}

// writeLost answers a request that stopped writing because it lost its hold.
func writeLost(w http.ResponseWriter, name string, u metadata.Upload, cause error) error {
	w.Header().Set("Location", uploadURL(name, u.ID))
	w.Header().Set("Docker-Upload-UUID", u.ID)
	return errcode.New(errcode.BlobUploadInvalid, "upload %s: this request stopped writing: %v; check the upload's Range and continue", u.ID, cause).
		WithStatus(http.StatusRequestedRangeNotSatisfiable)
}

// lostUpload answers a chunk or commit that found the session's stored data missing or
// inconsistent with what the session records (err, from the blob store): the session
// can never complete, so it is discarded, and the client is told to start the upload
// again, as BLOB_UPLOAD_UNKNOWN tells every client.
func (h *Handler) lostUpload(ctx context.Context, name string, u metadata.Upload, err error) error {
	h.o.Log.WarnContext(ctx, "upload session's data is lost; discarding the session", "upload", u.ID, "error", err)
	if derr := h.discardUpload(context.WithoutCancel(ctx), u, time.Time{}); derr != nil && !errors.Is(derr, metadata.ErrUploadNotFound) {
		h.o.Log.WarnContext(ctx, "discard a lost upload session; the purge retries", "upload", u.ID, "error", derr)
	}
	return errcode.New(errcode.BlobUploadUnknown, "upload %s lost its data (written concurrently or removed); start the upload again", u.ID).
		WithDetail(map[string]string{"uuid": u.ID})
}
