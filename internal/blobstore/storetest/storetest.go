// Package storetest is the behaviour every blobstore.Store must show, written once and run
// against each real implementation (filesystem here, S3 against a real S3 server), so the
// registry can rely on the contract rather than on one backend.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/opencontainers/go-digest"
)

// Sizes chosen to straddle the 1 MiB buffers of the streaming copier and a few MiB of
// in-flight data, so partial buffers and multi-buffer streams are both exercised.
const (
	mib      = 1 << 20
	blobSize = 3*mib + 12345
)

// Run exercises s through the Store interface only. Each subtest uses fresh random
// content, so s may be shared and need not be empty.
func Run(t *testing.T, s blobstore.Store) {
	ctx := context.Background()

	t.Run("Ping", func(t *testing.T) {
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})

	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		t.Run("RoundTrip/"+string(alg), func(t *testing.T) {
			data := Random(t, blobSize)
			d := alg.FromBytes(data)
			mustPut(t, s, d, data)
			checkBlob(t, s, d, "", data)

			rc, _, err := s.Open(ctx, d, "")
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if _, err := rc.Seek(int64(blobSize-10), io.SeekStart); err != nil {
				t.Fatalf("Seek: %v", err)
			}
			tail, err := io.ReadAll(rc)
			if err != nil || !bytes.Equal(tail, data[blobSize-10:]) {
				t.Fatalf("read after Seek = %x, %v; want %x", tail, err, data[blobSize-10:])
			}

			if err := s.Delete(ctx, d, ""); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			checkAbsent(t, s, d, "")
			if err := s.Delete(ctx, d, ""); err != nil {
				t.Fatalf("second Delete: %v, want nil (idempotent)", err)
			}
		})
	}

	t.Run("EmptyBlob", func(t *testing.T) {
		d := digest.FromBytes(nil)
		mustPut(t, s, d, nil)
		checkBlob(t, s, d, "", nil)
	})

	t.Run("UnknownSize", func(t *testing.T) {
		data := Random(t, blobSize)
		d := digest.FromBytes(data)
		n, err := s.Put(ctx, d, bytes.NewReader(data), -1)
		if err != nil || n != int64(len(data)) {
			t.Fatalf("Put(size -1) = %d, %v; want %d, nil", n, err, len(data))
		}
		checkBlob(t, s, d, "", data)
	})

	t.Run("WrongDigest", func(t *testing.T) {
		data := Random(t, blobSize)
		d := digest.FromBytes(Random(t, 16))
		_, err := s.Put(ctx, d, bytes.NewReader(data), int64(len(data)))
		if !errors.Is(err, blobstore.ErrDigestMismatch) {
			t.Fatalf("Put(wrong digest) = %v, want ErrDigestMismatch", err)
		}
		checkAbsent(t, s, d, "")
		checkAbsent(t, s, digest.FromBytes(data), "")
	})

	t.Run("ShortBody", func(t *testing.T) {
		data := Random(t, blobSize)
		d := digest.FromBytes(data)
		_, err := s.Put(ctx, d, bytes.NewReader(data[:len(data)-1]), int64(len(data)))
		if !errors.Is(err, blobstore.ErrSizeMismatch) {
			t.Fatalf("Put(short body) = %v, want ErrSizeMismatch", err)
		}
		checkAbsent(t, s, d, "")
	})

	t.Run("LongBody", func(t *testing.T) {
		data := Random(t, blobSize)
		d := digest.FromBytes(data)
		_, err := s.Put(ctx, d, bytes.NewReader(append(data, 'x')), int64(len(data)))
		if !errors.Is(err, blobstore.ErrSizeMismatch) {
			t.Fatalf("Put(long body) = %v, want ErrSizeMismatch", err)
		}
		checkAbsent(t, s, d, "")
	})

	t.Run("EndlessBodyIsNotReadToTheEnd", func(t *testing.T) {
		// The body would run for 256 MiB and then fail; a store that honours the declared
		// size stops long before and reports the size, not the body's error.
		body := &endless{failAfter: 256 * mib}
		d := digest.FromBytes(Random(t, 16))
		_, err := s.Put(ctx, d, body, mib)
		if !errors.Is(err, blobstore.ErrSizeMismatch) {
			t.Fatalf("Put(endless body, size 1 MiB) = %v, want ErrSizeMismatch", err)
		}
		if body.read > 32*mib {
			t.Fatalf("Put read %d bytes of a body declared as %d", body.read, mib)
		}
		checkAbsent(t, s, d, "")
	})

	t.Run("BodyFailsMidway", func(t *testing.T) {
		data := Random(t, blobSize)
		d := digest.FromBytes(data)
		_, err := s.Put(ctx, d, FailAfter(data, 2*mib+7), int64(len(data)))
		if !errors.Is(err, ErrBody) {
			t.Fatalf("Put(failing body) = %v, want the body's error", err)
		}
		checkAbsent(t, s, d, "")
	})

	t.Run("CancelledBefore", func(t *testing.T) {
		data := Random(t, blobSize)
		d := digest.FromBytes(data)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := s.Put(cctx, d, bytes.NewReader(data), int64(len(data)))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Put(cancelled ctx) = %v, want context.Canceled", err)
		}
		checkAbsent(t, s, d, "")
	})

	t.Run("CancelledMidway", func(t *testing.T) {
		data := Random(t, 8*mib)
		d := digest.FromBytes(data)
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		body := &cancelAfter{r: bytes.NewReader(data), after: 2 * mib, cancel: cancel}
		_, err := s.Put(cctx, d, body, int64(len(data)))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Put(ctx cancelled midway) = %v, want context.Canceled", err)
		}
		checkAbsent(t, s, d, "")
	})

	t.Run("ExistingBlobWrongBytes", func(t *testing.T) {
		data := Random(t, blobSize)
		d := digest.FromBytes(data)
		mustPut(t, s, d, data)
		other := Random(t, blobSize)
		_, err := s.Put(ctx, d, bytes.NewReader(other), int64(len(other)))
		if !errors.Is(err, blobstore.ErrDigestMismatch) {
			t.Fatalf("Put(existing digest, other bytes) = %v, want ErrDigestMismatch", err)
		}
		checkBlob(t, s, d, "", data)
		// The right bytes again are accepted and keep the blob as it was.
		mustPut(t, s, d, data)
		checkBlob(t, s, d, "", data)
	})

	t.Run("ConcurrentPutsOfOneBlob", func(t *testing.T) {
		data := Random(t, blobSize)
		d := digest.FromBytes(data)
		var wg sync.WaitGroup
		errs := make([]error, 10)
		for i := range errs {
			wg.Go(func() {
				n, err := s.Put(ctx, d, bytes.NewReader(data), int64(len(data)))
				if err == nil && n != int64(len(data)) {
					err = fmt.Errorf("wrote %d bytes, want %d", n, len(data))
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Put #%d: %v", i, err)
			}
		}
		checkBlob(t, s, d, "", data)
	})

	t.Run("InvalidDigest", func(t *testing.T) {
		for _, d := range []digest.Digest{"", "sha256:../../x", "sha256:abc", "md5:d41d8cd98f00b204e9800998ecf8427e"} {
			if _, err := s.Put(ctx, d, bytes.NewReader(nil), 0); err == nil {
				t.Errorf("Put(%q) succeeded", d)
			}
			if _, err := s.Stat(ctx, d, ""); !errors.Is(err, blobstore.ErrNotFound) {
				t.Errorf("Stat(%q) = %v, want ErrNotFound", d, err)
			}
		}
	})

	t.Run("InvalidLocation", func(t *testing.T) {
		// A location only a store that never returns one may ignore; the others must
		// refuse anything they did not hand out rather than name another key.
		d := digest.FromBytes(Random(t, 16))
		for _, loc := range []string{"../x", "by-upload/../../blobs", "by-upload/", "/etc/passwd"} {
			if _, err := s.Stat(ctx, d, loc); !errors.Is(err, blobstore.ErrNotFound) {
				t.Errorf("Stat(%s, %q) = %v, want ErrNotFound", d, loc, err)
			}
			if err := s.Delete(ctx, d, loc); err != nil {
				t.Errorf("Delete(%s, %q) = %v, want nil (names nothing)", d, loc, err)
			}
		}
	})

	runUploads(t, s)
}

func runUploads(t *testing.T, s blobstore.Store) {
	ctx := context.Background()

	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		t.Run("UploadInChunks/"+string(alg), func(t *testing.T) {
			data := Random(t, 3*mib+333)
			id := NewID(t)
			st := CreateUpload(t, s, id)
			cuts := []int{0, mib / 2, 2*mib + 1, len(data)}
			for i := 1; i < len(cuts); i++ {
				st = Append(t, s, id, st, data[cuts[i-1]:cuts[i]])
				if st.Offset != int64(cuts[i]) {
					t.Fatalf("after chunk %d offset = %d, want %d", i, st.Offset, cuts[i])
				}
			}
			d := alg.FromBytes(data)
			loc, err := s.CommitUpload(ctx, id, st, d)
			if err != nil {
				t.Fatalf("CommitUpload: %v", err)
			}
			checkBlob(t, s, d, loc, data)
			if _, err := s.AppendUpload(ctx, id, st, bytes.NewReader([]byte("x"))); !errors.Is(err, blobstore.ErrUploadNotFound) {
				t.Fatalf("AppendUpload after commit = %v, want ErrUploadNotFound", err)
			}
			// A Delete at the location removes the blob.
			if err := s.Delete(ctx, d, loc); err != nil {
				t.Fatalf("Delete(%s, %q): %v", d, loc, err)
			}
			checkAbsent(t, s, d, loc)
			if err := s.AbortUpload(ctx, id); err != nil {
				t.Fatalf("AbortUpload after commit = %v, want nil", err)
			}
		})
	}

	t.Run("AbortAfterCommit", func(t *testing.T) {
		// The owner of an upload whose commit was never recorded discards it: the
		// bytes at the upload's own location go, those at the digest's own key stay.
		// (11 MiB: more than one S3 part, so the S3 store completes it in place.)
		data := Random(t, 11*mib+333)
		d := digest.FromBytes(data)
		id := NewID(t)
		st := Append(t, s, id, CreateUpload(t, s, id), data)
		loc, err := s.CommitUpload(ctx, id, st, d)
		if err != nil {
			t.Fatalf("CommitUpload: %v", err)
		}
		if err := s.AbortUpload(ctx, id); err != nil {
			t.Fatalf("AbortUpload after commit = %v, want nil", err)
		}
		if loc != "" {
			checkAbsent(t, s, d, loc)
		} else {
			checkBlob(t, s, d, "", data)
		}
	})

	t.Run("EmptyUpload", func(t *testing.T) {
		id := NewID(t)
		st := CreateUpload(t, s, id)
		d := digest.FromBytes(nil)
		loc, err := s.CommitUpload(ctx, id, st, d)
		if err != nil {
			t.Fatalf("CommitUpload(empty): %v", err)
		}
		checkBlob(t, s, d, loc, nil)
	})

	t.Run("AppendFailsMidway", func(t *testing.T) {
		data := Random(t, 4*mib)
		id := NewID(t)
		st := Append(t, s, id, CreateUpload(t, s, id), data[:mib])
		failed, err := s.AppendUpload(ctx, id, st, FailAfter(data[mib:], mib+5))
		if !errors.Is(err, ErrBody) {
			t.Fatalf("AppendUpload(failing body) = %v, want the body's error", err)
		}
		if failed.Offset != st.Offset || !bytes.Equal(failed.HashState, st.HashState) {
			t.Fatalf("failed AppendUpload returned state at %d, want unchanged %d", failed.Offset, st.Offset)
		}
		// The client resends from the last good offset.
		st = Append(t, s, id, st, data[mib:])
		d := digest.FromBytes(data)
		loc, err := s.CommitUpload(ctx, id, st, d)
		if err != nil {
			t.Fatalf("CommitUpload after a failed append: %v", err)
		}
		checkBlob(t, s, d, loc, data)
	})

	t.Run("AppendCancelled", func(t *testing.T) {
		data := Random(t, 2*mib)
		id := NewID(t)
		st := Append(t, s, id, CreateUpload(t, s, id), data[:mib])
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.AppendUpload(cctx, id, st, bytes.NewReader(data[mib:])); !errors.Is(err, context.Canceled) {
			t.Fatalf("AppendUpload(cancelled) = %v, want context.Canceled", err)
		}
		st = Append(t, s, id, st, data[mib:])
		d := digest.FromBytes(data)
		loc, err := s.CommitUpload(ctx, id, st, d)
		if err != nil {
			t.Fatalf("CommitUpload: %v", err)
		}
		checkBlob(t, s, d, loc, data)
	})

	t.Run("CommitWrongDigestKeepsUpload", func(t *testing.T) {
		data := Random(t, mib+1)
		id := NewID(t)
		st := Append(t, s, id, CreateUpload(t, s, id), data)
		for _, wrong := range []digest.Digest{digest.FromBytes(data[1:]), digest.SHA512.FromBytes(data[1:])} {
			if _, err := s.CommitUpload(ctx, id, st, wrong); !errors.Is(err, blobstore.ErrDigestMismatch) {
				t.Fatalf("CommitUpload(%s) = %v, want ErrDigestMismatch", wrong.Algorithm(), err)
			}
			checkAbsent(t, s, wrong, "")
		}
		d := digest.FromBytes(data)
		loc, err := s.CommitUpload(ctx, id, st, d)
		if err != nil {
			t.Fatalf("CommitUpload(right digest) after a wrong one: %v", err)
		}
		checkBlob(t, s, d, loc, data)
	})

	t.Run("NoHashState", func(t *testing.T) {
		// A caller that lost (or never kept) the hash state: the store rehashes the data.
		data := Random(t, 2*mib+9)
		id := NewID(t)
		st := Append(t, s, id, CreateUpload(t, s, id), data[:mib+3])
		st.HashState = nil
		st = Append(t, s, id, st, data[mib+3:])
		st.HashState = nil
		if _, err := s.CommitUpload(ctx, id, st, digest.FromBytes(data[1:])); !errors.Is(err, blobstore.ErrDigestMismatch) {
			t.Fatalf("CommitUpload(wrong, no state) = %v, want ErrDigestMismatch", err)
		}
		d := digest.FromBytes(data)
		loc, err := s.CommitUpload(ctx, id, st, d)
		if err != nil {
			t.Fatalf("CommitUpload(no state): %v", err)
		}
		checkBlob(t, s, d, loc, data)
	})

	t.Run("CommitExistingBlob", func(t *testing.T) {
		data := Random(t, mib)
		d := digest.FromBytes(data)
		mustPut(t, s, d, data)
		id := NewID(t)
		st := Append(t, s, id, CreateUpload(t, s, id), data)
		loc, err := s.CommitUpload(ctx, id, st, d)
		if err != nil {
			t.Fatalf("CommitUpload of an existing blob: %v", err)
		}
		checkBlob(t, s, d, loc, data)
		// Both copies read until the registry deletes the redundant one.
		checkBlob(t, s, d, "", data)
		if loc != "" {
			if err := s.Delete(ctx, d, loc); err != nil {
				t.Fatalf("Delete(%s, %q): %v", d, loc, err)
			}
			checkBlob(t, s, d, "", data)
		}
	})

	t.Run("Abort", func(t *testing.T) {
		id := NewID(t)
		st := Append(t, s, id, CreateUpload(t, s, id), Random(t, 100))
		if err := s.AbortUpload(ctx, id); err != nil {
			t.Fatalf("AbortUpload: %v", err)
		}
		if err := s.AbortUpload(ctx, id); err != nil {
			t.Fatalf("second AbortUpload: %v, want nil (idempotent)", err)
		}
		if _, err := s.AppendUpload(ctx, id, st, bytes.NewReader([]byte("x"))); !errors.Is(err, blobstore.ErrUploadNotFound) {
			t.Fatalf("AppendUpload after abort = %v, want ErrUploadNotFound", err)
		}
	})

	t.Run("UnknownUpload", func(t *testing.T) {
		id := NewID(t)
		if _, err := s.AppendUpload(ctx, id, blobstore.UploadState{}, bytes.NewReader([]byte("x"))); !errors.Is(err, blobstore.ErrUploadNotFound) {
			t.Fatalf("AppendUpload(unknown) = %v, want ErrUploadNotFound", err)
		}
		if _, err := s.CommitUpload(ctx, id, blobstore.UploadState{}, digest.FromBytes(nil)); !errors.Is(err, blobstore.ErrUploadNotFound) {
			t.Fatalf("CommitUpload(unknown) = %v, want ErrUploadNotFound", err)
		}
	})

	t.Run("InvalidUploadIDs", func(t *testing.T) {
		for _, id := range InvalidIDs {
			if _, err := s.CreateUpload(ctx, id); err == nil {
				t.Errorf("CreateUpload(%q) succeeded", id)
			}
			if _, err := s.AppendUpload(ctx, id, blobstore.UploadState{}, bytes.NewReader([]byte("x"))); !errors.Is(err, blobstore.ErrUploadNotFound) {
				t.Errorf("AppendUpload(%q) = %v, want ErrUploadNotFound", id, err)
			}
			if _, err := s.CommitUpload(ctx, id, blobstore.UploadState{}, digest.FromBytes(nil)); !errors.Is(err, blobstore.ErrUploadNotFound) {
				t.Errorf("CommitUpload(%q) = %v, want ErrUploadNotFound", id, err)
			}
		}
	})
}

