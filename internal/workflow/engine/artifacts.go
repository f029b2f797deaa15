package engine

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/workflow"
	"github.com/hubctl/hubctl/internal/workflow/archive"
	"github.com/hubctl/hubctl/internal/workflow/executor"
)

// Defaults of ArtifactOptions (docs/workflows.md, "Artifacts and caches").
const (
	DefaultArtifactMaxSize = 256 << 20 // workflows.artifacts.max_size
	DefaultRunArtifacts    = 1 << 30   // workflows.artifacts.max_run_size
	DefaultCacheMaxSize    = 1 << 30   // workflows.cache.max_size
	DefaultCacheMaxTotal   = 4 << 30   // workflows.cache.max_total
	DefaultRetention       = 30 * 24 * time.Hour
)

// ErrTooLarge is what the store answers when an artifact would pass its run's cap.
var ErrTooLarge = errors.New("workflow: artifacts of the run too large")

// Artifact is a file or directory a job run kept, as stored: a gzipped tar in the
// blob store.
type Artifact struct {
	ID    int64
	RunID int64
	JobID int64
	// Job is the job run's display name (when listed).
	Job string
	// Name and Path are the YAML's: Path is where the artifact lies in the workspace.
	Name string
	Path string
	// Digest and Size are the stored tar.gz's; Location is the blob's location in the
	// blob store ("" for the digest's own key).
	Digest    digest.Digest
	Size      int64
	Location  string
	CreatedAt time.Time
}

// Cache is a directory kept between the runs of a workflow under a key.
type Cache struct {
	WorkflowID int64
	Key        string
	Digest     digest.Digest
	Size       int64
	Location   string
	CreatedAt  time.Time
	LastUsed   time.Time
}

// ArtifactStore is what artifacts and caches need of the SQL store (sqlstore
// implements it). Blobs are pinned before their bytes are stored and recorded after,
// as a push's are, so GC never takes a blob a row is about to name.
type ArtifactStore interface {
	// PinBlob and DiscardBlob are the registry's (metadata.Store): a blob whose row
	// could not be written is discarded, bytes and pending row, unless another pin
	// or commit holds it.
	PinBlob(ctx context.Context, d digest.Digest, size int64) (time.Time, error)
	DiscardBlob(ctx context.Context, d digest.Digest, pinnedAt time.Time, del func(location string) error) (bool, error)
	// AddWorkflowArtifact records artifact a of owner's running job run (replacing
	// one of the same job run and name), its blob stored and pinned at pinnedAt: the
	// blob's size is recorded. It fails with ErrTooLarge when the run's artifacts
	// would pass maxRun bytes, ErrLost when the job run is not owner's, and
	// metadata.ErrBlobReclaimed when GC took the blob since the pin.
	AddWorkflowArtifact(ctx context.Context, a Artifact, owner string, pinnedAt time.Time, maxRun int64) error
	// ListWorkflowArtifacts lists a run's artifacts by job run id and name.
	ListWorkflowArtifacts(ctx context.Context, runID int64) ([]Artifact, error)
	// UseWorkflowCache returns the cache of workflowID under key and marks it used
	// now, or ErrNotFound.
	UseWorkflowCache(ctx context.Context, workflowID int64, key string) (Cache, error)
	// AddWorkflowCache records c unless the key has one (false then), and evicts the
	// workflow's least recently used caches beyond maxTotal bytes.
	AddWorkflowCache(ctx context.Context, c Cache, pinnedAt time.Time, maxTotal int64) (bool, error)
	// PurgeWorkflowRuns deletes the runs finished before before, with their jobs,
	// logs and artifacts.
	PurgeWorkflowRuns(ctx context.Context, before time.Time, batch int) (int, error)
	// UploadTracker records the upload sessions that track a blob's storage while
	// it is written (PutBlob).
	UploadTracker
}

