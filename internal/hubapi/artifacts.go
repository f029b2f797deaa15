package hubapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/hubtypes"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

// artifactLister is what the artifact endpoints need of the workflow store beyond
// WorkflowStore (sqlstore has it): a store without it answers them 404.
type artifactLister interface {
	ListWorkflowArtifacts(ctx context.Context, runID int64) ([]wfengine.Artifact, error)
}

// ArtifactContentType is the media type of an artifact's download: a gzipped tar.
const ArtifactContentType = "application/gzip"

func (a *api) artifactRoutes() {
	a.route("/api/v1/runs/{id}/artifacts", map[string]handlerFunc{"GET": reads(scope.HubWorkflows, a.listArtifacts)})
	a.route("/api/v1/runs/{id}/artifacts/{name}", map[string]handlerFunc{"GET": reads(scope.HubWorkflows, a.downloadArtifact)})
}

// runArtifacts returns the artifacts of the run named by the path, which p must be
// allowed to read (the run's own rule: outsiders get "not found").
func (a *api) runArtifacts(r *http.Request, p *authz.Principal) (wfengine.Run, []wfengine.Artifact, error) {
	lister, ok := a.workflows.(artifactLister)
	if a.workflows == nil || !ok || a.blobs == nil {
		return wfengine.Run{}, nil, notFound("no API endpoint %s", r.URL.Path)
	}
	run, err := a.readableRun(r, p, accounts.RoleRead, "reading")
	if err != nil {
		return run, nil, err
	}
	as, err := lister.ListWorkflowArtifacts(r.Context(), run.ID)
	return run, as, err
}

// listArtifacts answers GET /api/v1/runs/{id}/artifacts.
func (a *api) listArtifacts(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	_, as, err := a.runArtifacts(r, p)
	if err != nil {
		return err
	}
	out := make([]hubtypes.WorkflowArtifact, 0, len(as))
	for _, x := range as {
		out = append(out, artifactView(x, x.Job))
	}
	return reply(w, http.StatusOK, out)
}

// downloadArtifact answers GET /api/v1/runs/{id}/artifacts/{name}[?job=JOB_ID] with
// the artifact's tar.gz, streamed from the blob store. A name several job runs of the
// run kept (a matrix job) needs ?job=.
func (a *api) downloadArtifact(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	run, as, err := a.runArtifacts(r, p)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	var jobID int64
	if s := r.URL.Query().Get("job"); s != "" {
		if jobID, err = strconv.ParseInt(s, 10, 64); err != nil {
			return invalid("job %q is not a job run id", s)
		}
	}
	var found []wfengine.Artifact
	for _, x := range as {
		if x.Name == name && (jobID == 0 || x.JobID == jobID) {
			found = append(found, x)
		}
	}
	switch {
	case len(found) == 0:
		return notFound("run %d has no artifact %q", run.ID, name)
	case len(found) > 1:
		return invalid("%d job runs of run %d kept an artifact %q: name one with ?job=JOB_ID (see GET /api/v1/runs/%d/artifacts)",
			len(found), run.ID, name, run.ID)
	}
	return streamArtifact(w, r, a.blobs, found[0], true)
}

// streamArtifact answers artifact x's tar.gz from blobs, streamed, with its size and
// digest (and, as a download, a file name); the body is left out for HEAD.
func streamArtifact(w http.ResponseWriter, r *http.Request, blobs blobstore.Store, x wfengine.Artifact, download bool) error {
	rc, size, err := blobs.Open(r.Context(), x.Digest, x.Location)
	if errors.Is(err, blobstore.ErrNotFound) {
		return notFound("the content of artifact %q is gone", x.Name)
	}
	if err != nil {
		return fmt.Errorf("open artifact %s: %w", x.Digest, err)
	}
	defer rc.Close()
	w.Header().Set("Content-Type", ArtifactContentType)
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("Docker-Content-Digest", x.Digest.String())
	if download {
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", x.Name+".tar.gz"))
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = io.Copy(w, rc)
	}
	return nil
}
