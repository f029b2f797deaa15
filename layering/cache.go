package layering

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// Cache keeps built layers (compressed, by digest), the content hashes of host files
// (by path, size and mtime) and extracted files, under one directory
// (~/.cache/hubctl/build by default). Entries are written to a temporary name and
// renamed, so a crash leaves no half-written blob behind a valid name.
type Cache struct {
	dir string

	mu     sync.Mutex
	hashes map[string]fileHash // only once ready is closed
	ready  chan struct{}
	dirty  bool
}

// LayerBlob is a built layer: its compressed blob's digest and size and the digest of
// its uncompressed tar (the diff ID).
type LayerBlob struct {
	Digest    digest.Digest `json:"digest"`
	DiffID    digest.Digest `json:"diffID"`
	Size      int64         `json:"size"`
	MediaType string        `json:"mediaType"`
	// Cached reports that the layer came from the cache, not from a new tar.
	Cached bool `json:"-"`
}

type fileHash struct {
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime"`
	Mode    uint32 `json:"mode"`
	Digest  string `json:"digest"`
}

// DefaultCacheDir is ~/.cache/hubctl/build (or $XDG_CACHE_HOME/hubctl/build).
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "hubctl", "build"), nil
}

// OpenCache opens (creating it if needed) the cache in dir.
func OpenCache(dir string) (*Cache, error) {
	for _, sub := range []string{"blobs/sha256", "layers", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("build cache: %w", err)
		}
	}
	c := &Cache{dir: dir, ready: make(chan struct{})}
	// The file-hash index (a line per file of the contexts built before) is read
	// while the build walks its context: on a no-op rebuild of a large tree the two
	// are most of the time, and they need nothing of each other.
	go func() {
		defer close(c.ready)
		if raw, err := os.ReadFile(filepath.Join(dir, hashesFile)); err == nil {
			c.hashes = parseHashes(raw)
		} else {
			c.hashes = map[string]fileHash{}
		}
	}()
	return c, nil
}

// hashesFile holds the file-hash index, one "digest size mtime mode path" line per file:
// a no-op rebuild of a large tree reads it whole, and a line format reads several times
// faster than JSON.
const hashesFile = "hashes.v1"

func parseHashes(raw []byte) map[string]fileHash {
	out := make(map[string]fileHash, bytes.Count(raw, []byte{'\n'}))
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		f := bytes.SplitN(line, []byte{' '}, 5)
		if len(f) != 5 {
			continue // a damaged line only costs hashing that file again
		}
		size, err1 := strconv.ParseInt(string(f[1]), 10, 64)
		mtime, err2 := strconv.ParseInt(string(f[2]), 10, 64)
		mode, err3 := strconv.ParseUint(string(f[3]), 10, 32)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		out[string(f[4])] = fileHash{Digest: string(f[0]), Size: size, ModTime: mtime, Mode: uint32(mode)}
	}
	return out
}

// Dir is the cache's directory.
func (c *Cache) Dir() string { return c.dir }

// BlobPath is where the blob with digest d is (or would be) kept.
func (c *Cache) BlobPath(d digest.Digest) string {
	return filepath.Join(c.dir, "blobs", d.Algorithm().String(), d.Encoded())
}

// HasBlob reports whether the cache holds the blob with digest d and size.
func (c *Cache) HasBlob(d digest.Digest, size int64) bool {
	if d.Validate() != nil {
		return false
	}
	fi, err := os.Stat(c.BlobPath(d))
	return err == nil && fi.Mode().IsRegular() && fi.Size() == size
}

// Save writes the file-hash index back; call it once a build is done.
func (c *Cache) Save() error {
	<-c.ready
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty {
		return nil
	}
	var buf bytes.Buffer
	for p, h := range c.hashes {
		if strings.ContainsAny(p, "\n") {
			continue
		}
		fmt.Fprintf(&buf, "%s %d %d %d %s\n", h.Digest, h.Size, h.ModTime, h.Mode, p)
	}
	if err := c.writeAtomic(filepath.Join(c.dir, hashesFile), buf.Bytes()); err != nil {
		return err
	}
	c.dirty = false
	return nil
}

// hashFile returns the sha256 of a host file, from the index when its size, mtime and
// mode are what they were when it was last hashed.
func (c *Cache) hashFile(p string, known *fileHash) (string, error) {
	if known == nil {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		known = &fileHash{Size: fi.Size(), ModTime: fi.ModTime().UnixNano(), Mode: uint32(fi.Mode())}
	}
	<-c.ready
	c.mu.Lock()
	h, ok := c.hashes[p]
	c.mu.Unlock()
	if ok && h.Size == known.Size && h.ModTime == known.ModTime && h.Mode == known.Mode {
		return h.Digest, nil
	}
	fi, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sum := sha256.New()
	if _, err := io.Copy(sum, f); err != nil {
		return "", err
	}
	d := "sha256:" + hex.EncodeToString(sum.Sum(nil))
	c.mu.Lock()
	c.hashes[p] = fileHash{Size: fi.Size(), ModTime: fi.ModTime().UnixNano(), Mode: uint32(fi.Mode()), Digest: d}
	c.dirty = true
	c.mu.Unlock()
	return d, nil
}

