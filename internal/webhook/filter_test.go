package webhook

import (
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/events"
)

func TestFilterMatches(t *testing.T) {
	for _, tt := range []struct {
		filter, name string
		want         bool
	}{
		{"v*", "v1.2", true},
		{"v*", "release-1", false},
		{"re:v[0-9]+\\.[0-9]+", "v1.2", true},
		{"re:v[0-9]+", "v1.2", false},                  // anchored: the whole name must match
		{"re:v[0-9]", "xv1", false},                    // no match inside the name
		{"re:main|release-.*", "release-2026", true},   // alternation stays inside the anchors
		{"re:main|release-.*", "mainly", false},        // ^(?:main|release-.*)$, not ^main|release-.*$
		{"re:acme/(app|api)", "acme/app", true},        // crosses / when written to
		{"re:acme/.*", "acme/team/app", true},          // .* crosses /, unlike the glob *
		{"acme/*", "acme/team/app", false},             // the glob does not
		{"re:(?i)V1", "v1", true},                      // RE2 flags work
		{"re:[", "[", false},                           // invalid: matches nothing
		{"re:", "", false},                             // empty expression: matches nothing
		{"re:" + strings.Repeat("a", 300), "a", false}, // too long: matches nothing
	} {
		if got := matchFilter(tt.filter, tt.name); got != tt.want {
			t.Errorf("%q on %q: %v, want %v", tt.filter, tt.name, got, tt.want)
		}
	}
}

func TestValidateFilters(t *testing.T) {
	base := Hook{Scope: ScopeSite, URL: "https://ci.example.com/hook", Format: FormatHubctl}
	for _, tt := range []struct {
		name    string
		repos   []string
		tags    []string
		wantErr string // "" when valid
	}{
		{"glob", []string{"acme/*"}, []string{"v*"}, ""},
		{"regex", []string{"re:acme/(app|api)"}, []string{`re:v\d+\.\d+\.\d+(-rc\d+)?`}, ""},
		{"regex at the bound", nil, []string{"re:" + strings.Repeat("a", MaxFilterLength)}, ""},
		{"bad glob", nil, []string{"v["}, `filter "v[" is not a glob pattern (or write a regular expression as re:EXPR)`},
		{"empty glob", []string{""}, nil, `filter "" is not a glob pattern`},
		{"bad regex", nil, []string{"re:v(1"}, `filter "re:v(1" is not an RE2 regular expression: missing closing ): `},
		{"empty regex", nil, []string{"re:"}, `filter "re:": an empty regular expression`},
		{"lookahead (not RE2)", nil, []string{"re:(?=v)v1"}, "is not an RE2 regular expression"},
		{"backreference (not RE2)", nil, []string{`re:(a)\1`}, "is not an RE2 regular expression"},
		{"regex too long", nil, []string{"re:" + strings.Repeat("a", MaxFilterLength+1)}, "at most 256 characters"},
		{"glob too long", []string{strings.Repeat("a", MaxFilterLength+1)}, nil, "at most 256 characters"},
		{"repetition past RE2's limit", nil, []string{"re:a{1001}"}, "is not an RE2 regular expression"},
		{"program too large", nil, []string{"re:((((a{100}){100}){100}){100})"}, "is not an RE2 regular expression"},
		{"too many filters", make([]string, MaxFilters+1), nil, "at most 50 repository filters"},
	} {
		h := base
		h.Repositories, h.Tags = tt.repos, tt.tags
		if tt.name == "too many filters" {
			for i := range h.Repositories {
				h.Repositories[i] = "acme/*"
			}
		}
		err := Validate(h, nil)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: %v, want %q", tt.name, err, tt.wantErr)
		}
	}
}

// TestFilterPathological is the attacker's regular expression: (a+)+$ and its kind
// take exponential time in a backtracking engine on "aaa…ab". RE2 is linear, so
// matching every name a hub can hold stays fast.
func TestFilterPathological(t *testing.T) {
	evil := []string{`re:(a+)+b`, `re:(a|a)*b`, `re:(a|aa)+b`, `re:(.*a){20}b`, `re:((a*)*)*b`}
	h := Hook{Scope: ScopeSite, URL: "https://ci.example.com/hook", Format: FormatHubctl, Repositories: evil, Tags: evil}
	if err := Validate(h, nil); err != nil {
		t.Fatal(err)
	}
	name := strings.Repeat("a", 255) // the longest a repository path component may be, and longer than a tag
	start := time.Now()
	for range 100 {
		if h.Matches(events.Event{Type: events.ManifestPushed, Repository: name, Tag: name}) {
			t.Fatal("matched")
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("100 matches of pathological expressions took %v", d)
	}
}

// FuzzFilter: whatever a client sends as a filter, validation answers without
// panicking, never accepts a pattern past the bound, and an accepted filter matches
// without panicking.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{"v*", "re:v\\d+", "re:(a+)+b", "re:[", "[", "re:", "re:(?i)x|y", "acme/*/x"} {
		f.Add(s, "v1.2")
	}
	f.Fuzz(func(t *testing.T, p, name string) {
		re, err := compileFilter(p)
		if err != nil {
			if strings.HasPrefix(p, RegexPrefix) && matchFilter(p, name) {
				t.Fatalf("the invalid filter %q matches %q", p, name)
			}
			return
		}
		if n := len(strings.TrimPrefix(p, RegexPrefix)); n > MaxFilterLength {
			t.Fatalf("accepted a %d-character filter", n)
		}
		got := matchFilter(p, name)
		if re != nil && got != re.MatchString(name) {
			t.Fatalf("%q on %q: cached %v, compiled %v", p, name, got, !got)
		}
	})
}
