package s3store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/blobstore"
)

// A chunked upload is one multipart upload to blobs/by-upload/<id>. Client chunks have
// any size, so bytes that do not fill a part wait in a tail object until the next chunk
// (or the commit, which adds the tail as the last part with UploadPartCopy): every part
// but the last is at least MinPartSize. Tail objects get random names and are kept one
// state longer than needed, so a state a caller still holds never points at bytes that
// were overwritten or deleted.
//
// Committing completes the multipart upload where it is and hands the object over as the
// blob's location: no byte is copied. (An upload too small for a part, only a tail, is
// copied to the blob's own key instead.) The sha256 of a digest is checked from the
// running hash state before anything is completed; other digests need the bytes back,
// which only a completed object gives, so the marker records that the upload's data now
// lives in the completed object, and a later append (after a digest mismatch) reopens a
// new multipart upload from it with UploadPartCopy. A commit whose bytes were verified
// before completing (sha256 from the hash state) writes no marker after it: its cleanup
// deletes the marker right away. The commit's cleanup keeps the completed object;
// AbortUpload deletes it, as its caller owns the upload (the registry claims the session
// first, so no commit can record the location after).

// backend is UploadState.Backend: everything a replica needs to continue the upload.
type backend struct {
	UploadID string `json:"upload"`
	Parts    []part `json:"parts,omitempty"`
	// Tail names the object (under the upload's directory) holding the bytes after the
	// parts; PrevTail is the previous state's, deleted one append later.
	Tail     string `json:"tail,omitempty"`
	TailSize int64  `json:"tailSize,omitempty"`
	PrevTail string `json:"prevTail,omitempty"`
	// SHA256 repeats the running hash so a caller that lost UploadState.HashState does
	// not force a completion and re-read of the upload.
	SHA256 []byte `json:"sha256,omitempty"`
}

func (b *backend) partsSize() int64 {
	var n int64
	for _, p := range b.Parts {
		n += p.Size
	}
	return n
}

func (b *backend) nextPart() int32 {
	if len(b.Parts) == 0 {
		return 1
	}
	return b.Parts[len(b.Parts)-1].N + 1
}

// marker is the <uploads>/<id>/info object. Its existence is the upload's existence, and
// it names the live multipart upload so that AbortUpload, which gets no state, can abort
// it without ListMultipartUploads.
type marker struct {
	// Upload is the live multipart upload, "" once completed.
	Upload string `json:"upload,omitempty"`
	// Done is the multipart upload completed into the data object, of DoneSize bytes.
	Done     string `json:"done,omitempty"`
	DoneSize int64  `json:"doneSize,omitempty"`
	// Burned is the highest part number an append that failed may have written: the
	// S3 server may still store a part whose request the client gave up on, after the
	// next append wrote that number, and replace it. Appends and commits of the live
	// multipart upload number their parts after it.
	Burned int32 `json:"burned,omitempty"`
	// Key is where the live multipart upload writes when that is not the upload's own
	// data key: a tracked Put's, at the blob's key (PutTracked). Only the multipart
	// upload is aborted there, never an object deleted.
	Key string `json:"key,omitempty"`
	// Pending is when a multipart upload at Key (or the upload's data key) was about
	// to be created: the marker is written before CreateMultipartUpload and rewritten
	// with the upload's id after it, so a process killed between the two leaves a
	// marker that says where to look. Only then does cleanup list multipart uploads
	// (ListMultipartUploads, which COS lists late at times: a best effort for a window
	// of one round trip; a bucket lifecycle rule that aborts incomplete multipart
	// uploads is the backstop, docs/registry.md).
	Pending time.Time `json:"pending,omitzero"`
}

// pendingSlack bounds which multipart uploads at a shared key (a tracked Put's blob
// key) a pending marker claims: those initiated up to this long after the marker.
const pendingSlack = time.Minute

