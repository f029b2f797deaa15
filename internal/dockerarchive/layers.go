package dockerarchive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/klauspost/pgzip"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// gzipBlockSize fixes how pgzip splits its input. The compressed bytes depend on it
// (and on nothing else but the input and level), so it must never change: the same
// image then gives the same layer digests on every run, and pushes are reproducible.
const gzipBlockSize = 1 << 20

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// preparedLayer is what one layer became: its descriptor and where its bytes are.
type preparedLayer struct {
	desc ocispec.Descriptor
	open func() io.Reader
}

// prepare builds the manifest once; a failed or cancelled attempt leaves nothing
// behind, so a later call starts afresh.
func (r *Reader) prepare(ctx context.Context) error {
	r.prepMu.Lock()
	defer r.prepMu.Unlock()
	if r.idx == nil {
		return fmt.Errorf("docker-archive %s: closed", r.file)
	}
	if r.prepared {
		return nil
	}
	if n := r.findNative(); n != nil {
		r.prepareNative(n)
		return nil
	}
	layers, temps, err := r.prepareLayers(ctx)
	if err != nil {
		for _, f := range temps {
			f.Close()
			os.Remove(f.Name())
		}
		return fmt.Errorf("docker-archive %s: %w", r.file, err)
	}
	m := ocispec.Manifest{MediaType: MediaTypeManifest, Config: r.configD, Layers: make([]ocispec.Descriptor, len(layers))}
	m.SchemaVersion = 2
	blobs := map[digest.Digest]func() io.Reader{}
	for i, l := range layers {
		m.Layers[i] = l.desc
		if l.open != nil {
			blobs[l.desc.Digest] = l.open
		}
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	for _, f := range temps {
		r.remove = append(r.remove, f.Name())
	}
	r.temps = temps
	r.manifest = raw
	r.rootD = ocispec.Descriptor{MediaType: MediaTypeManifest, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
	r.blobs = blobs
	r.prepared = true
	return nil
}

// prepareLayers hashes or compresses every distinct layer, GOMAXPROCS at a time. It
// returns the temp files it made even on error, for the caller to remove.
func (r *Reader) prepareLayers(ctx context.Context) ([]preparedLayer, []*os.File, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make([]preparedLayer, len(r.layers))
	// docker save links a layer that occurs twice to its first copy: do it once.
	first := map[entry]int{}
	var jobs []int
	for i, l := range r.layers {
		if l.foreign != nil {
			out[i] = preparedLayer{desc: *l.foreign}
			continue
		}
		if _, ok := first[l.entry]; !ok {
			first[l.entry] = i
			jobs = append(jobs, i)
		}
	}
	procs := runtime.GOMAXPROCS(0)
	parallel := min(procs, max(len(jobs), 1))
	// pgzip's own parallelism shares the CPUs with the other layers'.
	blocks := max(2, procs/parallel)
	var (
		mu       sync.Mutex
		temps    []*os.File
		firstErr error
		wg       sync.WaitGroup
		sem      = make(chan struct{}, parallel)
	)
	for _, i := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				return
			}
			p, tmp, err := r.prepareLayer(ctx, r.layers[i], blocks)
			mu.Lock()
			defer mu.Unlock()
			if tmp != nil {
				temps = append(temps, tmp)
			}
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("layer %d (%s): %w", i, r.layers[i].name, err)
				}
				cancel()
				return
			}
			out[i] = p
		}()
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return nil, temps, firstErr
	}
	for i, l := range r.layers {
		if l.foreign == nil {
			j := first[l.entry]
			if r.layers[j].diffID != l.diffID {
				return nil, temps, fmt.Errorf("layers %d and %d are the same file %s with different diff_ids", j, i, l.name)
			}
			out[i] = out[j]
		}
	}
	return out, temps, nil
}