// InvalidIDs are upload ids a store must refuse: each could name a path outside the
// store's upload area.
var InvalidIDs = []string{"", ".", "..", "../x", "a/b", "/etc/passwd", `a\b`, "a\x00b", "..%2f"}

// ErrBody is the error of the bodies made by FailAfter.
var ErrBody = errors.New("storetest: body failed")

// FailAfter returns a reader of data that fails with ErrBody after n bytes, like a client
// that disconnects mid-upload.
func FailAfter(data []byte, n int) io.Reader {
	return io.MultiReader(bytes.NewReader(data[:n]), iotestErr{})
}

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, ErrBody }

// endless yields zeros and counts them, failing after failAfter bytes so a store that
// reads without bound ends with the wrong error instead of hanging.
type endless struct {
	read, failAfter int
}

func (e *endless) Read(p []byte) (int, error) {
	if e.read >= e.failAfter {
		return 0, ErrBody
	}
	n := min(len(p), e.failAfter-e.read)
	clear(p[:n])
	e.read += n
	return n, nil
}

// cancelAfter cancels a context once after bytes have been read, then keeps serving data:
// the store must notice the context, not the body.
type cancelAfter struct {
	r      io.Reader
	after  int
	read   int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += n
	if c.read >= c.after {
		c.cancel()
	}
	return n, err
}