// CreateUpload starts the multipart upload of upload id and records it in the marker.
func (s *Store) CreateUpload(ctx context.Context, id string) ([]byte, error) {
	dir, err := s.uploadDir(id)
	if err != nil {
		return nil, err
	}
	key := s.dataKey(id)
	if err := s.putMarker(ctx, dir, marker{Pending: time.Now().UTC()}); err != nil {
		return nil, s.fail(ctx, "create upload "+id, err)
	}
	up, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &s.bucket, Key: &key, ContentType: aws.String("application/octet-stream"),
	})
	if err != nil {
		s.deleteKey(ctx, dir+"info")
		return nil, s.fail(ctx, "create upload "+id, err)
	}
	uploadID := aws.ToString(up.UploadId)
	if err := s.putMarker(ctx, dir, marker{Upload: uploadID}); err != nil {
		s.abortMultipart(ctx, key, uploadID)
		return nil, s.fail(ctx, "create upload "+id, err)
	}
	state, err := json.Marshal(backend{UploadID: uploadID})
	if err != nil {
		return nil, fmt.Errorf("s3store: create upload %s: %w", id, err)
	}
	return state, nil
}

func (s *Store) putMarker(ctx context.Context, dir string, m marker) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	key := dir + "info"
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &s.bucket, Key: &key, Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))),
		ContentType: aws.String("application/json"),
	})
	return err
}

func (s *Store) getMarker(ctx context.Context, dir string) (marker, error) {
	var m marker
	key := dir + "info"
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		if isNotFound(err) {
			return m, fmt.Errorf("s3store: upload %s: %w", dir, blobstore.ErrUploadNotFound)
		}
		return m, s.fail(ctx, "read upload marker", err)
	}
	defer out.Body.Close()
	body, err := io.ReadAll(io.LimitReader(out.Body, 64<<10))
	if err != nil {
		return m, s.fail(ctx, "read upload marker", err)
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return m, fmt.Errorf("s3store: upload marker %s: %w", key, err)
	}
	return m, nil
}

// loadUpload checks that upload id exists and that st describes it.
func (s *Store) loadUpload(ctx context.Context, id string, st blobstore.UploadState) (string, backend, marker, error) {
	var b backend
	dir, err := s.uploadDir(id)
	if err != nil {
		return "", b, marker{}, err
	}
	m, err := s.getMarker(ctx, dir)
	if err != nil {
		return "", b, m, err
	}
	if len(st.Backend) == 0 {
		return "", b, m, fmt.Errorf("s3store: upload %s: no backend state: %w", id, blobstore.ErrUploadNotFound)
	}
	if err := json.Unmarshal(st.Backend, &b); err != nil {
		return "", b, m, fmt.Errorf("s3store: upload %s: backend state: %v: %w", id, err, blobstore.ErrUploadNotFound)
	}
	if got := b.partsSize() + b.TailSize; got != st.Offset {
		return "", b, m, fmt.Errorf("s3store: upload %s: state holds %d bytes, offset is %d: %w", id, got, st.Offset, blobstore.ErrUploadNotFound)
	}
	return dir, b, m, nil
}

// restoreHash returns the sha256 after st.Offset bytes, or nil when no state was kept.
func restoreHash(st blobstore.UploadState, b backend) (hash.Hash, error) {
	h := sha256.New()
	if st.Offset == 0 {
		return h, nil
	}
	state := st.HashState
	if len(state) == 0 {
		state = b.SHA256
	}
	if len(state) == 0 {
		return nil, nil
	}
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		return nil, fmt.Errorf("restore hash state: %w", err)
	}
	return h, nil
}