// ArtifactOptions configure artifacts, caches and retention; zero values take the
// defaults. Without Store and Blobs, a job that declares artifacts or a cache fails
// with that reason.
type ArtifactOptions struct {
	Store ArtifactStore
	Blobs blobstore.Store
	// MaxSize bounds one artifact's files (bytes before compression); MaxRunSize the
	// stored size of a run's artifacts together.
	MaxSize    int64
	MaxRunSize int64
	// CacheMaxSize bounds one cache's files; CacheMaxTotal the stored size of a
	// workflow's caches, beyond which the least recently used are evicted.
	CacheMaxSize  int64
	CacheMaxTotal int64
	// Retention is how long finished runs (their logs and artifacts) are kept
	// (workflows.retention); negative keeps them for ever.
	Retention time.Duration
	// PurgeEvery is how often the engine's loop purges (default 1 h).
	PurgeEvery time.Duration
	// TempDir is where a tar.gz is spooled while its digest is computed (default
	// os.TempDir()): blobs are streamed, never held in memory.
	TempDir string
}

func (o *ArtifactOptions) defaults() {
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultArtifactMaxSize
	}
	if o.MaxRunSize <= 0 {
		o.MaxRunSize = DefaultRunArtifacts
	}
	if o.CacheMaxSize <= 0 {
		o.CacheMaxSize = DefaultCacheMaxSize
	}
	if o.CacheMaxTotal <= 0 {
		o.CacheMaxTotal = DefaultCacheMaxTotal
	}
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	if o.PurgeEvery <= 0 {
		o.PurgeEvery = time.Hour
	}
}

// files is what a job run moves through the archiver: the artifacts of the jobs it
// needs and its cache before the first step, its artifacts and cache after the last.
type files struct {
	e *Engine
	x executor.Archiver
	// agent is the executor whose job moves its own artifacts (spec.Agent), when it
	// is one; x is nil then.
	agent executor.FileAgent
	run   *Run
	spec  *executor.JobSpec
	job   *workflow.Job
	c     *Claim
	// cacheKey is the evaluated key ("" for no cache); cacheHit says it was restored.
	cacheKey string
	cacheHit bool
}

// newFiles checks the job can keep what it declares and evaluates its cache key; the
// job's spec gets the cache path. needsArtifacts says the jobs it needs kept some.
func (e *Engine) newFiles(ctx context.Context, run *Run, j *workflow.Job, c *Claim, spec *executor.JobSpec, vals map[string]any) (*files, error) {
	f := &files{e: e, spec: spec, job: j, c: c, run: run}
	if j.Cache != nil {
		key, err := cacheKey(j, vals)
		if err != nil {
			return nil, err
		}
		f.cacheKey = key
		// What an executor keeps under the key (a Docker volume) is the workflow's on
		// this hub only: another namespace's workflow, or another hub on the same
		// Docker engine, naming the same key must never see it.
		spec.CacheKey = e.o.JobIDPrefix + run.Namespace + "/" + run.Workflow + "\n" + key
		spec.CachePath = j.Cache.Path
		if spec.CachePath == "" {
			spec.CachePath = workflow.DefaultCachePath
		}
		spec.Env = append(spec.Env, executor.EnvVar{Name: "HUBCTL_CACHE", Value: spec.CachePath})
	}
	if len(j.Artifacts) == 0 && j.Cache == nil && len(c.Job.Needs) == 0 {
		return f, nil
	}
	var needed bool
	if len(c.Job.Needs) > 0 && e.o.Artifacts.Store != nil {
		as, err := e.neededArtifacts(ctx, run.ID, c.Job.Needs)
		if err != nil {
			return nil, err
		}
		needed = len(as) > 0
	}
	if len(j.Artifacts) == 0 && j.Cache == nil && !needed {
		return f, nil
	}
	if e.o.Artifacts.Store == nil || e.o.Artifacts.Blobs == nil {
		return nil, errors.New("artifacts and caches need the hub's blob store, which this engine was not given")
	}
	if fa, ok := e.o.Executor.(executor.FileAgent); ok {
		if e.o.Hub == "" {
			return nil, fmt.Errorf("artifacts and caches on the %s executor need the hub's URL as job containers reach it ($HUBCTL_HUB), which this engine was not given", e.o.Executor.Name())
		}
		// The job's agent restores and saves the cache through the hub, which
		// evaluates the key itself (CacheKey) from its record of the job run.
		spec.Agent = &executor.AgentFiles{RunID: run.ID, JobID: c.Job.ID, Restore: needed || j.Cache != nil}
		if j.Cache != nil {
			spec.Agent.Cache = spec.CachePath
		}
		for _, a := range j.Artifacts {
			spec.Agent.Save = append(spec.Agent.Save, executor.NamedPath{Name: a.Name, Path: a.Path})
		}
		f.agent = fa
		return f, nil
	}
	x, ok := e.o.Executor.(executor.Archiver)
	if !ok {
		return nil, fmt.Errorf("the %s executor cannot move artifacts or caches", e.o.Executor.Name())
	}
	f.x = x
	return f, nil
}

