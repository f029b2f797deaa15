package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/policy"
)

// PolicyList reads the stored repository policies (immutable tags, retention).
type PolicyList interface {
	ListPolicies(ctx context.Context) ([]policy.Stored, error)
}

// PolicyEditor sets and removes policies exactly as PUT and DELETE
// /api/v1/policies/{scope} do (policyapi.API).
type PolicyEditor interface {
	Set(r *http.Request, p *authz.Principal, target string, doc []byte) (policy.Policy, error)
	Remove(r *http.Request, p *authz.Principal, target string) error
}

func init() {
	pageNames = append(pageNames, "policies")
	funcs["join"] = joinList
	funcs["policyJSON"] = policyJSON
}

type policiesPage struct {
	basePage
	Policies []policy.Stored
	// Editable offers the form to set a policy; Scope and Doc are its input, kept
	// beside Error, its refusal.
	Editable   bool
	Scope, Doc string
	Error      string
}

// policiesList shows the policies of the namespaces and repositories the viewer may
// pull, as GET /api/v1/policies lists them (the same grant check: pull on the
// repository, or on every repository of a namespace). Policies are set with
// `hubctl policy` or the API.
func (h *Handler) policiesList(w http.ResponseWriter, r *http.Request) {
	if !h.requireViewer(w, r) {
		return
	}
	if h.o.Policies == nil {
		h.notFound(w, r)
		return
	}
	q := r.URL.Query()
	h.renderPolicies(w, r, http.StatusOK, clip(q.Get("scope"), 256), "", "")
}

// renderPolicies shows the policies page with the set form's scope, document
// (else the stored policy of scope, if shown) and refusal.
func (h *Handler) renderPolicies(w http.ResponseWriter, r *http.Request, status int, scopeName, doc, problem string) {
	all, err := h.o.Policies.ListPolicies(r.Context())
	if err != nil {
		h.internal(w, r, err)
		return
	}
	p := policiesPage{basePage: h.base(r, "Policies"), Editable: h.o.PolicyEdit != nil, Scope: scopeName, Doc: doc, Error: problem}
	for _, s := range all {
		name := s.Scope
		if policy.ScopeKind(s.Scope) == "namespace" {
			name = s.Scope + "/*"
		}
		g, err := h.o.Policy.Grant(r.Context(), viewerOf(r).principal(), scope.Scope{Type: scope.TypeRepository, Name: name, Actions: []string{scope.Pull}})
		if err != nil {
			h.internal(w, r, err)
			return
		}
		if g.Allows(scope.Pull) || g.Allows(scope.All) {
			p.Policies = append(p.Policies, s)
			if p.Doc == "" && p.Scope == s.Scope {
				p.Doc = policyJSON(s.Policy)
			}
		}
	}
	h.render(w, r, status, "policies", p)
}

// policyJSON is a policy as the document the set form takes.
func policyJSON(p policy.Policy) string {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return ""
	}
	return string(b)
}

// policySet sets a scope's policy from the form's JSON document, through the policy
// API's own code (the admin role on the scope, parsed and checked, audited as
// policy.set).
func (h *Handler) policySet(w http.ResponseWriter, r *http.Request) {
	if !h.checkForm(w, r) {
		return
	}
	if h.o.Policies == nil || h.o.PolicyEdit == nil {
		h.notFound(w, r)
		return
	}
	target, doc := strings.TrimSpace(r.PostForm.Get("scope")), r.PostForm.Get("policy")
	if _, err := h.o.PolicyEdit.Set(r, ptr(viewerOf(r).principal()), target, []byte(doc)); err != nil {
		h.apiRefusal(w, r, err, func(status int, msg string) {
			h.renderPolicies(w, r, status, clip(target, 256), clip(doc, 64<<10), msg)
		})
		return
	}
	http.Redirect(w, r, "/settings/admin/policies", http.StatusSeeOther)
}

func policyConfirm(target string) confirmPage {
	return confirmPage{What: "the policy of", Name: target, Action: "/settings/admin/policies/delete?" + url.Values{"scope": {target}}.Encode(),
		Back: "/settings/admin/policies"}
}

func (h *Handler) policyDeleteForm(w http.ResponseWriter, r *http.Request) {
	if !h.requireViewer(w, r) {
		return
	}
	if h.o.PolicyEdit == nil {
		h.notFound(w, r)
		return
	}
	h.confirm(w, r, http.StatusOK, policyConfirm(clip(r.URL.Query().Get("scope"), 256)))
}

// policyDelete removes a scope's policy through the policy API's own code.
func (h *Handler) policyDelete(w http.ResponseWriter, r *http.Request) {
	if !h.checkForm(w, r) {
		return
	}
	if h.o.PolicyEdit == nil {
		h.notFound(w, r)
		return
	}
	p := policyConfirm(r.URL.Query().Get("scope"))
	if !h.confirmed(w, r, p) {
		return
	}
	if err := h.o.PolicyEdit.Remove(r, ptr(viewerOf(r).principal()), p.Name); err != nil {
		h.apiRefusal(w, r, err, func(status int, msg string) {
			p.Error = msg
			h.confirm(w, r, status, p)
		})
		return
	}
	http.Redirect(w, r, "/settings/admin/policies", http.StatusSeeOther)
}

// joinList shows a list of patterns.
func joinList(s []string) string { return strings.Join(s, ", ") }
