package hubapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/hubtypes"
)

// setQuota sets or, with bytes <= 0, removes a namespace's storage quota. Quotas are
// the operator's to give: site administrators only.
func (a *api) setQuota(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	var req hubtypes.SetQuotaRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	ns := r.PathValue("ns")
	detail := "unlimited"
	if req.Bytes > 0 {
		detail = fmt.Sprintf("%d bytes", req.Bytes)
	}
	if err := a.store.SetQuota(a.audited(r, p, "quota.change", ns, detail), ns, req.Bytes); err != nil {
		return err
	}
	u, err := a.usage(r.Context(), ns)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, u)
}

func (a *api) getUsage(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	ns := r.PathValue("ns")
	// Outsiders get the answer of a missing namespace whether or not it exists, so
	// the endpoint cannot be used to probe which user and organisation names exist.
	if ok, err := a.mayViewUsage(r.Context(), p, ns); errors.Is(err, accounts.ErrNotFound) || (err == nil && !ok) {
		return namespaceNotFound(ns)
	} else if err != nil {
		return err
	}
	u, err := a.usage(r.Context(), ns)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, u)
}

// mayViewUsage reports whether p may see the storage of namespace ns: site admins,
// the user whose personal namespace it is, and administrators of the organisation.
// An unknown namespace is an error wrapping accounts.ErrNotFound.
func (a *api) mayViewUsage(ctx context.Context, p *authz.Principal, ns string) (bool, error) {
	n, err := a.store.GetNamespace(ctx, ns)
	if err != nil {
		return false, err
	}
	switch {
	case p.User.Admin:
		return true, nil
	case !n.Org:
		return self(p, ns), nil
	}
	var e *errcode.Error
	switch _, err := a.orgAdmin(ctx, p, ns); {
	case errors.As(err, &e) && e.Code == errcode.Denied:
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// namespaceNotFound is the one answer for a namespace that is missing or not the
// caller's to see.
func namespaceNotFound(ns string) error {
	return notFound("namespace %s not found", ns)
}

func (a *api) usage(ctx context.Context, ns string) (*hubtypes.Usage, error) {
	used, quota, err := a.store.Usage(ctx, ns)
	if err != nil {
		return nil, err
	}
	return &hubtypes.Usage{Namespace: ns, UsedBytes: used, QuotaBytes: quota}, nil
}

// withUsage returns the namespace's usage when p may see it, else nil (also for a
// name with no namespace, such as a robot's).
func (a *api) withUsage(ctx context.Context, p *authz.Principal, ns string) (*hubtypes.Usage, error) {
	if !p.MayReadHub(scope.HubQuotas) {
		return nil, nil
	}
	ok, err := a.mayViewUsage(ctx, p, ns)
	if errors.Is(err, accounts.ErrNotFound) || (err == nil && !ok) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return a.usage(ctx, ns)
}
