package policy

import (
	"slices"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"
)

// Tag is a tag as retention sees it.
type Tag struct {
	Name   string        `json:"name"`
	Digest digest.Digest `json:"digest"`
	// PushedAt is when the tag last moved to its digest.
	PushedAt time.Time `json:"pushed_at"`
}

// Manifest is a manifest as retention sees it.
type Manifest struct {
	Digest   digest.Digest `json:"digest"`
	PushedAt time.Time     `json:"pushed_at"`
	// PulledAt is the last recorded pull; zero when none was (before pull times were
	// recorded, or never since), which counts as pulled at PushedAt.
	PulledAt time.Time `json:"pulled_at,omitzero"`
	// Subject is what the manifest refers to (a signature's image), if anything.
	Subject digest.Digest `json:"subject,omitempty"`
	// Children are the manifests an index lists.
	Children []digest.Digest `json:"children,omitempty"`
	// Held says a tag moved away from the manifest lately: tag history keeps it (for
	// a restore) as if it were tagged.
	Held bool `json:"held,omitempty"`
}

// lastPull is when the manifest was last pulled, its push counting as one.
func (m Manifest) lastPull() time.Time {
	if m.PulledAt.After(m.PushedAt) {
		return m.PulledAt
	}
	return m.PushedAt
}

// View is one repository's tags and manifests.
type View struct {
	Repository string
	Tags       []Tag
	Manifests  []Manifest
}

// Plan is what a retention run deletes in one repository, in the order to delete it.
type Plan struct {
	Repository string `json:"repository"`
	// Tags are deleted first (the tags only).
	Tags []Tag `json:"tags,omitempty"`
	// Manifests are then deleted, indexes before their children.
	Manifests []digest.Digest `json:"manifests,omitempty"`
	// KeptTags and KeptManifests count what stays.
	KeptTags      int `json:"kept_tags"`
	KeptManifests int `json:"kept_manifests"`
}

// PlanRetention decides what r deletes from v at now; immutable tags are kept
// whatever the rules say. The package comment says how rules combine.
func PlanRetention(v View, r Retention, immutable []string, now time.Time) Plan {
	plan := Plan{Repository: v.Repository}
	byDigest := make(map[digest.Digest]Manifest, len(v.Manifests))
	for _, m := range v.Manifests {
		byDigest[m.Digest] = m
	}
	anyMatch := func(pats []string, tag string) bool {
		return slices.ContainsFunc(pats, func(p string) bool { return Match(p, tag) })
	}
	kept := func(tag string) bool { return anyMatch(immutable, tag) || anyMatch(r.AlwaysKeep, tag) }
	// Each rule's newest keep_newest tags among those it judges, by push time. Tags
	// kept anyway (always_keep, immutable) do not take a place in the ranking.
	newest := make([]map[string]bool, len(r.Rules))
	for i, rule := range r.Rules {
		var matched []Tag
		for _, t := range v.Tags {
			if Match(rule.Pattern(), t.Name) && !kept(t.Name) {
				matched = append(matched, t)
			}
		}
		sort.SliceStable(matched, func(a, b int) bool {
			if !matched[a].PushedAt.Equal(matched[b].PushedAt) {
				return matched[a].PushedAt.After(matched[b].PushedAt)
			}
			return matched[a].Name > matched[b].Name
		})
		newest[i] = map[string]bool{}
		for j := 0; j < rule.KeepNewest && j < len(matched); j++ {
			newest[i][matched[j].Name] = true
		}
	}
	keepTag := func(t Tag) bool {
		if kept(t.Name) {
			return true
		}
		judged := false
		for i, rule := range r.Rules {
			if !Match(rule.Pattern(), t.Name) {
				continue
			}
			judged = true
			if newest[i][t.Name] {
				return true
			}
			if rule.PushedWithin > 0 && !t.PushedAt.Before(now.Add(-time.Duration(rule.PushedWithin))) {
				return true
			}
			if rule.PulledWithin > 0 {
				if m, ok := byDigest[t.Digest]; ok && !m.lastPull().Before(now.Add(-time.Duration(rule.PulledWithin))) {
					return true
				}
			}
		}
		return !judged
	}
	tagged := map[digest.Digest]bool{}
	for _, t := range v.Tags {
		if keepTag(t) {
			plan.KeptTags++
			tagged[t.Digest] = true
		} else {
			plan.Tags = append(plan.Tags, t)
		}
	}
	if r.UntaggedOlderThan == 0 {
		plan.KeptManifests = len(v.Manifests)
		return plan
	}
	cutoff := now.Add(-time.Duration(r.UntaggedOlderThan))
	// What stays: tagged manifests and recent untagged ones, then everything they
	// need (children, referrers, and theirs), to a fixed point.
	keep := map[digest.Digest]bool{}
	var queue []digest.Digest
	for _, m := range v.Manifests {
		if tagged[m.Digest] || m.Held || !m.lastPull().Before(cutoff) {
			keep[m.Digest] = true
			queue = append(queue, m.Digest)
		}
	}
	referrers := map[digest.Digest][]digest.Digest{}
	for _, m := range v.Manifests {
		if m.Subject != "" {
			referrers[m.Subject] = append(referrers[m.Subject], m.Digest)
		}
	}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		next := append(slices.Clone(byDigest[d].Children), referrers[d]...)
		for _, n := range next {
			if !keep[n] {
				keep[n] = true
				queue = append(queue, n)
			}
		}
	}
	// The rest goes, each index before the children it lists.
	gone := map[digest.Digest]bool{}
	for _, m := range v.Manifests {
		if !keep[m.Digest] {
			gone[m.Digest] = true
		}
	}
	plan.KeptManifests = len(v.Manifests) - len(gone)
	for len(gone) > 0 {
		listed := map[digest.Digest]bool{}
		for d := range gone {
			for _, c := range byDigest[d].Children {
				listed[c] = true
			}
		}
		var round []digest.Digest
		for d := range gone {
			if !listed[d] {
				round = append(round, d)
			}
		}
		if len(round) == 0 {
			// A cycle cannot be pushed (a digest cannot list itself); stop rather
			// than loop on a corrupt record.
			break
		}
		slices.Sort(round)
		for _, d := range round {
			delete(gone, d)
		}
		plan.Manifests = append(plan.Manifests, round...)
	}
	return plan
}
