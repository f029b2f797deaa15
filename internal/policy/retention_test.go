package policy

import (
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

var now = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func ago(days int) time.Time { return now.Add(-time.Duration(days) * 24 * time.Hour) }

func dg(s string) digest.Digest { return digest.FromString(s) }

func days(n int) Duration { return Duration(time.Duration(n) * 24 * time.Hour) }

func tagNames(ts []Tag) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Name)
	}
	slices.Sort(out)
	return out
}

// view builds a repository of tags tag→(digest name, pushed days ago), one manifest
// per distinct digest name pushed at the tag's time.
func view(tags map[string]struct {
	m    string
	days int
}) View {
	v := View{Repository: "team/app"}
	seen := map[string]bool{}
	for name, t := range tags {
		v.Tags = append(v.Tags, Tag{Name: name, Digest: dg(t.m), PushedAt: ago(t.days)})
		if !seen[t.m] {
			seen[t.m] = true
			v.Manifests = append(v.Manifests, Manifest{Digest: dg(t.m), PushedAt: ago(t.days)})
		}
	}
	return v
}

type tg = struct {
	m    string
	days int
}

func TestPlanRetentionRules(t *testing.T) {
	v := view(map[string]tg{
		"v1": {"a", 50}, "v2": {"b", 40}, "v3": {"c", 30}, "v4": {"d", 20}, "v5": {"e", 10},
		"latest": {"e", 10}, "dev-1": {"f", 60}, "dev-2": {"g", 2}, "release-1": {"h", 90},
	})
	for _, tt := range []struct {
		name      string
		r         Retention
		immutable []string
		gone      []string
	}{
		{
			name: "keep newest 2 of v*; other tags not judged",
			r:    Retention{Rules: []Rule{{Tags: "v*", KeepNewest: 2}}},
			gone: []string{"v1", "v2", "v3"},
		},
		{
			name: "rules OR: newest 1 or pushed within 35 days",
			r:    Retention{Rules: []Rule{{Tags: "v*", KeepNewest: 1, PushedWithin: days(35)}}},
			gone: []string{"v1", "v2"},
		},
		{
			name: "two rules on overlapping patterns: either keeps",
			r:    Retention{Rules: []Rule{{Tags: "*", KeepNewest: 3}, {Tags: "dev-*", PushedWithin: days(7)}}},
			gone: []string{"dev-1", "release-1", "v1", "v2", "v3", "v4"},
		},
		{
			name: "always keep and immutable win over every rule",
			r:    Retention{Rules: []Rule{{KeepNewest: 1}}, AlwaysKeep: []string{"release-*"}},
			// newest by push time is dev-2 (2 days).
			immutable: []string{"v1"},
			gone:      []string{"dev-1", "latest", "v2", "v3", "v4", "v5"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := (Policy{Retention: &tt.r, ImmutableTags: tt.immutable}).Validate(); err != nil {
				t.Fatal(err)
			}
			p := PlanRetention(v, tt.r, tt.immutable, now)
			if got := tagNames(p.Tags); !slices.Equal(got, tt.gone) {
				t.Errorf("deleted tags %v, want %v", got, tt.gone)
			}
			if p.KeptTags+len(p.Tags) != len(v.Tags) || len(p.Manifests) != 0 {
				t.Errorf("kept %d, manifests %v", p.KeptTags, p.Manifests)
			}
		})
	}
}

// TestPlanRetentionPulled: a manifest pulled recently keeps its tag; one with no pull
// time counts as pulled at its push, never as "never pulled".
func TestPlanRetentionPulled(t *testing.T) {
	v := View{Tags: []Tag{
		{Name: "old-pulled", Digest: dg("a"), PushedAt: ago(100)},
		{Name: "old-unpulled", Digest: dg("b"), PushedAt: ago(100)},
		{Name: "recent-unrecorded", Digest: dg("c"), PushedAt: ago(5)},
	}, Manifests: []Manifest{
		{Digest: dg("a"), PushedAt: ago(100), PulledAt: ago(3)},
		{Digest: dg("b"), PushedAt: ago(100), PulledAt: ago(60)},
		{Digest: dg("c"), PushedAt: ago(5)},
	}}
	p := PlanRetention(v, Retention{Rules: []Rule{{PulledWithin: days(30)}}}, nil, now)
	if got := tagNames(p.Tags); !slices.Equal(got, []string{"old-unpulled"}) {
		t.Fatalf("deleted %v, want [old-unpulled]", got)
	}
}

