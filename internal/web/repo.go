package web

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/policy"
)

// tagRow is one tag on a repository page.
type tagRow struct {
	Name     string
	Digest   string
	PushedAt time.Time
	PulledAt time.Time // zero: never pulled (or not recorded yet)
}

// sortLink is a column header's link and whether the table is sorted by it.
type sortLink struct {
	Label  string
	URL    string
	Active bool
	Desc   bool
}

// repoPage is a repository: its tags, sorted and paged.
type repoPage struct {
	basePage
	Repository string
	Namespace  string
	Short      string
	Visibility accounts.Visibility
	Pull       []pullCommand
	Tags       []tagRow
	Total      int
	Sorts      []sortLink
	Page       int
	Pages      int
	PrevURL    string
	NextURL    string
	// Glob filters the tags by a pattern ("v1.*"; tagfilter.go).
	Glob string
	repoReadme
}

// Sort keys of the tag table.
var tagSorts = []struct{ key, label string }{{"name", "Tag"}, {"pushed", "Pushed"}, {"pulled", "Last pulled"}}

func (h *Handler) repository(w http.ResponseWriter, r *http.Request, repo string) {
	ctx := r.Context()
	ok, err := h.visibleRepo(ctx, viewerOf(r), repo)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	if !ok {
		h.notFound(w, r)
		return
	}
	view, err := h.o.Views.RetentionView(ctx, repo)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	vis, _, err := h.o.Accounts.RepositoryVisibility(ctx, repo)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	q := r.URL.Query()
	sortBy, order := q.Get("sort"), q.Get("order")
	if !slices.ContainsFunc(tagSorts, func(s struct{ key, label string }) bool { return s.key == sortBy }) {
		sortBy = "pushed"
	}
	if order != "asc" && order != "desc" {
		order = "desc"
		if sortBy == "name" {
			order = "asc"
		}
	}
	glob := strings.TrimSpace(q.Get("glob"))
	rows := filterTags(tagRows(view), glob)
	sortTags(rows, sortBy, order == "desc")
	page, _ := strconv.Atoi(q.Get("page"))
	pages := max(1, (len(rows)+pageSize-1)/pageSize)
	page = min(max(page, 1), pages)

	row := row(repo)
	p := repoPage{basePage: h.base(r, repo), Repository: repo, Namespace: row.Namespace, Short: row.Short,
		Visibility: vis, Total: len(rows), Page: page, Pages: pages, Glob: glob}
	p.Tags = rows[min((page-1)*pageSize, len(rows)):min(page*pageSize, len(rows))]
	if len(rows) > 0 {
		p.Pull = pullCommands(h.registryHost(r), repo, ":"+rows[0].Name)
	}
	link := func(sortBy, order string, page int) string {
		v := url.Values{"sort": {sortBy}, "order": {order}}
		if glob != "" {
			v.Set("glob", glob)
		}
		if page > 1 {
			v.Set("page", strconv.Itoa(page))
		}
		return "/" + repo + "?" + v.Encode()
	}
	for _, s := range tagSorts {
		l := sortLink{Label: s.label, Active: s.key == sortBy, Desc: order == "desc"}
		next := "desc"
		if s.key == "name" {
			next = "asc"
		}
		if l.Active {
			next = map[string]string{"asc": "desc", "desc": "asc"}[order]
		}
		l.URL = link(s.key, next, 1)
		p.Sorts = append(p.Sorts, l)
	}
	if page > 1 {
		p.PrevURL = link(sortBy, order, page-1)
	}
	if page < pages {
		p.NextURL = link(sortBy, order, page+1)
	}
	if err := h.fillRepoReadme(ctx, &p, tagRows(view)); err != nil {
		h.internal(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "repo", p)
}

func tagRows(v policy.View) []tagRow {
	pulled := make(map[string]time.Time, len(v.Manifests))
	for _, m := range v.Manifests {
		pulled[m.Digest.String()] = m.PulledAt
	}
	rows := make([]tagRow, 0, len(v.Tags))
	for _, t := range v.Tags {
		rows = append(rows, tagRow{Name: t.Name, Digest: t.Digest.String(), PushedAt: t.PushedAt, PulledAt: pulled[t.Digest.String()]})
	}
	return rows
}

// sortTags sorts rows by key, ties by name so pages are stable.
func sortTags(rows []tagRow, key string, desc bool) {
	slices.SortStableFunc(rows, func(a, b tagRow) int {
		var c int
		switch key {
		case "pushed":
			c = a.PushedAt.Compare(b.PushedAt)
		case "pulled":
			c = a.PulledAt.Compare(b.PulledAt)
		}
		if c == 0 {
			c = strings.Compare(a.Name, b.Name)
			if key != "name" {
				return c
			}
		}
		if desc {
			return -c
		}
		return cmp.Compare(c, 0)
	})
}
