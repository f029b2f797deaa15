package hubclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/hubctl/hubctl/internal/hubtypes"
)

func workflowPath(namespace, name string) string {
	return "workflows/" + seg(namespace) + "/" + seg(name)
}

// ApplyWorkflow stores the workflow file source as namespace/name.
func (c *Client) ApplyWorkflow(ctx context.Context, namespace, name string, source []byte) (hubtypes.Workflow, error) {
	var out hubtypes.Workflow
	return out, c.do(ctx, http.MethodPut, workflowPath(namespace, name), rawBody{data: source, contentType: "application/yaml"}, &out)
}

// ListWorkflows lists the workflows the caller may read, of namespace when given.
func (c *Client) ListWorkflows(ctx context.Context, namespace string) ([]hubtypes.Workflow, error) {
	path := "workflows"
	if namespace != "" {
		path += "?" + url.Values{"namespace": {namespace}}.Encode()
	}
	var out []hubtypes.Workflow
	return out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// GetWorkflow returns the workflow namespace/name with its source.
func (c *Client) GetWorkflow(ctx context.Context, namespace, name string) (hubtypes.Workflow, error) {
	var out hubtypes.Workflow
	return out, c.do(ctx, http.MethodGet, workflowPath(namespace, name), nil, &out)
}

// DeleteWorkflow deletes the workflow namespace/name with its runs.
func (c *Client) DeleteWorkflow(ctx context.Context, namespace, name string) error {
	return c.do(ctx, http.MethodDelete, workflowPath(namespace, name), nil, nil)
}

// RunWorkflow starts a manual run of namespace/name with inputs.
func (c *Client) RunWorkflow(ctx context.Context, namespace, name string, inputs map[string]any) (hubtypes.WorkflowRun, error) {
	var out hubtypes.WorkflowRun
	return out, c.do(ctx, http.MethodPost, workflowPath(namespace, name)+"/runs", hubtypes.RunWorkflowRequest{Inputs: inputs}, &out)
}

// ListRuns lists the newest runs (at most limit; 0 for the hub's default) of
// namespace/name, of state when given.
func (c *Client) ListRuns(ctx context.Context, namespace, name, state string, limit int) ([]hubtypes.WorkflowRun, error) {
	q := url.Values{"workflow": {namespace + "/" + name}}
	if state != "" {
		q.Set("state", state)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out []hubtypes.WorkflowRun
	return out, c.do(ctx, http.MethodGet, "runs?"+q.Encode(), nil, &out)
}

// GetRun returns run id with its jobs, steps and outputs.
func (c *Client) GetRun(ctx context.Context, id int64) (hubtypes.WorkflowRun, error) {
	var out hubtypes.WorkflowRun
	return out, c.do(ctx, http.MethodGet, "runs/"+strconv.FormatInt(id, 10), nil, &out)
}

// RunLogs returns the chunks of job's log of run id after the cursor after, waiting
// up to wait seconds for one.
func (c *Client) RunLogs(ctx context.Context, id int64, job string, after int64, wait int) (hubtypes.WorkflowLogs, error) {
	q := url.Values{"after": {strconv.FormatInt(after, 10)}}
	if job != "" {
		q.Set("job", job)
	}
	if wait > 0 {
		q.Set("wait", strconv.Itoa(wait))
	}
	var out hubtypes.WorkflowLogs
	return out, c.do(ctx, http.MethodGet, "runs/"+strconv.FormatInt(id, 10)+"/logs?"+q.Encode(), nil, &out)
}

// CancelRun asks run id to stop.
func (c *Client) CancelRun(ctx context.Context, id int64) (hubtypes.WorkflowRun, error) {
	var out hubtypes.WorkflowRun
	return out, c.do(ctx, http.MethodPost, "runs/"+strconv.FormatInt(id, 10)+"/cancel", nil, &out)
}

// RerunRun runs a finished run again: every job, or with failed those that did not
// succeed.
func (c *Client) RerunRun(ctx context.Context, id int64, failed bool) (hubtypes.WorkflowRun, error) {
	path := "runs/" + strconv.FormatInt(id, 10) + "/rerun"
	if failed {
		path += "?failed=true"
	}
	var out hubtypes.WorkflowRun
	return out, c.do(ctx, http.MethodPost, path, nil, &out)
}
