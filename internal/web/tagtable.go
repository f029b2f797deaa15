package web

import (
	"context"

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
	s, err := h.searcher()
	if err != nil {
		return tagTable{}, err
	}
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
