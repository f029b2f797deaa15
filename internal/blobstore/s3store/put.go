package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/blobstore"
)

// Put streams r into blob d. A blob of at most one part is read into one part buffer,
// verified, and sent with a single PutObject. A larger one goes up as a multipart upload
// straight to its content-addressed key, part by part while the next part is read and
// hashed; CompleteMultipartUpload is sent only after the last byte was hashed and the
// digest matched, so a wrong digest aborts the upload and nothing ever becomes visible.
// Going to the final key directly (rather than to a temporary key and copying) saves the
// store a full copy of every blob.
//
// If the blob exists the body is only hashed, to verify it, and the stored copy is kept.
func (s *Store) Put(ctx context.Context, d digest.Digest, r io.Reader, size int64) (int64, error) {
	return s.PutTracked(ctx, d, r, size, nil)
}

var _ blobstore.TrackedPutter = (*Store)(nil)

// PutTracked is Put that, before a multipart upload is created, calls track (when not
// nil) for the id of an upload session and writes that upload's marker naming the
// multipart upload, so that AbortUpload(id) aborts it after a crash; see
// blobstore.TrackedPutter. The marker goes when the Put succeeds; after a failure it
// stays for the caller's AbortUpload.
func (s *Store) PutTracked(ctx context.Context, d digest.Digest, r io.Reader, size int64, track func(context.Context) (string, error)) (int64, error) {
	key, err := s.blobKey(d)
	if err != nil {
		return 0, fmt.Errorf("s3store: put %q: %w: %v", d, blobstore.ErrDigestMismatch, err)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	exists, err := s.exists(ctx, key)
	if err != nil {
		return 0, s.fail(ctx, "put "+d.String(), err)
	}
	h := d.Algorithm().Hash()
	src := &hashingReader{ctx: ctx, r: r, h: h, limit: size, client: true}
	verify := func() error { return check(d, h, src.n, size) }
	var n int64
	switch {
	case exists:
		n, err = s.verify(src)
		if err == nil {
			err = verify()
		}
	case size >= 0 && size > s.partSize:
		n, err = s.putMultipart(ctx, key, src, partSizeForSize(s.partSize, size), nil, 0, "", verify, track)
	default:
		n, err = s.putSmall(ctx, key, src, size, verify, track)
	}
	if err != nil {
		if errors.Is(err, blobstore.ErrDigestMismatch) || errors.Is(err, blobstore.ErrSizeMismatch) {
			return 0, fmt.Errorf("s3store: put %s: %w", d, err)
		}
		return 0, s.fail(ctx, "put "+d.String(), err)
	}
	return n, nil
}

// partSizeForSize keeps a blob of known size within the 10,000-part limit.
func partSizeForSize(partSize, size int64) int64 {
	const mib = 1 << 20
	if need := (size + maxParts - 1) / maxParts; need > partSize {
		return (need + mib - 1) / mib * mib
	}
	return partSize
}

// check compares what arrived with what was declared.
func check(d digest.Digest, h hash.Hash, n, size int64) error {
	if size >= 0 && n != size {
		return fmt.Errorf("got %d bytes, want %d: %w", n, size, blobstore.ErrSizeMismatch)
	}
	if got := digest.NewDigest(d.Algorithm(), h); got != d {
		return fmt.Errorf("content is %s: %w", got, blobstore.ErrDigestMismatch)
	}
	return nil
}

// verify reads src to the end only to hash it.
func (s *Store) verify(src *hashingReader) (int64, error) {
	buf := s.getBuf(s.partSize)
	defer s.putBuf(buf)
	for {
		_, err := fill(src, (*buf)[:min(len(*buf), maxReadSize)], nil)
		if err == io.EOF {
			return src.n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// putSmall handles a blob that may fit one part: it reads up to a part, and if the body
// ends there, verifies it and sends it with one PutObject; a longer body of unknown size
// continues as a multipart upload with the buffer as its first part.
func (s *Store) putSmall(ctx context.Context, key string, src *hashingReader, size int64, verify func() error, track func(context.Context) (string, error)) (int64, error) {
	buf := s.getBuf(s.partSize)
	pc := s.newPartChecksum()
	n, err := fill(src, *buf, pc)
	sum := pc.sum()
	if err == nil && size < 0 {
		// The part is full and the length unknown: more may follow.
		return s.putMultipart(ctx, key, src, s.partSize, buf, n, sum, verify, track)
	}
	defer s.putBuf(buf)
	if err == nil {
		// Exactly size bytes fit the buffer; one more read tells "exact" from "too long".
		var one [1]byte
		_, err = fill(src, one[:], nil)
	}
	if err != io.EOF {
		return 0, err
	}
	if err := verify(); err != nil {
		return 0, err
	}
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:         &s.bucket,
		Key:            &key,
		Body:           bytes.NewReader((*buf)[:n]),
		ContentLength:  aws.Int64(int64(n)),
		ContentType:    aws.String("application/octet-stream"),
		ChecksumCRC32C: checksumValue(sum),
	}, unsignedIfSummed(sum))
	if err != nil {
		return 0, err
	}
	return int64(n), nil
}

// putMultipart uploads first[:n] (when not nil; firstSum is its payload hash) and then
// the rest of src as the parts of one multipart upload to key. verify runs after the last
// byte was read and hashed; only if it passes is the upload completed. Every error aborts
// the upload.
func (s *Store) putMultipart(ctx context.Context, key string, src *hashingReader, partSize int64, first *[]byte, n int, firstSum string, verify func() error, track func(context.Context) (string, error)) (int64, error) {
	fail := func(err error) (int64, error) {
		if first != nil {
			s.putBuf(first)
		}
		return 0, err
	}
	var dir string
	if track != nil {
		upload, err := track(ctx)
		if err != nil {
			return fail(err)
		}
		if dir, err = s.uploadDir(upload); err != nil {
			return fail(err)
		}
		// A kill between CreateMultipartUpload and the marker naming it would leave
		// an upload nothing points at: the pending marker says where to look.
		if err := s.putMarker(ctx, dir, marker{Key: key, Pending: time.Now().UTC()}); err != nil {
			return fail(err)
		}
	}
	up, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &s.bucket, Key: &key, ContentType: aws.String("application/octet-stream"),
	})
	if err != nil {
		if dir != "" {
			s.deleteKey(ctx, dir+"info")
		}
		return fail(err)
	}
	id := aws.ToString(up.UploadId)
	if dir != "" {
		// From here a crash leaves the marker, and AbortUpload aborts what it names.
		if err := s.putMarker(ctx, dir, marker{Upload: id, Key: key}); err != nil {
			s.abortMultipart(ctx, key, id)
			return fail(err)
		}
	}
	parts, err := s.streamParts(ctx, key, id, src, partSize, first, n, firstSum)
	if err == nil {
		err = verify()
	}
	if err == nil {
		_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket: &s.bucket, Key: &key, UploadId: &id, MultipartUpload: completed(parts),
		})
	}
	if err != nil {
		// A tracked upload's marker stays: the caller discards the session, and
		// AbortUpload aborts again what this abort may have missed.
		s.abortMultipart(ctx, key, id)
		return 0, err
	}
	if dir != "" {
		s.deleteKey(ctx, dir+"info")
	}
	return src.n, nil
}

