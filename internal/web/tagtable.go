package web

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/policy"

	"github.com/hubctl/hubctl/internal/metadata"
)

// tagTable is one page of a repository page's tag table, read in SQL.
type tagTable struct {
	rows        []tagRow
	total       int
	page, pages int    // the page shown (a page past the end shows the last) and how many
	first       string // the first tag of the table's order, whatever the page: the pull commands name it
}

// tagSortKeys maps the page's sort keys to the store's.
var tagSortKeys = map[string]metadata.TagSort{"name": metadata.TagSortName, "pushed": metadata.TagSortPushed, "pulled": metadata.TagSortPulled}

// tagTable reads page (from 1) of repo's tags sorted by sortBy ("name", "pushed",
// "pulled") in SQL (metadata.Searcher.TagPage): a repository of 10,000 tags costs
// one page, not its whole tag view. ErrRepositoryNotFound when repo is gone.
func (h *Handler) tagTable(ctx context.Context, repo, sortBy string, desc bool, page int) (tagTable, error) {
	s := h.o.Search
	key := tagSortKeys[sortBy]
	page = max(page, 1)
	tp, err := s.TagPage(ctx, repo, key, desc, (page-1)*pageSize, pageSize)
	if err == nil && len(tp.Tags) == 0 && page > 1 && tp.Total > 0 {
		// Past the last page (a stale link): show the last one.
		page = (tp.Total + pageSize - 1) / pageSize
		tp, err = s.TagPage(ctx, repo, key, desc, (page-1)*pageSize, pageSize)
	}
	if err != nil {
		return tagTable{}, err
	}
	t := tagTable{total: tp.Total, page: page, pages: max(1, (tp.Total+pageSize-1)/pageSize), rows: make([]tagRow, 0, len(tp.Tags))}
	for _, tag := range tp.Tags {
		t.rows = append(t.rows, tagRow{Name: tag.Name, Digest: tag.Digest.String(), PushedAt: tag.PushedAt, PulledAt: tag.PulledAt})
	}
	if page == 1 && len(t.rows) > 0 {
		t.first = t.rows[0].Name
	} else if tp.Total > 0 {
		top, err := s.TagPage(ctx, repo, key, desc, 0, 1)
		if err != nil {
			return tagTable{}, err
		}
		if len(top.Tags) > 0 {
			t.first = top.Tags[0].Name
		}
	}
	return t, nil
}

// globTagTable is tagTable for the tags matching glob: the repository's tag view
// filtered (filterTags), sorted and cut to page in memory.
func (h *Handler) globTagTable(ctx context.Context, repo, glob, sortBy string, desc bool, page int) (tagTable, error) {
	view, err := h.o.Views.RetentionView(ctx, repo)
	if err != nil {
		return tagTable{}, err
	}
	rows := filterTags(tagRows(view), glob)
	sortTags(rows, sortBy, desc)
	t := tagTable{total: len(rows), pages: max(1, (len(rows)+pageSize-1)/pageSize)}
	t.page = min(max(page, 1), t.pages)
	t.rows = rows[min((t.page-1)*pageSize, len(rows)):min(t.page*pageSize, len(rows))]
	if len(rows) > 0 {
		t.first = rows[0].Name
	}
	return t, nil
}

// readmeTag is the tag whose readme the repository page shows: latest, else the
// newest pushed; "" when the repository has no tags.
func (h *Handler) readmeTag(ctx context.Context, repo string) (tagRow, error) {
	if d, err := h.o.Meta.ResolveTag(ctx, repo, "latest"); err == nil {
		return tagRow{Name: "latest", Digest: d.String()}, nil
	} else if !errors.Is(err, metadata.ErrTagNotFound) {
		return tagRow{}, err
	}
	tp, err := h.o.Search.TagPage(ctx, repo, metadata.TagSortPushed, true, 0, 1)
	if err != nil || len(tp.Tags) == 0 {
		return tagRow{}, err
	}
	return tagRow{Name: tp.Tags[0].Name, Digest: tp.Tags[0].Digest.String(), PushedAt: tp.Tags[0].PushedAt}, nil
}

// tagRows is a repository's tag view as table rows, each with its manifest's pull time.
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

// sortTags sorts rows by key ("name", "pushed", "pulled"), ties by name so pages are stable.
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
