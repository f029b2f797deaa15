package webhook

import (
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/events"
)

func TestMatches(t *testing.T) {
	push := events.Event{Type: events.ManifestPushed, Repository: "acme/app", Tag: "v1.2"}
	for _, tt := range []struct {
		name string
		h    Hook
		e    events.Event
		want bool
	}{
		{"site, everything", Hook{Scope: ScopeSite}, push, true},
		{"site, hub-wide event", Hook{Scope: ScopeSite}, events.Event{Type: events.GCCompleted}, true},
		{"namespace", Hook{Scope: ScopeNamespace, Target: "acme"}, push, true},
		{"namespace prefix is not the namespace", Hook{Scope: ScopeNamespace, Target: "acm"}, push, false},
		{"namespace, hub-wide event", Hook{Scope: ScopeNamespace, Target: "acme"}, events.Event{Type: events.GCCompleted}, false},
		{"repository", Hook{Scope: ScopeRepository, Target: "acme/app"}, push, true},
		{"other repository", Hook{Scope: ScopeRepository, Target: "acme/ap"}, push, false},
		{"type", Hook{Scope: ScopeSite, Events: []events.Type{events.TagDeleted}}, push, false},
		{"tag glob", Hook{Scope: ScopeSite, Tags: []string{"v*"}}, push, true},
		{"tag glob misses", Hook{Scope: ScopeSite, Tags: []string{"release-*"}}, push, false},
		{"tag filter, no tag", Hook{Scope: ScopeSite, Tags: []string{"*"}}, events.Event{Type: events.RepositoryCreated, Repository: "acme/app"}, false},
		{"repo glob", Hook{Scope: ScopeSite, Repositories: []string{"acme/*"}}, push, true},
		{"repo glob does not cross /", Hook{Scope: ScopeSite, Repositories: []string{"*"}}, push, false},
		{"repo regex", Hook{Scope: ScopeSite, Repositories: []string{"re:acme/(app|api)"}}, push, true},
		{"repo regex is anchored", Hook{Scope: ScopeSite, Repositories: []string{"re:acme/ap"}}, push, false},
		{"tag regex", Hook{Scope: ScopeSite, Tags: []string{`re:v\d+\.\d+`}}, push, true},
		{"tag regex misses", Hook{Scope: ScopeSite, Tags: []string{`re:v\d+`}}, push, false},
		{"glob or regex", Hook{Scope: ScopeSite, Tags: []string{"release-*", `re:v1\..*`}}, push, true},
		{"format carries", Hook{Scope: ScopeSite, Format: FormatDistribution}, push, true},
		{"format does not carry", Hook{Scope: ScopeSite, Format: FormatDistribution}, events.Event{Type: events.TagMoved, Repository: "acme/app", Tag: "v1"}, false},
		{"unknown format carries nothing", Hook{Scope: ScopeSite, Format: "slack"}, push, false},
	} {
		if got := tt.h.Matches(tt.e); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestSecretKey(t *testing.T) {
	s, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if k, err := SecretKey(s); err != nil || len(k) != 32 {
		t.Fatalf("%d %v", len(k), err)
	}
	for _, bad := range []string{"", "whsec_", "whsec_!!", "secret", "whsec_QUJD"} {
		if _, err := SecretKey(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestChanges(t *testing.T) {
	old := Hook{URL: "https://a.example.com", Events: []events.Type{events.ManifestPushed}, Tags: []string{"v*"}, Format: FormatHubctl,
		Headers: "sealed-1", HeaderNames: []string{"Authorization"}, Enabled: true}
	if got := Changes(old, old); got != "no change" {
		t.Fatalf("no change: %q", got)
	}
	h := old
	h.URL, h.Events, h.Tags, h.Headers, h.HeaderNames, h.Enabled = "https://b.example.com", nil, []string{"release-*"}, "", nil, false
	got := Changes(old, h)
	for _, want := range []string{"url → https://b.example.com", "events → (any)", "tags → release-*", "headers removed", "enabled → false"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
	h = old
	h.Headers, h.HeaderNames = "sealed-2", []string{"X-Token"}
	if got := Changes(old, h); got != "headers replaced → X-Token" || strings.Contains(got, "sealed") {
		t.Fatalf("headers: %q", got)
	}
}