// Random returns n random bytes.
func Random(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// NewID returns a fresh uuid-like upload id.
func NewID(t testing.TB) string {
	b := Random(t, 16)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// CreateUpload starts upload id and returns its initial state.
func CreateUpload(t testing.TB, s blobstore.Store, id string) blobstore.UploadState {
	t.Helper()
	backend, err := s.CreateUpload(context.Background(), id)
	if err != nil {
		t.Fatalf("CreateUpload: %v", err)
	}
	return blobstore.UploadState{Backend: backend}
}

// Append appends data to upload id and returns the new state.
func Append(t testing.TB, s blobstore.Store, id string, st blobstore.UploadState, data []byte) blobstore.UploadState {
	t.Helper()
	next, err := s.AppendUpload(context.Background(), id, st, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("AppendUpload at %d: %v", st.Offset, err)
	}
	if want := st.Offset + int64(len(data)); next.Offset != want {
		t.Fatalf("AppendUpload offset = %d, want %d", next.Offset, want)
	}
	return next
}

func mustPut(t *testing.T, s blobstore.Store, d digest.Digest, data []byte) {
	t.Helper()
	n, err := s.Put(context.Background(), d, bytes.NewReader(data), int64(len(data)))
	if err != nil || n != int64(len(data)) {
		t.Fatalf("Put %s = %d, %v; want %d, nil", d, n, err, len(data))
	}
}

// checkBlob checks that blob d at location loc holds data.
func checkBlob(t *testing.T, s blobstore.Store, d digest.Digest, loc string, data []byte) {
	t.Helper()
	ctx := context.Background()
	size, err := s.Stat(ctx, d, loc)
	if err != nil || size != int64(len(data)) {
		t.Fatalf("Stat %s = %d, %v; want %d, nil", d, size, err, len(data))
	}
	rc, size, err := s.Open(ctx, d, loc)
	if err != nil {
		t.Fatalf("Open %s: %v", d, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", d, err)
	}
	if size != int64(len(data)) || !bytes.Equal(got, data) {
		t.Fatalf("blob %s: size %d, %d bytes read, content equal %v; want %d bytes", d, size, len(got), bytes.Equal(got, data), len(data))
	}
}

// checkAbsent checks that no blob d is at location loc.
func checkAbsent(t *testing.T, s blobstore.Store, d digest.Digest, loc string) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Stat(ctx, d, loc); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("Stat %s = %v, want ErrNotFound", d, err)
	}
	if rc, _, err := s.Open(ctx, d, loc); !errors.Is(err, blobstore.ErrNotFound) {
		if rc != nil {
			rc.Close()
		}
		t.Fatalf("Open %s = %v, want ErrNotFound", d, err)
	}
}