// AppendUpload appends r to upload id: full parts go up as they fill, a remainder of at
// least MinPartSize becomes a part too, and a shorter one is written as the new tail. On
// error nothing st refers to was changed, so the caller keeps st.
func (s *Store) AppendUpload(ctx context.Context, id string, st blobstore.UploadState, r io.Reader) (blobstore.UploadState, error) {
	dir, b, m, err := s.loadUpload(ctx, id, st)
	if err != nil {
		return st, err
	}
	if b.UploadID != m.Upload {
		if len(b.Parts) == 0 || b.UploadID != m.Done || m.DoneSize < b.partsSize() {
			return st, fmt.Errorf("s3store: upload %s: state refers to multipart upload %q, which is no longer in use: %w", id, b.UploadID, blobstore.ErrUploadNotFound)
		}
		if b, err = s.reopen(ctx, id, dir, b, m); err != nil {
			return st, s.fail(ctx, "append upload "+id+": reopen", err)
		}
		m = marker{Upload: b.UploadID, Done: m.Done, DoneSize: m.DoneSize} // as reopen wrote it
	}
	next, err := s.appendData(ctx, id, dir, st, b, m, r)
	if err != nil {
		if isNoSuchUpload(err) || isNotFound(err) {
			return st, fmt.Errorf("s3store: append upload %s: %v: %w", id, err, blobstore.ErrUploadNotFound)
		}
		return st, s.fail(ctx, "append upload "+id, err)
	}
	return next, nil
}

// reopen continues an upload whose multipart upload was completed by a commit that then
// failed the digest check: a new multipart upload starts with the completed object's
// parts, copied on the server.
func (s *Store) reopen(ctx context.Context, id, dir string, b backend, m marker) (backend, error) {
	key := s.dataKey(id)
	up, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &s.bucket, Key: &key, ContentType: aws.String("application/octet-stream"),
	})
	if err != nil {
		return b, err
	}
	upload := aws.ToString(up.UploadId)
	parts, err := s.copyRanges(ctx, key, key, upload, 1, 0, b.partsSize())
	if err == nil {
		err = s.putMarker(ctx, dir, marker{Upload: upload, Done: m.Done, DoneSize: m.DoneSize})
	}
	if err != nil {
		s.abortMultipart(ctx, key, upload)
		return b, err
	}
	if m.Upload != "" {
		// Left by a reopen whose state the caller never recorded.
		s.abortMultipart(ctx, key, m.Upload)
	}
	b.UploadID, b.Parts = upload, parts
	return b, nil
}

