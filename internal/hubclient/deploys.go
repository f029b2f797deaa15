package hubclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/hubctl/hubctl/internal/hubtypes"
)

func deploysPath(namespace, service string) string {
	return "deploys/" + seg(namespace) + "/" + seg(service)
}

// BeginDeploy takes namespace/service's deploy lock and records a running deploy
// (POST /api/v1/deploys/{ns}/{service}). A lock held by another deploy answers an
// *Error with Code DEPLOY_LOCKED whose Detail is a hubtypes.DeployLock.
func (c *Client) BeginDeploy(ctx context.Context, namespace, service string, req hubtypes.BeginDeployRequest) (hubtypes.BeginDeployResponse, error) {
	var out hubtypes.BeginDeployResponse
	return out, c.do(ctx, http.MethodPost, deploysPath(namespace, service), req, &out)
}

// RenewDeployLock extends the lock deploy number holds (every 10 s while it runs);
// DEPLOY_LOCK_LOST when it holds it no more.
func (c *Client) RenewDeployLock(ctx context.Context, namespace, service string, number int) (hubtypes.DeployLock, error) {
	var out hubtypes.DeployLock
	return out, c.do(ctx, http.MethodPost, deploysPath(namespace, service)+"/"+strconv.Itoa(number)+"/renew", nil, &out)
}

// FinishDeploy records deploy number's outcome and releases the lock.
func (c *Client) FinishDeploy(ctx context.Context, namespace, service string, number int, req hubtypes.FinishDeployRequest) (hubtypes.DeployRecord, error) {
	var out hubtypes.DeployRecord
	return out, c.do(ctx, http.MethodPatch, deploysPath(namespace, service)+"/"+strconv.Itoa(number), req, &out)
}

// ListDeploys answers a page of namespace/service's history, newest first, without
// specs: limit of them (0: the hub's default), numbered below before (0: the newest).
func (c *Client) ListDeploys(ctx context.Context, namespace, service string, before, limit int) (hubtypes.DeployPage, error) {
	q := url.Values{}
	if before > 0 {
		q.Set("before", strconv.Itoa(before))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := deploysPath(namespace, service)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out hubtypes.DeployPage
	return out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// GetDeploy answers deploy number of namespace/service, spec included.
func (c *Client) GetDeploy(ctx context.Context, namespace, service string, number int) (hubtypes.DeployRecord, error) {
	var out hubtypes.DeployRecord
	return out, c.do(ctx, http.MethodGet, deploysPath(namespace, service)+"/"+strconv.Itoa(number), nil, &out)
}

// DeployLock answers who holds namespace/service's lock (NAME_UNKNOWN when nobody).
func (c *Client) DeployLock(ctx context.Context, namespace, service string) (hubtypes.DeployLock, error) {
	var out hubtypes.DeployLock
	return out, c.do(ctx, http.MethodGet, deploysPath(namespace, service)+"/lock", nil, &out)
}

// BreakDeployLock removes namespace/service's lock whoever holds it (audited) and
// answers who held it.
func (c *Client) BreakDeployLock(ctx context.Context, namespace, service string) (hubtypes.DeployLock, error) {
	var out hubtypes.DeployLock
	return out, c.do(ctx, http.MethodDelete, deploysPath(namespace, service)+"/lock", nil, &out)
}

// TakeDeployLock takes namespace/service's lock for work that is no deploy (down),
// or renews it when this holder (account, host, pid) has it; DEPLOY_LOCKED while
// another holds it.
func (c *Client) TakeDeployLock(ctx context.Context, namespace, service string, req hubtypes.TakeDeployLockRequest) (hubtypes.DeployLock, error) {
	var out hubtypes.DeployLock
	return out, c.do(ctx, http.MethodPost, deploysPath(namespace, service)+"/lock", req, &out)
}

// ReleaseDeployLock releases the lock TakeDeployLock took for this holder; one
// another holds is left alone.
func (c *Client) ReleaseDeployLock(ctx context.Context, namespace, service string, req hubtypes.TakeDeployLockRequest) error {
	return c.do(ctx, http.MethodPost, deploysPath(namespace, service)+"/lock/release", req, nil)
}

// DeployPullToken mints a short-lived token pulling repos for running deploy number.
// The token is a credential: never log it.
func (c *Client) DeployPullToken(ctx context.Context, namespace, service string, number int, repos []string) (hubtypes.DeployPullToken, error) {
	var out hubtypes.DeployPullToken
	return out, c.do(ctx, http.MethodPost, deploysPath(namespace, service)+"/pull-token",
		hubtypes.DeployPullTokenRequest{Number: number, Repositories: repos}, &out)
}

// DeploySecrets answers the values of the namespace's secrets names for a deploy of
// service. They are credentials: never log them.
func (c *Client) DeploySecrets(ctx context.Context, namespace, service string, names []string) (map[string]string, error) {
	var out hubtypes.DeploySecrets
	if err := c.do(ctx, http.MethodPost, deploysPath(namespace, service)+"/secrets", hubtypes.DeploySecretsRequest{Names: names}, &out); err != nil {
		return nil, err
	}
	return out.Values, nil
}
