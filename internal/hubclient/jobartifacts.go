package hubclient

import (
	"context"
	"encoding/json"
	"errors"
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

// ErrNoCache is what DownloadJobCache and HasJobCache answer when the job's key has
// no cache (404); ErrCacheExists what UploadJobCache answers when it has one (409:
// a key's cache never changes, nothing was kept).
var (
	ErrNoCache     = errors.New("the job's cache key has no cache")
	ErrCacheExists = errors.New("the job's cache key has a cache already")
)

// DownloadJobCache opens the tar.gz of the cache stored under job run job's key (the
// hub evaluates it), and returns it with its digest; the caller verifies the digest
// while reading and closes it. ErrNoCache when the key has none.
func (c *Client) DownloadJobCache(ctx context.Context, run, job int64) (io.ReadCloser, string, error) {
	resp, err := c.stream(ctx, http.MethodGet, jobPath(run, job)+"cache", nil)
	if err != nil {
		return nil, "", noCache(err)
	}
	return resp.Body, resp.Header.Get("Docker-Content-Digest"), nil
}

// HasJobCache says whether job run job's key has a cache, reading none of it.
func (c *Client) HasJobCache(ctx context.Context, run, job int64) (bool, error) {
	resp, err := c.stream(ctx, http.MethodHead, jobPath(run, job)+"cache", nil)
	if err != nil {
		if err = noCache(err); errors.Is(err, ErrNoCache) {
			return false, nil
		}
		return false, err
	}
	drain(resp)
	return true, nil
}

// UploadJobCache streams body, the gzipped tar of job run job's cache directory, to
// the hub, which checks it and keeps it under the job's key unless the key has a
// cache (ErrCacheExists).
func (c *Client) UploadJobCache(ctx context.Context, run, job int64, body io.Reader) (hubtypes.WorkflowCache, error) {
	var out hubtypes.WorkflowCache
	resp, err := c.stream(ctx, http.MethodPut, jobPath(run, job)+"cache", body)
	if err != nil {
		var he *Error
		if errors.As(err, &he) && he.Status == http.StatusConflict {
			return out, fmt.Errorf("%w: %s", ErrCacheExists, he.Message)
		}
		return out, err
	}
	defer drain(resp)
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return out, fmt.Errorf("upload the cache: decode answer: %w", err)
	}
	return out, nil
}

// noCache makes a 404 of the cache endpoint ErrNoCache, which a job that declares a
// cache gets only when its key has none.
func noCache(err error) error {
	var he *Error
	if errors.As(err, &he) && he.Status == http.StatusNotFound {
		return fmt.Errorf("%w: %s", ErrNoCache, he.Message)
	}
	return err
}
