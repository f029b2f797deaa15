package sqlstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/metadata"
)

var _ metadata.Searcher = (*Store)(nil)

// Bounds of a SearchDoc as stored: the indexer cuts what it reads to these, and so
// does SetSearchDoc, so no push can make a search row (and every search reading it)
// large.
const (
	maxDescription = 1024
	maxLabels      = 64
	maxLabelKey    = 128
	maxLabelValue  = 512
)

// Search finds repositories by name, description, labels or manifest digest prefix;
// see metadata.Searcher. It is one statement: the matches (through the dialect's
// searchFrom, an index on both databases), the caller's visibility (visibleSQL: the
// same selection as Catalog, as a condition on each matching row), the filters, then
// newest repository first (by id, which the full-text index yields in order, so a
// common term costs a page, not a sort of every match) from After on, and the limit.
// Digest-prefix hits, few by construction, come in name and digest order.
func (s *Store) Search(ctx context.Context, f metadata.CatalogFilter, q metadata.SearchQuery) (metadata.SearchResult, error) {
	res := metadata.SearchResult{Hits: []metadata.SearchHit{}}
	p, err := metadata.ParseSearch(q.Text)
	if err != nil {
		return res, err
	}
	limit := q.Limit
	if limit <= 0 || limit > metadata.MaxSearchPage {
		limit = metadata.MaxSearchPage
	}
	switch q.Kind {
	case "", metadata.KindImage, metadata.KindChart, metadata.KindArtifact:
	default:
		return res, fmt.Errorf("%w: kind %q: use image, chart or artifact", metadata.ErrInvalidSearch, q.Kind)
	}
	switch q.Visibility {
	case "", "public", "private":
	default:
		return res, fmt.Errorf("%w: visibility %q: use public or private", metadata.ErrInvalidSearch, q.Visibility)
	}
	if !utf8.ValidString(q.After) || !utf8.ValidString(q.Namespace) || strings.ContainsRune(q.After+q.Namespace, 0) {
		return res, fmt.Errorf("%w: after and namespace must be UTF-8 text", metadata.ErrInvalidSearch)
	}
	var ids []int64
	err = s.read(ctx, func(qr querier) error {
		grants, err := readMemberGrants(ctx, qr, f.Member)
		if err != nil {
			return err
		}
		var args []any
		arg := func(v any) string {
			args = append(args, v)
			return "$" + strconv.Itoa(len(args))
		}
		visible, none := visibleSQL(s.d, f, grants, arg)
		if none {
			return nil
		}
		where := []string{visible}
		if q.Namespace != "" {
			// "under ns/" on the name index: '0' is the byte after '/'.
			where = append(where, "r.name >= "+arg(q.Namespace+"/")+" AND r.name < "+arg(q.Namespace+"0"))
		}
		if q.Kind != "" {
			where = append(where, "s.kind = "+arg(q.Kind))
		}
		if q.Visibility != "" {
			where = append(where, "r.visibility = "+arg(q.Visibility))
		}
		var query string
		if p.DigestPrefix != "" {
			afterRepo, afterDigest, _ := strings.Cut(q.After, "@")
			if q.After != "" {
				where = append(where, "(r.name > "+arg(afterRepo)+" OR (r.name = "+arg(afterRepo)+" AND m.digest > "+arg(afterDigest)+"))")
			}
			// The prefix's range on the digest index: [prefix, prefix with its last byte
			// incremented).
			lo := p.DigestPrefix
			hi := lo[:len(lo)-1] + string(rune(lo[len(lo)-1]+1))
			where = append(where, "m.digest >= "+arg(lo)+" AND m.digest < "+arg(hi))
			query = `SELECT r.name, r.visibility, s.kind, s.description, s.labels, s.updated_at, m.digest, r.id
			FROM manifests m JOIN repositories r ON r.id = m.repo_id JOIN repository_search s ON s.repo_id = r.id
			WHERE ` + strings.Join(where, " AND ") + ` ORDER BY r.name, m.digest LIMIT ` + arg(limit+1)
		} else {
			sc := scopeOf(f, grants, q)
			var after int64
			if q.After != "" {
				after, err = strconv.ParseInt(q.After, 10, 64)
				if err != nil || after <= 0 {
					return fmt.Errorf("%w: after %q is not the next of a search", metadata.ErrInvalidSearch, q.After)
				}
			}
			from, idCol, conds := "", "", []string(nil)
			if s.d.name == "postgres" && (len(p.Terms) > 0 || sc.narrow || len(sc.allOf) > 0) {
				// The matches the index finds, up to maxCandidates: when they are all
				// there, the page is read from them by id (a few index lookups and a
				// sort of at most that many rows), whatever the planner would guess
				// of the terms; when there are more, matches are common enough that
				// reading repositories newest first finds a page soon, and the scope's
				// array test is left out of that query (visibleSQL decides anyway), so
				// that it does not tempt the planner into a bitmap and a sort of them all.
				ids, err := searchCandidates(ctx, qr, s.d, p.Terms, sc, q.Kind, after)
				if err != nil {
					return err
				}
				if len(ids) <= maxCandidates {
					if len(ids) == 0 {
						return nil
					}
					// They match the terms (in this statement's snapshot or the one
					// just before); visibility and the filters are checked again below.
					from, idCol = "repositories r JOIN repository_search s ON s.repo_id = r.id", "r.id"
					where = append(where, "r.id = ANY("+arg(ids)+"::bigint[])")
				} else {
					from, idCol, conds = s.d.searchFrom(p.Terms, searchScope{}, arg)
				}
			} else {
				from, idCol, conds = s.d.searchFrom(p.Terms, sc, arg)
			}
			if after != 0 {
				where = append(where, idCol+" < "+arg(after))
			}
			where = append(where, conds...)
			query = `SELECT r.name, r.visibility, s.kind, s.description, s.labels, s.updated_at, '', r.id
			FROM ` + from + ` WHERE ` + strings.Join(where, " AND ") + ` ORDER BY ` + idCol + ` DESC LIMIT ` + arg(limit+1)
		}
		ids = ids[:0]
		res.Hits, err = collect(func(r row) (metadata.SearchHit, error) {
			var h metadata.SearchHit
			var labels, d string
			var at, id int64
			if err := r.Scan(&h.Repository, &h.Visibility, &h.Kind, &h.Description, &labels, &at, &d, &id); err != nil {
				return h, err
			}
			h.Digest = digest.Digest(d)
			ids = append(ids, id)
			if at != 0 {
				h.IndexedAt = fromNanos(at)
			}
			if labels != "{}" && labels != "" {
				// Written by SetSearchDoc only; a row that does not parse shows no labels.
				_ = json.Unmarshal([]byte(labels), &h.Labels)
			}
			return h, nil
		})(qr.Query(ctx, query, args...))
		return err
	})
	if errors.Is(err, metadata.ErrInvalidSearch) {
		return res, err
	} else if err != nil {
		return metadata.SearchResult{}, fmt.Errorf("search: %w", err)
	}
	if res.Hits == nil {
		res.Hits = []metadata.SearchHit{}
	}
	if len(res.Hits) > limit {
		res.Hits = res.Hits[:limit]
		last := res.Hits[limit-1]
		res.Next = strconv.FormatInt(ids[limit-1], 10)
		if p.DigestPrefix != "" {
			res.Next = last.Repository + "@" + last.Digest.String()
		}
	}
	return res, nil
}

