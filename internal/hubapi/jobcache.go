package hubapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/hubtypes"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

// The job-token endpoints of a job's cache (hubctl workflow-agent restore|save
// --cache, in a Kubernetes job's pod): GET (and HEAD) /api/v1/runs/{id}/jobs/{job}/cache
// answers the tar.gz of the cache stored for the run's workflow under the job's key,
// PUT stores one when the key has none. The key is never the client's: the hub
// evaluates it from its own record of the job run (wfengine.CacheKey), so a job
// reaches only the cache its workflow file names, in its own workflow.

// jobCache returns the running job run the path names (jobOfToken's checks), its
// run, and its evaluated cache key; a job that declares no cache is "not found".
func (a *api) jobCache(r *http.Request, p *authz.Principal) (wfengine.Run, wfengine.Job, string, error) {
	run, job, wj, err := a.jobOfToken(r, p)
	if err != nil {
		return run, job, "", err
	}
	if wj.Cache == nil {
		return run, job, "", notFound("job %s of run %d declares no cache", job.Job, run.ID)
	}
	key, err := wfengine.CacheKey(&run, &job)
	if err != nil {
		return run, job, "", errcode.New(errcode.Denied, "job run %d: %s", job.ID, err.Error())
	}
	return run, job, key, nil
}

// downloadJobCache answers GET and HEAD /api/v1/runs/{id}/jobs/{job}/cache: the
// tar.gz of the cache under the job's key (its entries named from the cache path
// down), or 404 when the key has none. It marks the cache used, as a restore on the
// Docker executor does, for the least-recently-used eviction.
func (a *api) downloadJobCache(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	run, job, key, err := a.jobCache(r, p)
	if err != nil {
		return err
	}
	c, err := a.jobFiles.Store.UseWorkflowCache(r.Context(), run.WorkflowID, key)
	if errors.Is(err, wfengine.ErrNotFound) {
		return notFound("the key of job run %d has no cache yet", job.ID)
	}
	if err != nil {
		return err
	}
	return streamArtifact(w, r, a.jobFiles.Blobs, wfengine.Artifact{Name: "cache", Digest: c.Digest, Size: c.Size, Location: c.Location}, false)
}

// uploadJobCache answers PUT /api/v1/runs/{id}/jobs/{job}/cache: the body is the
// gzipped tar of the job's cache directory, kept under the job's key when the key has
// no cache (201), else refused with 409 and nothing changed: a key's cache never
// changes. It is checked and capped (workflows.cache.max_size) while it streams.
func (a *api) uploadJobCache(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	run, job, key, err := a.jobCache(r, p)
	if err != nil {
		return err
	}
	o := a.jobFiles
	maxSize := o.CacheMaxSize
	if maxSize <= 0 {
		maxSize = wfengine.DefaultCacheMaxSize
	}
	body := http.MaxBytesReader(w, r.Body, maxSize+maxSize/4+(8<<20))
	c, err := wfengine.StoreCache(r.Context(), o, wfengine.Cache{WorkflowID: run.WorkflowID, Key: key}, body, a.log)
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, wfengine.ErrCacheExists):
		return errcode.New(Conflict, "the key of job run %d has a cache already, which never changes: nothing kept", job.ID)
	case errors.As(err, &mbe):
		return errcode.New(errcode.SizeInvalid, "cache: the upload is larger than %d bytes", mbe.Limit)
	case errors.Is(err, wfengine.ErrBadArchive):
		return errcode.New(errcode.BlobUploadInvalid, "%s", err.Error())
	case err != nil && r.Context().Err() != nil:
		return errcode.New(errcode.BlobUploadInvalid, "cache: the upload was cut short: nothing kept")
	case err != nil:
		return fmt.Errorf("cache of job run %d: %w", job.ID, err)
	}
	return reply(w, http.StatusCreated, hubtypes.WorkflowCache{Digest: c.Digest.String(), Size: c.Size, CreatedAt: formatTime(c.CreatedAt)})
}