func (s *Store) appendData(ctx context.Context, id, dir string, st blobstore.UploadState, b backend, mk marker, r io.Reader) (blobstore.UploadState, error) {
	h, err := restoreHash(st, b)
	if err != nil {
		return st, err
	}
	src := &hashingReader{ctx: ctx, r: r, h: h, limit: -1, client: true}
	key := s.dataKey(id)
	num := max(b.nextPart(), mk.Burned+1)
	buf := s.getBuf(s.partSizeFor(num))
	k := 0
	if b.TailSize > 0 {
		if err := s.readObject(ctx, dir+b.Tail, (*buf)[:b.TailSize]); err != nil {
			s.putBuf(buf)
			return st, err
		}
		k = int(b.TailSize)
	}
	var w *partWriter
	// burn records, after a failure, that this append's part numbers may hold bytes.
	burn := func() {
		if w != nil && num > mk.Burned {
			mk.Burned = num
			cctx, cancel := s.cleanupContext(ctx)
			defer cancel()
			_ = s.putMarker(cctx, dir, mk)
		}
	}
	stop := func(err error) (blobstore.UploadState, error) {
		if w != nil {
			w.cancel()
			w.wait()
			burn()
		}
		return st, err
	}
	pc := s.newPartChecksum()
	pc.add((*buf)[:k])
	for {
		m, rerr := fill(src, (*buf)[k:], pc)
		k += m
		if rerr == io.EOF {
			break
		}
		sum := pc.sum()
		if rerr != nil {
			s.putBuf(buf)
			return stop(rerr)
		}
		if num > maxParts {
			s.putBuf(buf)
			return stop(fmt.Errorf("upload needs more than %d parts", maxParts))
		}
		if w == nil {
			w = s.newPartWriter(ctx, key, b.UploadID)
		}
		if err := w.upload(num, buf, k, sum); err != nil {
			return stop(err)
		}
		num++
		buf, k = s.getBuf(s.partSizeFor(num)), 0
		pc = s.newPartChecksum()
	}
	sum := pc.sum()
	if src.n == 0 {
		s.putBuf(buf)
		return stop(nil)
	}
	var tail string
	switch {
	case k >= MinPartSize:
		if w == nil {
			w = s.newPartWriter(ctx, key, b.UploadID)
		}
		if err := w.upload(num, buf, k, sum); err != nil {
			return stop(err)
		}
	case k > 0:
		tail = "tail-" + randomName()
		tailKey := dir + tail
		_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &s.bucket, Key: &tailKey, Body: bytes.NewReader((*buf)[:k]), ContentLength: aws.Int64(int64(k)),
			ChecksumCRC32C: checksumValue(sum),
		}, unsignedIfSummed(sum))
		s.putBuf(buf)
		if err != nil {
			return stop(err)
		}
	default:
		s.putBuf(buf)
	}
	var parts []part
	if w != nil {
		if parts, err = w.wait(); err != nil {
			if tail != "" {
				s.deleteKey(ctx, dir+tail)
			}
			burn()
			return st, err
		}
	}
	nb := backend{
		UploadID: b.UploadID,
		Parts:    append(slices.Clip(b.Parts), parts...),
		PrevTail: b.Tail,
	}
	if tail != "" {
		nb.Tail, nb.TailSize = tail, int64(k)
	}
	next := blobstore.UploadState{Offset: st.Offset + src.n}
	if h != nil {
		hs, err := h.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return st, err
		}
		next.HashState, nb.SHA256 = hs, hs
	}
	if next.Backend, err = json.Marshal(nb); err != nil {
		return st, err
	}
	if b.PrevTail != "" {
		s.deleteKey(ctx, dir+b.PrevTail)
	}
	return next, nil
}

// readObject reads the whole of key, which must be exactly len(buf) bytes.
func (s *Store) readObject(ctx context.Context, key string, buf []byte) error {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return err
	}
	defer out.Body.Close()
	if _, err := io.ReadFull(out.Body, buf); err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	return nil
}

// deleteKey removes key, best effort: what it misses is removed with the upload.
func (s *Store) deleteKey(ctx context.Context, key string) {
	ctx, cancel := s.cleanupContext(ctx)
	defer cancel()
	_, _ = s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key})
}

// CommitUpload verifies upload id against d and makes it blob d: a completed multipart
// upload stays where it was written and its location is returned; a tail-only or empty
// upload is copied to the blob's own key (location ""). On ErrDigestMismatch the upload
// stays, so the client may retry or append.
func (s *Store) CommitUpload(ctx context.Context, id string, st blobstore.UploadState, d digest.Digest) (string, error) {
	dir, b, m, err := s.loadUpload(ctx, id, st)
	if err != nil {
		return "", err
	}
	dst, err := s.blobKey(d)
	if err != nil {
		return "", fmt.Errorf("s3store: commit upload %s to %q: %w: %v", id, d, blobstore.ErrDigestMismatch, err)
	}
	verified := false
	if d.Algorithm() == digest.SHA256 {
		h, err := restoreHash(st, b)
		if err != nil {
			return "", fmt.Errorf("s3store: commit upload %s: %w", id, err)
		}
		if h != nil {
			if got := digest.NewDigest(digest.SHA256, h); got != d {
				return "", fmt.Errorf("s3store: commit upload %s: content is %s, not %s: %w", id, got, d, blobstore.ErrDigestMismatch)
			}
			verified = true
		}
	}
	src, m, err := s.materialize(ctx, id, dir, st, b, m, verified)
	if err != nil {
		if isInvalidPart(err) {
			// A part the state lists was replaced (written twice, by two requests) or
			// is gone: these bytes can never be completed as recorded.
			return "", fmt.Errorf("s3store: commit upload %s: the stored parts differ from the upload's state: %v: %w", id, err, blobstore.ErrUploadNotFound)
		}
		if isNoSuchUpload(err) || isNotFound(err) {
			return "", fmt.Errorf("s3store: commit upload %s: %v: %w", id, err, blobstore.ErrUploadNotFound)
		}
		return "", s.fail(ctx, "commit upload "+id, err)
	}
	if !verified {
		if err := s.rehash(ctx, src, st.Offset, d); err != nil {
			if errors.Is(err, blobstore.ErrDigestMismatch) || errors.Is(err, blobstore.ErrSizeMismatch) {
				return "", fmt.Errorf("s3store: commit upload %s: %w", id, err)
			}
			return "", s.fail(ctx, "commit upload "+id, err)
		}
	}
	loc := ""
	if src == s.dataKey(id) {
		loc = byUpload + id
	} else if err := s.install(ctx, src, dst); err != nil {
		return "", s.fail(ctx, "commit upload "+id, err)
	}
	cctx, cancel := s.cleanupContext(ctx)
	defer cancel()
	// The blob is in place; what cleanup misses, a lifecycle rule on uploads/ removes.
	_ = s.cleanup(cctx, id, dir, m, false)
	return loc, nil
}

