package s3store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net/url"
	"sort"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/hubctl/hubctl/internal/blobstore"
)

// part is one uploaded part of a multipart upload, as CompleteMultipartUpload needs it.
// The ETag also guards against a part overwritten by a stale request: the store refuses
// to complete with an ETag that is no longer the part's.
type part struct {
	N    int32  `json:"n"`
	ETag string `json:"etag"`
	Size int64  `json:"size"`
}

func completed(parts []part) *types.CompletedMultipartUpload {
	cp := make([]types.CompletedPart, len(parts))
	for i, p := range parts {
		cp[i] = types.CompletedPart{PartNumber: aws.Int32(p.N), ETag: aws.String(p.ETag)}
	}
	return &types.CompletedMultipartUpload{Parts: cp}
}

// partSizeFor is the size of part n of a stream whose length is not known in advance:
// PartSize for the first thousand parts, then one PartSize more per thousand, so that the
// 10,000-part limit is reached only after 55,000 PartSizes (440 GiB at 8 MiB) while
// ordinary blobs use the configured size.
func (s *Store) partSizeFor(n int32) int64 {
	return s.partSize * (1 + int64(n-1)/1000)
}

var bufPool sync.Pool // of *[]byte with cap == Store.partSize of whoever put it

// getBuf returns a buffer of n bytes, pooled when n is the usual part size.
func (s *Store) getBuf(n int64) *[]byte {
	if n == s.partSize {
		if b, ok := bufPool.Get().(*[]byte); ok && int64(cap(*b)) == n {
			*b = (*b)[:n]
			return b
		}
	}
	b := make([]byte, n)
	return &b
}

func (s *Store) putBuf(b *[]byte) {
	if int64(cap(*b)) == s.partSize {
		bufPool.Put(b)
	}
}

// partWriter uploads the parts of one multipart upload in the background, at most
// Store.inFlight at a time, so that reading and hashing the next part overlaps the upload
// of the previous one. Buffers handed to upload belong to the writer from then on.
type partWriter struct {
	s        *Store
	ctx      context.Context
	cancel   context.CancelFunc
	key      string
	uploadID string
	slots    chan struct{}
	wg       sync.WaitGroup

	mu    sync.Mutex
	parts []part
	err   error
}

func (s *Store) newPartWriter(ctx context.Context, key, uploadID string) *partWriter {
	ctx, cancel := context.WithCancel(ctx)
	return &partWriter{s: s, ctx: ctx, cancel: cancel, key: key, uploadID: uploadID, slots: make(chan struct{}, s.inFlight)}
}

// upload sends buf[:n] as part num with sum, its checksum from partChecksum ("" over
// HTTPS). It blocks while Store.inFlight parts are on their way, which is what bounds
// memory to (inFlight+1) buffers per stream.
func (w *partWriter) upload(num int32, buf *[]byte, n int, sum string) error {
	select {
	case w.slots <- struct{}{}:
	case <-w.ctx.Done():
		w.s.putBuf(buf)
		return w.failed()
	}
	w.wg.Go(func() {
		defer func() { <-w.slots }()
		defer w.s.putBuf(buf)
		// A bytes.Reader is seekable, so the SDK can sign the part and rewind it for
		// a retry without another copy.
		out, err := w.s.client.UploadPart(w.ctx, &s3.UploadPartInput{
			Bucket:         &w.s.bucket,
			Key:            &w.key,
			UploadId:       &w.uploadID,
			PartNumber:     aws.Int32(num),
			Body:           bytes.NewReader((*buf)[:n]),
			ContentLength:  aws.Int64(int64(n)),
			ChecksumCRC32C: checksumValue(sum),
		}, unsignedIfSummed(sum))
		w.mu.Lock()
		defer w.mu.Unlock()
		if err != nil {
			if w.err == nil {
				w.err = err
				w.cancel()
			}
			return
		}
		w.parts = append(w.parts, part{N: num, ETag: aws.ToString(out.ETag), Size: int64(n)})
	})
	return nil
}

func (w *partWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	return w.ctx.Err()
}

// wait returns the uploaded parts in order once all are done, or the first error.
func (w *partWriter) wait() ([]part, error) {
	w.wg.Wait()
	w.cancel()
	if w.err != nil {
		return nil, w.err
	}
	sort.Slice(w.parts, func(i, j int) bool { return w.parts[i].N < w.parts[j].N })
	return w.parts, nil
}

// hashingReader reads from r, feeding h (when not nil), and fails with ErrSizeMismatch as
// soon as more than limit bytes arrive (limit < 0: no limit). It checks ctx on every read
// so a cancelled request stops at the next buffer rather than at the end of the body.
type hashingReader struct {
	ctx   context.Context
	r     io.Reader
	h     hash.Hash
	n     int64
	limit int64
	// client marks r as the client's request body: its failures are the client's (a
	// hang-up), never the store being unavailable.
	client bool
}

// bodyError is a failure to read the client's body.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return "read body: " + e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

func (hr *hashingReader) Read(p []byte) (int, error) {
	if err := hr.ctx.Err(); err != nil {
		return 0, err
	}
	if hr.limit >= 0 && int64(len(p)) > hr.limit-hr.n+1 {
		// One byte past the limit is enough to tell "too long" from "exact".
		p = p[:hr.limit-hr.n+1]
	}
	m, err := hr.r.Read(p)
	if hr.limit >= 0 && hr.n+int64(m) > hr.limit {
		return 0, fmt.Errorf("more than %d bytes: %w", hr.limit, blobstore.ErrSizeMismatch)
	}
	hr.n += int64(m)
	if hr.h != nil && m > 0 {
		hr.h.Write(p[:m])
	}
	if err != nil && err != io.EOF && hr.client {
		err = &bodyError{err}
	}
	return m, err
}