// maxCandidates is how many matches PostgreSQL's search reads from its index before
// it takes them for common and reads repositories newest first instead (a variable
// so that a test can take both paths with a few repositories).
var maxCandidates = 1000

// searchCandidates returns the ids of up to maxCandidates+1 repositories whose
// search row matches terms, sc and kind, below after (0: any), on PostgreSQL. The
// conditions are those of the row alone, so the GIN index answers them as one
// bitmap; the caller's exact visibility is applied by the query that reads the page.
func searchCandidates(ctx context.Context, q querier, d *dialect, terms []string, sc searchScope, kind string, after int64) ([]int64, error) {
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	_, _, conds := d.searchFrom(terms, sc, arg)
	if kind != "" {
		conds = append(conds, "s.kind = "+arg(kind))
	}
	if after != 0 {
		conds = append(conds, "s.repo_id < "+arg(after))
	}
	query := "SELECT s.repo_id FROM repository_search s WHERE " + strings.Join(conds, " AND ") + " LIMIT " + arg(maxCandidates+1)
	return collect(func(r row) (int64, error) {
		var id int64
		return id, r.Scan(&id)
	})(q.Query(ctx, query, args...))
}

// searchScope narrows a search to the rows of the search index a caller may see, by
// the scope each row carries (migration 0033): its namespace ("ns:NAME") and its
// visibility ("v:public", "v:private"). A row is read when it carries one of anyOf
// (when narrow) and all of allOf. It is a superset of visibleSQL's selection, never
// the decision: visibleSQL is applied to every row read.
type searchScope struct {
	narrow bool
	anyOf  []string
	allOf  []string
}

