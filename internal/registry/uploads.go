package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/blobstore/tracked"
	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata"
)

func uploadURL(name, id string) string { return fmt.Sprintf("/v2/%s/blobs/uploads/%s", name, id) }

// rangeHeader is the spec's inclusive Range of bytes received so far ("0-0" when none).
func rangeHeader(offset int64) string {
	if offset <= 0 {
		return "0-0"
	}
	return fmt.Sprintf("0-%d", offset-1)
}

func uploadAccepted(w http.ResponseWriter, status int, name string, u metadata.Upload) {
	hd := w.Header()
	hd.Set("Location", uploadURL(name, u.ID))
	hd.Set("Docker-Upload-UUID", u.ID)
	hd.Set("Range", rangeHeader(u.Offset))
	hd.Set("Content-Length", "0")
	w.WriteHeader(status)
}

func (h *Handler) startUpload(w http.ResponseWriter, r *http.Request, name string) error {
	ctx := r.Context()
	q := r.URL.Query()
	if mount := q.Get("mount"); mount != "" {
		d, err := parseDigest(mount)
		if err != nil {
			return err
		}
		// Mounting needs pull on the source; without it the client just uploads.
		if from := q.Get("from"); from != "" && from != name && h.mayPull(ctx, from) {
			if mounted, err := h.mount(r, name, from, d); err != nil {
				return err
			} else if mounted {
				blobCreated(w, name, d)
				return nil
			}
		}
		// Not mountable: fall back to a regular session, as the spec asks.
	} else if ds := q.Get("digest"); ds != "" {
		d, err := parseDigest(ds)
		if err != nil {
			return err
		}
		// Refuse before storing a byte what the quota cannot hold; a body of unknown
		// length is cut off where the quota ends.
		headroom, limited, err := h.o.Meta.QuotaHeadroom(ctx, name, d, r.ContentLength)
		if errors.Is(err, metadata.ErrQuotaExceeded) {
			return quotaDenied(err)
		} else if err != nil {
			return err
		}
		body := &bodyReader{r: r.Body}
		var capped *cappedReader
		if limited && r.ContentLength < 0 {
			capped = &cappedReader{r: r.Body, n: headroom, err: fmt.Errorf("namespace of %s: blob larger than the %d bytes its storage quota leaves: %w",
				name, max(headroom, 0), metadata.ErrQuotaExceeded)}
			body.r = capped
		}
		// Pin before Put: Put may keep bytes already stored, which only a pin makes
		// safe against a concurrent GC sweep (docs/design/gc.md).
		pinned, err := h.o.Meta.PinBlob(ctx, d, r.ContentLength)
		if err != nil {
			return err
		}
		n, err := h.put(ctx, name, d, body, r.ContentLength)
		if err != nil {
			h.unpin(ctx, d, pinned)
			if capped != nil && capped.hit {
				// Worded by the store, with the quota and the usage.
				_, _, qerr := h.o.Meta.QuotaHeadroom(ctx, name, d, headroom+1)
				if !errors.Is(qerr, metadata.ErrQuotaExceeded) {
					qerr = capped.err
				}
				return quotaDenied(fmt.Errorf("the body is longer than the %d bytes left: %w", max(headroom, 0), qerr))
			}
			return storeWriteError(err, body, d)
		}
		// Refused at the link (another push took the room meanwhile): commitBlob
		// deletes the bytes this push stored.
		if err := h.commitBlob(r, name, d, n, "", pinned, ""); err != nil {
			return err
		}
		blobCreated(w, name, d)
		return nil
	}
	// A namespace with no room left gets no new session: any blob but an empty one
	// would be refused.
	if headroom, limited, err := h.o.Meta.QuotaHeadroom(ctx, name, "", -1); err != nil {
		return err
	} else if limited && headroom <= 0 {
		return errcode.New(errcode.Denied, "the storage quota of the namespace of %s is used up (open uploads included): no room for a new upload", name)
	}
	id := uuid.NewString()
	backend, err := h.o.Blobs.CreateUpload(ctx, id)
	if err != nil {
		return err
	}
	u := metadata.Upload{ID: id, Repository: name, BackendState: backend}
	if err := h.o.Meta.CreateUpload(ctx, u); err != nil {
		_ = h.o.Blobs.AbortUpload(ctx, id)
		return err
	}
	uploadAccepted(w, http.StatusAccepted, name, u)
	return nil
}