// install copies the verified tail object src ("" for empty) to dst unless dst is
// already there, in which case it holds the same bytes.
func (s *Store) install(ctx context.Context, src, dst string) error {
	if ok, err := s.exists(ctx, dst); err != nil || ok {
		return err
	}
	if src == "" {
		_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &s.bucket, Key: &dst, Body: bytes.NewReader(nil), ContentLength: aws.Int64(0),
		})
		return err
	}
	return s.copyObject(ctx, src, dst)
}

// materialize makes the upload's bytes one readable object and returns its key ("" for
// an empty upload) and the marker as it now stands. A completion is recorded in the
// marker only when the bytes are still to be verified (not verified): a mismatch then
// leaves an upload that a later append reopens. A verified commit goes on to delete the
// marker anyway.
func (s *Store) materialize(ctx context.Context, id, dir string, st blobstore.UploadState, b backend, m marker, verified bool) (string, marker, error) {
	if len(b.Parts) == 0 {
		if b.TailSize == 0 {
			return "", m, nil
		}
		return dir + b.Tail, m, nil
	}
	key := s.dataKey(id)
	if b.UploadID == m.Done && m.DoneSize == st.Offset {
		return key, m, nil // completed by an earlier commit
	}
	if b.UploadID != m.Upload {
		return "", m, fmt.Errorf("state refers to multipart upload %q, which is no longer in use: %w", b.UploadID, blobstore.ErrUploadNotFound)
	}
	parts := b.Parts
	if b.TailSize > 0 {
		tp, err := s.copyRanges(ctx, dir+b.Tail, key, b.UploadID, max(b.nextPart(), m.Burned+1), 0, b.TailSize)
		if err != nil {
			return "", m, err
		}
		parts = append(slices.Clip(parts), tp...)
	}
	_, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &s.bucket, Key: &key, UploadId: &b.UploadID, MultipartUpload: completed(parts),
	})
	if err != nil {
		if !isNoSuchUpload(err) {
			return "", m, err
		}
		// Completed by a commit that failed before it could update the marker.
		if size, herr := s.head(ctx, key); herr != nil || size != st.Offset {
			return "", m, err
		}
	}
	m = marker{Done: b.UploadID, DoneSize: st.Offset}
	if !verified {
		if err := s.putMarker(ctx, dir, m); err != nil {
			return "", m, err
		}
	}
	return key, m, nil
}

