package s3store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/blobstore/storetest"
	"github.com/hubctl/hubctl/internal/s3test"
)

const mib = 1 << 20

func TestMain(m *testing.M) {
	code := m.Run()
	s3test.Stop()
	os.Exit(code)
}

// newStore returns a Store on a fresh versitygw bucket, path-style.
func newStore(t testing.TB, edit func(*Options)) *Store {
	t.Helper()
	endpoint, ak, sk, bucket := s3test.Start(t)
	o := Options{Endpoint: endpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk, PathStyle: true, Prefix: "hub"}
	if edit != nil {
		edit(&o)
	}
	s, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStoreSuite(t *testing.T) {
	t.Run("DefaultPartSize", func(t *testing.T) {
		storetest.Run(t, newStore(t, nil))
	})
	// With the smallest part size the suite's 8 MiB blobs go up as multipart uploads.
	t.Run("MinPartSize", func(t *testing.T) {
		storetest.Run(t, newStore(t, func(o *Options) { o.PartSize = MinPartSize; o.PartsInFlight = 2 }))
	})
}

// TestPutMultipart covers blobs of several parts, known and unknown size, and that a wrong
// digest leaves neither an object nor an incomplete multipart upload behind.
func TestPutMultipart(t *testing.T) {
	s := newStore(t, func(o *Options) { o.PartSize = MinPartSize })
	ctx := context.Background()
	data := storetest.Random(t, 21*mib+7)
	d := digest.FromBytes(data)
	for _, size := range []int64{int64(len(data)), -1} {
		n, err := s.Put(ctx, d, bytes.NewReader(data), size)
		if err != nil || n != int64(len(data)) {
			t.Fatalf("Put(size %d) = %d, %v", size, n, err)
		}
		checkBlob(t, s, d, "", data)
		if err := s.Delete(ctx, d, ""); err != nil {
			t.Fatal(err)
		}
	}

	wrong := digest.FromBytes(data[1:])
	for _, size := range []int64{int64(len(data)), -1} {
		if _, err := s.Put(ctx, wrong, bytes.NewReader(data), size); !errors.Is(err, blobstore.ErrDigestMismatch) {
			t.Fatalf("Put(wrong digest, size %d) = %v, want ErrDigestMismatch", size, err)
		}
	}
	if _, err := s.Stat(ctx, wrong, ""); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("Stat after a wrong digest = %v, want ErrNotFound", err)
	}
	checkNoLeftovers(t, s)
}

// TestChunkedOddSizes sends chunks that straddle part boundaries in every way and checks
// that every part but the last meets the S3 minimum and nothing is left afterwards.
func TestChunkedOddSizes(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	chunks := []int{mib, 7 * mib, 3, 5*mib - 1, 1, 6*mib + 5, 2 * mib, 17, 3 * mib}
	total := 0
	for _, c := range chunks {
		total += c
	}
	data := storetest.Random(t, total)
	id := storetest.NewID(t)
	st := storetest.CreateUpload(t, s, id)
	off := 0
	for _, c := range chunks {
		st = storetest.Append(t, s, id, st, data[off:off+c])
		off += c
		b := decodeBackend(t, st)
		for i, p := range b.Parts {
			if p.Size < MinPartSize {
				t.Fatalf("after %d bytes part %d has %d bytes, below the S3 minimum", off, i+1, p.Size)
			}
		}
		if b.TailSize >= MinPartSize {
			t.Fatalf("after %d bytes the tail holds %d bytes, enough for a part", off, b.TailSize)
		}
	}
	if total <= 20*mib {
		t.Fatalf("test data is %d bytes, want over 20 MiB", total)
	}
	d := digest.FromBytes(data)
	loc, err := s.CommitUpload(ctx, id, st, d)
	if err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	checkBlob(t, s, d, loc, data)
	checkNoLeftovers(t, s, loc)
}

