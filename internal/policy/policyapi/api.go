// Package policyapi serves the tag and retention policies over the hub API; it lives
// apart from package policy so the store, which imports policy, never imports the
// access rules.
package policyapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/hubapi"
	"github.com/hubctl/hubctl/internal/policy"
	"github.com/hubctl/hubctl/internal/reference"
	"github.com/hubctl/hubctl/internal/reqlog"
)

// API serves the policy endpoints of the hub API (docs/api.md):
//
//	GET    /api/v1/policies              policies the caller may read
//	GET    /api/v1/policies/{scope…}     one policy, and for a repository the effective one
//	PUT    /api/v1/policies/{scope…}     set (admin role on the scope)
//	DELETE /api/v1/policies/{scope…}     remove (admin role on the scope)
//	POST   /api/v1/retention?scope=S&dry_run=true   run retention now
//
// A namespace scope ("team") needs the admin role on every repository of it (a grant
// of team/*, the namespace's owner, a site admin); a repository scope the admin role
// on it. Reading needs pull.
type API struct {
	Engine *policy.Engine
	// Principal finds the caller (nil, nil without credentials); nil Principal means
	// --auth=none: everyone may do everything.
	Principal func(w http.ResponseWriter, r *http.Request) (*authz.Principal, error)
	Authz     *authz.Policy
	// Audit records changes and runs; nil records nothing.
	Audit func(ctx context.Context, e accounts.AuditEntry) error
}

// maxBody bounds a policy document.
const maxBody = 64 << 10

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := a.serve(w, r); err != nil {
		var e *errcode.Error
		if !errors.As(err, &e) {
			err = errcode.New(errcode.Unknown, "internal error, see the server log (request id %s)", reqlog.From(r.Context()).RequestID)
		}
		errcode.Write(w, err)
	}
}

func (a *API) serve(w http.ResponseWriter, r *http.Request) error {
	p, err := a.principal(w, r)
	if err != nil {
		return err
	}
	if r.URL.Path == "/api/v1/retention" {
		if r.Method != http.MethodPost {
			return methodNotAllowed()
		}
		return a.run(w, r, p)
	}
	target := strings.TrimPrefix(r.URL.Path, "/api/v1/policies")
	target = strings.Trim(target, "/")
	if target == "" {
		if r.Method != http.MethodGet {
			return methodNotAllowed()
		}
		return a.list(w, r, p)
	}
	if err := checkScope(target); err != nil {
		return err
	}
	switch r.Method {
	case http.MethodGet:
		return a.get(w, r, p, target)
	case http.MethodPut:
		return a.put(w, r, p, target)
	case http.MethodDelete:
		return a.delete(w, r, p, target)
	}
	return methodNotAllowed()
}

func methodNotAllowed() error {
	return errcode.New(errcode.Unsupported, "method not allowed").WithStatus(http.StatusMethodNotAllowed)
}

// checkScope accepts a namespace or a repository name.
func checkScope(s string) error {
	if strings.Contains(s, "/") {
		if err := reference.ValidateRepository(s); err != nil {
			return errcode.New(errcode.NameInvalid, "%v", err)
		}
		return nil
	}
	if err := reference.ValidateRepository(s + "/x"); err != nil {
		return errcode.New(errcode.NameInvalid, "namespace %q is invalid", s)
	}
	return nil
}

// who is the caller: a principal, or nil for anonymous (or --auth=none).
type who struct {
	p    *authz.Principal
	open bool // --auth=none
}

func (w who) name() string {
	if w.p != nil {
		return w.p.Name()
	}
	return "anonymous"
}

func (a *API) principal(w http.ResponseWriter, r *http.Request) (who, error) {
	if a.Principal == nil {
		return who{open: true}, nil
	}
	p, err := a.Principal(w, r)
	if err != nil {
		return who{}, err
	}
	if p != nil {
		reqlog.From(r.Context()).User = p.Name()
	}
	return who{p: p}, nil
}

