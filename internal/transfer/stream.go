package transfer

import (
	"context"
	"fmt"
	"hash"
	"io"
	"sync"
	"time"

	"github.com/hubctl/hubctl/internal/imagestore"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// progressInterval throttles byte-progress events per blob.
const progressInterval = 100 * time.Millisecond

// progressReader counts what passes, reports it now and then, and waits for the rate
// limiter before handing bytes on.
type progressReader struct {
	r       io.Reader
	ctx     context.Context
	limiter *Limiter
	report  func(n int64)
	n       int64
	last    time.Time
}

func (p *progressReader) Read(b []byte) (int, error) {
	if p.limiter != nil && len(b) > p.limiter.burst() {
		b = b[:p.limiter.burst()]
	}
	n, err := p.r.Read(b)
	if n > 0 {
		p.n += int64(n)
		if p.limiter != nil {
			if werr := p.limiter.wait(p.ctx, n); werr != nil {
				return n, werr
			}
		}
		if now := time.Now(); now.Sub(p.last) >= progressInterval {
			p.last = now
			p.report(p.n)
		}
	}
	return n, err
}

// verifier hashes a blob as it passes and fails the read at EOF when the bytes do not
// match the descriptor, so a target that does not check digests never commits them.
type verifier struct {
	r    io.Reader
	h    hash.Hash
	desc ocispec.Descriptor
	n    int64
}

func newVerifier(r io.Reader, desc ocispec.Descriptor) io.Reader {
	if !desc.Digest.Algorithm().Available() {
		return r
	}
	return &verifier{r: r, h: desc.Digest.Algorithm().Hash(), desc: desc}
}

func (v *verifier) Read(b []byte) (int, error) {
	n, err := v.r.Read(b)
	v.h.Write(b[:n])
	v.n += int64(n)
	if err == io.EOF {
		if v.n != v.desc.Size {
			return n, fmt.Errorf("blob %s: got %d bytes, want %d: %w", v.desc.Digest, v.n, v.desc.Size, imagestore.ErrDigest)
		}
		if digest.NewDigest(v.desc.Digest.Algorithm(), v.h) != v.desc.Digest {
			return n, fmt.Errorf("blob %s: %w", v.desc.Digest, imagestore.ErrDigest)
		}
	}
	return n, err
}

// Limiter caps throughput in bytes per second across every reader that shares it
// (--rate). Time not used is not banked: a transfer that starts, or resumes after a
// pause, gets no burst beyond the read it is in (at most a tenth of a second's worth),
// so what a server receives over any stretch of a second or more stays at the rate.
type Limiter struct {
	rate int64
	mu   sync.Mutex
	next time.Time
}

// NewLimiter returns a Limiter of bytesPerSecond, nil (no limit) when it is ≤ 0.
func NewLimiter(bytesPerSecond int64) *Limiter {
	if bytesPerSecond <= 0 {
		return nil
	}
	return &Limiter{rate: bytesPerSecond}
}

// burst bounds one read so that a slow rate still moves smoothly.
func (l *Limiter) burst() int {
	return int(max(min(l.rate/10, 1<<20), 1024))
}

func (l *Limiter) wait(ctx context.Context, n int) error {
	l.mu.Lock()
	now := time.Now()
	if l.next.Before(now) {
		l.next = now
	}
	l.next = l.next.Add(time.Duration(float64(n) / float64(l.rate) * float64(time.Second)))
	d := l.next.Sub(now)
	l.mu.Unlock()
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
