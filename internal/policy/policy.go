// Package policy holds the tag and retention policies of `hubctl serve`: immutable
// tags (a push that would move such a tag, and a delete of it, is refused) and
// retention rules (which tags and untagged manifests a run deletes), set per namespace
// or per repository, with the pull times retention reads, recorded in batches.
//
// How rules combine (docs/registry.md "Tag and retention policies"):
//
//   - Scope: a repository's policy applies to it; a namespace's to every repository
//     in it. Immutable patterns of both apply (their union). A repository's retention
//     replaces its namespace's; without one, the namespace's applies.
//   - Retention judges only the tags that some rule's pattern matches; other tags are
//     left alone. A judged tag is kept when any rule whose pattern matches it keeps it:
//     among that rule's newest keep_newest tags (by push time; tags always kept do not
//     count among them), pushed within
//     pushed_within, or pulled within pulled_within (a manifest never pulled since pull
//     times were recorded counts as pulled when it was pushed). A tag matching
//     always_keep, or an immutable pattern, is always kept. Every other judged tag is
//     deleted (the tag, not the manifest).
//   - untagged_older_than, when set, then deletes manifests with no tag left that were
//     neither pushed nor pulled within it, except what a kept manifest needs: the
//     children of an index and the referrers (signatures, SBOMs) of a kept manifest,
//     and their children, as garbage collection keeps them.
package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// Policy is what is set on a namespace or repository.
type Policy struct {
	// ImmutableTags are glob patterns (path.Match) of tags that may not move or be
	// deleted once pushed.
	ImmutableTags []string `json:"immutable_tags,omitempty"`
	// Retention, when set, is what retention runs delete.
	Retention *Retention `json:"retention,omitempty"`
}

// Retention is a set of keep rules.
type Retention struct {
	Rules []Rule `json:"rules,omitempty"`
	// AlwaysKeep are patterns of tags never deleted.
	AlwaysKeep []string `json:"always_keep,omitempty"`
	// UntaggedOlderThan, when set, deletes untagged manifests neither pushed nor
	// pulled within it.
	UntaggedOlderThan Duration `json:"untagged_older_than,omitempty"`
}

// Rule judges the tags its pattern matches and keeps those meeting any of its
// criteria.
type Rule struct {
	// Tags is the pattern of the tags judged ("*" when empty).
	Tags         string   `json:"tags,omitempty"`
	KeepNewest   int      `json:"keep_newest,omitempty"`
	PushedWithin Duration `json:"pushed_within,omitempty"`
	PulledWithin Duration `json:"pulled_within,omitempty"`
}

// Pattern is the rule's tag pattern, "*" by default.
func (r Rule) Pattern() string {
	if r.Tags == "" {
		return "*"
	}
	return r.Tags
}

// Duration is a time span written as Go does ("36h") or in days and weeks ("30d",
// "2w").
type Duration time.Duration

// ParseDuration reads "30d", "2w" or a Go duration.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.Atoi(n)
			if err != nil || v < 0 {
				return 0, fmt.Errorf("duration %q: want a whole number of days (30d) or weeks (2w), or a Go duration (36h)", s)
			}
			return Duration(time.Duration(v) * unit), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("duration %q: want 30d, 2w or 36h", s)
	}
	return Duration(d), nil
}

// String writes whole days as "Nd", anything else as Go does.
func (d Duration) String() string {
	if d == 0 {
		return "0"
	}
	day := Duration(24 * time.Hour)
	if d%day == 0 {
		return fmt.Sprintf("%dd", d/day)
	}
	return time.Duration(d).String()
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	*d = v
	return err
}

// IsZero lets omitempty-like checks read well.
func (d Duration) IsZero() bool { return d == 0 }

// maxPatterns bounds what one policy holds: they are matched on every tagged push.
const maxPatterns = 64

// Validate reports the first thing in p that cannot work.
func (p Policy) Validate() error {
	var errs []error
	if len(p.ImmutableTags) > maxPatterns {
		errs = append(errs, fmt.Errorf("at most %d immutable tag patterns", maxPatterns))
	}
	for _, pat := range p.ImmutableTags {
		errs = append(errs, checkPattern("immutable_tags", pat))
	}
	if r := p.Retention; r != nil {
		if len(r.Rules) == 0 && r.UntaggedOlderThan == 0 {
			errs = append(errs, errors.New("retention needs a rule or untagged_older_than"))
		}
		if len(r.Rules)+len(r.AlwaysKeep) > maxPatterns {
			errs = append(errs, fmt.Errorf("at most %d retention rules and always_keep patterns", maxPatterns))
		}
		for _, pat := range r.AlwaysKeep {
			errs = append(errs, checkPattern("always_keep", pat))
		}
		for i, rule := range r.Rules {
			errs = append(errs, checkPattern(fmt.Sprintf("rules[%d].tags", i), rule.Pattern()))
			if rule.KeepNewest < 0 {
				errs = append(errs, fmt.Errorf("rules[%d].keep_newest must not be negative", i))
			}
			if rule.KeepNewest == 0 && rule.PushedWithin == 0 && rule.PulledWithin == 0 {
				errs = append(errs, fmt.Errorf("rules[%d] keeps nothing: give keep_newest, pushed_within or pulled_within", i))
			}
		}
	}
	return errors.Join(errs...)
}

func checkPattern(field, pat string) error {
	if pat == "" || len(pat) > 128 {
		return fmt.Errorf("%s: a pattern is 1 to 128 characters", field)
	}
	if strings.Contains(pat, "/") {
		return fmt.Errorf("%s: %q: a tag pattern has no /", field, pat)
	}
	if _, err := path.Match(pat, ""); err != nil {
		return fmt.Errorf("%s: %q: %v", field, pat, err)
	}
	return nil
}

// Match reports whether tag matches the glob pattern (validated beforehand).
func Match(pattern, tag string) bool {
	ok, _ := path.Match(pattern, tag)
	return ok
}

// Parse reads a policy from JSON, refusing unknown fields, and validates it.
func Parse(b []byte) (Policy, error) {
	var p Policy
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Policy{}, fmt.Errorf("policy: %w", err)
	}
	return p, p.Validate()
}

// ScopeKind tells a namespace ("team") from a repository ("team/app") scope.
func ScopeKind(scope string) string {
	if strings.Contains(scope, "/") {
		return "repository"
	}
	return "namespace"
}

// namespaceOf is the first path component of a repository.
func namespaceOf(repo string) string {
	ns, _, _ := strings.Cut(repo, "/")
	return ns
}