// put stores blob d from body as Blobs.Put does. On a store that keeps storage aside
// while it writes (an S3 multipart upload), that storage is recorded as an upload
// session of name before it exists, so the stale-session purge aborts what a process
// killed mid-push leaves (blobstore.TrackedPutter); the session goes when the put
// ends, and a failed put's is discarded at once.
func (h *Handler) put(ctx context.Context, name string, d digest.Digest, body io.Reader, size int64) (int64, error) {
	return tracked.Put(ctx, h.o.Meta, h.o.Blobs, name, d, body, size, h.o.Log)
}

// mount links a blob of repository from into name when from holds it.
func (h *Handler) mount(r *http.Request, name, from string, d digest.Digest) (bool, error) {
	ctx := r.Context()
	b, err := h.o.Meta.RepositoryBlob(ctx, from, d)
	if err != nil {
		if errors.Is(err, metadata.ErrBlobNotFound) {
			return false, nil
		}
		return false, err
	}
	// Pin before trusting the stored bytes, as an upload does.
	pinned, err := h.o.Meta.PinBlob(ctx, d, b.Size)
	if err != nil {
		return false, err
	}
	if _, err := h.o.Blobs.Stat(ctx, d, b.Location); err != nil {
		if errors.Is(err, blobstore.ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	if _, err := h.linkBlob(ctx, name, b, pinned, ""); err != nil {
		if errors.Is(err, metadata.ErrBlobReclaimed) {
			return false, nil // collected meanwhile: the client uploads it instead
		}
		return false, err
	}
	h.publish(r, events.Event{Type: events.BlobMounted, Repository: name, Digest: d.String()})
	return true, nil
}

// session loads an upload session of repository name.
func (h *Handler) session(r *http.Request, name, id string) (metadata.Upload, error) {
	u, err := h.o.Meta.GetUpload(r.Context(), id)
	if errors.Is(err, metadata.ErrUploadNotFound) || (err == nil && u.Repository != name) {
		return u, uploadUnknown(name, id)
	}
	return u, err
}

// uploadUnknown is the error for an upload session repository name does not have.
func uploadUnknown(name, id string) error {
	return errcode.New(errcode.BlobUploadUnknown, "upload %s is unknown in repository %s", id, name).WithDetail(map[string]string{"uuid": id})
}

func (h *Handler) uploadStatus(w http.ResponseWriter, r *http.Request, name, id string) error {
	u, err := h.session(r, name, id)
	if err != nil {
		return err
	}
	uploadAccepted(w, http.StatusNoContent, name, u)
	return nil
}

// parseContentRange reads "start-end" (the spec's form) and the common "bytes start-end/total".
func parseContentRange(s string) (start, end int64, err error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "bytes")
	s = strings.TrimLeft(s, " =")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("malformed Content-Range %q", s)
	}
	if start, err = strconv.ParseInt(a, 10, 64); err != nil || start < 0 {
		return 0, 0, fmt.Errorf("malformed Content-Range start %q", a)
	}
	if end, err = strconv.ParseInt(b, 10, 64); err != nil || end < start {
		return 0, 0, fmt.Errorf("malformed Content-Range end %q", b)
	}
	return start, end, nil
}