// TestResumeOnAnotherReplica plays two replicas: each is its own Store value and knows the
// upload only through the state the other returned, as the registry's metadata carries it.
func TestResumeOnAnotherReplica(t *testing.T) {
	a := newStore(t, nil)
	b := newStoreOn(t, a)
	ctx := context.Background()
	data := storetest.Random(t, 19*mib+3)
	id := storetest.NewID(t)
	st := storetest.CreateUpload(t, a, id)
	st = storetest.Append(t, a, id, st, data[:9*mib])
	st = storetest.Append(t, b, id, st, data[9*mib:9*mib+2])
	st = storetest.Append(t, a, id, st, data[9*mib+2:15*mib])
	st = storetest.Append(t, b, id, st, data[15*mib:])
	d := digest.FromBytes(data)
	loc, err := b.CommitUpload(ctx, id, st, d)
	if err != nil {
		t.Fatalf("CommitUpload on the second replica: %v", err)
	}
	checkBlob(t, a, d, loc, data)
}

// TestCommitInPlace checks that committing a chunked upload of several parts copies no
// byte on the server: the requests it makes, counted on the wire, are the completion and
// marker bookkeeping only, and the blob is read, redirected to and deleted at the
// location the commit returned. (An
// upload whose last chunk leaves a tail below the part minimum copies that tail, at
// most 5 MiB, in as the last part; these chunks leave none.)
func TestCommitInPlace(t *testing.T) {
	var (
		mu       sync.Mutex
		counting bool
		seen     []string
	)
	count := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		if counting {
			op := r.Method
			switch {
			case r.Header.Get("X-Amz-Copy-Source") != "":
				op += " copy"
			case r.URL.Query().Has("uploadId") && r.Method == http.MethodPost:
				op += " complete"
			case r.URL.Query().Has("partNumber"):
				op += " part"
			}
			seen = append(seen, op+" "+r.URL.Path)
		}
		mu.Unlock()
		return http.DefaultTransport.RoundTrip(r)
	})
	s := newStore(t, func(o *Options) {
		o.PartSize = MinPartSize
		o.HTTPClient = &http.Client{Transport: count}
	})
	ctx := context.Background()
	data := storetest.Random(t, 3*MinPartSize)
	id := storetest.NewID(t)
	st := storetest.CreateUpload(t, s, id)
	for off := 0; off < len(data); off += MinPartSize {
		st = storetest.Append(t, s, id, st, data[off:off+MinPartSize])
	}
	d := digest.FromBytes(data)
	mu.Lock()
	counting = true
	mu.Unlock()
	loc, err := s.CommitUpload(ctx, id, st, d)
	mu.Lock()
	counting = false
	ops := slices.Clone(seen)
	mu.Unlock()
	if err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	if loc != byUpload+id {
		t.Fatalf("CommitUpload = location %q, want %q", loc, byUpload+id)
	}
	completes := 0
	for _, op := range ops {
		if strings.Contains(op, " copy ") || strings.Contains(op, " part ") {
			t.Errorf("commit sent %s: bytes were copied on the server", op)
		}
		if strings.HasPrefix(op, "POST complete") {
			completes++
		}
	}
	if completes != 1 {
		t.Errorf("commit completed %d multipart uploads, want 1 (requests: %q)", completes, ops)
	}
	// Read the marker, complete, then clean up: delete the marker, list the upload's
	// directory. Nothing else on the way.
	if len(ops) != 4 {
		t.Errorf("commit made %d requests, want 4: %q", len(ops), ops)
	}
	checkBlob(t, s, d, loc, data)
	if _, err := s.Stat(ctx, d, ""); !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("Stat at the digest's own key = %v, want ErrNotFound (nothing was copied there)", err)
	}
	u, err := s.RedirectURL(ctx, d, loc, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("GET redirect URL: %d, %d bytes, %v", resp.StatusCode, len(got), err)
	}
	checkNoLeftovers(t, s, loc)
	if err := s.Delete(ctx, d, loc); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	checkNoLeftovers(t, s)
}