// lookupLayer returns the layer built earlier for key, if its blob is still there.
func (c *Cache) lookupLayer(key string) (LayerBlob, bool) {
	raw, err := os.ReadFile(filepath.Join(c.dir, "layers", key+".json"))
	if err != nil {
		return LayerBlob{}, false
	}
	var lb LayerBlob
	if json.Unmarshal(raw, &lb) != nil || !c.HasBlob(lb.Digest, lb.Size) {
		return LayerBlob{}, false
	}
	lb.Cached = true
	return lb, true
}

func (c *Cache) recordLayer(key string, lb LayerBlob) error {
	raw, err := json.Marshal(lb)
	if err != nil {
		return err
	}
	return c.writeAtomic(filepath.Join(c.dir, "layers", key+".json"), raw)
}

// buildLayer writes entries as a compressed tar into the cache and records it under key.
func (c *Cache) buildLayer(key string, entries []Entry, comp Compression, mtime time.Time) (LayerBlob, error) {
	tmp, err := os.CreateTemp(filepath.Join(c.dir, "tmp"), "layer-*")
	if err != nil {
		return LayerBlob{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	blobHash := sha256.New()
	counter := &countWriter{}
	zw, err := newCompressor(io.MultiWriter(tmp, blobHash, counter), comp)
	if err != nil {
		return LayerBlob{}, err
	}
	diffHash := sha256.New()
	if err := writeTar(io.MultiWriter(zw, diffHash), entries, mtime); err != nil {
		zw.Close()
		return LayerBlob{}, err
	}
	if err := zw.Close(); err != nil {
		return LayerBlob{}, err
	}
	lb := LayerBlob{
		Digest:    digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(blobHash.Sum(nil))),
		DiffID:    digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(diffHash.Sum(nil))),
		Size:      counter.n,
		MediaType: comp.MediaType(),
	}
	if err := tmp.Close(); err != nil {
		return LayerBlob{}, err
	}
	if err := os.Rename(tmp.Name(), c.BlobPath(lb.Digest)); err != nil {
		return LayerBlob{}, err
	}
	return lb, c.recordLayer(key, lb)
}

// storeBlob copies r (which must yield the blob d of size bytes) into the cache,
// verifying it, and returns its path.
func (c *Cache) storeBlob(r io.Reader, d digest.Digest, size int64) (string, error) {
	if c.HasBlob(d, size) {
		return c.BlobPath(d), nil
	}
	tmp, err := os.CreateTemp(filepath.Join(c.dir, "tmp"), "blob-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	v := d.Verifier()
	n, err := io.Copy(io.MultiWriter(tmp, v), r)
	if err != nil {
		return "", err
	}
	if n != size || !v.Verified() {
		return "", fmt.Errorf("blob %s: content does not match its digest", d)
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), c.BlobPath(d)); err != nil {
		return "", err
	}
	return c.BlobPath(d), nil
}

// storeFile keeps the content r yields, by its sha256, and returns its path, digest
// and size: files extracted from archives and base images.
func (c *Cache) storeFile(r io.Reader) (string, string, int64, error) {
	tmp, err := os.CreateTemp(filepath.Join(c.dir, "tmp"), "file-*")
	if err != nil {
		return "", "", 0, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if err != nil {
		return "", "", 0, err
	}
	d := digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil)))
	if err := tmp.Close(); err != nil {
		return "", "", 0, err
	}
	p := c.BlobPath(d)
	if fi, err := os.Stat(p); err == nil && fi.Size() == n {
		return p, d.String(), n, nil
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return "", "", 0, err
	}
	return p, d.String(), n, nil
}

func (c *Cache) writeAtomic(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Join(c.dir, "tmp"), "meta-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// layerKey is the cache key of a layer: everything its bytes depend on (paths, kinds,
// modes, owners, link targets, content hashes, compression, time) and the rule that
// made it. Entries must be sorted and hashed.
func layerKey(rule string, entries []Entry, comp Compression, mtime time.Time) string {
	h := sha256.New()
	fmt.Fprintf(h, "hubctl-layer v1\x00%s\x00%s\x00%d\n", rule, comp, mtime.Unix())
	for _, e := range entries {
		fmt.Fprintf(h, "%s\x00%d\x00%o\x00%d\x00%d\x00%s\x00%d\x00%s\n",
			e.Path, e.Kind, uint32(e.Mode), e.UID, e.GID, e.Linkname, e.Size, e.Digest)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// fillDigests hashes the content of every file entry that has no digest yet, on every
// core (a cold build reads each file once to key its layer).
func (c *Cache) fillDigests(entries []Entry) error {
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range entries {
		e := &entries[i]
		if e.Kind != KindFile || e.Digest != "" {
			continue
		}
		if e.HostPath == "" {
			e.Digest = digest.FromBytes(e.Data).String()
			continue
		}
		g.Go(func() error {
			d, err := c.hashFile(e.HostPath, e.hostStat)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("%s: the file vanished during the build", e.HostPath)
				}
				return err
			}
			e.Digest = d
			return nil
		})
	}
	return g.Wait()
}

// Layer returns the layer of entries, from the cache when the same inputs were built
// before, otherwise tarred and compressed now. rule names what made the layer.
func (c *Cache) Layer(rule string, entries []Entry, comp Compression, mtime time.Time) (LayerBlob, error) {
	entries = sortEntries(entries)
	if err := c.fillDigests(entries); err != nil {
		return LayerBlob{}, err
	}
	key := layerKey(rule, entries, comp, mtime)
	if lb, ok := c.lookupLayer(key); ok {
		return lb, nil
	}
	return c.buildLayer(key, entries, comp, mtime)
}
