package web

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/metadata"
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
	if !h.mayView(w, r, repo) {
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
	page, _ := strconv.Atoi(q.Get("page"))
	var tp tagTable
	if glob == "" {
		// The table is read a page at a time in SQL.
		tp, err = h.tagTable(ctx, repo, sortBy, order == "desc", page)
	} else {
		// A glob filter runs over the repository's tag view (tagfilter.go).
		tp, err = h.globTagTable(ctx, repo, glob, sortBy, order == "desc", page)
	}
	if errors.Is(err, metadata.ErrRepositoryNotFound) {
		h.notFound(w, r)
		return
	} else if err != nil {
		h.internal(w, r, err)
		return
	}
	rows, page, pages, first := tp.rows, tp.page, tp.pages, tp.first

	row := row(repo)
	p := repoPage{basePage: h.base(r, repo), Repository: repo, Namespace: row.Namespace, Short: row.Short,
		Visibility: vis, Total: tp.total, Page: page, Pages: pages, Tags: rows, Glob: glob}
	if first != "" {
		p.Pull = pullCommands(h.registryHost(r), repo, ":"+first)
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
	if err := h.fillRepoReadme(ctx, &p); err != nil {
		h.internal(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "repo", p)
}