// cacheKey evaluates job j's cache key with the run's values: 1 to 512 bytes.
func cacheKey(j *workflow.Job, vals map[string]any) (string, error) {
	key, err := expand(j.Cache.Key, vals)
	if err != nil {
		return "", fmt.Errorf("cache key: %w", err)
	}
	if key == "" || len(key) > 512 {
		return "", fmt.Errorf("cache key %q must be 1 to 512 bytes", key)
	}
	return key, nil
}

// CacheKey is the key under which job run jr of run keeps its cache, evaluated from
// the run as the store records it (its workflow source, inputs, event, matrix and the
// outputs of the jobs it needs), as the engine evaluates it when the job starts: ""
// when the job declares no cache. The hub's job-token cache endpoints use it, so a
// job's agent never names the key itself.
func CacheKey(run *Run, jr *Job) (string, error) {
	wf, err := workflow.Parse(run.Source)
	if err != nil {
		return "", fmt.Errorf("parse the workflow of run %d: %w", run.ID, err)
	}
	j := wf.Job(jr.Job)
	if j == nil {
		return "", fmt.Errorf("run %d: job %q is not in its workflow", run.ID, jr.Job)
	}
	if j.Cache == nil {
		return "", nil
	}
	return cacheKey(j, values(run, wf, j, jr))
}

func (e *Engine) neededArtifacts(ctx context.Context, runID int64, needs []int64) ([]Artifact, error) {
	all, err := e.o.Artifacts.Store.ListWorkflowArtifacts(ctx, runID)
	if err != nil {
		return nil, fmt.Errorf("list artifacts: %w", err)
	}
	var out []Artifact
	for _, a := range all {
		if slices.Contains(needs, a.JobID) {
			out = append(out, a)
		}
	}
	return out, nil
}

// restore extracts the needed jobs' artifacts into the workspace and the cache (if
// the key has one) into the cache path.
func (f *files) restore(ctx context.Context) error {
	if f.x == nil {
		return nil
	}
	o := &f.e.o.Artifacts
	as, err := f.e.neededArtifacts(ctx, f.run.ID, f.c.Job.Needs)
	if err != nil {
		return err
	}
	for _, a := range as {
		dir := path.Dir(a.Path)
		if err := f.importBlob(ctx, a.Digest, a.Location, dir, archive.Limits{Bytes: o.MaxSize}); err != nil {
			return fmt.Errorf("artifact %s of job %s: %w", a.Name, a.Job, err)
		}
	}
	if f.cacheKey == "" {
		return nil
	}
	cache, err := o.Store.UseWorkflowCache(ctx, f.run.WorkflowID, f.cacheKey)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if err := f.importBlob(ctx, cache.Digest, cache.Location, f.spec.CachePath, archive.Limits{Bytes: o.CacheMaxSize}); err != nil {
		return fmt.Errorf("restore the cache: %w", err)
	}
	f.cacheHit = true
	return nil
}

