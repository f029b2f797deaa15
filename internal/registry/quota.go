package registry

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/metadata"
)

// Quotas bound disk use (issue 12, docs/registry.md "Quotas"): a namespace's quota
// counts its linked blobs and the bytes of its open upload sessions, received or
// reserved. Bytes are reserved before they are written — a known length at once, a
// streamed body reserveStep at a time — so no request writes past the quota, and a
// refused push leaves nothing behind: its session is discarded, and bytes it stored at
// a blob's own key are deleted at once (metadata.Store.DiscardBlob).

// reserveStep is how much room a streamed body (no Content-Length: docker's layer
// PATCH) reserves at a time. Larger means fewer database writes per upload, smaller
// means less room held by a stream near a full quota; a stream never holds more than
// the quota leaves.
const reserveStep = 32 << 20

// quotaDenied is the answer to a push refused for its namespace's quota: 403 DENIED
// with the store's message, which names the quota and the usage.
func quotaDenied(err error) error {
	return errcode.New(errcode.Denied, "%v", err)
}

// isQuotaDenied reports whether err is the refusal quotaDenied makes.
func isQuotaDenied(err error) bool {
	var e *errcode.Error
	return errors.As(err, &e) && e.Code == errcode.Denied
}

// reservingReader reads a body of unknown length, reserving room for it in the upload
// session's quota before passing bytes on: when its room is used up it looks one byte
// ahead (a body that ends there needs no more room) and reserves up to reserveStep
// more. A namespace without a quota is learnt on the first reservation; reading then
// goes straight through.
type reservingReader struct {
	r       io.Reader
	reserve func(atLeast, atMost int64) (granted int64, limited bool, err error)
	left    int64 // reserved and not read yet
	// unlimited: the namespace has no quota; reserved: some room was reserved, to be
	// released when the request fails.
	unlimited, reserved bool
	err                 error // the refusal, once refused
}

func (q *reservingReader) Read(p []byte) (int, error) {
	if q.unlimited || len(p) == 0 {
		return q.r.Read(p)
	}
	if q.err != nil {
		return 0, q.err
	}
	if q.left == 0 {
		var one [1]byte
		if n, err := io.ReadFull(q.r, one[:]); n == 0 {
			return 0, err
		}
		granted, limited, err := q.reserve(1, reserveStep)
		if err != nil {
			q.err = err
			return 0, err
		}
		q.unlimited, q.reserved, q.left = !limited, limited, granted
		p[0] = one[0]
		q.left--
		return 1, nil
	}
	if int64(len(p)) > q.left {
		p = p[:q.left]
	}
	n, err := q.r.Read(p)
	q.left -= int64(n)
	return n, err
}

// cappedReader passes on at most n bytes of r and fails with err when r has more: a
// monolithic upload of unknown length into a namespace with n bytes left.
type cappedReader struct {
	r   io.Reader
	n   int64
	err error // returned once more than n bytes came
	hit bool
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.hit {
		return 0, c.err
	}
	if int64(len(p)) > c.n+1 {
		p = p[:c.n+1]
	}
	n, err := c.r.Read(p)
	if int64(n) > c.n {
		c.hit = true
		return 0, c.err
	}
	c.n -= int64(n)
	return n, err
}

// discardRefused deletes, at once, the bytes of blob d that this push stored at the
// digest's own key before its commit was refused, when this push's pin created the
// blob's row and nobody pinned it since (else another push may rely on them, and
// garbage collection decides). Best effort: what it misses, GC removes.
func (h *Handler) discardRefused(ctx context.Context, d digest.Digest, pinned time.Time) {
	ctx = context.WithoutCancel(ctx)
	_, err := h.o.Meta.DiscardBlob(ctx, d, pinned, func(loc string) error {
		return h.o.Blobs.Delete(ctx, d, loc)
	})
	if err != nil {
		h.o.Log.WarnContext(ctx, "refused blob not deleted; garbage collection removes it", "digest", d.String(), "error", err)
	}
}

// quotaRefusedUpload ends upload session u after a refusal for quota: the push has
// failed, and what the session holds goes at once rather than at uploads.max_age.
func (h *Handler) quotaRefusedUpload(ctx context.Context, u metadata.Upload) {
	if err := h.discardUpload(ctx, u, time.Time{}); err != nil && !errors.Is(err, metadata.ErrUploadNotFound) {
		h.o.Log.WarnContext(ctx, "upload refused for quota but not discarded; the purge removes it after uploads.max_age", "upload", u.ID, "error", err)
	}
}
