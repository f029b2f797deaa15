package hubclient

import (
	"context"
	"net/http"

	"github.com/hubctl/hubctl/internal/hubtypes"
)

func secretsPath(namespace string) string { return "namespaces/" + seg(namespace) + "/secrets" }

// SetWorkflowSecret sets namespace's workflow secret name to value (namespace
// administrators only); the hub never returns it.
func (c *Client) SetWorkflowSecret(ctx context.Context, namespace, name, value string) error {
	return c.do(ctx, http.MethodPut, secretsPath(namespace)+"/"+seg(name), hubtypes.SetWorkflowSecretRequest{Value: value}, nil)
}

// ListWorkflowSecrets lists namespace's workflow secrets: names and dates, no values.
func (c *Client) ListWorkflowSecrets(ctx context.Context, namespace string) ([]hubtypes.WorkflowSecret, error) {
	var out []hubtypes.WorkflowSecret
	return out, c.do(ctx, http.MethodGet, secretsPath(namespace), nil, &out)
}

// DeleteWorkflowSecret deletes namespace's workflow secret name.
func (c *Client) DeleteWorkflowSecret(ctx context.Context, namespace, name string) error {
	return c.do(ctx, http.MethodDelete, secretsPath(namespace)+"/"+seg(name), nil, nil)
}

// RotateWorkflowHookSecret makes a new signing secret for the incoming URL of the
// workflow namespace/name and returns the workflow with it (HookSecret, HookURL).
func (c *Client) RotateWorkflowHookSecret(ctx context.Context, namespace, name string) (hubtypes.Workflow, error) {
	var out hubtypes.Workflow
	return out, c.do(ctx, http.MethodPost, workflowPath(namespace, name)+"/hook-secret", nil, &out)
}