// TestPlanRetentionUntagged: untagged manifests older than X go, except children of
// kept indexes and referrers of kept manifests (and their children); an index goes
// before its children.
func TestPlanRetentionUntagged(t *testing.T) {
	idx, amd, arm := dg("index"), dg("amd64"), dg("arm64")
	sig, sbom, sbomChild := dg("sig"), dg("sbom"), dg("sbom-child")
	oldIdx, oldChild := dg("old-index"), dg("old-child")
	recent := dg("recent-untagged")
	orphanSig := dg("orphan-sig")
	v := View{
		Tags: []Tag{{Name: "v1", Digest: idx, PushedAt: ago(90)}},
		Manifests: []Manifest{
			{Digest: idx, PushedAt: ago(90), Children: []digest.Digest{amd, arm}},
			{Digest: amd, PushedAt: ago(90)}, {Digest: arm, PushedAt: ago(90)},
			{Digest: sig, PushedAt: ago(80), Subject: idx},
			{Digest: sbom, PushedAt: ago(80), Subject: amd, Children: []digest.Digest{sbomChild}},
			{Digest: sbomChild, PushedAt: ago(80)},
			{Digest: oldIdx, PushedAt: ago(40), Children: []digest.Digest{oldChild}},
			{Digest: oldChild, PushedAt: ago(40)},
			{Digest: recent, PushedAt: ago(1)},
			{Digest: orphanSig, PushedAt: ago(40), Subject: oldIdx},
		},
	}
	p := PlanRetention(v, Retention{UntaggedOlderThan: days(7)}, nil, now)
	want := []digest.Digest{oldIdx, orphanSig, oldChild}
	if len(p.Manifests) != 3 || !slices.Contains(p.Manifests, orphanSig) ||
		slices.Index(p.Manifests, oldIdx) > slices.Index(p.Manifests, oldChild) {
		t.Fatalf("deleted %v, want %v with the index before its child", p.Manifests, want)
	}
	if p.KeptManifests != len(v.Manifests)-3 {
		t.Errorf("kept %d", p.KeptManifests)
	}

	// A tag deleted by a rule in the same run leaves its old manifest to go too, but
	// a pull within X keeps an untagged manifest.
	v.Tags = append(v.Tags, Tag{Name: "tmp", Digest: recent, PushedAt: ago(1)})
	v.Manifests[7].PulledAt = ago(2) // old-child pulled by digest recently
	p = PlanRetention(v, Retention{Rules: []Rule{{Tags: "tmp", KeepNewest: 0, PushedWithin: days(0) + 1}}, UntaggedOlderThan: days(7)}, nil, now)
	if slices.Contains(p.Manifests, oldChild) {
		t.Errorf("a manifest pulled 2 days ago went: %v", p.Manifests)
	}
}

// TestPlanRetentionHeld: a manifest tag history holds (a tag moved away from it
// lately) stays like a tagged one, with its children.
func TestPlanRetentionHeld(t *testing.T) {
	old, oldChild, other := dg("held-index"), dg("held-child"), dg("not-held")
	v := View{Manifests: []Manifest{
		{Digest: old, PushedAt: ago(40), Held: true, Children: []digest.Digest{oldChild}},
		{Digest: oldChild, PushedAt: ago(40)},
		{Digest: other, PushedAt: ago(40)},
	}}
	p := PlanRetention(v, Retention{UntaggedOlderThan: days(7)}, nil, now)
	if len(p.Manifests) != 1 || p.Manifests[0] != other || p.KeptManifests != 2 {
		t.Fatalf("deleted %v (kept %d), want only %s", p.Manifests, p.KeptManifests, other)
	}
}

func TestValidateAndDurations(t *testing.T) {
	for _, tt := range []struct {
		json string
		ok   bool
	}{
		{`{"immutable_tags":["v*"]}`, true},
		{`{"retention":{"rules":[{"tags":"v*","keep_newest":5}],"untagged_older_than":"7d"}}`, true},
		{`{"retention":{"rules":[{"tags":"v*"}]}}`, false},
		{`{"retention":{}}`, false},
		{`{"immutable_tags":["a/b"]}`, false},
		{`{"immutable_tags":["[x"]}`, false},
		{`{"immutable":["v*"]}`, false},
		{`{"retention":{"untagged_older_than":"soon"}}`, false},
		{`{"retention":{"rules":[{"pulled_within":"2w"}]}}`, true},
	} {
		_, err := Parse([]byte(tt.json))
		if (err == nil) != tt.ok {
			t.Errorf("Parse(%s) = %v, want ok=%v", tt.json, err, tt.ok)
		}
	}
	for s, want := range map[string]time.Duration{"30d": 30 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "36h": 36 * time.Hour, "": 0} {
		d, err := ParseDuration(s)
		if err != nil || time.Duration(d) != want {
			t.Errorf("ParseDuration(%q) = %v, %v", s, d, err)
		}
	}
	if days(30).String() != "30d" || Duration(36*time.Hour).String() != "36h0m0s" {
		t.Error("Duration.String")
	}
}