// appendChunk streams the request body onto the session. It honours Content-Range: a
// chunk that does not start where the session ends is refused with 416 and the current
// Range, and nothing is written.
func (h *Handler) appendChunk(w http.ResponseWriter, r *http.Request, name string, u metadata.Upload) (metadata.Upload, error) {
	body := io.Reader(r.Body)
	if cr := r.Header.Get("Content-Range"); cr != "" {
		start, end, err := parseContentRange(cr)
		if err != nil {
			return u, errcode.New(errcode.BlobUploadInvalid, "%v", err).WithStatus(http.StatusRequestedRangeNotSatisfiable)
		}
		if start != u.Offset {
			w.Header().Set("Location", uploadURL(name, u.ID))
			w.Header().Set("Range", rangeHeader(u.Offset))
			w.Header().Set("Docker-Upload-UUID", u.ID)
			return u, errcode.New(errcode.BlobUploadInvalid, "chunk starts at %d but the upload has %d bytes", start, u.Offset).WithStatus(http.StatusRequestedRangeNotSatisfiable)
		}
		want := end - start + 1
		if r.ContentLength >= 0 && r.ContentLength != want {
			return u, errcode.New(errcode.SizeInvalid, "Content-Length %d does not match Content-Range %s", r.ContentLength, cr).WithStatus(http.StatusRequestedRangeNotSatisfiable)
		}
		body = io.LimitReader(body, want)
	}
	// The one writer of the session, on every replica, before any byte is written:
	// a second request at this offset would write the same S3 part (write.go).
	ctx, hold, err := h.beginWrite(r.Context(), w, name, &u)
	if err != nil {
		return u, err
	}
	defer hold.release()
	// Room in the quota before any byte is written (quota.go): all of a known length
	// at once, a streamed body as it comes.
	reserved := false
	var streaming *reservingReader
	switch want := knownLength(r, body); {
	case want > 0:
		_, limited, err := h.o.Meta.ReserveUpload(ctx, u.ID, want, want)
		if err != nil {
			return u, reserveError(name, u.ID, err)
		}
		reserved = limited
	case want < 0:
		streaming = &reservingReader{r: body, reserve: func(atLeast, atMost int64) (int64, bool, error) {
			return h.o.Meta.ReserveUpload(ctx, u.ID, atLeast, atMost)
		}}
		body = streaming
	}
	br := &bodyReader{r: body}
	prev := u.Offset
	st, err := h.o.Blobs.AppendUpload(ctx, u.ID, blobstore.UploadState{Offset: u.Offset, HashState: u.HashState, Backend: u.BackendState}, br)
	if err != nil {
		if reserved || (streaming != nil && streaming.reserved) {
			if rerr := h.o.Meta.ReleaseUpload(context.WithoutCancel(ctx), u.ID); rerr != nil {
				h.o.Log.WarnContext(ctx, "release upload reservation", "upload", u.ID, "error", rerr)
			}
		}
		if streaming != nil && streaming.err != nil {
			return u, reserveError(name, u.ID, streaming.err)
		}
		if errors.Is(err, blobstore.ErrUploadNotFound) {
			return u, h.lostUpload(ctx, name, u, err)
		}
		if cause := context.Cause(ctx); errors.Is(cause, errWriteLost) {
			return u, writeLost(w, name, u, cause)
		}
		return u, storeWriteError(err, br, "")
	}
	if r.ContentLength > 0 && st.Offset-prev != r.ContentLength {
		return u, errcode.New(errcode.SizeInvalid, "received %d bytes, Content-Length said %d", st.Offset-prev, r.ContentLength)
	}
	u.Offset, u.HashState, u.BackendState = st.Offset, st.HashState, st.Backend
	if err := h.o.Meta.UpdateUpload(ctx, u, prev); err != nil {
		if errors.Is(err, metadata.ErrUploadConflict) || errors.Is(err, metadata.ErrUploadNotFound) {
			return u, errcode.New(errcode.BlobUploadInvalid, "upload %s changed while this chunk was written: %v", u.ID, err).WithStatus(http.StatusRequestedRangeNotSatisfiable)
		}
		return u, err
	}
	hold.recorded = true
	u.Writer = ""
	return u, nil
}

// knownLength is how many bytes body will bring: the Content-Range's length when the
// chunk was limited to it, else Content-Length, or -1 when only the body's end tells.
func knownLength(r *http.Request, body io.Reader) int64 {
	if lr, ok := body.(*io.LimitedReader); ok {
		return lr.N
	}
	return r.ContentLength
}

// reserveError maps a refused ReserveUpload: over quota is DENIED, a session claimed
// meanwhile is unknown.
func reserveError(name, id string, err error) error {
	switch {
	case errors.Is(err, metadata.ErrQuotaExceeded):
		return quotaDenied(err)
	case errors.Is(err, metadata.ErrUploadNotFound):
		return uploadUnknown(name, id)
	}
	return err
}

func (h *Handler) patchUpload(w http.ResponseWriter, r *http.Request, name, id string) error {
	defer h.lockUpload(id)()
	u, err := h.session(r, name, id)
	if err != nil {
		return err
	}
	if u, err = h.appendChunk(w, r, name, u); err != nil {
		if isQuotaDenied(err) {
			h.quotaRefusedUpload(r.Context(), u)
		}
		return err
	}
	uploadAccepted(w, http.StatusAccepted, name, u)
	return nil
}