// maxScopeMarkers bounds anyOf: a caller in more namespaces than this is not
// narrowed by namespace (the search reads more rows, visibleSQL still decides).
const maxScopeMarkers = 64

// scopeOf is the searchScope of f (with grants, as visibleSQL reads them) and of q's
// namespace and visibility filters.
func scopeOf(f metadata.CatalogFilter, grants memberGrants, q metadata.SearchQuery) searchScope {
	var sc searchScope
	if q.Namespace != "" {
		sc.allOf = append(sc.allOf, "ns:"+namespaceOf(q.Namespace))
	}
	if q.Visibility != "" {
		sc.allOf = append(sc.allOf, "v:"+q.Visibility)
	}
	if f.All {
		return sc
	}
	seen := map[string]bool{}
	add := func(m string) {
		if !seen[m] {
			seen[m] = true
			sc.anyOf = append(sc.anyOf, m)
		}
	}
	if f.Public {
		add("v:public")
	}
	for _, ns := range f.Namespaces {
		add("ns:" + namespaceOf(ns))
	}
	for _, org := range grants.orgs {
		add("ns:" + namespaceOf(org))
	}
	for _, repo := range grants.repos {
		add("ns:" + namespaceOf(repo))
	}
	sc.narrow = len(sc.anyOf) > 0 && len(sc.anyOf) <= maxScopeMarkers
	return sc
}

// scopeMarker is a scope word as SQLite's repository_fts scope column spells it
// (migration 0033): "/NAME/" for "ns:NAME", "/+/" for public, "/-/" for private.
func scopeMarker(m string) string {
	switch m {
	case "v:public":
		return "/+/"
	case "v:private":
		return "/-/"
	}
	return "/" + strings.TrimPrefix(m, "ns:") + "/"
}

