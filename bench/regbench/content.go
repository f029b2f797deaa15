package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"fmt"
	"io"
	"sync/atomic"
)

// tailLen is the unique suffix of every blob. Putting the unique bytes at the end lets
// all blobs of one size share one hashed prefix, so a digest costs 32 bytes of hashing
// instead of a full pass, and the load generator keeps its CPU for sending.
const tailLen = 32

// maxPattern bounds the random period repeated through a blob: large enough that the
// bytes never sit in a CPU cache, small enough that a 1 GiB blob costs 32 MiB of memory.
const maxPattern = 32 << 20

// contentSet makes blobs of one size: a random pattern repeated up to size-tailLen, then
// a tail unique to the run and the blob. No registry deduplicates below the blob level,
// so each blob is new content to the server.
type contentSet struct {
	size    int64
	pattern []byte
	prefix  []byte // marshalled sha256 state after the shared prefix
	nonce   [16]byte
	next    atomic.Uint64
}

// newContentSet draws the pattern and the run nonce and hashes the shared prefix once.
func newContentSet(size int64) (*contentSet, error) {
	if size < 2*tailLen {
		return nil, fmt.Errorf("blob size %d is below the minimum of %d bytes", size, 2*tailLen)
	}
	c := &contentSet{size: size, pattern: make([]byte, min(size, maxPattern))}
	if _, err := rand.Read(c.pattern); err != nil {
		return nil, err
	}
	if _, err := rand.Read(c.nonce[:]); err != nil {
		return nil, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, &blobReader{c: c, end: size - tailLen}); err != nil {
		return nil, err
	}
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return nil, err
	}
	c.prefix = state
	return c, nil
}

// blob is one generated blob: its unique tail and its digest.
type blob struct {
	c      *contentSet
	tail   [tailLen]byte
	digest string
}

// newBlob returns a blob never made before in this run (nor, by the nonce, in another).
func (c *contentSet) newBlob() (*blob, error) {
	b := &blob{c: c}
	copy(b.tail[:], c.nonce[:])
	binary.BigEndian.PutUint64(b.tail[16:], c.next.Add(1))
	copy(b.tail[24:], "regbench")
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(c.prefix); err != nil {
		return nil, err
	}
	h.Write(b.tail[:])
	b.digest = fmt.Sprintf("sha256:%x", h.Sum(nil))
	return b, nil
}

// newBlobs returns n fresh blobs.
func (c *contentSet) newBlobs(n int) ([]*blob, error) {
	bs := make([]*blob, n)
	for i := range bs {
		b, err := c.newBlob()
		if err != nil {
			return nil, err
		}
		bs[i] = b
	}
	return bs, nil
}

// section returns the bytes [off, off+n) of the blob as a reader.
func (b *blob) section(off, n int64) io.Reader {
	return &blobReader{c: b.c, tail: &b.tail, off: off, end: off + n}
}

// blobReader streams part of a blob without materialising it. tail is nil only while
// hashing the shared prefix, which never reaches the tail.
type blobReader struct {
	c        *contentSet
	tail     *[tailLen]byte
	off, end int64
}

func (r *blobReader) Read(p []byte) (int, error) {
	if r.off >= r.end {
		return 0, io.EOF
	}
	if rest := r.end - r.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	bodyEnd := r.c.size - tailLen
	var n int
	if r.off < bodyEnd {
		plen := int64(len(r.c.pattern))
		pos := r.off % plen
		m := min(int64(len(p)), plen-pos, bodyEnd-r.off)
		n = copy(p, r.c.pattern[pos:pos+m])
	} else {
		n = copy(p, r.tail[r.off-bodyEnd:])
	}
	r.off += int64(n)
	return n, nil
}
