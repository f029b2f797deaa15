package hubapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/metadata"
)

// SearchPath is the search endpoint; it alone answers anonymous callers (with public
// repositories only), as the catalog and the explore page do.
const SearchPath = "/api/v1/search"

// Searcher is the store's search (metadata.Searcher's Search).
type Searcher interface {
	Search(ctx context.Context, f metadata.CatalogFilter, q metadata.SearchQuery) (metadata.SearchResult, error)
}

// search answers GET /api/v1/search?q=&kind=&namespace=&visibility=&after=&limit=:
// repositories the caller may pull (Policy.CatalogFilter, as /v2/_catalog and the web
// UI), matched by name, description and labels, or by manifest digest prefix.
func (a *api) search(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if a.searcher == nil {
		return notFound("no API endpoint %s", r.URL.Path)
	}
	v := r.URL.Query()
	q := metadata.SearchQuery{Text: v.Get("q"), Kind: v.Get("kind"), Namespace: v.Get("namespace"),
		Visibility: v.Get("visibility"), After: v.Get("after")}
	if len(q.Text) > 4*metadata.MaxSearchQuery || len(q.After) > 512 {
		return invalid("q or after is too long")
	}
	if q.Namespace != "" {
		if err := accounts.CheckName(q.Namespace); err != nil {
			return invalid("namespace: %v", err)
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > metadata.MaxSearchPage {
			return invalid("limit %q: want 1 to %d", s, metadata.MaxSearchPage)
		}
		q.Limit = n
	}
	res, err := a.searcher.Search(r.Context(), a.policy.CatalogFilter(*p), q)
	if errors.Is(err, metadata.ErrInvalidSearch) {
		return invalid("%v", err)
	} else if err != nil {
		return err
	}
	out := hubtypes.SearchPage{Results: make([]hubtypes.SearchHit, 0, len(res.Hits)), Next: res.Next}
	for _, h := range res.Hits {
		out.Results = append(out.Results, hubtypes.SearchHit{Repository: h.Repository, Kind: h.Kind, Visibility: h.Visibility,
			Description: h.Description, Labels: h.Labels, Digest: h.Digest.String()})
	}
	return reply(w, http.StatusOK, out)
}
