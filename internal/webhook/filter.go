package webhook

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"sync"
)

// Filters on repositories and tags (Hook.Repositories, Hook.Tags) are globs (Go's
// path.Match: * does not cross /) or, written re:EXPR, RE2 regular expressions that
// must match the whole name. RE2 runs in time linear in the name, so no expression can
// make matching slow; the bounds below keep what a client stores, and what a
// dispatcher compiles, small.
const (
	// RegexPrefix marks a filter as a regular expression.
	RegexPrefix = "re:"
	// MaxFilterLength bounds a filter's pattern (the expression after re:, or the glob).
	MaxFilterLength = 256
	// MaxFilters bounds each of a hook's filter lists.
	MaxFilters = 50
)

// compileFilter checks one filter and returns its compiled expression for a re:
// filter (nil for a glob).
func compileFilter(p string) (*regexp.Regexp, error) {
	expr, isRE := strings.CutPrefix(p, RegexPrefix)
	if len(expr) > MaxFilterLength {
		return nil, fmt.Errorf("filter %.40q…: at most %d characters", p, MaxFilterLength)
	}
	if !isRE {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			return nil, fmt.Errorf("filter %q is not a glob pattern (or write a regular expression as %sEXPR)", p, RegexPrefix)
		}
		return nil, nil
	}
	if expr == "" {
		return nil, fmt.Errorf("filter %q: an empty regular expression", p)
	}
	// Anchored: the whole name must match, as with a glob.
	re, err := regexp.Compile(`^(?:` + expr + `)$`)
	if err != nil {
		return nil, fmt.Errorf("filter %q is not an RE2 regular expression: %v", p, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	return re, nil
}

// validateFilters checks a filter list named what.
func validateFilters(what string, patterns []string) error {
	if len(patterns) > MaxFilters {
		return fmt.Errorf("at most %d %s filters", MaxFilters, what)
	}
	for _, p := range patterns {
		if _, err := compileFilter(p); err != nil {
			return err
		}
	}
	return nil
}

// compiled caches the expressions of re: filters: the dispatcher matches every event
// against every hook. It is dropped whole when it grows past maxCompiled (hooks come
// and go), so it stays bounded whatever is stored.
var compiled struct {
	sync.Mutex
	m map[string]*regexp.Regexp
}

const maxCompiled = 4096

// matchFilter reports whether s matches the filter p; an invalid filter (stored before
// validation said so) matches nothing.
func matchFilter(p, s string) bool {
	if !strings.HasPrefix(p, RegexPrefix) {
		ok, _ := path.Match(p, s)
		return ok
	}
	compiled.Lock()
	re, ok := compiled.m[p]
	compiled.Unlock()
	if !ok {
		var err error
		if re, err = compileFilter(p); err != nil {
			re = nil
		}
		compiled.Lock()
		if compiled.m == nil || len(compiled.m) >= maxCompiled {
			compiled.m = map[string]*regexp.Regexp{}
		}
		compiled.m[p] = re
		compiled.Unlock()
	}
	return re != nil && re.MatchString(s)
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if matchFilter(p, s) {
			return true
		}
	}
	return false
}
