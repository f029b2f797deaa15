package mirror

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"sync"

	"github.com/Masterminds/semver/v3"

	"github.com/hubctl/hubctl/internal/reference"
)

// TagFilter selects which tags of a listed repository are mirrored. The zero TagFilter
// keeps every tag. The steps apply in field order: Include, Exclude, Semver, Newest.
type TagFilter struct {
	// Include keeps a tag when any of these Go (RE2) regexps matches it. They are
	// not anchored for you: write '^3\.' to match a prefix. Empty keeps every tag.
	Include []string
	// Exclude drops a tag when any of these regexps matches it.
	Exclude []string
	// Semver is a Masterminds constraint (">=1.2, <2"). When set, tags that are not
	// versions are dropped, and so are pre-releases unless the constraint names one
	// (">=1.2.0-0"), as Masterminds decides.
	Semver string
	// Newest keeps only the N highest tags left by the other steps; 0 keeps them all.
	Newest int
}

// IsZero reports whether f keeps every tag.
func (f TagFilter) IsZero() bool {
	return len(f.Include) == 0 && len(f.Exclude) == 0 && f.Semver == "" && f.Newest == 0
}

// SelectTags returns the tags of a repository that f keeps, without duplicates or
// tags that are not valid, from lowest to highest: tags that are not versions first,
// in natural order ("a2" < "a10"), then versions in semver order. A version is a
// tag of the form [v]MAJOR.MINOR[.PATCH][-PRERELEASE]; "3" and "20240101" are not,
// so a date-stamped tag never outranks a release. It fails only when f is invalid.
func SelectTags(tags []string, f TagFilter) ([]string, error) {
	m, probs := compileFilter(f)
	if len(probs) > 0 {
		errs := make([]error, len(probs))
		for i, p := range probs {
			errs[i] = fmt.Errorf("%s: %w", renderPath(p.path), p.err)
		}
		return nil, errors.Join(errs...)
	}
	return m.selectTags(tags), nil
}

// tagMatcher is a TagFilter with its regexps and constraint compiled.
type tagMatcher struct {
	include, exclude []*regexp.Regexp
	constraint       *semver.Constraints
	newest           int
}

// compileFilter compiles f, or says what is wrong with each of its fields, with paths
// relative to the filter ("include", 0).
func compileFilter(f TagFilter) (*tagMatcher, []problem) {
	var probs []problem
	m := &tagMatcher{newest: f.Newest}
	compile := func(field string, pats []string) []*regexp.Regexp {
		res := make([]*regexp.Regexp, 0, len(pats))
		for i, p := range pats {
			re, err := regexp.Compile(p)
			if err != nil {
				probs = append(probs, problem{path: []any{field, i}, err: regexpError(p, err)})
				continue
			}
			res = append(res, re)
		}
		return res
	}
	m.include = compile("include", f.Include)
	m.exclude = compile("exclude", f.Exclude)
	if f.Semver != "" {
		c, err := semver.NewConstraint(f.Semver)
		if err != nil {
			probs = append(probs, problem{path: []any{"semver"},
				err: fmt.Errorf("invalid semver constraint %q: %w", f.Semver, err)})
		}
		m.constraint = c
	}
	if f.Newest < 0 {
		probs = append(probs, problem{path: []any{"newest"},
			err: fmt.Errorf("must be 0 (keep all) or more, not %d", f.Newest)})
	}
	return m, probs
}

// regexpError drops the "error parsing regexp:" preamble and the quoted fragment that
// the regexp package adds, leaving the pattern and the reason.
func regexpError(pat string, err error) error {
	var se *syntax.Error
	if errors.As(err, &se) {
		return fmt.Errorf("invalid regexp %q: %s", pat, se.Code)
	}
	return fmt.Errorf("invalid regexp %q: %w", pat, err)
}

// rankedTag is a tag with the version it parses as, if any.
type rankedTag struct {
	tag string
	v   *semver.Version
}

func (m *tagMatcher) selectTags(tags []string) []string {
	kept := make([]rankedTag, 0, len(tags))
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		if seen[t] || !reference.IsTag(t) {
			continue
		}
		seen[t] = true
		if len(m.include) > 0 && !matchAny(m.include, t) || matchAny(m.exclude, t) {
			continue
		}
		rt := rankedTag{tag: t, v: parseVersion(t)}
		if m.constraint != nil && (rt.v == nil || !m.constraint.Check(rt.v)) {
			continue
		}
		kept = append(kept, rt)
	}
	slices.SortFunc(kept, compareRanked)
	if m.newest > 0 && len(kept) > m.newest {
		kept = kept[len(kept)-m.newest:]
	}
	out := make([]string, len(kept))
	for i, rt := range kept {
		out[i] = rt.tag
	}
	return out
}

func matchAny(res []*regexp.Regexp, s string) bool {
	return slices.ContainsFunc(res, func(re *regexp.Regexp) bool { return re.MatchString(s) })
}

// versionRe is what counts as a version tag. Masterminds alone would also read "3"
// or "20240101" as versions, which would let a date outrank every release.
var versionRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^v?[0-9]+\.[0-9]+(\.[0-9]+)?(-[0-9A-Za-z.-]+)?$`) })

// parseVersion returns the version a tag names, or nil when it is not a version.
func parseVersion(tag string) *semver.Version {
	if !versionRe().MatchString(tag) {
		return nil
	}
	v, err := semver.NewVersion(tag)
	if err != nil {
		return nil
	}
	return v
}

// compareRanked orders tags that are not versions before versions, versions by
// semver precedence, and breaks every tie by the tag itself, so the order is total
// and does not depend on the order tags were listed in.
func compareRanked(a, b rankedTag) int {
	switch {
	case a.v == nil && b.v == nil:
		return naturalCompare(a.tag, b.tag)
	case a.v == nil:
		return -1
	case b.v == nil:
		return 1
	}
	if c := a.v.Compare(b.v); c != 0 {
		return c
	}
	return strings.Compare(a.tag, b.tag)
}

// naturalCompare compares strings with runs of digits compared as numbers, so
// "build-9" < "build-10". Equal-looking strings ("01" and "1") fall back to byte order.
func naturalCompare(a, b string) int {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if isDigit(a[i]) && isDigit(b[j]) {
			si, sj := i, j
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			for j < len(b) && isDigit(b[j]) {
				j++
			}
			na, nb := strings.TrimLeft(a[si:i], "0"), strings.TrimLeft(b[sj:j], "0")
			if c := cmp.Compare(len(na), len(nb)); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			continue
		}
		if a[i] != b[j] {
			return cmp.Compare(a[i], b[j])
		}
		i++
		j++
	}
	if c := cmp.Compare(len(a)-i, len(b)-j); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