// importBlob streams a stored tar.gz, its digest verified as it is read and every
// entry checked, into the executor's dir.
func (f *files) importBlob(ctx context.Context, d digest.Digest, loc, dir string, lim archive.Limits) error {
	rc, _, err := f.e.o.Artifacts.Blobs.Open(ctx, d, loc)
	if err != nil {
		return fmt.Errorf("open %s: %w", d, err)
	}
	defer rc.Close()
	vr := &verifier{r: rc, h: sha256.New(), want: d}
	gz, err := gzip.NewReader(vr)
	if err != nil {
		return fmt.Errorf("read %s: %w", d, err)
	}
	pr, pw := io.Pipe()
	go func() {
		err := archive.Check(pw, gz, lim)
		if err == nil {
			// Read to the end of the blob, so the digest is checked before the
			// executor's stream ends.
			_, err = io.Copy(io.Discard, vr)
		}
		pw.CloseWithError(err)
	}()
	err = f.x.ImportPath(ctx, f.spec, dir, pr)
	pr.CloseWithError(errors.New("import ended"))
	return err
}

// verifier hashes what it reads and fails at the end when the digest differs.
type verifier struct {
	r    io.Reader
	h    hash.Hash
	want digest.Digest
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	if err == io.EOF && digest.NewDigest(digest.SHA256, v.h) != v.want {
		return n, fmt.Errorf("blob %s: %w", v.want, blobstore.ErrDigestMismatch)
	}
	return n, err
}

// save stores the job's artifacts, and its cache when the key had none.
func (f *files) save(ctx context.Context) error {
	if f.agent != nil && f.spec.Agent != nil && (len(f.spec.Agent.Save) > 0 || f.spec.Agent.Cache != "") {
		if err := f.agent.WaitSaved(ctx, f.spec); err != nil {
			what := "the artifacts"
			if len(f.spec.Agent.Save) == 0 {
				what = "the cache"
			}
			return fmt.Errorf("save %s: %w", what, err)
		}
		return nil
	}
	if f.x == nil {
		return nil
	}
	o := &f.e.o.Artifacts
	for _, a := range f.job.Artifacts {
		d, size, pinned, err := f.exportBlob(ctx, a.Path, archive.Limits{Bytes: o.MaxSize}, o.MaxSize)
		if err != nil {
			return fmt.Errorf("artifact %s (%s): %w", a.Name, a.Path, err)
		}
		err = o.Store.AddWorkflowArtifact(ctx, Artifact{RunID: f.run.ID, JobID: f.c.Job.ID, Name: a.Name, Path: a.Path,
			Digest: d, Size: size}, f.e.o.ID, pinned, o.MaxRunSize)
		if err != nil {
			f.discard(ctx, d, pinned)
			if errors.Is(err, ErrTooLarge) {
				return fmt.Errorf("artifact %s: the run's artifacts would exceed %d bytes (workflows.artifacts.max_run_size)", a.Name, o.MaxRunSize)
			}
			return fmt.Errorf("artifact %s: %w", a.Name, err)
		}
	}
	if f.cacheKey == "" || f.cacheHit {
		return nil
	}
	d, size, pinned, err := f.exportBlob(ctx, f.spec.CachePath, archive.Limits{Bytes: o.CacheMaxSize, StripTop: true}, o.CacheMaxSize)
	if errors.Is(err, executor.ErrNotFound) {
		return nil // nothing was cached
	}
	if err != nil {
		return fmt.Errorf("save the cache: %w", err)
	}
	if _, err := o.Store.AddWorkflowCache(ctx, Cache{WorkflowID: f.run.WorkflowID, Key: f.cacheKey, Digest: d, Size: size},
		pinned, o.CacheMaxTotal); err != nil {
		f.discard(ctx, d, pinned)
		return fmt.Errorf("save the cache: %w", err)
	}
	return nil
}

