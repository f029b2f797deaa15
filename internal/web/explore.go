package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/reference"
)

// pageSize is how many repositories, or tags, a page lists.
const pageSize = 50

// repoRow is one repository in a list; a search fills the fields after Short.
type repoRow struct {
	Name        string
	Namespace   string
	Short       string // the name without its namespace
	Kind        string
	Visibility  string
	Description string
	Labels      []keyValue // the first few, by key
	Digest      string     // found by this manifest's digest prefix
}

// exploreLabels is how many labels a search hit shows.
const exploreLabels = 4

// explorePage lists the repositories the viewer may pull, found by the store's
// search (docs/design/web.md, slice 2) when a query or a filter is given.
type explorePage struct {
	basePage
	Query      string
	Namespace  string
	Kind       string
	Visibility string
	Kinds      []option
	Visibs     []option
	Repos      []repoRow
	// NextURL is the link to the next page; "" on the last one.
	NextURL string
	// Error says why the query was refused (a digest prefix too short).
	Error string
}

// option is one choice of a filter's select.
type option struct {
	Value, Label string
	Selected     bool
}

func options(selected string, pairs ...string) []option {
	var out []option
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, option{Value: pairs[i], Label: pairs[i+1], Selected: pairs[i] == selected})
	}
	return out
}

func (h *Handler) explore(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := strings.TrimSpace(v.Get("q"))
	if len(q) > metadata.MaxSearchQuery {
		q = strings.ToValidUTF8(q[:metadata.MaxSearchQuery], "")
	}
	sq := metadata.SearchQuery{Text: q, Namespace: v.Get("namespace"), Kind: v.Get("kind"), Visibility: v.Get("visibility"),
		After: v.Get("after"), Limit: pageSize}
	// Filters outside their choices are dropped, not refused: they come from links
	// and forms of this page.
	if sq.Namespace != "" && accounts.CheckName(sq.Namespace) != nil {
		sq.Namespace = ""
	}
	if !slices.Contains([]string{"", metadata.KindImage, metadata.KindChart, metadata.KindArtifact}, sq.Kind) {
		sq.Kind = ""
	}
	if sq.Visibility != "public" && sq.Visibility != "private" {
		sq.Visibility = ""
	}
	if len(sq.After) > 512 {
		sq.After = ""
	}
	viewer := viewerOf(r)
	if viewer.user == nil {
		// Anonymous visitors see public repositories only; a private filter would
		// only ever answer nothing.
		sq.Visibility = ""
	}
	f := h.o.Policy.CatalogFilter(viewer.principal())
	p := explorePage{basePage: h.base(r, "Explore"), Query: q, Namespace: sq.Namespace, Kind: sq.Kind, Visibility: sq.Visibility,
		Kinds:  options(sq.Kind, "", "Any kind", metadata.KindImage, "Images", metadata.KindChart, "Charts", metadata.KindArtifact, "Artifacts"),
		Visibs: options(sq.Visibility, "", "Public and private", "public", "Public", "private", "Private")}
	next := ""
	if q == "" && sq.Namespace == "" && sq.Kind == "" && sq.Visibility == "" {
		// Everything the viewer may pull: the catalog's own query, which reads only
		// the rows of what the viewer may see.
		names, err := h.o.Meta.Catalog(r.Context(), f, sq.After, pageSize+1)
		if err != nil {
			h.internal(w, r, err)
			return
		}
		if len(names) > pageSize {
			names = names[:pageSize]
			next = names[pageSize-1]
		}
		for _, n := range names {
			p.Repos = append(p.Repos, row(n))
		}
	} else {
		res, err := h.o.Search.Search(r.Context(), f, sq)
		if errors.Is(err, metadata.ErrInvalidSearch) {
			p.Error = strings.TrimPrefix(err.Error(), metadata.ErrInvalidSearch.Error()+": ")
		} else if err != nil {
			h.internal(w, r, err)
			return
		}
		for _, hit := range res.Hits {
			rr := row(hit.Repository)
			rr.Kind, rr.Visibility, rr.Description, rr.Digest = hit.Kind, hit.Visibility, hit.Description, hit.Digest.String()
			rr.Labels = sortedPairs(hit.Labels)
			if len(rr.Labels) > exploreLabels {
				rr.Labels = rr.Labels[:exploreLabels]
			}
			p.Repos = append(p.Repos, rr)
		}
		next = res.Next
	}
	if next != "" {
		u := url.Values{"after": {next}}
		for k, val := range map[string]string{"q": q, "namespace": sq.Namespace, "kind": sq.Kind, "visibility": sq.Visibility} {
			if val != "" {
				u.Set(k, val)
			}
		}
		p.NextURL = "/explore?" + u.Encode()
	}
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

// mayView answers whether the request's viewer may see repo; when not, it has
// answered the request: the not-found page (the same as for a repository that
// does not exist), or a 500 when the check itself failed.
func (h *Handler) mayView(w http.ResponseWriter, r *http.Request, repo string) bool {
	ok, err := h.visibleRepo(r.Context(), viewerOf(r), repo)
	if err != nil {
		h.internal(w, r, err)
		return false
	}
	if !ok {
		h.notFound(w, r)
	}
	return ok
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
