package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hubctl/hubctl/internal/metadata"
)

// Catalog returns the repositories f selects; see metadata.Store. It is one statement:
// a UNION of one branch per reason a repository may be visible (public, a namespace of
// the caller's, a team grant on one repository, a team grant on a whole organisation),
// each reading the name index from last on, then the access token's patterns, the
// order and the limit. A caller who sees a few repositories of many costs the rows of
// those few, not a pass over all of them.
func (s *Store) Catalog(ctx context.Context, f metadata.CatalogFilter, last string, n int) ([]string, error) {
	restrict, exact, prefixes := patternSets(f)
	if restrict && len(exact)+len(prefixes) == 0 {
		return []string{}, nil
	}
	if f.All && !restrict {
		return s.ListRepositories(ctx, last, n)
	}
	args := []any{last}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	var branches []string
	if f.All {
		branches = append(branches, "SELECT name FROM repositories WHERE name > $1")
	} else {
		if f.Public {
			branches = append(branches, "SELECT name FROM repositories WHERE visibility = 'public' AND name > $1")
		}
		if len(f.Namespaces) > 0 {
			// name >= ns || '/' AND name < ns || '0' is "under ns/" on the name index:
			// '0' is the byte after '/' (see nsRepos).
			branches = append(branches, `SELECT r.name FROM `+s.d.list(arg(s.d.listArg(f.Namespaces)), "text")+`
				JOIN repositories r ON r.name >= (value || '/') AND r.name < (value || '0')
				WHERE r.name > $1`)
		}
		if f.Member != "" {
			member := arg(f.Member)
			branches = append(branches, `SELECT r.name FROM team_members m
				JOIN team_grants g ON g.org = m.org AND g.team = m.team
				JOIN repositories r ON r.name = g.repository
				WHERE m.username = `+member+` AND g.repository <> '' AND r.name > $1`,
				`SELECT r.name FROM team_members m
				JOIN team_grants g ON g.org = m.org AND g.team = m.team
				JOIN repositories r ON r.name >= (m.org || '/') AND r.name < (m.org || '0')
				WHERE m.username = `+member+` AND g.repository = '' AND r.name > $1`)
		}
	}
	if len(branches) == 0 {
		return []string{}, nil
	}
	where := ""
	if restrict {
		var or []string
		if len(exact) > 0 {
			or = append(or, "v.name IN (SELECT value FROM "+s.d.list(arg(s.d.listArg(exact)), "text")+")")
		}
		if len(prefixes) > 0 {
			or = append(or, "EXISTS (SELECT 1 FROM "+s.d.list(arg(s.d.listArg(prefixes)), "text")+
				" WHERE substr(v.name, 1, length(value)) = value)")
		}
		where = " WHERE " + strings.Join(or, " OR ")
	}
	query := "SELECT v.name FROM (" + strings.Join(branches, " UNION ") + ") AS v" + where +
		" ORDER BY v.name LIMIT " + arg(s.d.limit(n))
	var names []string
	err := s.do(ctx, func(q querier) error {
		var err error
		names, err = collect(scanString)(q.Query(ctx, query, args...))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	if names == nil {
		names = []string{}
	}
	return names, nil
}

// patternSets splits f's patterns into exact names and prefixes ("a/b/*" becomes
// "a/b/"). restrict is false when f is not restricted or a pattern is "*".
func patternSets(f metadata.CatalogFilter) (restrict bool, exact, prefixes []string) {
	if !f.Restricted {
		return false, nil, nil
	}
	for _, p := range f.Patterns {
		switch {
		case p == "*":
			return false, nil, nil
		case strings.HasSuffix(p, "/*"):
			prefixes = append(prefixes, strings.TrimSuffix(p, "*"))
		case p != "":
			exact = append(exact, p)
		}
	}
	slices.Sort(exact)
	slices.Sort(prefixes)
	return true, slices.Compact(exact), slices.Compact(prefixes)
}