func (h *Handler) putUpload(w http.ResponseWriter, r *http.Request, name, id string) error {
	defer h.lockUpload(id)()
	u, err := h.session(r, name, id)
	if err != nil {
		return err
	}
	ds := r.URL.Query().Get("digest")
	if ds == "" {
		return errcode.New(errcode.DigestInvalid, "the digest query parameter is required to complete an upload")
	}
	d, err := parseDigest(ds)
	if err != nil {
		return err
	}
	if r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != http.NoBody) {
		if u, err = h.appendChunk(w, r, name, u); err != nil {
			if isQuotaDenied(err) {
				h.quotaRefusedUpload(r.Context(), u)
			}
			return err
		}
	}
	// The commit writes too (it completes the multipart upload): no PATCH may add to
	// the session meanwhile.
	ctx, hold, err := h.beginWrite(r.Context(), w, name, &u)
	if err != nil {
		return err
	}
	defer hold.release()
	// Pin before CommitUpload, which may keep bytes already stored (docs/design/gc.md).
	pinned, err := h.o.Meta.PinBlob(ctx, d, u.Offset)
	if err != nil {
		return err
	}
	loc, err := h.o.Blobs.CommitUpload(ctx, u.ID, blobstore.UploadState{Offset: u.Offset, HashState: u.HashState, Backend: u.BackendState}, d)
	if err != nil {
		h.unpin(ctx, d, pinned)
		if errors.Is(err, blobstore.ErrUploadNotFound) {
			return h.lostUpload(ctx, name, u, err)
		}
		return storeWriteError(err, nil, d)
	}
	if err := h.commitBlob(r, name, d, u.Offset, loc, pinned, u.ID); err != nil {
		// Over quota (the quota was lowered, or another push's link took the room
		// this session had reserved and released), commitBlob deleted the bytes; the
		// session, finished either way, goes with whatever it still holds.
		if isQuotaDenied(err) {
			h.quotaRefusedUpload(ctx, u)
		}
		return err
	}
	hold.recorded = true    // the commit deleted the session
	blobCreated(w, name, d) // the commit finished the session
	return nil
}

func (h *Handler) cancelUpload(w http.ResponseWriter, r *http.Request, name, id string) error {
	defer h.lockUpload(id)()
	u, err := h.session(r, name, id)
	if err != nil {
		return err
	}
	if err := h.discardUpload(r.Context(), u, time.Time{}); err != nil {
		if errors.Is(err, metadata.ErrUploadNotFound) {
			return uploadUnknown(name, id)
		}
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// discardUpload claims session u (when staleBefore is not zero, only if it was last
// updated before it, or claimed before it by a claimer that died), discards what the
// upload stored, which no commit can record any more, and deletes the session
// (metadata.Store.ClaimUpload). It returns metadata.ErrUploadNotFound when the session
// was not claimed: gone, committed, claimed by someone else, or updated since. When the
// blob store fails, the claim is withdrawn, so that the cancel or the next purge can try
// again; when the process dies before the session is deleted, the purge takes the claim
// over once it is older than the purge's cutoff.
func (h *Handler) discardUpload(ctx context.Context, u metadata.Upload, staleBefore time.Time) error {
	claimed, err := tracked.Discard(ctx, h.o.Meta, h.o.Blobs, u.ID, staleBefore, h.o.Log)
	if err == nil && !claimed {
		return fmt.Errorf("upload %s: %w", u.ID, metadata.ErrUploadNotFound)
	}
	return err
}

// unpin withdraws the pin of a push whose bytes the store refused, so a wrong digest or
// a cut-off body leaves no row behind. It is best effort: a leftover pending row is
// invisible and garbage collection removes it.
func (h *Handler) unpin(ctx context.Context, d digest.Digest, pinned time.Time) {
	if err := h.o.Meta.UnpinBlob(context.WithoutCancel(ctx), d, pinned); err != nil {
		h.o.Log.WarnContext(ctx, "withdraw blob pin", "digest", d.String(), "error", err)
	}
}
