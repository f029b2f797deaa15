// One upload per blob and destination in a run: the flights of the transfer engine.

package transfer

import (
	"context"
	"fmt"

	"github.com/hubctl/hubctl/internal/credentials"
	"github.com/hubctl/hubctl/internal/progress"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// flightKey names one blob at one destination (a registry repository, or a local
// path).
type flightKey struct {
	dst    string
	digest digest.Digest
}

// flight is one upload others may wait for.
type flight struct {
	done chan struct{}
	err  error
}

// join returns the flight moving k, and whether the caller leads it (and must call
// land when done) or follows another copy's.
func (e *Engine) join(k flightKey) (*flight, bool) {
	e.flightMu.Lock()
	defer e.flightMu.Unlock()
	if f, ok := e.flights[k]; ok {
		return f, false
	}
	if e.flights == nil {
		e.flights = map[flightKey]*flight{}
	}
	f := &flight{done: make(chan struct{})}
	e.flights[k] = f
	return f, true
}

// land ends the flight of k with err; later copies ask the destination again.
func (e *Engine) land(k flightKey, f *flight, err error) {
	e.flightMu.Lock()
	delete(e.flights, k)
	e.flightMu.Unlock()
	f.err = err
	close(f.done)
}

// copyBlob moves one blob unless the destination has it or can mount it. When another
// copy of this engine is moving the same blob to the same destination, it waits for
// that one instead of sending the bytes a second time.
func (c *copier) copyBlob(ctx context.Context, b ocispec.Descriptor) error {
	k := flightKey{dst: c.dstKey(), digest: b.Digest}
	for {
		f, lead := c.e.join(k)
		if lead {
			err := c.copyBlobOnce(ctx, b)
			c.e.land(k, f, err)
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-f.done:
		}
		if f.err == nil {
			c.emit(progress.Event{Kind: progress.BlobExists, Digest: b.Digest.String(), MediaType: b.MediaType, Size: b.Size,
				Message: "moved by another copy of this run"})
			return nil
		}
		// The other copy failed (its own cancel, a broken source): try ourselves.
	}
}

// dstKey names the destination for flights: one repository of a registry, or a
// local path. Local targets written by one copy each (archives, the engine) never
// share blobs with another copy's, so their key includes the copy.
func (c *copier) dstKey() string {
	switch c.dstLoc.Kind {
	case KindRegistry:
		return credentials.NormalizeHost(c.dstLoc.Ref.Host) + "/" + c.dstLoc.Ref.Path
	case KindOCI:
		return "oci:" + c.dstLoc.Path
	}
	return fmt.Sprintf("%s:%s#%p", c.dstLoc.Kind, c.dstLoc.Path, c)
}
