package hubclient

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/hubctl/hubctl/internal/hubtypes"
)

// ListRunArtifacts lists the artifacts the job runs of run id kept.
func (c *Client) ListRunArtifacts(ctx context.Context, id int64) ([]hubtypes.WorkflowArtifact, error) {
	var out []hubtypes.WorkflowArtifact
	return out, c.do(ctx, http.MethodGet, "runs/"+strconv.FormatInt(id, 10)+"/artifacts", nil, &out)
}

// DownloadRunArtifact opens the tar.gz of artifact name of run id (of job run job
// when not 0: a matrix job's runs keep one each) and returns it with its digest, as
// the hub stores it; the caller verifies the digest while reading and closes it.
func (c *Client) DownloadRunArtifact(ctx context.Context, id int64, name string, job int64) (io.ReadCloser, string, error) {
	auth, err := c.authenticate(ctx)
	if err != nil {
		return nil, "", err
	}
	u := c.base + "/api/v1/runs/" + strconv.FormatInt(id, 10) + "/artifacts/" + seg(name)
	if job != 0 {
		u += "?" + url.Values{"job": {strconv.FormatInt(job, 10)}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("User-Agent", "hubctl")
	if auth != nil {
		auth(req)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode >= 300 {
		defer drain(resp)
		return nil, "", c.errorOf(resp)
	}
	return resp.Body, resp.Header.Get("Docker-Content-Digest"), nil
}
