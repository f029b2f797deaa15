package web

import "github.com/hubctl/hubctl/internal/policy"

// maxGlob bounds a tag filter pattern (a tag has at most 128 characters).
const maxGlob = 128

// filterTags keeps the rows whose tag matches glob, a shell pattern as retention
// policies write them ("v1.*", "*-alpine"); "" keeps all. A pattern without a
// wildcard matches as a substring, so typing part of a tag finds it. A malformed or
// overlong pattern matches nothing.
func filterTags(rows []tagRow, glob string) []tagRow {
	if glob == "" {
		return rows
	}
	if len(glob) > maxGlob {
		return nil
	}
	pat := glob
	if !containsAny(glob, "*", "?", "[") {
		pat = "*" + glob + "*"
	}
	out := rows[:0:0]
	for _, r := range rows {
		if policy.Match(pat, r.Name) {
			out = append(out, r)
		}
	}
	return out
}
