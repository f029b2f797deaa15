package blobstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/blobstore/storetest"
	"github.com/opencontainers/go-digest"
)

const mib = 1 << 20

func newFS(t testing.TB) (*blobstore.FS, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "data")
	s, err := blobstore.NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

func TestFSStore(t *testing.T) {
	s, root := newFS(t)
	storetest.Run(t, s)
	// Every failure path of the suite had to clean up after itself.
	assertEmptyDir(t, filepath.Join(root, "tmp"))
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind in %s: %s", dir, e.Name())
	}
}

// listFiles returns the regular files under dir, relative to it.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestFSLayout(t *testing.T) {
	ctx := context.Background()
	s, root := newFS(t)
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		data := storetest.Random(t, 1000)
		d := alg.FromBytes(data)
		if _, err := s.Put(ctx, d, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, "blobs", string(alg), d.Encoded()[:2], d.Encoded())
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("blob not at %s: %v", p, err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", p, fi.Mode().Perm())
		}
		rc, _, err := s.Open(ctx, d, "")
		if err != nil {
			t.Fatal(err)
		}
		// net/http only uses sendfile when the body is an *os.File.
		if _, ok := rc.(*os.File); !ok {
			t.Errorf("Open returned %T, want *os.File", rc)
		}
		rc.Close()
	}
	for _, dir := range []string{"blobs", "uploads", "tmp"} {
		fi, err := os.Stat(filepath.Join(root, dir))
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, %v; want a 0700 directory", dir, fi.Mode(), err)
		}
	}
}

// TestFSFailedPutsLeaveNothing checks every failing Put against the data directory
// itself: no blob, no temp file.
func TestFSFailedPutsLeaveNothing(t *testing.T) {
	data := storetest.Random(t, 3*mib+1)
	d := digest.FromBytes(data)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name string
		ctx  context.Context
		d    digest.Digest
		body io.Reader
		size int64
		want error
	}{
		{"wrong digest", context.Background(), digest.FromBytes(data[1:]), bytes.NewReader(data), int64(len(data)), blobstore.ErrDigestMismatch},
		{"wrong digest sha512", context.Background(), digest.SHA512.FromBytes(data[1:]), bytes.NewReader(data), -1, blobstore.ErrDigestMismatch},
		{"short body", context.Background(), d, bytes.NewReader(data[:len(data)-1]), int64(len(data)), blobstore.ErrSizeMismatch},
		{"long body", context.Background(), d, bytes.NewReader(data), int64(len(data) - 1), blobstore.ErrSizeMismatch},
		{"body fails midway", context.Background(), d, storetest.FailAfter(data, 2*mib), int64(len(data)), storetest.ErrBody},
		{"cancelled", cancelled, d, bytes.NewReader(data), int64(len(data)), context.Canceled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, root := newFS(t)
			if _, err := s.Put(tc.ctx, tc.d, tc.body, tc.size); !errors.Is(err, tc.want) {
				t.Fatalf("Put = %v, want %v", err, tc.want)
			}
			if files := listFiles(t, root); len(files) != 0 {
				t.Fatalf("files left after a failed Put: %v", files)
			}
		})
	}
}