// ftsPhrase quotes s as one FTS5 phrase.
func ftsPhrase(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// maxRangeConds is how many "under namespace/" conditions visibleSQL writes as name
// ranges; more are one EXISTS over a list parameter.
const maxRangeConds = 16

// visibleSQL is Catalog's selection as a condition on repository r: true when f
// selects r. grants are the repositories and organisations f.Member's teams are
// granted (memberGrants), read beforehand so that the condition compares names with
// parameters rather than joining the team tables for every matching row. none
// reports that f selects nothing at all.
func visibleSQL(d *dialect, f metadata.CatalogFilter, grants memberGrants, arg func(any) string) (cond string, none bool) {
	restrict, exact, prefixes := patternSets(f)
	if restrict && len(exact)+len(prefixes) == 0 {
		return "", true
	}
	var or []string
	if f.All {
		or = append(or, "1 = 1")
	} else {
		if f.Public {
			or = append(or, "r.visibility = 'public'")
		}
		var under []string
		for _, ns := range f.Namespaces {
			under = append(under, ns+"/")
		}
		for _, org := range grants.orgs {
			under = append(under, org+"/")
		}
		if len(under) > maxRangeConds {
			or = append(or, "EXISTS (SELECT 1 FROM "+d.list(arg(d.listArg(under)), "text")+
				" WHERE substr(r.name, 1, length(value)) = value)")
		} else {
			for _, u := range under {
				// "under u" on the name index: '0' is the byte after '/'.
				or = append(or, "(r.name >= "+arg(u)+" AND r.name < "+arg(u[:len(u)-1]+"0")+")")
			}
		}
		if len(grants.repos) > 0 {
			or = append(or, "r.name IN (SELECT value FROM "+d.list(arg(d.listArg(grants.repos)), "text")+")")
		}
	}
	if len(or) == 0 {
		return "", true
	}
	cond = "(" + strings.Join(or, " OR ") + ")"
	if restrict {
		var pats []string
		if len(exact) > 0 {
			pats = append(pats, "r.name IN (SELECT value FROM "+d.list(arg(d.listArg(exact)), "text")+")")
		}
		if len(prefixes) > 0 {
			pats = append(pats, "EXISTS (SELECT 1 FROM "+d.list(arg(d.listArg(prefixes)), "text")+
				" WHERE substr(r.name, 1, length(value)) = value)")
		}
		cond += " AND (" + strings.Join(pats, " OR ") + ")"
	}
	return cond, false
}

// memberGrants are what a user's teams are granted: single repositories, and whole
// organisations.
type memberGrants struct {
	repos, orgs []string
}

// readMemberGrants reads user's team grants (none for "").
func readMemberGrants(ctx context.Context, q querier, user string) (memberGrants, error) {
	var g memberGrants
	if user == "" {
		return g, nil
	}
	type grant struct{ org, repo string }
	rows, err := collect(func(r row) (grant, error) {
		var gr grant
		return gr, r.Scan(&gr.org, &gr.repo)
	})(q.Query(ctx, `SELECT DISTINCT tm.org, g.repository FROM team_members tm
		JOIN team_grants g ON g.org = tm.org AND g.team = tm.team WHERE tm.username = $1`, user))
	if err != nil {
		return g, err
	}
	for _, gr := range rows {
		if gr.repo == "" {
			g.orgs = append(g.orgs, gr.org)
		} else {
			g.repos = append(g.repos, gr.repo)
		}
	}
	return g, nil
}

// SetSearchDoc records what repo is found by; see metadata.Searcher. A repository
// that is gone is not an error (it was deleted since the push).
func (s *Store) SetSearchDoc(ctx context.Context, repo string, doc metadata.SearchDoc) error {
	switch doc.Kind {
	case "", metadata.KindImage, metadata.KindChart, metadata.KindArtifact:
	default:
		return fmt.Errorf("search doc of %s: unknown kind %q", repo, doc.Kind)
	}
	labels, err := labelsJSON(doc.Labels)
	if err != nil {
		return fmt.Errorf("search doc of %s: %w", repo, err)
	}
	desc := boundText(doc.Description, maxDescription)
	err = s.write(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `UPDATE repository_search SET kind = $2, description = $3, labels = $4, digest = $5, updated_at = $6
			WHERE repo_id = (SELECT id FROM repositories WHERE name = $1) AND (updated_at = 0 OR NOT $7)`,
			repo, doc.Kind, desc, labels, doc.Digest.String(), nanos(time.Now()), doc.IfPending)
		return err
	})
	if err != nil {
		return fmt.Errorf("search doc of %s: %w", repo, err)
	}
	return nil
}

