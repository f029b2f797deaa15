package blobstore

import (
	"context"
	"hash"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// The copier keeps copyBufCount buffers of copyBufSize in flight per stream: enough that
// reading, hashing and writing each have a buffer to work on while a fourth is queued, and
// little enough (4 MiB) that many concurrent pushes stay within the server's memory budget.
const (
	copyBufSize  = 1 << 20
	copyBufCount = 4
	// maxEmptyReads bounds a reader that keeps returning (0, nil), as bufio does.
	maxEmptyReads = 100
)

var copyBufPool = sync.Pool{New: func() any {
	b := make([]byte, copyBufSize)
	return &b
}}

// chunk is one buffer travelling through the pipeline. refs counts the stages (hasher,
// writer) that still need it; the last one to finish hands it back to the reader.
type chunk struct {
	buf  *[]byte
	n    int
	refs atomic.Int32
}

// copyHashed copies src to dst and feeds every byte to h, like io.Copy into
// io.MultiWriter(dst, h), but as a pipeline: the calling goroutine reads into one buffer
// while a second goroutine hashes an earlier one and a third writes it. Hashing is the
// slowest stage (sha256 is about as fast as a disk write plus a socket read together), so
// overlapping it with the syscalls is what lets a single stream approach the hash's speed.
//
// When limit >= 0, at most limit+1 bytes are read from src and more than limit bytes
// available is ErrSizeMismatch (fewer is the caller's business). ctx is checked between
// buffers. On error the returned count is meaningless and dst holds an unspecified prefix.
func copyHashed(ctx context.Context, dst io.Writer, src io.Reader, h hash.Hash, limit int64) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	free := make(chan *chunk, copyBufCount)
	for range copyBufCount {
		free <- &chunk{buf: copyBufPool.Get().(*[]byte)}
	}
	// Both channels can hold every chunk, so the reader never blocks on a send and only
	// waits for a free buffer.
	toHash := make(chan *chunk, copyBufCount)
	toWrite := make(chan *chunk, copyBufCount)
	release := func(c *chunk) {
		if c.refs.Add(-1) == 0 {
			free <- c
		}
	}

	// stop is closed by the writer on its first error so the reader and hasher give up
	// early instead of pushing the rest of a large body through a broken pipe.
	stop := make(chan struct{})
	var werr error
	var wg sync.WaitGroup
	wg.Go(func() {
		for c := range toHash {
			select {
			case <-stop:
			default:
				h.Write((*c.buf)[:c.n])
			}
			release(c)
		}
	})
	wg.Go(func() {
		for c := range toWrite {
			if werr == nil {
				if _, err := dst.Write((*c.buf)[:c.n]); err != nil {
					werr = err
					close(stop)
				}
			}
			release(c)
		}
	})

	var n int64
	var err error
read:
	for {
		var c *chunk
		select {
		case c = <-free:
		case <-stop:
			break read
		case <-ctx.Done():
			err = ctx.Err()
			break read
		}
		if err = ctx.Err(); err != nil {
			free <- c
			break
		}
		buf := *c.buf
		if limit >= 0 && limit-n+1 < int64(len(buf)) {
			// One byte past the limit is enough to tell "too long" from "exact".
			buf = buf[:limit-n+1]
		}
		k, rerr := readFull(src, buf)
		if limit >= 0 && n+int64(k) > limit {
			free <- c
			err = ErrSizeMismatch
			break
		}
		if k > 0 {
			c.n = k
			c.refs.Store(2)
			toHash <- c
			toWrite <- c
			n += int64(k)
		} else {
			free <- c
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			err = rerr
			break
		}
	}
	close(toHash)
	close(toWrite)
	wg.Wait()
	for range copyBufCount {
		copyBufPool.Put((<-free).buf)
	}
	if werr != nil {
		return n, werr
	}
	return n, err
}

// readFull fills buf from r. It returns io.EOF only with the bytes read before it, so a
// short final buffer is still delivered, and io.ErrNoProgress for a reader that is stuck
// returning nothing.
func readFull(r io.Reader, buf []byte) (int, error) {
	k, empty := 0, 0
	for k < len(buf) {
		m, err := r.Read(buf[k:])
		k += m
		if err != nil {
			return k, err
		}
		if m == 0 {
			if empty++; empty >= maxEmptyReads {
				return k, io.ErrNoProgress
			}
		}
	}
	return k, nil
}

// writebackFile writes sequentially to a file from off and starts the disk writeback of
// each piece as soon as it is in the page cache (see startWriteback).
type writebackFile struct {
	f   *os.File
	off int64
}

func (w *writebackFile) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if n > 0 {
		startWriteback(w.f, w.off, int64(n))
		w.off += int64(n)
	}
	return n, err
}
