package metrics

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/blobstore"
)

// Blobs wraps a blob store so each call is timed and failures counted. The wrapper
// keeps what the store is: a Redirector stays one (presigned pulls), a Closer too, and
// a TrackedPutter's tracking reaches it (the wrapper is always a TrackedPutter: over a
// store that is not one, PutTracked is Put and never calls track, which the registry
// reads as nothing to track).
func (m *Metrics) Blobs(s blobstore.Store) blobstore.Store {
	if m == nil {
		return s
	}
	b := &blobs{m: m, s: s}
	if rd, ok := s.(blobstore.Redirector); ok {
		return &redirectingBlobs{blobs: b, rd: rd}
	}
	return b
}

var _ blobstore.TrackedPutter = (*blobs)(nil)

type blobs struct {
	m *Metrics
	s blobstore.Store
}

func (b *blobs) done(ctx context.Context, op string, start time.Time, err error) {
	failed := err != nil && !errors.Is(err, blobstore.ErrNotFound) && !errors.Is(err, context.Canceled)
	b.m.blob(op, start, failed)
	if b.m.calls != nil {
		b.m.calls(ctx, op, start, failed)
	}
}

func (b *blobs) Ping(ctx context.Context) error {
	start := time.Now()
	err := b.s.Ping(ctx)
	b.done(ctx, "ping", start, err)
	return err
}

func (b *blobs) Stat(ctx context.Context, d digest.Digest, loc string) (int64, error) {
	start := time.Now()
	n, err := b.s.Stat(ctx, d, loc)
	b.done(ctx, "stat", start, err)
	return n, err
}

func (b *blobs) Open(ctx context.Context, d digest.Digest, loc string) (io.ReadSeekCloser, int64, error) {
	start := time.Now()
	r, n, err := b.s.Open(ctx, d, loc)
	b.done(ctx, "open", start, err)
	return r, n, err
}

func (b *blobs) Put(ctx context.Context, d digest.Digest, r io.Reader, size int64) (int64, error) {
	start := time.Now()
	n, err := b.s.Put(ctx, d, r, size)
	b.done(ctx, "put", start, err)
	return n, err
}

// PutTracked passes track to a store that tracks what its Put leaves aside (S3's
// multipart upload), so a wrapped store loses none of that: without it, a push killed
// mid-way would leave its multipart upload for ever.
func (b *blobs) PutTracked(ctx context.Context, d digest.Digest, r io.Reader, size int64, track func(context.Context) (string, error)) (int64, error) {
	tp, ok := b.s.(blobstore.TrackedPutter)
	if !ok {
		return b.Put(ctx, d, r, size)
	}
	start := time.Now()
	n, err := tp.PutTracked(ctx, d, r, size, track)
	b.done(ctx, "put", start, err)
	return n, err
}

func (b *blobs) Delete(ctx context.Context, d digest.Digest, loc string) error {
	start := time.Now()
	err := b.s.Delete(ctx, d, loc)
	b.done(ctx, "delete", start, err)
	return err
}

func (b *blobs) CreateUpload(ctx context.Context, id string) ([]byte, error) {
	start := time.Now()
	st, err := b.s.CreateUpload(ctx, id)
	b.done(ctx, "create_upload", start, err)
	return st, err
}

func (b *blobs) AppendUpload(ctx context.Context, id string, st blobstore.UploadState, r io.Reader) (blobstore.UploadState, error) {
	start := time.Now()
	st, err := b.s.AppendUpload(ctx, id, st, r)
	b.done(ctx, "append_upload", start, err)
	return st, err
}

func (b *blobs) CommitUpload(ctx context.Context, id string, st blobstore.UploadState, d digest.Digest) (string, error) {
	start := time.Now()
	loc, err := b.s.CommitUpload(ctx, id, st, d)
	b.done(ctx, "commit_upload", start, err)
	return loc, err
}

func (b *blobs) AbortUpload(ctx context.Context, id string) error {
	start := time.Now()
	err := b.s.AbortUpload(ctx, id)
	b.done(ctx, "abort_upload", start, err)
	return err
}

// Close closes the store underneath when it is a Closer.
func (b *blobs) Close() error {
	if c, ok := b.s.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

type redirectingBlobs struct {
	*blobs
	rd blobstore.Redirector
}

func (b *redirectingBlobs) RedirectURL(ctx context.Context, d digest.Digest, loc string, ttl time.Duration) (string, error) {
	start := time.Now()
	u, err := b.rd.RedirectURL(ctx, d, loc, ttl)
	b.done(ctx, "redirect_url", start, err)
	return u, err
}
