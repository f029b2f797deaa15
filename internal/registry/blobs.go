package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/reference"
)

func parseDigest(s string) (digest.Digest, error) {
	d, err := reference.ParseDigest(s)
	if err != nil {
		return "", errcode.New(errcode.DigestInvalid, "%v", err).WithDetail(map[string]string{"digest": s})
	}
	return d, nil
}

func blobURL(name string, d digest.Digest) string {
	return fmt.Sprintf("/v2/%s/blobs/%s", name, d)
}

func (h *Handler) getBlob(w http.ResponseWriter, r *http.Request, name, ref string) error {
	d, err := parseDigest(ref)
	if err != nil {
		return err
	}
	ctx := r.Context()
	b, err := h.o.Meta.RepositoryBlob(ctx, name, d)
	if err != nil {
		if errors.Is(err, metadata.ErrBlobNotFound) {
			return errcode.New(errcode.BlobUnknown, "blob %s is not in repository %s", d, name).WithDetail(map[string]string{"digest": d.String()})
		}
		return err
	}
	hd := w.Header()
	hd.Set("Docker-Content-Digest", d.String())
	if r.Method == http.MethodHead {
		// The database knows the size: a HEAD never touches blob storage.
		hd.Set("Content-Type", "application/octet-stream")
		hd.Set("Content-Length", strconv.FormatInt(b.Size, 10))
		hd.Set("Accept-Ranges", "bytes")
		hd.Set("ETag", `"`+d.String()+`"`)
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if ttl := h.redirectTTL(ctx); ttl > 0 {
		u, err := h.o.Blobs.(blobstore.Redirector).RedirectURL(ctx, d, b.Location, ttl)
		if err == nil {
			// The presigned URL honours Range itself; the client repeats its headers.
			hd.Set("Location", u)
			w.WriteHeader(http.StatusTemporaryRedirect)
			return nil
		}
		h.o.Log.WarnContext(ctx, "presign blob URL failed; streaming instead", "digest", d.String(), "error", err)
	}
	rc, _, err := h.o.Blobs.Open(ctx, d, b.Location)
	if err != nil {
		if errors.Is(err, blobstore.ErrNotFound) {
			return errcode.New(errcode.BlobUnknown, "blob %s is missing from storage", d).WithDetail(map[string]string{"digest": d.String()})
		}
		return err
	}
	defer rc.Close()
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("ETag", `"`+d.String()+`"`)
	hd.Set("Cache-Control", "max-age=31536000")
	// ServeContent answers Range/If-Range/HEAD and, given an *os.File, sends it with
	// sendfile: blob bytes never pass through user space.
	http.ServeContent(w, r, "", time.Time{}, rc)
	return nil
}

func (h *Handler) deleteBlob(w http.ResponseWriter, r *http.Request, name, ref string) error {
	d, err := parseDigest(ref)
	if err != nil {
		return err
	}
	if err := h.o.Meta.UnlinkBlob(r.Context(), name, d); err != nil {
		if errors.Is(err, metadata.ErrBlobNotFound) {
			return errcode.New(errcode.BlobUnknown, "blob %s is not in repository %s", d, name).WithDetail(map[string]string{"digest": d.String()})
		}
		return err
	}
	h.publish(r, events.Event{Type: events.BlobDeleted, Repository: name, Digest: d.String()})
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// bodyReader remembers whether reading the request body failed, so a client that hangs up
// or sends fewer bytes than announced is told apart from a storage failure.
type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// storeWriteError maps an error from streaming a body into the blob store.
func storeWriteError(err error, body *bodyReader, d digest.Digest) error {
	switch {
	case errors.Is(err, blobstore.ErrDigestMismatch):
		return errcode.New(errcode.DigestInvalid, "uploaded content does not match digest %s", d).WithDetail(map[string]string{"digest": d.String()})
	case errors.Is(err, blobstore.ErrSizeMismatch):
		return errcode.New(errcode.SizeInvalid, "%v", err)
	case body != nil && body.err != nil:
		return errcode.New(errcode.BlobUploadInvalid, "reading the request body: %v", body.err)
	}
	return err
}

// reclaimRetries bounds how often commitBlob re-pins a blob GC reclaimed meanwhile.
const reclaimRetries = 5

// redirectTTL is how long a presigned URL answered to this request may work, or 0 to
// stream the bytes instead: RedirectTTL, but never past the expiry of the token that
// obtained it, so a URL adds no time to what the token grants (issue 16, item 9). A
// token within its clock leeway (expired, still accepted) gets the bytes streamed;
// URLs expire in whole seconds.
func (h *Handler) redirectTTL(ctx context.Context) time.Duration {
	if _, ok := h.o.Blobs.(blobstore.Redirector); !ok || h.o.RedirectTTL <= 0 {
		return 0
	}
	ttl := h.o.RedirectTTL
	if exp := tokenExpiry(ctx); !exp.IsZero() {
		ttl = min(ttl, time.Until(exp))
	}
	if ttl = ttl.Truncate(time.Second); ttl < time.Second {
		return 0
	}
	return ttl
}

// commitBlob records a durably stored blob, pinned at pinned before its bytes were
// stored at location loc, and links it into the repository. When GC marked or swept the
// blob since the pin, the bytes this request found at their own key may be gone: it
// pins again and, if the bytes are still there, commits under the new pin; else the
// client must upload again. When the registry already held the blob at another
// location, the copy at loc is redundant and goes. For the blob of upload session
// upload (not ""), the session is finished in the same transaction; when a cancel or
// the stale-session purge claimed it meanwhile, nothing is committed, the claimer
// discards the bytes, and the client is told the upload is unknown.
func (h *Handler) commitBlob(r *http.Request, name string, d digest.Digest, size int64, loc string, pinned time.Time, upload string) error {
	ctx := r.Context()
	b := metadata.Blob{Digest: d, Size: size, Location: loc}
	for attempt := 0; ; attempt++ {
		kept, err := h.linkBlob(ctx, name, b, pinned, upload)
		switch {
		case upload != "" && errors.Is(err, metadata.ErrUploadNotFound):
			return errcode.New(errcode.BlobUploadUnknown, "upload %s was cancelled or expired while it was committed", upload).
				WithDetail(map[string]string{"uuid": upload})
		case err == nil:
			if kept != loc {
				// The blob was committed before, at kept, which never changes while
				// its row exists: nothing reads the bytes at loc, even at the digest's
				// own key.
				h.dropCopy(ctx, d, loc)
			}
			return nil
		case !errors.Is(err, metadata.ErrBlobReclaimed):
			if isQuotaDenied(err) {
				// Refused in a transaction that rolled back: nothing refers to loc,
				// which is this upload's alone. Bytes at the digest's own key go when
				// this push's pin created the row and nobody pinned it since; else
				// another push may own them by now, and GC decides.
				if loc != "" {
					h.dropCopy(ctx, d, loc)
					h.unpin(ctx, d, pinned)
				} else {
					h.discardRefused(ctx, d, pinned)
				}
			}
			return err
		case attempt == reclaimRetries:
			if loc != "" {
				h.dropCopy(ctx, d, loc)
			}
			return errcode.New(errcode.Unavailable, "blob %s was garbage collected while it was uploaded; upload it again", d)
		}
		if pinned, err = h.o.Meta.PinBlob(ctx, d, size); err != nil {
			return err
		}
		switch _, err := h.o.Blobs.Stat(ctx, d, loc); {
		case errors.Is(err, blobstore.ErrNotFound):
			return errcode.New(errcode.BlobUploadInvalid, "blob %s was garbage collected while it was uploaded; upload it again", d).
				WithDetail(map[string]string{"digest": d.String()})
		case err != nil:
			return err
		}
	}
}

// dropCopy deletes the bytes of blob d at location loc, which no metadata refers to,
// best effort: what it misses stays as an unreferenced object.
func (h *Handler) dropCopy(ctx context.Context, d digest.Digest, loc string) {
	if err := h.o.Blobs.Delete(context.WithoutCancel(ctx), d, loc); err != nil {
		h.o.Log.WarnContext(ctx, "delete redundant blob copy", "digest", d.String(), "location", loc, "error", err)
	}
}

// linkBlob commits a pinned blob and links it into the repository (finishing upload
// session upload when not ""), and returns the location the blob's row holds; a
// namespace over its storage quota is refused with DENIED and the store's message, which
// names the quota and the usage. metadata.ErrBlobReclaimed and ErrUploadNotFound are
// returned as is.
func (h *Handler) linkBlob(ctx context.Context, name string, b metadata.Blob, pinned time.Time, upload string) (string, error) {
	var (
		kept string
		err  error
	)
	if upload != "" {
		kept, err = h.o.Meta.CommitUploadedBlob(ctx, name, b, pinned, upload)
	} else {
		kept, err = h.o.Meta.CommitBlob(ctx, name, b, pinned)
	}
	if errors.Is(err, metadata.ErrQuotaExceeded) {
		return "", errcode.New(errcode.Denied, "%v", err)
	}
	return kept, err
}

func blobCreated(w http.ResponseWriter, name string, d digest.Digest) {
	hd := w.Header()
	hd.Set("Location", blobURL(name, d))
	hd.Set("Docker-Content-Digest", d.String())
	hd.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}
