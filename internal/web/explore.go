package web

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/reference"
)

// Explore lists pages of pageSize repositories; a name filter reads at most scanLimit
// names of the catalog per page (in catalogBatch rows a query) before it offers to go
// on, so a filter that matches little cannot make one request read a whole large
// catalog. Full-text search in the store replaces the scan (docs/design/web.md, slice
// 2).
const (
	pageSize     = 50
	catalogBatch = 500
	scanLimit    = 10000
)

// repoRow is one repository in a list.
type repoRow struct {
	Name      string
	Namespace string
	Short     string // the name without its namespace
}

// explorePage lists the repositories the viewer may pull.
type explorePage struct {
	basePage
	Query string
	Repos []repoRow
	// Next is the "after" of the next page; "" on the last one. Scanned says the
	// filter stopped after scanLimit names without filling the page.
	Next    string
	Scanned bool
}

func (h *Handler) explore(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if len(q) > 100 {
		q = q[:100]
	}
	after := r.URL.Query().Get("after")
	f := h.o.Policy.CatalogFilter(viewerOf(r).principal())
	p := explorePage{basePage: h.base(r, "Explore"), Query: q}
	last, scanned := after, 0
	for len(p.Repos) < pageSize && scanned < scanLimit {
		names, err := h.o.Meta.Catalog(r.Context(), f, last, catalogBatch)
		if err != nil {
			h.internal(w, r, err)
			return
		}
		for _, n := range names {
			last = n
			scanned++
			if q == "" || strings.Contains(n, strings.ToLower(q)) {
				p.Repos = append(p.Repos, row(n))
				if len(p.Repos) == pageSize {
					break
				}
			}
		}
		if len(names) < catalogBatch && len(p.Repos) < pageSize {
			last = ""
			break
		}
	}
	p.Next = last
	p.Scanned = p.Next != "" && len(p.Repos) < pageSize
	h.render(w, r, http.StatusOK, "explore", p)
}

func row(name string) repoRow {
	ns, short, _ := strings.Cut(name, "/")
	return repoRow{Name: name, Namespace: ns, Short: short}
}

// namespacePage lists a namespace's repositories the viewer may pull.
type namespacePage struct {
	basePage
	Namespace string
	Org       bool
	Repos     []repoRow
	Next      string
	// Account is the quota, teams and members, for those who belong (nsaccount.go).
	Account *namespaceAccount
}

// namespace shows a namespace to whoever may see something in it: its user, members
// of its organisation with an org-wide role, site admins, and anyone who may pull one
// of its repositories (a public one). Everyone else gets the page of a namespace that
// does not exist.
func (h *Handler) namespace(w http.ResponseWriter, r *http.Request, name string) {
	if accounts.CheckName(name) != nil || accounts.IsReserved(name) {
		h.notFound(w, r)
		return
	}
	ctx := r.Context()
	ns, err := h.o.Accounts.GetNamespace(ctx, name)
	if errors.Is(err, accounts.ErrNotFound) {
		h.notFound(w, r)
		return
	} else if err != nil {
		h.internal(w, r, err)
		return
	}
	v := viewerOf(r)
	f := h.o.Policy.CatalogFilter(v.principal())
	f.Restricted, f.Patterns = true, []string{name + "/*"}
	after := r.URL.Query().Get("after")
	if !strings.HasPrefix(after, name+"/") {
		after = name + "/"
	}
	names, err := h.o.Meta.Catalog(ctx, f, after, pageSize+1)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	if len(names) == 0 {
		member, err := h.member(ctx, v, name)
		if err != nil {
			h.internal(w, r, err)
			return
		}
		if !member {
			h.notFound(w, r)
			return
		}
	}
	p := namespacePage{basePage: h.base(r, name), Namespace: ns.Name, Org: ns.Org}
	if p.Account, err = h.namespaceAccount(ctx, v, ns); err != nil {
		h.internal(w, r, err)
		return
	}
	if len(names) > pageSize {
		names = names[:pageSize]
		p.Next = names[len(names)-1]
	}
	for _, n := range names {
		p.Repos = append(p.Repos, row(n))
	}
	h.render(w, r, http.StatusOK, "namespace", p)
}

// member reports whether the viewer belongs to namespace ns: it is theirs, they hold
// a role on the whole organisation, or they are a site admin.
func (h *Handler) member(ctx context.Context, v *viewer, ns string) (bool, error) {
	if v.user == nil {
		return false, nil
	}
	if v.user.Admin || v.user.Name == ns {
		return true, nil
	}
	// "ns/" is a name no repository has: only an org-wide grant matches it.
	role, err := h.o.Policy.RoleOn(ctx, v.user, ns+"/")
	return role.Valid(), err
}

// mayPull reports whether the viewer may pull repo, as the token service would grant.
func (h *Handler) mayPull(ctx context.Context, v *viewer, repo string) (bool, error) {
	g, err := h.o.Policy.Grant(ctx, v.principal(), scope.Scope{Type: scope.TypeRepository, Name: repo, Actions: []string{scope.Pull}})
	if err != nil {
		return false, err
	}
	return slices.Contains(g.Actions, scope.Pull) || slices.Contains(g.Actions, scope.All), nil
}

// visibleRepo reports whether repo exists and the viewer may pull it; both "no" are
// one answer to the caller (the same 404).
func (h *Handler) visibleRepo(ctx context.Context, v *viewer, repo string) (bool, error) {
	if reference.ValidateRepository(repo) != nil || !strings.Contains(repo, "/") {
		return false, nil
	}
	ok, err := h.mayPull(ctx, v, repo)
	if err != nil || !ok {
		return false, err
	}
	return h.o.Meta.RepositoryExists(ctx, repo)
}

// namespaceOrRepo routes every other GET: /NS, /NS/REPO…, /NS/REPO…/-/tags/TAG and
// /NS/REPO…/-/manifests/DIGEST. "-" is never a repository name component, so "/-/"
// ends the repository's name.
func (h *Handler) namespaceOrRepo(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/")
	repo, rest, sub := strings.Cut(path, "/-/")
	switch {
	case !sub && !strings.Contains(path, "/"):
		h.namespace(w, r, path)
	case !sub:
		h.repository(w, r, repo)
	default:
		kind, ref, ok := strings.Cut(rest, "/")
		if ok && ref != "" && h.repoSub(w, r, repo, kind, ref) {
			return
		}
		if !ok || ref == "" || (kind != "tags" && kind != "manifests") {
			h.notFound(w, r)
			return
		}
		h.manifest(w, r, repo, kind == "tags", ref)
	}
}