// prepareLayer passes a gzip layer through, hashing it and checking its diff_id, or
// compresses an uncompressed one to a temp file, checking the diff_id on the way.
func (r *Reader) prepareLayer(ctx context.Context, l layerSource, blocks int) (preparedLayer, *os.File, error) {
	src := r.idx.section(l.entry)
	head := make([]byte, 4)
	n, _ := src.ReadAt(head, 0)
	head = head[:n]
	diffHash, err := newHash(l.diffID)
	if err != nil {
		return preparedLayer{}, nil, err
	}
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		d, err := hashGzipLayer(ctx, src, diffHash)
		if err != nil {
			return preparedLayer{}, nil, err
		}
		if err := checkDiffID(l.diffID, diffHash); err != nil {
			return preparedLayer{}, nil, err
		}
		idx, e := r.idx, l.entry
		return preparedLayer{
			desc: ocispec.Descriptor{MediaType: MediaTypeLayer, Digest: d, Size: l.entry.size},
			open: func() io.Reader { return idx.section(e) },
		}, nil, nil
	case bytes.HasPrefix(head, zstdMagic):
		return preparedLayer{}, nil, errors.New("zstd-compressed layers cannot go into a Docker v2 schema 2 manifest")
	}
	tmp, err := os.CreateTemp("", "hubctl-docker-layer-*.tar.gz")
	if err != nil {
		return preparedLayer{}, nil, err
	}
	d, size, err := compressLayer(ctx, tmp, src, diffHash, blocks)
	if err != nil {
		return preparedLayer{}, tmp, err
	}
	if err := checkDiffID(l.diffID, diffHash); err != nil {
		return preparedLayer{}, tmp, err
	}
	return preparedLayer{
		desc: ocispec.Descriptor{MediaType: MediaTypeLayer, Digest: d, Size: size},
		open: func() io.Reader { return io.NewSectionReader(tmp, 0, size) },
	}, tmp, nil
}

// hashGzipLayer returns the digest of the compressed bytes and feeds the
// decompressed ones to diffHash, in one pass.
func hashGzipLayer(ctx context.Context, src io.Reader, diffHash hash.Hash) (digest.Digest, error) {
	dg := digest.SHA256.Digester()
	tee := io.TeeReader(&ctxReader{ctx: ctx, r: src}, dg.Hash())
	zr, err := pgzip.NewReader(tee)
	if err != nil {
		return "", fmt.Errorf("gzip: %w", err)
	}
	_, err = io.Copy(diffHash, zr)
	zr.Close()
	if err != nil {
		return "", fmt.Errorf("gzip: %w", err)
	}
	// Bytes after the gzip stream still count toward the blob's digest.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return "", err
	}
	return dg.Digest(), nil
}

// compressLayer gzips src into dst deterministically: fixed block size, no name,
// zero modification time. It returns the digest and size of what it wrote.
func compressLayer(ctx context.Context, dst *os.File, src io.Reader, diffHash hash.Hash, blocks int) (digest.Digest, int64, error) {
	dg := digest.SHA256.Digester()
	cw := &countWriter{w: io.MultiWriter(dst, dg.Hash())}
	zw, err := pgzip.NewWriterLevel(cw, pgzip.DefaultCompression)
	if err != nil {
		return "", 0, err
	}
	if err := zw.SetConcurrency(gzipBlockSize, blocks); err != nil {
		return "", 0, err
	}
	// A zero time.Time would be written as a nonzero timestamp; the epoch is 0.
	zw.ModTime = time.Unix(0, 0)
	if _, err := io.Copy(io.MultiWriter(zw, diffHash), &ctxReader{ctx: ctx, r: src}); err != nil {
		zw.Close()
		return "", 0, err
	}
	if err := zw.Close(); err != nil {
		return "", 0, fmt.Errorf("gzip: %w", err)
	}
	return dg.Digest(), cw.n, nil
}

func newHash(d digest.Digest) (hash.Hash, error) {
	if !d.Algorithm().Available() {
		return nil, fmt.Errorf("diff_id %s: unsupported algorithm", d)
	}
	return d.Algorithm().Hash(), nil
}

func checkDiffID(want digest.Digest, h hash.Hash) error {
	got := digest.NewDigest(want.Algorithm(), h)
	if got != want {
		return fmt.Errorf("uncompressed content is %s but the config's diff_id is %s; the archive is corrupt", got, want)
	}
	return nil
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
