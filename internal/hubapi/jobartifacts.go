package hubapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/workflow"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

// jobFilesPrefix starts the endpoints a workflow job's own $HUBCTL_TOKEN calls to
// move its run's artifacts (hubctl workflow-agent in a Kubernetes job's pod): a job
// token of run ID reaches these, for run ID alone.
const jobFilesPrefix = "/api/v1/runs/{id}/jobs/{job}/"

func (a *api) jobArtifactRoutes() {
	a.route(jobFilesPrefix+"artifacts/{name}", map[string]handlerFunc{"PUT": a.uploadJobArtifact})
	a.route(jobFilesPrefix+"needed-artifacts", map[string]handlerFunc{"GET": a.listNeededArtifacts})
	a.route(jobFilesPrefix+"needed-artifacts/{from}/{name}", map[string]handlerFunc{"GET": a.downloadNeededArtifact})
	a.route(jobFilesPrefix+"cache", map[string]handlerFunc{"GET": a.downloadJobCache, "HEAD": a.downloadJobCache, "PUT": a.uploadJobCache})
}

// jobOfToken returns the running job run named by the path, which must be of the run
// p's job token was minted for, and its job in the run's workflow file. A user, or a
// token of another run, is answered "not found", as for a run that does not exist.
func (a *api) jobOfToken(r *http.Request, p *authz.Principal) (wfengine.Run, wfengine.Job, *workflow.Job, error) {
	none := func() (wfengine.Run, wfengine.Job, *workflow.Job, error) {
		return wfengine.Run{}, wfengine.Job{}, nil, notFound("run %s has no job %s", r.PathValue("id"), r.PathValue("job"))
	}
	if a.workflows == nil || a.jobFiles.Store == nil || a.jobFiles.Blobs == nil {
		return wfengine.Run{}, wfengine.Job{}, nil, notFound("no API endpoint %s", r.URL.Path)
	}
	if p.Job == nil {
		return wfengine.Run{}, wfengine.Job{}, nil, denied("only a workflow job's $HUBCTL_TOKEN moves its run's artifacts here; see GET /api/v1/runs/{id}/artifacts")
	}
	runID, err1 := strconv.ParseInt(r.PathValue("id"), 10, 64)
	jobID, err2 := strconv.ParseInt(r.PathValue("job"), 10, 64)
	if err1 != nil || err2 != nil || p.Job.Subject != "workflow-run:"+strconv.FormatInt(runID, 10) {
		return none()
	}
	run, err := a.workflows.GetWorkflowRun(r.Context(), runID)
	if errors.Is(err, wfengine.ErrNotFound) {
		return none()
	}
	if err != nil {
		return run, wfengine.Job{}, nil, err
	}
	for _, j := range run.Jobs {
		if j.ID != jobID {
			continue
		}
		if j.State != wfengine.StateRunning {
			return run, j, nil, errcode.New(errcode.Denied, "job run %d is %s, not running: its artifacts can no longer change", j.ID, j.State)
		}
		wf, err := workflow.Parse(run.Source)
		if err != nil {
			return run, j, nil, fmt.Errorf("parse the workflow of run %d: %w", run.ID, err)
		}
		wj := wf.Job(j.Job)
		if wj == nil {
			return run, j, nil, fmt.Errorf("run %d: job %q is not in its workflow", run.ID, j.Job)
		}
		return run, j, wj, nil
	}
	return none()
}