// streamParts uploads first[:n] (a full part, payload hash firstSum; nil for none) and
// then src in parts of partSize (the last one shorter) and returns the parts once all
// are stored.
func (s *Store) streamParts(ctx context.Context, key, id string, src io.Reader, partSize int64, first *[]byte, n int, firstSum string) ([]part, error) {
	w := s.newPartWriter(ctx, key, id)
	fail := func(buf *[]byte, err error) ([]part, error) {
		s.putBuf(buf)
		// The parts on their way are let finish, not cancelled: a part the server is
		// still writing when the caller aborts the upload can bring it back after the
		// abort (S3 says so: "it might be necessary to abort a given multipart upload
		// multiple times"; versitygw did it here), leaving an upload nothing points
		// at. Their bytes are in memory already; a cancelled request still cuts them.
		w.wait()
		return nil, err
	}
	num := int32(1)
	if first != nil {
		if err := w.upload(num, first, n, firstSum); err != nil {
			w.wait()
			return nil, err
		}
		num++
	}
	for {
		buf := s.getBuf(partSize)
		pc := s.newPartChecksum()
		k, err := fill(src, *buf, pc)
		sum := pc.sum()
		if err != nil && err != io.EOF {
			return fail(buf, err)
		}
		if k > 0 {
			if num > maxParts {
				return fail(buf, fmt.Errorf("blob needs more than %d parts of %d bytes", maxParts, partSize))
			}
			if uerr := w.upload(num, buf, k, sum); uerr != nil {
				w.wait()
				return nil, uerr
			}
			num++
		} else {
			s.putBuf(buf)
		}
		if err == io.EOF {
			return w.wait()
		}
	}
}