// exportBlob streams path out of the executor as a checked tar, gzipped and hashed
// into a spool file, and stores it in the blob store, pinned. Past lim (max bytes of
// files) it stops and stores nothing.
func (f *files) exportBlob(ctx context.Context, p string, lim archive.Limits, max int64) (d digest.Digest, size int64, pinned time.Time, err error) {
	o := &f.e.o.Artifacts
	rc, err := f.x.ExportPath(ctx, f.spec, p)
	if err != nil {
		return "", 0, time.Time{}, err
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(o.TempDir, "hubctl-artifact-*")
	if err != nil {
		return "", 0, time.Time{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	cw := &countWriter{}
	gz := gzip.NewWriter(io.MultiWriter(tmp, h, cw))
	if err := archive.Check(gz, rc, lim); err != nil {
		if errors.Is(err, archive.ErrTooLarge) {
			return "", 0, time.Time{}, fmt.Errorf("larger than the limit of %d bytes: %w", max, err)
		}
		return "", 0, time.Time{}, err
	}
	if err := gz.Close(); err != nil {
		return "", 0, time.Time{}, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return "", 0, time.Time{}, err
	}
	d = digest.NewDigest(digest.SHA256, h)
	pinned, err = o.Store.PinBlob(ctx, d, cw.n)
	if err != nil {
		return "", 0, time.Time{}, err
	}
	if _, err := PutBlob(ctx, o.Store, o.Blobs, d, tmp, cw.n, f.e.o.Logger); err != nil {
		f.discard(ctx, d, pinned)
		return "", 0, time.Time{}, fmt.Errorf("store %s: %w", d, err)
	}
	return d, cw.n, pinned, nil
}

// discard removes a blob stored for a row that was not written: its bytes and pending
// row when this pin made it and nothing pinned it since (else GC takes it later).
func (f *files) discard(ctx context.Context, d digest.Digest, pinned time.Time) {
	o := &f.e.o.Artifacts
	bg := context.WithoutCancel(ctx)
	if _, err := o.Store.DiscardBlob(bg, d, pinned, func(loc string) error { return o.Blobs.Delete(bg, d, loc) }); err != nil {
		f.e.o.Logger.Warn("discard an unrecorded artifact blob", "digest", d, "err", err)
	}
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// purge deletes the runs finished longer than Retention ago (their logs and
// artifacts with them), at most once per PurgeEvery.
func (e *Engine) purge(ctx context.Context) {
	o := &e.o.Artifacts
	if o.Store == nil || o.Retention < 0 {
		return
	}
	now := e.o.Now()
	if last := e.lastPurge.Load(); last != 0 && now.Sub(time.Unix(0, last)) < o.PurgeEvery {
		return
	}
	e.lastPurge.Store(now.UnixNano())
	n, err := o.Store.PurgeWorkflowRuns(ctx, now.Add(-o.Retention), 0)
	if err != nil {
		e.o.Logger.Warn("purge finished runs", "err", err)
		return
	}
	if n > 0 {
		e.o.Logger.Info("purged finished runs past the retention", "runs", n, "retention", o.Retention)
	}
}

// RunRetention purges, every o.PurgeEvery until ctx ends, the runs finished longer
// than o.Retention ago, as an engine's loop does: what a replica that runs no engine
// (workflows.executor: none, or no Docker engine) runs instead, so the retention holds
// on every replica. now is the clock (time.Now when nil); log may be nil.
func RunRetention(ctx context.Context, o ArtifactOptions, now func() time.Time, log *slog.Logger) {
	o.defaults()
	if o.Store == nil || o.Retention < 0 {
		return
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(o.PurgeEvery)
	defer t.Stop()
	for {
		n, err := o.Store.PurgeWorkflowRuns(ctx, now().Add(-o.Retention), 0)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("purge finished runs", "err", err)
		case n > 0:
			log.Info("purged finished runs past the retention", "runs", n, "retention", o.Retention)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// anyStarted says a step of the job run has started: a re-attached job's workspace
// already holds what was restored.
func anyStarted(steps []Step) bool {
	for _, s := range steps {
		if s.State != StatePending {
			return true
		}
	}
	return false
}