// uploadJobArtifact answers PUT /api/v1/runs/{id}/jobs/{job}/artifacts/{name}: the
// body is the gzipped tar of an artifact the job declares, its entries under the
// base name of the artifact's path. It is streamed through the checks into a spool
// file and stored; a body cut short, past the caps or not a clean tar keeps nothing.
func (a *api) uploadJobArtifact(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	run, job, wj, err := a.jobOfToken(r, p)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	var decl *workflow.Artifact
	for i := range wj.Artifacts {
		if wj.Artifacts[i].Name == name {
			decl = &wj.Artifacts[i]
		}
	}
	if decl == nil {
		return notFound("job %s of run %d declares no artifact %q", job.Job, run.ID, name)
	}
	o := a.jobFiles
	maxSize := o.MaxSize
	if maxSize <= 0 {
		maxSize = wfengine.DefaultArtifactMaxSize
	}
	// The compressed body of files bounded to maxSize: headers and a gzip that does
	// not compress cost a little more, never this much.
	body := http.MaxBytesReader(w, r.Body, maxSize+maxSize/4+(8<<20))
	stored, err := wfengine.StoreArtifact(r.Context(), o, wfengine.Artifact{RunID: run.ID, JobID: job.ID, Name: name, Path: decl.Path},
		job.Owner, body, a.log)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return errcode.New(errcode.SizeInvalid, "artifact %s: the upload is larger than %d bytes", name, mbe.Limit)
	case errors.Is(err, wfengine.ErrTooLarge), errors.Is(err, wfengine.ErrBadArchive):
		return errcode.New(errcode.BlobUploadInvalid, "%s", err.Error())
	case errors.Is(err, wfengine.ErrLost):
		return errcode.New(errcode.Denied, "job run %d is no longer running: artifact %s not kept", job.ID, name)
	case err != nil && r.Context().Err() != nil:
		return errcode.New(errcode.BlobUploadInvalid, "artifact %s: the upload was cut short: nothing kept", name)
	case err != nil:
		return fmt.Errorf("artifact %s of job run %d: %w", name, job.ID, err)
	}
	return reply(w, http.StatusCreated, artifactView(stored, job.Display))
}

func artifactView(x wfengine.Artifact, job string) hubtypes.WorkflowArtifact {
	return hubtypes.WorkflowArtifact{Name: x.Name, Path: x.Path, Job: job, JobID: x.JobID,
		Digest: x.Digest.String(), Size: x.Size, CreatedAt: formatTime(x.CreatedAt)}
}

// neededArtifacts lists the artifacts of the job runs the path's job needs.
func (a *api) neededArtifacts(r *http.Request, p *authz.Principal) (wfengine.Job, []wfengine.Artifact, error) {
	run, job, _, err := a.jobOfToken(r, p)
	if err != nil {
		return job, nil, err
	}
	lister, ok := a.workflows.(artifactLister)
	if !ok {
		return job, nil, notFound("no API endpoint %s", r.URL.Path)
	}
	all, err := lister.ListWorkflowArtifacts(r.Context(), run.ID)
	if err != nil {
		return job, nil, err
	}
	var out []wfengine.Artifact
	for _, x := range all {
		for _, n := range job.Needs {
			if x.JobID == n {
				out = append(out, x)
			}
		}
	}
	return job, out, nil
}

// listNeededArtifacts answers GET /api/v1/runs/{id}/jobs/{job}/needed-artifacts: what
// the job's helper extracts before its first step.
func (a *api) listNeededArtifacts(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	_, as, err := a.neededArtifacts(r, p)
	if err != nil {
		return err
	}
	out := make([]hubtypes.WorkflowArtifact, 0, len(as))
	for _, x := range as {
		out = append(out, artifactView(x, x.Job))
	}
	return reply(w, http.StatusOK, out)
}

// downloadNeededArtifact answers GET
// /api/v1/runs/{id}/jobs/{job}/needed-artifacts/{from}/{name}: the tar.gz of artifact
// name of job run from, which the path's job needs.
func (a *api) downloadNeededArtifact(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	job, as, err := a.neededArtifacts(r, p)
	if err != nil {
		return err
	}
	from, name := r.PathValue("from"), r.PathValue("name")
	for _, x := range as {
		if strconv.FormatInt(x.JobID, 10) != from || x.Name != name {
			continue
		}
		return streamArtifact(w, r, a.jobFiles.Blobs, x, false)
	}
	return notFound("job run %d needs no job run %s with an artifact %q", job.ID, from, name)
}
