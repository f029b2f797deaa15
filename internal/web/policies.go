package web

import (
	"context"
	"net/http"
	"strings"

	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/policy"
)

// PolicyList reads the stored repository policies (immutable tags, retention).
type PolicyList interface {
	ListPolicies(ctx context.Context) ([]policy.Stored, error)
}

func init() {
	pageNames = append(pageNames, "policies")
	funcs["join"] = joinList
}

type policiesPage struct {
	basePage
	Policies []policy.Stored
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
	all, err := h.o.Policies.ListPolicies(r.Context())
	if err != nil {
		h.internal(w, r, err)
		return
	}
	p := policiesPage{basePage: h.base(r, "Policies")}
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
		}
	}
	h.render(w, r, http.StatusOK, "policies", p)
}

// joinList shows a list of patterns.
func joinList(s []string) string { return strings.Join(s, ", ") }