// TestAbortAfterFailedCommit: a sha512 commit with the wrong digest completes the
// multipart upload to read it back; aborting then must remove the completed object,
// which no blob owns.
func TestAbortAfterFailedCommit(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	data := storetest.Random(t, 9*mib+1)
	id := storetest.NewID(t)
	st := storetest.Append(t, s, id, storetest.CreateUpload(t, s, id), data)
	if _, err := s.CommitUpload(ctx, id, st, digest.SHA512.FromBytes(data[1:])); !errors.Is(err, blobstore.ErrDigestMismatch) {
		t.Fatalf("CommitUpload(wrong sha512) = %v, want ErrDigestMismatch", err)
	}
	if err := s.AbortUpload(ctx, id); err != nil {
		t.Fatalf("AbortUpload: %v", err)
	}
	checkNoLeftovers(t, s)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// newStoreOn returns a second Store value on the bucket of s, as another replica would.
func newStoreOn(t *testing.T, s *Store) *Store {
	t.Helper()
	endpoint := aws.ToString(s.client.Options().BaseEndpoint)
	creds, err := s.client.Options().Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	other, err := New(context.Background(), Options{
		Endpoint: endpoint, Bucket: s.bucket, Prefix: s.prefix, PathStyle: true,
		AccessKey: creds.AccessKeyID, SecretKey: creds.SecretAccessKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	return other
}

// TestCommitWrongDigest checks that a mismatch, including the sha512 path that has to
// complete the multipart upload to read it back, leaves the upload resumable: the client
// may append more and commit again.
func TestCommitWrongDigest(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	data := storetest.Random(t, 14*mib+5)
	id := storetest.NewID(t)
	st := storetest.Append(t, s, id, storetest.CreateUpload(t, s, id), data[:11*mib])

	for _, wrong := range []digest.Digest{digest.FromBytes(data), digest.SHA512.FromBytes(data), digest.SHA512.FromBytes(data[:11*mib-1])} {
		if _, err := s.CommitUpload(ctx, id, st, wrong); !errors.Is(err, blobstore.ErrDigestMismatch) {
			t.Fatalf("CommitUpload(%s) = %v, want ErrDigestMismatch", wrong.Algorithm(), err)
		}
		if _, err := s.Stat(ctx, wrong, ""); !errors.Is(err, blobstore.ErrNotFound) {
			t.Fatalf("Stat(wrong digest) = %v, want ErrNotFound", err)
		}
	}
	// The sha512 attempt completed the multipart upload; appending must reopen it.
	st = storetest.Append(t, s, id, st, data[11*mib:])
	d := digest.SHA512.FromBytes(data)
	loc, err := s.CommitUpload(ctx, id, st, d)
	if err != nil {
		t.Fatalf("CommitUpload(sha512) after append: %v", err)
	}
	checkBlob(t, s, d, loc, data)
	checkNoLeftovers(t, s, loc)
}

// TestCommitAfterFailedRehash commits with the state that a failed sha512 commit left
// completed, which must not need the (gone) multipart upload again.
func TestCommitAfterFailedRehash(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	data := storetest.Random(t, 9*mib+1)
	id := storetest.NewID(t)
	st := storetest.Append(t, s, id, storetest.CreateUpload(t, s, id), data)
	if _, err := s.CommitUpload(ctx, id, st, digest.SHA512.FromBytes(data[1:])); !errors.Is(err, blobstore.ErrDigestMismatch) {
		t.Fatalf("CommitUpload(wrong sha512) = %v, want ErrDigestMismatch", err)
	}
	// Without a hash state sha256 is verified by reading the completed object back.
	st.HashState = nil
	b := decodeBackend(t, st)
	b.SHA256 = nil
	st.Backend, _ = json.Marshal(b)
	if _, err := s.CommitUpload(ctx, id, st, digest.FromBytes(data[2:])); !errors.Is(err, blobstore.ErrDigestMismatch) {
		t.Fatalf("CommitUpload(wrong sha256, no hash state) = %v, want ErrDigestMismatch", err)
	}
	d := digest.FromBytes(data)
	loc, err := s.CommitUpload(ctx, id, st, d)
	if err != nil {
		t.Fatalf("CommitUpload(right sha256): %v", err)
	}
	checkBlob(t, s, d, loc, data)
}

// TestAppendFailsAfterParts fails a chunk after parts of it were uploaded; the old state
// must still be good, and the parts it does not list must not end up in the blob.
func TestAppendFailsAfterParts(t *testing.T) {
	s := newStore(t, func(o *Options) { o.PartSize = MinPartSize })
	ctx := context.Background()
	data := storetest.Random(t, 24*mib)
	id := storetest.NewID(t)
	st := storetest.Append(t, s, id, storetest.CreateUpload(t, s, id), data[:3*mib])
	bad := bytes.Repeat([]byte{'x'}, 20*mib)
	if _, err := s.AppendUpload(ctx, id, st, storetest.FailAfter(bad, 13*mib)); !errors.Is(err, storetest.ErrBody) {
		t.Fatalf("AppendUpload(failing body) = %v, want the body's error", err)
	}
	st = storetest.Append(t, s, id, st, data[3*mib:])
	d := digest.FromBytes(data)
	loc, err := s.CommitUpload(ctx, id, st, d)
	if err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	checkBlob(t, s, d, loc, data)
}

// TestCommitOfOverwrittenPartIsUploadNotFound: two appends from one state on two
// replicas write the same part number, the second replacing the first; committing the
// first's state then can never succeed, and says so with ErrUploadNotFound (the
// registry discards the session and the client starts again), not a store failure
// (issue 16, item 6).
func TestCommitOfOverwrittenPartIsUploadNotFound(t *testing.T) {
	a := newStore(t, nil)
	b := newStoreOn(t, a)
	ctx := context.Background()
	first, second := storetest.Random(t, 6*mib), storetest.Random(t, 6*mib)
	id := storetest.NewID(t)
	st := storetest.CreateUpload(t, a, id)
	won := storetest.Append(t, a, id, st, first)
	storetest.Append(t, b, id, st, second)
	_, err := a.CommitUpload(ctx, id, won, digest.FromBytes(first))
	if !errors.Is(err, blobstore.ErrUploadNotFound) || errors.Is(err, blobstore.ErrUnavailable) {
		t.Fatalf("CommitUpload of the overwritten state = %v, want ErrUploadNotFound", err)
	}
	if err := a.AbortUpload(ctx, id); err != nil {
		t.Fatal(err)
	}
	checkNoLeftovers(t, a)
}

func TestAbortRemovesEverything(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	id := storetest.NewID(t)
	st := storetest.CreateUpload(t, s, id)
	st = storetest.Append(t, s, id, st, storetest.Random(t, 9*mib))
	storetest.Append(t, s, id, st, storetest.Random(t, 2*mib))
	if err := s.AbortUpload(ctx, id); err != nil {
		t.Fatalf("AbortUpload: %v", err)
	}
	checkNoLeftovers(t, s)
}

// TestOpenRanges reads a blob the ways http.ServeContent does.
func TestOpenRanges(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	data := storetest.Random(t, 3*mib+17)
	d := digest.FromBytes(data)
	if _, err := s.Put(ctx, d, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc, _, err := s.Open(r.Context(), d, "")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer rc.Close()
		http.ServeContent(w, r, "", time.Time{}, rc)
	}))
	defer srv.Close()
	for _, tc := range []struct {
		rng        string
		status     int
		start, end int
	}{
		{"", http.StatusOK, 0, len(data)},
		{"bytes=100-199", http.StatusPartialContent, 100, 200},
		{"bytes=-10", http.StatusPartialContent, len(data) - 10, len(data)},
		{"bytes=2097152-", http.StatusPartialContent, 2 * mib, len(data)},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		if tc.rng != "" {
			req.Header.Set("Range", tc.rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != tc.status || !bytes.Equal(body, data[tc.start:tc.end]) {
			t.Fatalf("GET Range %q: status %d, %d bytes, %v; want %d and bytes [%d,%d)", tc.rng, resp.StatusCode, len(body), err, tc.status, tc.start, tc.end)
		}
	}
}

// TestRedirectURL fetches a presigned URL with a plain HTTP client, and checks that the
// store refuses one whose path or signature was changed.
func TestRedirectURL(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	data := storetest.Random(t, 100*1024+1)
	d := digest.FromBytes(data)
	if _, err := s.Put(ctx, d, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	other := storetest.Random(t, 10)
	od := digest.FromBytes(other)
	if _, err := s.Put(ctx, od, bytes.NewReader(other), int64(len(other))); err != nil {
		t.Fatal(err)
	}
	u, err := s.RedirectURL(ctx, d, "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	get := func(u, rng string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	if st, body := get(u, ""); st != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("GET presigned URL: %d, %d bytes", st, len(body))
	}
	if st, body := get(u, "bytes=10-19"); st != http.StatusPartialContent || !bytes.Equal(body, data[10:20]) {
		t.Fatalf("GET presigned URL with Range: %d, %q", st, body)
	}
	okey, _ := s.blobKey(od)
	key, _ := s.blobKey(d)
	sig := strings.LastIndex(u, "X-Amz-Signature=") + len("X-Amz-Signature=")
	flip := "0"
	if u[sig] == '0' {
		flip = "1"
	}
	for name, bad := range map[string]string{
		"other key": strings.Replace(u, key, okey, 1),
		"signature": u[:sig] + flip + u[sig+1:],
	} {
		if st, _ := get(bad, ""); st != http.StatusForbidden {
			t.Errorf("GET presigned URL with tampered %s: status %d, want 403", name, st)
		}
	}
}

// TestUnavailable points a store at a port nobody listens on.
func TestUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s, err := New(context.Background(), Options{
		Endpoint: "http://" + addr, Bucket: "b", AccessKey: "a", SecretKey: "s", PathStyle: true,
		MaxAttempts: 2, MaxBackoff: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	d := digest.FromBytes([]byte("x"))
	if err := s.Ping(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Ping = %v, want ErrUnavailable", err)
	}
	if _, err := s.Stat(ctx, d, ""); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Stat = %v, want ErrUnavailable", err)
	}
	if _, err := s.Put(ctx, d, strings.NewReader("x"), 1); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Put = %v, want ErrUnavailable", err)
	}
	if _, err := s.CreateUpload(ctx, storetest.NewID(t)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("CreateUpload = %v, want ErrUnavailable", err)
	}
}

func TestOptions(t *testing.T) {
	for name, o := range map[string]Options{
		"no bucket":      {},
		"small parts":    {Bucket: "b", PartSize: MinPartSize - 1},
		"cos no region":  {Bucket: "b", Preset: PresetCOS},
		"unknown preset": {Bucket: "b", Preset: "gcs"},
		"bad endpoint":   {Bucket: "b", Endpoint: "localhost:9000"},
	} {
		if _, err := New(context.Background(), o); err == nil {
			t.Errorf("New(%s) succeeded", name)
		}
	}
}

func decodeBackend(t *testing.T, st blobstore.UploadState) backend {
	t.Helper()
	var b backend
	if err := json.Unmarshal(st.Backend, &b); err != nil {
		t.Fatalf("backend state %q: %v", st.Backend, err)
	}
	return b
}

func checkBlob(t *testing.T, s *Store, d digest.Digest, loc string, data []byte) {
	t.Helper()
	rc, size, err := s.Open(context.Background(), d, loc)
	if err != nil {
		t.Fatalf("Open %s: %v", d, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || size != int64(len(data)) || !bytes.Equal(got, data) {
		t.Fatalf("blob %s: size %d, read %d bytes (%v), equal %v; want %d bytes", d, size, len(got), err, bytes.Equal(got, data), len(data))
	}
}

// checkNoLeftovers asserts that no upload object, no completed upload other than the
// committed locations keep, and no incomplete multipart upload is left in the store's
// bucket. ListMultipartUploads is used here only to observe the server; the store itself
// never relies on it.
func checkNoLeftovers(t *testing.T, s *Store, keep ...string) {
	t.Helper()
	ctx := context.Background()
	for _, prefix := range []string{s.prefix + "uploads/", s.prefix + "blobs/" + byUpload} {
		objs, err := s.client.ListObjects(ctx, &s3.ListObjectsInput{Bucket: &s.bucket, Prefix: &prefix})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs.Contents {
			if !slices.ContainsFunc(keep, func(loc string) bool { return s.prefix+"blobs/"+loc == aws.ToString(o.Key) }) {
				t.Errorf("left behind: object %s", aws.ToString(o.Key))
			}
		}
	}
	ups, err := s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &s.bucket})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range ups.Uploads {
		t.Errorf("left behind: multipart upload %s of %s", aws.ToString(u.UploadId), aws.ToString(u.Key))
	}
}

// TestClientHangupIsNotUnavailable: a client whose connection breaks mid-body produces a
// network error too, but it must not be reported as the store being down (503).
func TestClientHangupIsNotUnavailable(t *testing.T) {
	s := newStore(t, func(o *Options) { o.PartSize = MinPartSize })
	ctx := context.Background()
	hangup := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	for _, size := range []int{mib, 12 * mib} {
		data := storetest.Random(t, size)
		body := io.MultiReader(bytes.NewReader(data[:size-10]), &failReader{hangup})
		_, err := s.Put(ctx, digest.FromBytes(data), body, int64(size))
		if !errors.Is(err, syscall.ECONNRESET) || errors.Is(err, ErrUnavailable) {
			t.Errorf("Put(%d bytes, client hangs up) = %v, want the body's error and not ErrUnavailable", size, err)
		}
		id := storetest.NewID(t)
		st := storetest.CreateUpload(t, s, id)
		body = io.MultiReader(bytes.NewReader(data[:size-10]), &failReader{hangup})
		if _, err := s.AppendUpload(ctx, id, st, body); !errors.Is(err, syscall.ECONNRESET) || errors.Is(err, ErrUnavailable) {
			t.Errorf("AppendUpload(%d bytes, client hangs up) = %v, want the body's error and not ErrUnavailable", size, err)
		}
	}
}

type failReader struct{ err error }

func (f *failReader) Read([]byte) (int, error) { return 0, f.err }

// TestTrackedPut: a monolithic Put that becomes a multipart upload records it under the
// upload id track returns, before its first part: cut off mid-way, the multipart upload
// is found and aborted by AbortUpload of that id, as the stale-session purge does after
// a crash; finished, it leaves no marker (issue 16, item 5).
func TestTrackedPut(t *testing.T) {
	s := newStore(t, func(o *Options) { o.PartSize = MinPartSize })
	ctx := context.Background()
	data := storetest.Random(t, 3*MinPartSize+7)
	d := digest.FromBytes(data)

	id := storetest.NewID(t)
	tracked := 0
	track := func(context.Context) (string, error) { tracked++; return id, nil }
	// The part upload in flight when the body fails is aborted by the store itself;
	// what a killed process would leave is the marker and the multipart upload it
	// names, which the marker alone lets AbortUpload find.
	if _, err := s.PutTracked(ctx, d, storetest.FailAfter(data, 2*MinPartSize+3), int64(len(data)), track); !errors.Is(err, storetest.ErrBody) {
		t.Fatalf("PutTracked(failing body) = %v", err)
	}
	if tracked != 1 {
		t.Fatalf("track called %d times, want 1", tracked)
	}
	m, err := s.getMarker(ctx, s.prefix+"uploads/"+id+"/")
	if err != nil || m.Upload == "" || m.Key == "" {
		t.Fatalf("marker after the failed put: %+v, %v; want one naming the multipart upload", m, err)
	}
	if err := s.AbortUpload(ctx, id); err != nil {
		t.Fatal(err)
	}
	checkNoLeftovers(t, s)

	id = storetest.NewID(t)
	if n, err := s.PutTracked(ctx, d, bytes.NewReader(data), int64(len(data)), track); err != nil || n != int64(len(data)) {
		t.Fatalf("PutTracked = %d, %v", n, err)
	}
	checkBlob(t, s, d, "", data)
	checkNoLeftovers(t, s)

	// A blob small enough for one PutObject leaves nothing to track.
	small := storetest.Random(t, 1000)
	tracked = 0
	if _, err := s.PutTracked(ctx, digest.FromBytes(small), bytes.NewReader(small), int64(len(small)), track); err != nil || tracked != 0 {
		t.Fatalf("PutTracked of a small blob: %v, tracked %d times", err, tracked)
	}
}

// TestKilledBeforeMarkerNamedUpload: a process killed between CreateMultipartUpload and
// the marker that names the upload leaves a pending marker; AbortUpload (the stale
// purge) finds the upload by listing the key, for a chunked session's data key and for
// a tracked Put's blob key, where it leaves alone an upload begun well after the marker
// (another push of the same blob).
func TestKilledBeforeMarkerNamedUpload(t *testing.T) {
	s := newStore(t, func(o *Options) { o.PartSize = MinPartSize })
	ctx := context.Background()
	create := func(key string) string {
		t.Helper()
		up, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &s.bucket, Key: &key})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(up.UploadId)
	}
	marked := func(id string, m marker) {
		t.Helper()
		dir, err := s.uploadDir(id)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.putMarker(ctx, dir, m); err != nil {
			t.Fatal(err)
		}
	}

	id := storetest.NewID(t)
	marked(id, marker{Pending: time.Now().UTC()})
	create(s.dataKey(id))
	if err := s.AbortUpload(ctx, id); err != nil {
		t.Fatal(err)
	}
	checkNoLeftovers(t, s)

	key, err := s.blobKey(digest.FromString("killed before the marker"))
	if err != nil {
		t.Fatal(err)
	}
	id = storetest.NewID(t)
	marked(id, marker{Key: key, Pending: time.Now().UTC()})
	create(key)
	if err := s.AbortUpload(ctx, id); err != nil {
		t.Fatal(err)
	}
	checkNoLeftovers(t, s)

	id = storetest.NewID(t)
	marked(id, marker{Key: key, Pending: time.Now().UTC().Add(-2 * pendingSlack)})
	later := create(key)
	if err := s.AbortUpload(ctx, id); err != nil {
		t.Fatal(err)
	}
	ups, err := s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &s.bucket})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 1 || aws.ToString(ups.Uploads[0].UploadId) != later {
		t.Fatalf("after the purge of an old pending marker: uploads %d, want only the later one", len(ups.Uploads))
	}
	s.abortMultipart(ctx, key, later)
	checkNoLeftovers(t, s)
}

