package hubapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/errcode"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

// Access answers the hub API's own permission questions for another front end (the
// web UI), so that a page and the endpoint it mirrors run the very same check and a
// page can never be looser than the API.
type Access struct{ a *api }

// NewAccess returns the API's checks over store and policy (nil: a Policy over
// store, as New does); workflows (may be nil) is for Decide.
func NewAccess(store accounts.Store, policy *authz.Policy, workflows WorkflowStore) *Access {
	if policy == nil {
		policy = &authz.Policy{Store: store}
	}
	return &Access{a: &api{store: store, policy: policy, workflows: workflows, now: time.Now, log: slog.New(slog.DiscardHandler)}}
}

// Verdict is the outcome of a check: Hidden means the caller gets the answer of
// something that does not exist; Denied that it may see the thing but not do this.
type Verdict int

// The verdicts.
const (
	Allowed Verdict = iota
	Denied
	Hidden
)

// verdict maps an API error to a verdict; other errors are returned.
func verdict(err error) (Verdict, error) {
	if err == nil {
		return Allowed, nil
	}
	var e *errcode.Error
	if errors.As(err, &e) {
		switch e.Code {
		case errcode.Denied, errcode.Unauthorized:
			return Denied, nil
		case errcode.NameUnknown:
			return Hidden, nil
		}
	}
	return Hidden, err
}

// Workflows checks that p may act on the workflows, runs and deploys of namespace ns
// with at least role need, as GET/POST /api/v1/runs/… do (read: see runs and logs;
// write: cancel, rerun, approve). Reading needs a role on the whole namespace.
func (x *Access) Workflows(ctx context.Context, p *authz.Principal, ns string, need accounts.Role) (Verdict, error) {
	if p.User == nil {
		return Hidden, nil
	}
	return verdict(x.a.workflowAccess(ctx, p, ns, need, "acting on"))
}

// ManagesWebhook reports whether p manages hooks of scope on target, as the
// /api/v1/webhooks endpoints decide.
func (x *Access) ManagesWebhook(ctx context.Context, p *authz.Principal, scope, target string) (bool, error) {
	if p.User == nil {
		return false, nil
	}
	return x.a.mayManageWebhooks(ctx, p, scope, target)
}

// OrgAdmin reports whether p administers organisation org (site admins and admins of
// the whole organisation; never robots), as the /api/v1/orgs endpoints decide; a
// missing organisation and a personal namespace answer false.
func (x *Access) OrgAdmin(ctx context.Context, p *authz.Principal, org string) (bool, error) {
	if p.User == nil {
		return false, nil
	}
	_, err := x.a.orgAdmin(ctx, p, org)
	v, err := verdict(err)
	return v == Allowed, err
}

// ViewsUsage reports whether p may read namespace ns's quota and usage, as GET
// /api/v1/namespaces/{ns}/usage decides.
func (x *Access) ViewsUsage(ctx context.Context, p *authz.Principal, ns string) (bool, error) {
	if p.User == nil {
		return false, nil
	}
	ok, err := x.a.mayViewUsage(ctx, p, ns)
	if errors.Is(err, accounts.ErrNotFound) {
		return false, nil
	}
	return ok, err
}

// Decide records p's decision ("approve" or "reject") on the job run jobRef (an id or
// a name) of run, exactly as POST /api/v1/runs/{id}/jobs/{job}/approve|reject does:
// write on the whole namespace, one of the job's approvers, audited with r's remote
// address. A refusal is an error whose Message is fit to show the caller.
func (x *Access) Decide(r *http.Request, p *authz.Principal, run wfengine.Run, jobRef, decision, comment string) error {
	store, ok := x.a.workflows.(WorkflowApprovalStore)
	if !ok || p.User == nil {
		return notFound("run %d not found", run.ID)
	}
	if err := x.a.workflowAccess(r.Context(), p, run.Namespace, accounts.RoleRead, "reading"); err != nil {
		return notFound("run %d not found", run.ID)
	}
	if err := x.a.workflowAccess(r.Context(), p, run.Namespace, accounts.RoleWrite, "approving jobs of"); err != nil {
		return err
	}
	return x.a.decide(r, p, store, run, jobRef, decision, comment)
}

// Message is what an error of Decide says to the caller and the HTTP status the API
// answers it with; "" and 0 for a failure that is not the caller's (log it instead).
func Message(err error) (string, int) {
	var e *errcode.Error
	if errors.As(err, &e) {
		status := e.Status
		if status == 0 {
			status = e.Code.Status
		}
		return e.Message, status
	}
	return "", 0
}