// Open returns a reader of blob d at loc that fetches bytes lazily with ranged GETs: nothing is
// requested until the first Read, and a Seek moves the next GET's Range. net/http's
// ServeContent seeks to the end to learn the size and back to where it will read, so a
// plain GET costs a HEAD and one GET, and a Range request the same.
func (s *Store) Open(ctx context.Context, d digest.Digest, loc string) (io.ReadSeekCloser, int64, error) {
	size, err := s.Stat(ctx, d, loc)
	if err != nil {
		return nil, 0, err
	}
	key, _ := s.locationKey(d, loc)
	return &objectReader{s: s, ctx: ctx, key: key, size: size}, size, nil
}

// objectReader reads one immutable object with ranged GETs from pos.
type objectReader struct {
	s    *Store
	ctx  context.Context
	key  string
	size int64

	pos     int64
	body    io.ReadCloser
	bodyPos int64
}

func (o *objectReader) Read(p []byte) (int, error) {
	if o.pos >= o.size {
		return 0, io.EOF
	}
	if o.body != nil && o.bodyPos != o.pos {
		o.body.Close()
		o.body = nil
	}
	if o.body == nil {
		out, err := o.s.client.GetObject(o.ctx, &s3.GetObjectInput{
			Bucket: &o.s.bucket, Key: &o.key, Range: aws.String(fmt.Sprintf("bytes=%d-", o.pos)),
		})
		if err != nil {
			if isNotFound(err) {
				return 0, blobstore.ErrNotFound
			}
			return 0, o.s.fail(o.ctx, "read "+o.key, err)
		}
		o.body, o.bodyPos = out.Body, o.pos
	}
	n, err := o.body.Read(p)
	o.pos += int64(n)
	o.bodyPos += int64(n)
	if err == io.EOF {
		o.body.Close()
		o.body = nil
		if o.pos < o.size {
			return n, fmt.Errorf("s3store: read %s: body ended at %d of %d bytes: %w", o.key, o.pos, o.size, io.ErrUnexpectedEOF)
		}
		if n > 0 {
			return n, nil
		}
	}
	if err != nil && err != io.EOF {
		return n, o.s.fail(o.ctx, "read "+o.key, err)
	}
	return n, err
}

func (o *objectReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += o.pos
	case io.SeekEnd:
		offset += o.size
	default:
		return o.pos, fmt.Errorf("s3store: seek: invalid whence %d", whence)
	}
	if offset < 0 {
		return o.pos, fmt.Errorf("s3store: seek to negative offset %d", offset)
	}
	o.pos = offset
	return offset, nil
}

func (o *objectReader) Close() error {
	if o.body != nil {
		err := o.body.Close()
		o.body = nil
		return err
	}
	return nil
}