// may reports whether the caller may do action on scope target: for a namespace, on
// every repository in it.
func (a *API) may(ctx context.Context, c who, target, action string) (bool, error) {
	if c.open {
		return true, nil
	}
	if c.p == nil {
		return false, nil
	}
	name := target
	if policy.ScopeKind(target) == "namespace" {
		name = target + "/*"
	}
	g, err := a.Authz.Grant(ctx, *c.p, scope.Scope{Type: scope.TypeRepository, Name: name, Actions: []string{action}})
	if err != nil {
		return false, err
	}
	return g.Allows(action) || g.Allows(scope.All), nil
}

// need refuses a caller who may not do action on target: 401 for anonymous, 403
// otherwise.
func (a *API) need(ctx context.Context, c who, target, action, what string) error {
	ok, err := a.may(ctx, c, target, action)
	if err != nil || ok {
		return err
	}
	if c.p == nil && !c.open {
		return errcode.New(errcode.Unauthorized, "sign in to %s", what)
	}
	return errcode.New(errcode.Denied, "%s %s needs the admin role on it", what, target)
}

func (a *API) list(w http.ResponseWriter, r *http.Request, c who) error {
	all, err := a.Engine.Store.ListPolicies(r.Context())
	if err != nil {
		return err
	}
	out := []policy.Stored{}
	for _, s := range all {
		if ok, err := a.may(r.Context(), c, s.Scope, scope.Pull); err != nil {
			return err
		} else if ok {
			out = append(out, s)
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) get(w http.ResponseWriter, r *http.Request, c who, target string) error {
	if err := a.need(r.Context(), c, target, scope.Pull, "reading the policy of"); err != nil {
		return err
	}
	all, err := a.Engine.Store.ListPolicies(r.Context())
	if err != nil {
		return err
	}
	doc := policy.Document{Stored: policy.Stored{Scope: target}}
	found := false
	byScope := map[string]policy.Policy{}
	for _, s := range all {
		byScope[s.Scope] = s.Policy
		if s.Scope == target {
			doc.Stored, found = s, true
		}
	}
	if policy.ScopeKind(target) == "repository" {
		eff := policy.EffectiveOf(byScope, target)
		doc.Effective = &eff
		found = found || len(eff.ImmutableTags) > 0 || eff.Retention != nil
	}
	if !found {
		return errcode.New(errcode.NameUnknown, "no policy set on %s", target).WithStatus(http.StatusNotFound)
	}
	return writeJSON(w, http.StatusOK, doc)
}

func (a *API) put(w http.ResponseWriter, r *http.Request, c who, target string) error {
	if err := a.need(r.Context(), c, target, scope.Delete, "setting the policy of"); err != nil {
		return err
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return errcode.New(errcode.SizeInvalid, "policy body: %v", err).WithStatus(http.StatusRequestEntityTooLarge)
	}
	p, err := a.set(r, c, target, b)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, policy.Stored{Scope: target, Policy: p, UpdatedAt: time.Now().UTC(), UpdatedBy: c.name()})
}

// set stores the policy doc on target, as PUT /api/v1/policies/{target} does once
// its body is read: the admin role on the scope, the document parsed and checked,
// audited as policy.set.
func (a *API) set(r *http.Request, c who, target string, doc []byte) (policy.Policy, error) {
	if err := checkScope(target); err != nil {
		return policy.Policy{}, err
	}
	if err := a.need(r.Context(), c, target, scope.Delete, "setting the policy of"); err != nil {
		return policy.Policy{}, err
	}
	if len(doc) > maxBody {
		return policy.Policy{}, errcode.New(errcode.SizeInvalid, "policy body: over %d bytes", maxBody).WithStatus(http.StatusRequestEntityTooLarge)
	}
	p, err := policy.Parse(doc)
	if err != nil {
		return p, errcode.New(hubapi.InvalidRequest, "%v", err)
	}
	if err := a.Engine.Store.PutPolicy(r.Context(), target, p, c.name()); err != nil {
		return p, err
	}
	a.Engine.Invalidate()
	body, _ := json.Marshal(p)
	a.audit(r, c, "policy.set", target, string(body))
	return p, nil
}

func (a *API) delete(w http.ResponseWriter, r *http.Request, c who, target string) error {
	if err := a.remove(r, c, target); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// remove deletes target's policy, as DELETE /api/v1/policies/{target} does: the
// admin role on the scope, audited as policy.delete.
func (a *API) remove(r *http.Request, c who, target string) error {
	if err := checkScope(target); err != nil {
		return err
	}
	if err := a.need(r.Context(), c, target, scope.Delete, "removing the policy of"); err != nil {
		return err
	}
	if err := a.Engine.Store.DeletePolicy(r.Context(), target); errors.Is(err, policy.ErrNotFound) {
		return errcode.New(errcode.NameUnknown, "no policy set on %s", target).WithStatus(http.StatusNotFound)
	} else if err != nil {
		return err
	}
	a.Engine.Invalidate()
	a.audit(r, c, "policy.delete", target, "")
	return nil
}

// Set stores the policy document doc (JSON) on scope target for p, exactly as PUT
// /api/v1/policies/{target} does (for another front end: the web UI). A refusal is
// an *errcode.Error whose message is fit to show.
func (a *API) Set(r *http.Request, p *authz.Principal, target string, doc []byte) (policy.Policy, error) {
	return a.set(r, a.caller(p), target, doc)
}

// Remove deletes target's policy for p, exactly as DELETE /api/v1/policies/{target}
// does.
func (a *API) Remove(r *http.Request, p *authz.Principal, target string) error {
	return a.remove(r, a.caller(p), target)
}

// caller is p as the endpoints see it (nil Principal: --auth=none).
func (a *API) caller(p *authz.Principal) who {
	if a.Principal == nil {
		return who{open: true}
	}
	if p == nil || p.User == nil {
		return who{}
	}
	return who{p: p}
}

func (a *API) run(w http.ResponseWriter, r *http.Request, c who) error {
	target := r.URL.Query().Get("scope")
	dry, _ := strconv.ParseBool(r.URL.Query().Get("dry_run"))
	if target == "" {
		if !c.open && (c.p == nil || c.p.User == nil || !c.p.User.Admin) {
			return errcode.New(errcode.Denied, "a run over every scope is for site admins: give ?scope=")
		}
	} else {
		if err := checkScope(target); err != nil {
			return err
		}
		action := scope.Delete
		if dry {
			action = scope.Pull
		}
		if err := a.need(r.Context(), c, target, action, "running retention on"); err != nil {
			return err
		}
	}
	rep, err := a.Engine.Run(r.Context(), target, dry)
	if errors.Is(err, policy.ErrBusy) {
		w.Header().Set("Retry-After", "60")
		return errcode.New(errcode.Denied, "%v; retry later", err).WithStatus(http.StatusConflict)
	} else if err != nil {
		return err
	}
	if !dry {
		a.audit(r, c, "retention.run", orAll(target), strconv.Itoa(rep.DeletedTags)+" tags, "+strconv.Itoa(rep.DeletedManifests)+" manifests")
	}
	return writeJSON(w, http.StatusOK, rep)
}

func orAll(s string) string {
	if s == "" {
		return "*"
	}
	return s
}

func (a *API) audit(r *http.Request, c who, action, target, detail string) {
	if a.Audit == nil {
		return
	}
	e := accounts.AuditEntry{Time: time.Now().UTC(), Actor: c.name(), Action: action, Target: target, Remote: reqlog.From(r.Context()).Remote, Detail: detail}
	if err := a.Audit(r.Context(), e); err != nil {
		a.Engine.Log.Warn("audit", "action", action, "target", target, "err", err)
	}
}

// writeJSON answers v; once the status is sent, a failed write is the client's loss.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
	return nil
}