// rehash reads key back and checks it against d.
func (s *Store) rehash(ctx context.Context, key string, size int64, d digest.Digest) error {
	h := d.Algorithm().Hash()
	if key != "" {
		out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
		if err != nil {
			return err
		}
		defer out.Body.Close()
		src := &hashingReader{ctx: ctx, r: out.Body, h: h, limit: size}
		buf := s.getBuf(s.partSize)
		defer s.putBuf(buf)
		for {
			_, err := fill(src, *buf, nil)
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
		if src.n != size {
			return fmt.Errorf("stored upload has %d bytes, want %d: %w", src.n, size, blobstore.ErrSizeMismatch)
		}
	}
	if got := digest.NewDigest(d.Algorithm(), h); got != d {
		return fmt.Errorf("content is %s, not %s: %w", got, d, blobstore.ErrDigestMismatch)
	}
	return nil
}

// AbortUpload discards upload id: its multipart upload, every object under its
// directory and its completed object, committed or not (the caller owns the upload;
// see blobstore.Store). A missing upload is not an error.
func (s *Store) AbortUpload(ctx context.Context, id string) error {
	dir, err := s.uploadDir(id)
	if err != nil {
		return err
	}
	m, err := s.getMarker(ctx, dir)
	if err != nil && !errors.Is(err, blobstore.ErrUploadNotFound) {
		return err
	}
	if err := s.cleanup(ctx, id, dir, m, true); err != nil {
		return s.fail(ctx, "abort upload "+id, err)
	}
	return nil
}

// abortPending aborts the multipart uploads a pending marker m of upload id may have
// left: every one at the upload's own data key, and at a shared key (m.Key) those
// initiated before m.Pending+pendingSlack.
func (s *Store) abortPending(ctx context.Context, id string, m marker) error {
	key, shared := s.dataKey(id), m.Key != ""
	if shared {
		key = m.Key
	}
	in := &s3.ListMultipartUploadsInput{Bucket: &s.bucket, Prefix: &key}
	for {
		out, err := s.client.ListMultipartUploads(ctx, in)
		if err != nil {
			return err
		}
		for _, u := range out.Uploads {
			if aws.ToString(u.Key) != key || (shared && u.Initiated != nil && u.Initiated.After(m.Pending.Add(pendingSlack))) {
				continue
			}
			_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: &key, UploadId: u.UploadId})
			if err != nil && !isNoSuchUpload(err) && !isNotFound(err) {
				return err
			}
		}
		if !aws.ToBool(out.IsTruncated) || (out.NextKeyMarker == nil && out.NextUploadIdMarker == nil) {
			return nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// cleanup removes upload id: with discard its completed object first (also when the
// marker is already gone: a commit's cleanup removed it before the registry could
// record the blob), then the marker, so the upload is gone for every replica at once,
// then its live multipart upload, then whatever objects remain under its directory dir.
// Listing uses ListObjects V1, the one COS documents, and only ever under one upload's
// directory.
func (s *Store) cleanup(ctx context.Context, id, dir string, m marker, discard bool) error {
	if discard {
		key := s.dataKey(id)
		if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key}); err != nil && !isNotFound(err) {
			return err
		}
	}
	info := dir + "info"
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &info}); err != nil && !isNotFound(err) {
		return err
	}
	if m.Upload != "" {
		key := s.dataKey(id)
		if m.Key != "" {
			key = m.Key
		}
		_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: &key, UploadId: &m.Upload})
		if err != nil && !isNoSuchUpload(err) && !isNotFound(err) {
			return err
		}
	} else if !m.Pending.IsZero() {
		if err := s.abortPending(ctx, id, m); err != nil {
			return err
		}
	}
	var next *string
	for {
		out, err := s.client.ListObjects(ctx, &s3.ListObjectsInput{Bucket: &s.bucket, Prefix: &dir, Marker: next})
		if err != nil {
			return err
		}
		for _, o := range out.Contents {
			if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: o.Key}); err != nil && !isNotFound(err) {
				return err
			}
		}
		if !aws.ToBool(out.IsTruncated) || len(out.Contents) == 0 {
			return nil
		}
		next = out.NextMarker
		if next == nil {
			next = out.Contents[len(out.Contents)-1].Key
		}
	}
}
