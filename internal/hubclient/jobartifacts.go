package hubclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/hubctl/hubctl/internal/hubtypes"
)

// The endpoints a workflow job's own token calls to move its run's artifacts (hubctl
// workflow-agent, in a Kubernetes job's pod): the client must sign in with that token.

func jobPath(run, job int64) string {
	return "/api/v1/runs/" + strconv.FormatInt(run, 10) + "/jobs/" + strconv.FormatInt(job, 10) + "/"
}

// ListNeededArtifacts lists the artifacts of the job runs that job run job of run
// needs.
func (c *Client) ListNeededArtifacts(ctx context.Context, run, job int64) ([]hubtypes.WorkflowArtifact, error) {
	var out []hubtypes.WorkflowArtifact
	auth, err := c.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	return out, c.send(ctx, http.MethodGet, jobPath(run, job)+"needed-artifacts", auth, nil, &out, 16<<20)
}

// DownloadNeededArtifact opens the tar.gz of artifact name of job run from, which job
// run job needs, and returns it with its digest; the caller verifies the digest while
// reading and closes it.
func (c *Client) DownloadNeededArtifact(ctx context.Context, run, job, from int64, name string) (io.ReadCloser, string, error) {
	resp, err := c.stream(ctx, http.MethodGet, jobPath(run, job)+"needed-artifacts/"+strconv.FormatInt(from, 10)+"/"+seg(name), nil)
	if err != nil {
		return nil, "", err
	}
	return resp.Body, resp.Header.Get("Docker-Content-Digest"), nil
}

// UploadJobArtifact streams body, the gzipped tar of artifact name that job run job
// declares, to the hub, which checks and keeps it.
func (c *Client) UploadJobArtifact(ctx context.Context, run, job int64, name string, body io.Reader) (hubtypes.WorkflowArtifact, error) {
	var out hubtypes.WorkflowArtifact
	resp, err := c.stream(ctx, http.MethodPut, jobPath(run, job)+"artifacts/"+seg(name), body)
	if err != nil {
		return out, err
	}
	defer drain(resp)
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return out, fmt.Errorf("upload artifact %s: decode answer: %w", name, err)
	}
	return out, nil
}

// stream sends a request whose body (if any) and answer are streams, not JSON; a
// failed answer is read as the hub's error.
func (c *Client) stream(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	auth, err := c.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/gzip")
	}
	req.Header.Set("User-Agent", "hubctl")
	if auth != nil {
		auth(req)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		defer drain(resp)
		return nil, c.errorOf(resp)
	}
	return resp, nil
}
