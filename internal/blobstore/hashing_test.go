package blobstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCopyHashed(t *testing.T) {
	// Sizes around the buffer boundaries and the number of buffers in flight.
	sizes := []int{0, 1, copyBufSize - 1, copyBufSize, copyBufSize + 1, copyBufCount * copyBufSize, 7*copyBufSize + 3}
	for _, size := range sizes {
		data := randomBytes(t, size)
		readers := map[string]io.Reader{
			"whole":    bytes.NewReader(data),
			"onebyte":  iotest.HalfReader(iotest.OneByteReader(bytes.NewReader(data[:min(size, 4096)]))),
			"half":     iotest.HalfReader(bytes.NewReader(data)),
			"dataerr":  iotest.DataErrReader(bytes.NewReader(data)),
			"withtail": io.MultiReader(bytes.NewReader(data), bytes.NewReader(nil)),
		}
		for name, r := range readers {
			want := data
			if name == "onebyte" {
				want = data[:min(size, 4096)]
			}
			var dst bytes.Buffer
			h := sha512.New()
			n, err := copyHashed(context.Background(), &dst, r, h, -1)
			if err != nil || n != int64(len(want)) {
				t.Fatalf("size %d %s: copyHashed = %d, %v; want %d, nil", size, name, n, err, len(want))
			}
			if !bytes.Equal(dst.Bytes(), want) {
				t.Fatalf("size %d %s: written bytes differ", size, name)
			}
			if sum := sha512.Sum512(want); !bytes.Equal(h.Sum(nil), sum[:]) {
				t.Fatalf("size %d %s: hash differs", size, name)
			}
		}
	}
}

func TestCopyHashedLimit(t *testing.T) {
	data := randomBytes(t, 2*copyBufSize)
	for _, tc := range []struct {
		limit int64
		want  error
	}{
		{int64(len(data)), nil},
		{int64(len(data)) + 1, nil}, // fewer bytes than the limit is the caller's check
		{int64(len(data)) - 1, ErrSizeMismatch},
		{copyBufSize, ErrSizeMismatch},
		{0, ErrSizeMismatch},
	} {
		n, err := copyHashed(context.Background(), io.Discard, bytes.NewReader(data), sha256.New(), tc.limit)
		if !errors.Is(err, tc.want) {
			t.Errorf("limit %d: err %v, want %v", tc.limit, err, tc.want)
		}
		if err == nil && n != int64(len(data)) {
			t.Errorf("limit %d: n = %d", tc.limit, n)
		}
	}
}

// failingWriter accepts ok bytes and then fails, like a full disk.
type failingWriter struct{ ok int }

var errDiskFull = errors.New("disk full")

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.ok {
		return 0, errDiskFull
	}
	w.ok -= len(p)
	return len(p), nil
}

// countingZeros serves zeros forever and counts them.
type countingZeros struct{ n int64 }

func (c *countingZeros) Read(p []byte) (int, error) {
	clear(p)
	c.n += int64(len(p))
	return len(p), nil
}

func TestCopyHashedWriteErrorStopsReading(t *testing.T) {
	src := &countingZeros{}
	_, err := copyHashed(context.Background(), &failingWriter{ok: copyBufSize}, src, sha256.New(), -1)
	if !errors.Is(err, errDiskFull) {
		t.Fatalf("err = %v, want the writer's error", err)
	}
	// The reader may be a few buffers ahead of the writer, never unbounded.
	if src.n > int64(2*copyBufCount+2)*copyBufSize {
		t.Fatalf("read %d bytes after the writer failed", src.n)
	}
}

func TestCopyHashedReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(bytes.NewReader(randomBytes(t, 3*copyBufSize/2)), iotest.ErrReader(boom))
	if _, err := copyHashed(context.Background(), io.Discard, r, sha256.New(), -1); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the reader's error", err)
	}
}

func TestCopyHashedNoProgress(t *testing.T) {
	r := iotest.ErrReader(nil) // (0, nil) forever
	if _, err := copyHashed(context.Background(), io.Discard, r, sha256.New(), -1); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("err = %v, want io.ErrNoProgress", err)
	}
}

func TestCopyHashedCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	src := &cancellingZeros{cancel: cancel, after: 2 * copyBufSize}
	_, err := copyHashed(ctx, io.Discard, src, sha256.New(), -1)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if src.n > 4*copyBufSize {
		t.Fatalf("read %d bytes after cancellation at %d", src.n, 2*copyBufSize)
	}
}

type cancellingZeros struct {
	countingZeros
	after  int64
	cancel context.CancelFunc
}

func (c *cancellingZeros) Read(p []byte) (int, error) {
	n, err := c.countingZeros.Read(p)
	if c.n >= c.after {
		c.cancel()
	}
	return n, err
}

// BenchmarkCopyHashed and BenchmarkCopyNaive isolate the copier from the disk: 64 MiB
// into io.Discard, pipelined versus io.Copy into io.MultiWriter.
func BenchmarkCopyHashed(b *testing.B) {
	data := randomBytes(b, 64<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := copyHashed(context.Background(), io.Discard, struct{ io.Reader }{bytes.NewReader(data)}, sha256.New(), -1); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCopyNaive(b *testing.B) {
	data := randomBytes(b, 64<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := io.Copy(io.MultiWriter(io.Discard, sha256.New()), struct{ io.Reader }{bytes.NewReader(data)}); err != nil {
			b.Fatal(err)
		}
	}
}
