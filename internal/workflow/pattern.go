package workflow

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/hubctl/hubctl/internal/events"
)

// RegexPrefix starts a pattern that is a regular expression rather than a glob.
const RegexPrefix = "re:"

// maxPattern bounds a pattern's length; Go's regexp is linear in its input, but a
// long expression still costs memory to compile.
const maxPattern = 512

// Pattern matches repository or tag names: a glob as webhooks take them (Go's
// path.Match: `*` does not cross `/`), or, after "re:", a regular expression (RE2)
// that must match the whole name.
type Pattern struct {
	Text string
	re   *regexp.Regexp
}

// ParsePattern parses a glob or an "re:" regular expression.
func ParsePattern(s string) (Pattern, error) {
	switch {
	case s == "" || s == RegexPrefix:
		return Pattern{}, fmt.Errorf("a pattern may not be empty")
	case len(s) > maxPattern:
		return Pattern{}, fmt.Errorf("a pattern is at most %d characters", maxPattern)
	}
	if expr, ok := strings.CutPrefix(s, RegexPrefix); ok {
		re, err := regexp.Compile(`^(?:` + expr + `)$`)
		if err != nil {
			return Pattern{}, fmt.Errorf("regular expression %q: %v", expr, cleanRegexpError(err))
		}
		return Pattern{Text: s, re: re}, nil
	}
	if _, err := path.Match(s, ""); err != nil {
		return Pattern{}, fmt.Errorf("%q is not a glob pattern (path.Match: %v)", s, err)
	}
	return Pattern{Text: s}, nil
}

func cleanRegexpError(err error) string {
	return strings.TrimPrefix(err.Error(), "error parsing regexp: ")
}

// Match reports whether s matches p.
func (p Pattern) Match(s string) bool {
	if p.re != nil {
		return p.re.MatchString(s)
	}
	ok, _ := path.Match(p.Text, s)
	return ok
}

func matchAny(ps []Pattern, s string) bool {
	if len(ps) == 0 {
		return true
	}
	for _, p := range ps {
		if p.Match(s) {
			return true
		}
	}
	return false
}

// Matches reports whether the push trigger wants e. Whether e's repository lies in
// the workflow's namespace, and whether its owner may read it, is the scheduler's
// question.
func (t *PushTrigger) Matches(e events.Event) bool {
	if t == nil || e.Type != events.ManifestPushed || !matchAny(t.Repositories, e.Repository) {
		return false
	}
	if len(t.Tags) > 0 && (e.Tag == "" || !matchAny(t.Tags, e.Tag)) {
		return false
	}
	if len(t.ArtifactTypes) > 0 && !slices.Contains(t.ArtifactTypes, e.Kind) && (e.ArtifactType == "" || !slices.Contains(t.ArtifactTypes, e.ArtifactType)) {
		return false
	}
	return true
}

// Matches reports whether the tag trigger wants e (a deleted tag).
func (t *TagTrigger) Matches(e events.Event) bool {
	return t != nil && e.Type == events.TagDeleted && matchAny(t.Repositories, e.Repository) &&
		e.Tag != "" && matchAny(t.Tags, e.Tag)
}
