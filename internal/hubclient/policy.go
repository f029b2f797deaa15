package hubclient

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/hubctl/hubctl/internal/policy"
)

// scopePath escapes a namespace or repository scope segment by segment.
func scopePath(scope string) string {
	parts := strings.Split(scope, "/")
	for i, p := range parts {
		parts[i] = seg(p)
	}
	return strings.Join(parts, "/")
}

// GetPolicy returns the policy of a namespace or repository (with, for a repository,
// the effective one).
func (c *Client) GetPolicy(ctx context.Context, scope string) (policy.Document, error) {
	var out policy.Document
	return out, c.do(ctx, http.MethodGet, "policies/"+scopePath(scope), nil, &out)
}

// ListPolicies lists the policies the caller may read.
func (c *Client) ListPolicies(ctx context.Context) ([]policy.Stored, error) {
	var out []policy.Stored
	return out, c.do(ctx, http.MethodGet, "policies", nil, &out)
}

// SetPolicy sets the policy of a namespace or repository.
func (c *Client) SetPolicy(ctx context.Context, scope string, p policy.Policy) (policy.Stored, error) {
	var out policy.Stored
	return out, c.do(ctx, http.MethodPut, "policies/"+scopePath(scope), p, &out)
}

// DeletePolicy removes the policy of a namespace or repository.
func (c *Client) DeletePolicy(ctx context.Context, scope string) error {
	return c.do(ctx, http.MethodDelete, "policies/"+scopePath(scope), nil, nil)
}

// RunRetention applies (or with dryRun lists) the retention of scope now.
func (c *Client) RunRetention(ctx context.Context, scope string, dryRun bool) (policy.Report, error) {
	q := url.Values{}
	if scope != "" {
		q.Set("scope", scope)
	}
	if dryRun {
		q.Set("dry_run", "true")
	}
	var out policy.Report
	return out, c.do(ctx, http.MethodPost, "retention?"+q.Encode(), nil, &out)
}