// labelsJSON is labels as stored: a JSON object of at most maxLabels labels (the
// first by key order), keys and values cut to their bounds, HTML not escaped (the
// index matches what was pushed; pages escape on output).
func labelsJSON(labels map[string]string) (string, error) {
	if len(labels) == 0 {
		return "{}", nil
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	// Sorted, so a repository pushed twice with the same labels stores the same text.
	slices.Sort(keys)
	bounded := make(map[string]string, min(len(keys), maxLabels))
	for _, k := range keys {
		if len(bounded) == maxLabels {
			break
		}
		bounded[boundText(k, maxLabelKey)] = boundText(labels[k], maxLabelValue)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(bounded); err != nil {
		return "", err
	}
	return strings.TrimSpace(b.String()), nil
}

// boundText cuts s to at most n bytes on a rune boundary, dropping invalid UTF-8 and
// NULs (PostgreSQL refuses NUL in text).
func boundText(s string, n int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, ""), "\x00", "")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// PendingSearchDocs lists repositories never indexed; see metadata.Searcher.
func (s *Store) PendingSearchDocs(ctx context.Context, after int64, n int) ([]metadata.PendingSearchDoc, error) {
	var out []metadata.PendingSearchDoc
	err := s.read(ctx, func(q querier) error {
		var err error
		out, err = collect(func(r row) (metadata.PendingSearchDoc, error) {
			var p metadata.PendingSearchDoc
			return p, r.Scan(&p.RepoID, &p.Repository)
		})(q.Query(ctx, `SELECT s.repo_id, r.name FROM repository_search s JOIN repositories r ON r.id = s.repo_id
			WHERE s.updated_at = 0 AND s.repo_id > $1 ORDER BY s.repo_id LIMIT $2`, after, s.d.limit(n)))
		if err != nil {
			return err
		}
		for i := range out {
			var m metadata.Manifest
			var d string
			err := q.QueryRow(ctx, `SELECT m.digest, m.media_type, m.artifact_type, m.size, m.payload
				FROM tags t JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest
				WHERE t.repo_id = $1 ORDER BY t.updated_at DESC, t.name LIMIT 1`, out[i].RepoID).
				Scan(&d, &m.MediaType, &m.ArtifactType, &m.Size, &m.Payload)
			if isNoRows(err) {
				continue
			} else if err != nil {
				return err
			}
			m.Repository, m.Digest = out[i].Repository, digest.Digest(d)
			out[i].Manifest = &m
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pending search docs: %w", err)
	}
	return out, nil
}

// tagOrders are the ORDER BY clauses of TagPage: ties by name, ascending, so pages
// are stable. A manifest never pulled sorts as pulled at 0 (COALESCE: SQLite sorts
// NULL first and PostgreSQL last).
var tagOrders = map[metadata.TagSort]struct{ asc, desc string }{
	metadata.TagSortName:   {"t.name", "t.name DESC"},
	metadata.TagSortPushed: {"t.updated_at, t.name", "t.updated_at DESC, t.name"},
	metadata.TagSortPulled: {"COALESCE(p.pulled_at, 0), t.name", "COALESCE(p.pulled_at, 0) DESC, t.name"},
}

// TagPage returns one page of repo's tags; see metadata.Searcher. The count and the
// page are read in one snapshot.
func (s *Store) TagPage(ctx context.Context, repo string, sort metadata.TagSort, desc bool, offset, limit int) (metadata.TagPage, error) {
	order, ok := tagOrders[sort]
	if !ok {
		return metadata.TagPage{}, fmt.Errorf("tags of %s: unknown order %q", repo, sort)
	}
	by := order.asc
	if desc {
		by = order.desc
	}
	var page metadata.TagPage
	err := s.read(ctx, func(q querier) error {
		var id int64
		err := q.QueryRow(ctx, `SELECT id FROM repositories WHERE name = $1`, repo).Scan(&id)
		if isNoRows(err) {
			return metadata.ErrRepositoryNotFound
		} else if err != nil {
			return err
		}
		if err := q.QueryRow(ctx, `SELECT count(*) FROM tags WHERE repo_id = $1`, id).Scan(&page.Total); err != nil {
			return err
		}
		page.Tags, err = collect(func(r row) (metadata.TagInfo, error) {
			var t metadata.TagInfo
			var d string
			var pushed int64
			var pulled *int64
			err := r.Scan(&t.Name, &d, &pushed, &pulled)
			t.Digest, t.PushedAt, t.PulledAt = digest.Digest(d), fromNanos(pushed), fromNullNanos(pulled)
			return t, err
		})(q.Query(ctx, `SELECT t.name, t.digest, t.updated_at, p.pulled_at FROM tags t
			LEFT JOIN manifest_pulls p ON p.repo_id = t.repo_id AND p.digest = t.digest
			WHERE t.repo_id = $1 ORDER BY `+by+` LIMIT $2 OFFSET $3`, id, s.d.limit(limit), max(offset, 0)))
		return err
	})
	if err != nil {
		return metadata.TagPage{}, fmt.Errorf("tags of %s: %w", repo, err)
	}
	return page, nil
}