// maxReadSize caps each read so that hashingReader sees the context often even when the
// body could fill a whole part in one call.
const maxReadSize = 1 << 20

// fill reads from r into buf until it is full or r ends, handing what it read to pc
// (nil: nothing) as it goes. It returns io.EOF only together with the bytes read before
// it, and io.ErrNoProgress for a reader stuck returning nothing.
func fill(r io.Reader, buf []byte, pc *partChecksum) (int, error) {
	k, empty := 0, 0
	for k < len(buf) {
		m, err := r.Read(buf[k:min(len(buf), k+maxReadSize)])
		pc.add(buf[k : k+m])
		k += m
		if err != nil {
			return k, err
		}
		if m == 0 {
			if empty++; empty >= 100 {
				return k, io.ErrNoProgress
			}
		}
	}
	return k, nil
}

// copySource is the x-amz-copy-source value naming key in our bucket.
func (s *Store) copySource(key string) *string {
	return aws.String((&url.URL{Path: s.bucket + "/" + key}).EscapedPath())
}

// copyObject copies src to dst on the server. Only an upload's tail, smaller than a
// part, is ever copied, far below CopyObject's 5 GiB limit: larger uploads complete
// where they were written.
func (s *Store) copyObject(ctx context.Context, src, dst string) error {
	_, err := s.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &s.bucket, Key: &dst, CopySource: s.copySource(src)})
	return err
}

// copyRanges copies bytes [from, to) of src into upload id at dst as parts numbered from
// first, in ranges of at most copyPart bytes split evenly so that none is below
// MinPartSize when the whole is not.
func (s *Store) copyRanges(ctx context.Context, src, dst, id string, first int32, from, to int64) ([]part, error) {
	total := to - from
	count := max(1, (total+s.copyPart-1)/s.copyPart)
	var parts []part
	for i := range count {
		a := from + total*i/count
		b := from + total*(i+1)/count
		out, err := s.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
			Bucket:          &s.bucket,
			Key:             &dst,
			UploadId:        &id,
			PartNumber:      aws.Int32(first + int32(i)),
			CopySource:      s.copySource(src),
			CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", a, b-1)),
		})
		if err != nil {
			return nil, err
		}
		etag := ""
		if out.CopyPartResult != nil {
			etag = aws.ToString(out.CopyPartResult.ETag)
		}
		parts = append(parts, part{N: first + int32(i), ETag: etag, Size: b - a})
	}
	return parts, nil
}

// abortMultipart discards upload id at key, best effort: a failure leaves parts that a
// bucket lifecycle rule (AbortIncompleteMultipartUpload) collects.
func (s *Store) abortMultipart(ctx context.Context, key, id string) {
	ctx, cancel := s.cleanupContext(ctx)
	defer cancel()
	_, _ = s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: &key, UploadId: &id})
}

// partChecksum is the CRC32C of one part's bytes, updated as they are read. Over plain
// HTTP every PUT of blob bytes carries it in x-amz-checksum-crc32c, which the server
// checks before it stores the part, and goes as UNSIGNED-PAYLOAD: the bytes are
// protected in transit without a sha256 pass over them on either side (with hardware
// CRC32C the checksum costs next to nothing). That is what the AWS SDK itself does by
// default (a CRC trailer), but as a header, which COS-like servers that refuse trailers
// accept as well. A nil *partChecksum (over HTTPS, see Store.newPartChecksum) does
// nothing and sums to "".
type partChecksum struct {
	crc uint32
}

// castagnoli is made on first use, not at start: the CLI links this package, and the
// table's setup would add a quarter of a millisecond to every command.
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// newPartChecksum starts the checksum of a part, or returns nil over HTTPS, where TLS
// protects the bytes and the SDK sends them as UNSIGNED-PAYLOAD by itself.
func (s *Store) newPartChecksum() *partChecksum {
	if s.overTLS {
		return nil
	}
	return &partChecksum{}
}

// add adds b after what was added before.
func (p *partChecksum) add(b []byte) {
	if p != nil {
		p.crc = crc32.Update(p.crc, castagnoli(), b)
	}
}

// sum returns the checksum as x-amz-checksum-crc32c spells it (base64 of the four
// big-endian bytes), or "" for nil.
func (p *partChecksum) sum() string {
	if p == nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, p.crc))
}

// checksumValue is the ChecksumCRC32C field of a request carrying blob bytes summed to
// sum: nil, so no header, for "".
func checksumValue(sum string) *string {
	if sum == "" {
		return nil
	}
	return &sum
}

// unsignedIfSummed makes a request whose bytes carry checksum sum go as UNSIGNED-PAYLOAD:
// the checksum protects them, so the SDK need not hash them for SigV4 (over plain HTTP
// it would otherwise). With "" (over HTTPS) the SDK decides as it does by itself:
// UNSIGNED-PAYLOAD over TLS.
func unsignedIfSummed(sum string) func(*s3.Options) {
	return func(o *s3.Options) {
		if sum != "" {
			o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
		}
	}
}
