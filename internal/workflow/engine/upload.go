package engine

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/workflow/archive"
)

// ErrBadArchive is what StoreArtifact answers for an upload that is not a gzipped tar
// of the artifact's path alone, or breaks archive's rules: the client's fault.
var ErrBadArchive = errors.New("workflow: bad artifact archive")

// StoreArtifact keeps what a job run's helper uploads (a gzipped tar whose entries
// all lie under the base name of a.Path, as an executor's export of that path) as
// artifact a of the job run a.JobID, which must still be running under owner. The
// tar is checked entry by entry and bounded to o.MaxSize bytes of files, re-packed
// into a spool file, stored pinned and recorded; on any failure (a body cut short, a
// cap passed, a job run no longer running) nothing is kept. It is the upload
// endpoint's half of what the engine does for executors that move files themselves
// (docs/design/workflows.md, "Artifacts on Kubernetes").
func StoreArtifact(ctx context.Context, o ArtifactOptions, a Artifact, owner string, body io.Reader, log *slog.Logger) (Artifact, error) {
	o.defaults()
	if o.Store == nil || o.Blobs == nil {
		return Artifact{}, errors.New("artifacts need the hub's blob store")
	}
	top := path.Base(path.Clean(a.Path))
	b, err := spoolUpload(ctx, o, body, o.MaxSize, func(w io.Writer, r io.Reader) error { return rewrap(w, r, top) }, log)
	if err != nil {
		if errors.Is(err, archive.ErrTooLarge) {
			return Artifact{}, fmt.Errorf("%w: artifact %s is larger than the limit of %d bytes (workflows.artifacts.max_size): %w", ErrBadArchive, a.Name, o.MaxSize, err)
		}
		return Artifact{}, err
	}
	a.Digest, a.Size, a.CreatedAt = b.digest, b.size, time.Now()
	if err := o.Store.AddWorkflowArtifact(ctx, a, owner, b.pinned, o.MaxRunSize); err != nil {
		b.discard()
		if errors.Is(err, ErrTooLarge) {
			return Artifact{}, fmt.Errorf("artifact %s: the run's artifacts would exceed %d bytes (workflows.artifacts.max_run_size): %w", a.Name, o.MaxRunSize, err)
		}
		return Artifact{}, err
	}
	return a, nil
}

// ErrCacheExists is what StoreCache answers when the key already has a cache, which
// never changes: nothing was recorded.
var ErrCacheExists = errors.New("workflow: the cache key already has a cache")

// StoreCache keeps what a job run's helper uploads (a gzipped tar of the cache
// directory's content, its entries named from the directory down) as the cache of
// workflow c.WorkflowID under c.Key, unless the key has one (ErrCacheExists): the
// tar is checked entry by entry and bounded to o.CacheMaxSize bytes of files,
// re-packed into a spool file, stored pinned and recorded through AddWorkflowCache,
// which evicts the workflow's least recently used caches beyond o.CacheMaxTotal, as
// the engine's own save does. A body that is not a clean tar answers ErrBadArchive.
func StoreCache(ctx context.Context, o ArtifactOptions, c Cache, body io.Reader, log *slog.Logger) (Cache, error) {
	o.defaults()
	if o.Store == nil || o.Blobs == nil {
		return Cache{}, errors.New("caches need the hub's blob store")
	}
	if _, err := o.Store.UseWorkflowCache(ctx, c.WorkflowID, c.Key); err == nil {
		return Cache{}, ErrCacheExists // before reading a byte of what would not be kept
	} else if !errors.Is(err, ErrNotFound) {
		return Cache{}, err
	}
	b, err := spoolUpload(ctx, o, body, o.CacheMaxSize, func(w io.Writer, r io.Reader) error { _, err := io.Copy(w, r); return err }, log)
	if err != nil {
		if errors.Is(err, archive.ErrTooLarge) {
			return Cache{}, fmt.Errorf("%w: the cache is larger than the limit of %d bytes (workflows.cache.max_size): %w", ErrBadArchive, o.CacheMaxSize, err)
		}
		return Cache{}, err
	}
	c.Digest, c.Size, c.CreatedAt = b.digest, b.size, time.Now()
	added, err := o.Store.AddWorkflowCache(ctx, c, b.pinned, o.CacheMaxTotal)
	if err != nil {
		b.discard()
		return Cache{}, err
	}
	if !added {
		// Saved by another job run meanwhile: the blob, committed but named by no
		// row, is garbage collection's, as when the engine's own save loses that race.
		return Cache{}, ErrCacheExists
	}
	return c, nil
}

// spooled is an uploaded tar.gz as stored, pinned at pinned until a row names it.
type spooled struct {
	digest  digest.Digest
	size    int64
	pinned  time.Time
	discard func()
}

// spoolUpload gunzips body, checks it with archive.Check (maxFiles bytes of files),
// copies the checked tar through rewrite into a gzipped spool file while hashing it,
// and stores that blob pinned. Any failure of the upload itself wraps ErrBadArchive;
// nothing is left stored on failure.
func spoolUpload(ctx context.Context, o ArtifactOptions, body io.Reader, maxFiles int64, rewrite func(io.Writer, io.Reader) error, log *slog.Logger) (spooled, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	gzr, err := gzip.NewReader(body)
	if err != nil {
		return spooled{}, fmt.Errorf("%w: not gzip: %v", ErrBadArchive, err)
	}
	tmp, err := os.CreateTemp(o.TempDir, "hubctl-artifact-*")
	if err != nil {
		return spooled{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	cw := &countWriter{}
	gz := gzip.NewWriter(io.MultiWriter(tmp, h, cw))
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(archive.Check(pw, gzr, archive.Limits{Bytes: maxFiles}))
	}()
	err = rewrite(gz, pr)
	pr.CloseWithError(errors.New("upload ended"))
	if err != nil {
		if errors.Is(err, archive.ErrTooLarge) {
			return spooled{}, err
		}
		return spooled{}, fmt.Errorf("%w: %v", ErrBadArchive, err)
	}
	if err := gz.Close(); err != nil {
		return spooled{}, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return spooled{}, err
	}
	d := digest.NewDigest(digest.SHA256, h)
	pinned, err := o.Store.PinBlob(ctx, d, cw.n)
	if err != nil {
		return spooled{}, err
	}
	discard := func() {
		bg := context.WithoutCancel(ctx)
		if _, err := o.Store.DiscardBlob(bg, d, pinned, func(loc string) error { return o.Blobs.Delete(bg, d, loc) }); err != nil {
			log.Warn("discard an unrecorded workflow blob", "digest", d, "err", err)
		}
	}
	if _, err := PutBlob(ctx, o.Store, o.Blobs, d, tmp, cw.n, log); err != nil {
		discard()
		return spooled{}, fmt.Errorf("store %s: %w", d, err)
	}
	return spooled{digest: d, size: cw.n, pinned: pinned, discard: discard}, nil
}

// rewrap copies the checked tar r into w, refusing an entry outside top (the
// artifact path's base name): a downstream job extracts the artifact next to that
// path, and must find nothing else of its workspace overwritten.
func rewrap(w io.Writer, r io.Reader, top string) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return tw.Close()
		}
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(h.Name, "/")
		if name != top && !strings.HasPrefix(name, top+"/") {
			return fmt.Errorf("entry %q lies outside %s", h.Name, top)
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}