func TestFSNewFSClearsTemp(t *testing.T) {
	_, root := newFS(t)
	debris := []string{filepath.Join(root, "tmp", "put-123"), filepath.Join(root, "tmp", "dir", "x")}
	for _, p := range debris {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("half a blob"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := blobstore.NewFS(root); err != nil {
		t.Fatal(err)
	}
	assertEmptyDir(t, filepath.Join(root, "tmp"))
}

func TestFSConcurrentPutsOneFile(t *testing.T) {
	ctx := context.Background()
	s, root := newFS(t)
	data := storetest.Random(t, 2*mib+3)
	d := digest.FromBytes(data)
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Go(func() {
			_, err := s.Put(ctx, d, bytes.NewReader(data), int64(len(data)))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	want := []string{filepath.Join("blobs", "sha256", d.Encoded()[:2], d.Encoded())}
	if got := listFiles(t, root); len(got) != 1 || got[0] != want[0] {
		t.Fatalf("files = %v, want %v", got, want)
	}
}

func TestFSExistingBlobSurvivesBadPut(t *testing.T) {
	ctx := context.Background()
	s, root := newFS(t)
	data := storetest.Random(t, mib)
	d := digest.FromBytes(data)
	if _, err := s.Put(ctx, d, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(data)
	bad[mib/2] ^= 1
	if _, err := s.Put(ctx, d, bytes.NewReader(bad), int64(len(bad))); !errors.Is(err, blobstore.ErrDigestMismatch) {
		t.Fatalf("Put(flipped bit) = %v, want ErrDigestMismatch", err)
	}
	got, err := os.ReadFile(filepath.Join(root, "blobs", "sha256", d.Encoded()[:2], d.Encoded()))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("existing blob changed (err %v)", err)
	}
	assertEmptyDir(t, filepath.Join(root, "tmp"))
}

// TestFSResumeAfterCrash simulates a server killed mid-PATCH: the upload file holds bytes
// past the offset the metadata recorded. A fresh FS on the same root (a restart) must
// discard them, continue from the recorded hash state and commit the right digest.
func TestFSResumeAfterCrash(t *testing.T) {
	ctx := context.Background()
	s1, root := newFS(t)
	data := storetest.Random(t, 3*mib+77)
	id := storetest.NewID(t)
	st := storetest.Append(t, s1, id, storetest.CreateUpload(t, s1, id), data[:mib+1])

	upload := filepath.Join(root, "uploads", id)
	garbage := func() {
		f, err := os.OpenFile(upload, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(storetest.Random(t, 123457)); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	garbage()

	s2, err := blobstore.NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	st = storetest.Append(t, s2, id, st, data[mib+1:])
	garbage() // and a crash between the last PATCH and the PUT
	d := digest.FromBytes(data)
	if loc, err := s2.CommitUpload(ctx, id, st, d); err != nil || loc != "" {
		t.Fatalf("CommitUpload after crashes = %q, %v; want the blob's own key", loc, err)
	}
	got, err := os.ReadFile(filepath.Join(root, "blobs", "sha256", d.Encoded()[:2], d.Encoded()))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("committed blob differs (err %v)", err)
	}
	if _, err := os.Stat(upload); !os.IsNotExist(err) {
		t.Fatalf("upload file still there after commit: %v", err)
	}
}

// TestFSHashStateAcrossRestart checks that the marshalled state is a real sha256 state:
// resuming it in a new process gives the digest of all the bytes.
func TestFSHashStateAcrossRestart(t *testing.T) {
	s1, root := newFS(t)
	data := storetest.Random(t, 2*mib+5)
	id := storetest.NewID(t)
	st := storetest.Append(t, s1, id, storetest.CreateUpload(t, s1, id), data[:1000])
	s2, err := blobstore.NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	st = storetest.Append(t, s2, id, st, data[1000:])
	if len(st.HashState) == 0 {
		t.Fatal("AppendUpload returned no hash state")
	}
	// Resume the state independently of the store and compare with the real digest.
	h := sha256.New()
	if err := h.(interface{ UnmarshalBinary([]byte) error }).UnmarshalBinary(st.HashState); err != nil {
		t.Fatal(err)
	}
	if got, want := digest.NewDigest(digest.SHA256, h), digest.FromBytes(data); got != want {
		t.Fatalf("hash state sums to %s, want %s", got, want)
	}
}

func TestFSFailedAppendTruncates(t *testing.T) {
	ctx := context.Background()
	s, root := newFS(t)
	data := storetest.Random(t, 3*mib)
	id := storetest.NewID(t)
	st := storetest.Append(t, s, id, storetest.CreateUpload(t, s, id), data[:mib])
	if _, err := s.AppendUpload(ctx, id, st, storetest.FailAfter(data[mib:], mib+9)); !errors.Is(err, storetest.ErrBody) {
		t.Fatalf("AppendUpload(failing body) = %v", err)
	}
	fi, err := os.Stat(filepath.Join(root, "uploads", id))
	if err != nil || fi.Size() != st.Offset {
		t.Fatalf("upload file after a failed append: %v, %v; want %d bytes", fi, err, st.Offset)
	}
}

func TestFSCommitWrongDigestKeepsFile(t *testing.T) {
	ctx := context.Background()
	s, root := newFS(t)
	data := storetest.Random(t, 1000)
	id := storetest.NewID(t)
	st := storetest.Append(t, s, id, storetest.CreateUpload(t, s, id), data)
	if _, err := s.CommitUpload(ctx, id, st, digest.FromBytes(data[1:])); !errors.Is(err, blobstore.ErrDigestMismatch) {
		t.Fatalf("CommitUpload(wrong) = %v", err)
	}
	got, err := os.ReadFile(filepath.Join(root, "uploads", id))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("upload data after a refused commit: %v", err)
	}
	if files := listFiles(t, filepath.Join(root, "blobs")); len(files) != 0 {
		t.Fatalf("blobs after a refused commit: %v", files)
	}
}

// TestFSUploadShorterThanState covers data lost behind the metadata's back: the store
// must refuse rather than commit or extend a hole.
func TestFSUploadShorterThanState(t *testing.T) {
	ctx := context.Background()
	s, root := newFS(t)
	data := storetest.Random(t, 1000)
	id := storetest.NewID(t)
	st := storetest.Append(t, s, id, storetest.CreateUpload(t, s, id), data)
	if err := os.Truncate(filepath.Join(root, "uploads", id), 10); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendUpload(ctx, id, st, bytes.NewReader(data)); !errors.Is(err, blobstore.ErrUploadNotFound) {
		t.Fatalf("AppendUpload = %v, want ErrUploadNotFound", err)
	}
	if _, err := s.CommitUpload(ctx, id, st, digest.FromBytes(data)); !errors.Is(err, blobstore.ErrUploadNotFound) {
		t.Fatalf("CommitUpload = %v, want ErrUploadNotFound", err)
	}
}

// TestFSUploadIDsStayInside checks on disk that no invalid id creates or removes anything
// outside uploads/.
func TestFSUploadIDsStayInside(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	root := filepath.Join(base, "data")
	s, err := blobstore.NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	// Targets an escaping id could reach.
	victim := filepath.Join(base, "x")
	if err := os.WriteFile(victim, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	ids := append([]string{"../x", "../../x", "../tmp", "../blobs"}, storetest.InvalidIDs...)
	for _, id := range ids {
		if _, err := s.CreateUpload(ctx, id); err == nil {
			t.Errorf("CreateUpload(%q) succeeded", id)
		}
		if err := s.AbortUpload(ctx, id); err == nil {
			t.Errorf("AbortUpload(%q) succeeded", id)
		}
	}
	if got, err := os.ReadFile(victim); err != nil || string(got) != "keep" {
		t.Fatalf("file outside the store touched: %q, %v", got, err)
	}
	for _, dir := range []string{"blobs", "tmp", "uploads"} {
		if _, err := os.Stat(filepath.Join(root, dir)); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
	}
	if files := listFiles(t, base); len(files) != 1 {
		t.Fatalf("files = %v, want only the victim", files)
	}
}

// benchSize is one large layer, as in the push benchmark.
const benchSize = 64 * mib

// httpBody hides bytes.Reader's WriterTo so both benchmarks read in small pieces the way
// an HTTP request body is read.
type httpBody struct{ r io.Reader }

func (b httpBody) Read(p []byte) (int, error) { return b.r.Read(p) }

// BenchmarkPut measures FS.Put of a 64 MiB blob end to end (pipelined copy, fsync,
// rename). Compare with BenchmarkPutNaive.
func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	s, _ := newFS(b)
	data := storetest.Random(b, benchSize)
	d := digest.FromBytes(data)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Put(ctx, d, httpBody{bytes.NewReader(data)}, benchSize); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.Delete(ctx, d, ""); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkPutNaive is the same put done serially with io.Copy into
// io.MultiWriter(file, hash): the baseline the pipeline has to beat.
func BenchmarkPutNaive(b *testing.B) {
	dir := b.TempDir()
	data := storetest.Random(b, benchSize)
	d := digest.FromBytes(data)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		final := naivePut(b, dir, d, data)
		b.StopTimer()
		os.Remove(final)
		b.StartTimer()
	}
}

// naivePut stores data as a blob the serial way: temp file, io.Copy into
// io.MultiWriter(file, sha256), check, fsync, rename. It returns the blob's path.
func naivePut(b *testing.B, dir string, d digest.Digest, data []byte) string {
	f, err := os.CreateTemp(dir, "put-*")
	if err != nil {
		b.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), httpBody{bytes.NewReader(data)}); err != nil {
		b.Fatal(err)
	}
	if digest.NewDigest(digest.SHA256, h) != d {
		b.Fatal("digest mismatch")
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	final := filepath.Join(dir, "blob")
	if err := os.Rename(f.Name(), final); err != nil {
		b.Fatal(err)
	}
	return final
}

// BenchmarkPutVsNaive alternates FS.Put and naivePut in each iteration, so load from
// other processes hits both alike, and reports both speeds and their ratio.
func BenchmarkPutVsNaive(b *testing.B) {
	ctx := context.Background()
	s, _ := newFS(b)
	dir := b.TempDir()
	data := storetest.Random(b, benchSize)
	d := digest.FromBytes(data)
	var fast, slow time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := s.Put(ctx, d, httpBody{bytes.NewReader(data)}, benchSize); err != nil {
			b.Fatal(err)
		}
		fast += time.Since(start)
		if err := s.Delete(ctx, d, ""); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		os.Remove(naivePut(b, dir, d, data))
		slow += time.Since(start)
	}
	mibps := func(d time.Duration) float64 { return float64(b.N) * benchSize / mib / d.Seconds() }
	b.ReportMetric(mibps(fast), "put-MiB/s")
	b.ReportMetric(mibps(slow), "naive-MiB/s")
	b.ReportMetric(slow.Seconds()/fast.Seconds(), "speedup")
}

// BenchmarkAppendUpload measures one 64 MiB PATCH into an upload (pipelined copy and
// fsync), the chunked counterpart of BenchmarkPut.
func BenchmarkAppendUpload(b *testing.B) {
	ctx := context.Background()
	s, _ := newFS(b)
	data := storetest.Random(b, benchSize)
	id := storetest.NewID(b)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		_ = s.AbortUpload(ctx, id)
		if _, err := s.CreateUpload(ctx, id); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := s.AppendUpload(ctx, id, blobstore.UploadState{}, httpBody{bytes.NewReader(data)}); err != nil {
			b.Fatal(err)
		}
	}
}