// TestPresignOptions: presigned URLs name PresignEndpoint and carry the key id of the
// presign credentials, not the store's (issue 16, item 9); the URL works at that
// endpoint (here the same server under another host name).
func TestPresignOptions(t *testing.T) {
	var endpoint, ak string
	s := newStore(t, func(o *Options) {
		endpoint, ak = o.Endpoint, o.AccessKey
		o.PresignEndpoint = strings.Replace(o.Endpoint, "127.0.0.1", "localhost", 1)
	})
	ctx := context.Background()
	data := storetest.Random(t, 1000)
	d := digest.FromBytes(data)
	if _, err := s.Put(ctx, d, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	u, err := s.RedirectURL(ctx, d, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(endpoint, "127.0.0.1", "localhost", 1) + "/"
	if !strings.HasPrefix(u, want) || !strings.Contains(u, "X-Amz-Expires=60&") {
		t.Fatalf("URL %s: want it at %s, expiring in the default 60 s", u, want)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("GET at the presign endpoint: %s, %d bytes", resp.Status, len(body))
	}

	p2, err := New(ctx, Options{Endpoint: endpoint, Bucket: s.bucket, AccessKey: ak, SecretKey: "unused", PathStyle: true,
		PresignAccessKey: "READONLYKEY", PresignSecretKey: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	u, err = p2.RedirectURL(ctx, d, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(u, "X-Amz-Credential=READONLYKEY%2F") || strings.Contains(u, ak) {
		t.Fatalf("URL %s: want the presign key id, not the store's", u)
	}
}

// TestFailedAppendBurnsItsPartNumbers: an append that failed after starting parts
// records the part numbers it used in the upload's marker, and the next append numbers
// its parts after them: a part the S3 server stores late, for a request the store gave
// up on, can then never replace a part of the upload's state.
func TestFailedAppendBurnsItsPartNumbers(t *testing.T) {
	s := newStore(t, func(o *Options) { o.PartSize = MinPartSize })
	ctx := context.Background()
	data := storetest.Random(t, 12*mib)
	id := storetest.NewID(t)
	st := storetest.CreateUpload(t, s, id)
	bad := bytes.Repeat([]byte{'x'}, 20*mib)
	if _, err := s.AppendUpload(ctx, id, st, storetest.FailAfter(bad, 13*mib)); !errors.Is(err, storetest.ErrBody) {
		t.Fatalf("AppendUpload(failing body) = %v", err)
	}
	m, err := s.getMarker(ctx, s.prefix+"uploads/"+id+"/")
	if err != nil || m.Burned < 2 {
		t.Fatalf("marker after the failed append: %+v, %v; want the part numbers it used burned", m, err)
	}
	st = storetest.Append(t, s, id, st, data)
	if b := decodeBackend(t, st); len(b.Parts) == 0 || b.Parts[0].N <= m.Burned {
		t.Fatalf("parts after the failed append: %+v, want them numbered after %d", b.Parts, m.Burned)
	}
	d := digest.FromBytes(data)
	loc, err := s.CommitUpload(ctx, id, st, d)
	if err != nil {
		t.Fatal(err)
	}
	checkBlob(t, s, d, loc, data)
}
