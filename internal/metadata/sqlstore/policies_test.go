package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/policy"
)

// putTestManifest stores a manifest (with children for an index, a subject for a
// referrer) without blobs, tagged when tag != "".
func putTestManifest(t *testing.T, s *Store, repo, content, tag string, subject digest.Digest, children ...digest.Digest) digest.Digest {
	t.Helper()
	payload := []byte(fmt.Sprintf(`{"schemaVersion":2,"x":%q}`, content))
	m := metadata.Manifest{Repository: repo, Digest: digest.FromBytes(payload), MediaType: "application/vnd.oci.image.manifest.v1+json",
		Size: int64(len(payload)), Payload: payload, Subject: subject}
	if len(children) > 0 {
		m.MediaType = "application/vnd.oci.image.index.v1+json"
	}
	if _, err := s.PutManifest(context.Background(), m, metadata.References{Manifests: children}, tag); err != nil {
		t.Fatal(err)
	}
	return m.Digest
}

func TestPolicyStore(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s, reopen := openFresh(t, b)
		p := policy.Policy{ImmutableTags: []string{"v*"}, Retention: &policy.Retention{
			Rules: []policy.Rule{{Tags: "*", KeepNewest: 2}}, UntaggedOlderThan: policy.Duration(7 * 24 * time.Hour)}}
		if err := s.PutPolicy(ctx, "team", p, "admin"); err != nil {
			t.Fatal(err)
		}
		if err := s.PutPolicy(ctx, "team/app", policy.Policy{ImmutableTags: []string{"stable"}}, "alice"); err != nil {
			t.Fatal(err)
		}
		if err := s.PutPolicy(ctx, "team/app", policy.Policy{ImmutableTags: []string{"release"}}, "bob"); err != nil {
			t.Fatal(err)
		}
		other := reopen(t)
		defer other.Close()
		all, err := other.ListPolicies(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 2 || all[0].Scope != "team" || all[1].Scope != "team/app" || all[1].UpdatedBy != "bob" ||
			all[1].Policy.ImmutableTags[0] != "release" || all[0].Policy.Retention.Rules[0].KeepNewest != 2 ||
			all[0].Policy.Retention.UntaggedOlderThan != p.Retention.UntaggedOlderThan {
			t.Fatalf("ListPolicies = %+v", all)
		}
		if err := s.DeletePolicy(ctx, "team/app"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeletePolicy(ctx, "team/app"); !errors.Is(err, policy.ErrNotFound) {
			t.Fatalf("deleting a missing policy: %v", err)
		}

		// A repository with an index, its children, a referrer and a tag.
		amd := putTestManifest(t, s, "team/app", "amd64", "", "")
		arm := putTestManifest(t, s, "team/app", "arm64", "", "")
		idx := putTestManifest(t, s, "team/app", "index", "v1", "", amd, arm)
		sig := putTestManifest(t, s, "team/app", "sig", "", idx)
		putTestManifest(t, s, "team/app", "latest", "latest", "")
		putTestManifest(t, s, "team/app", "latest", "also", "")
		putTestManifest(t, s, "teamcity/x", "other", "v1", "")
		putTestManifest(t, s, "team", "root", "v1", "")

		at := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
		if err := s.RecordPulls(ctx, policy.PullBatch{Times: []policy.Pull{{Repository: "team/app", Digest: idx, At: at},
			{Repository: "team/app", Digest: digest.FromString("gone"), At: at}}}); err != nil {
			t.Fatal(err)
		}
		// An older time does not move it back.
		if err := s.RecordPulls(ctx, policy.PullBatch{Times: []policy.Pull{{Repository: "team/app", Digest: idx, At: at.Add(-time.Hour)}}}); err != nil {
			t.Fatal(err)
		}
		v, err := other.RetentionView(ctx, "team/app")
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Tags) != 3 || len(v.Manifests) != 5 {
			t.Fatalf("view: %d tags, %d manifests", len(v.Tags), len(v.Manifests))
		}
		for _, m := range v.Manifests {
			switch m.Digest {
			case idx:
				slices.Sort(m.Children)
				want := []digest.Digest{amd, arm}
				slices.Sort(want)
				if !m.PulledAt.Equal(at) || !slices.Equal(m.Children, want) {
					t.Errorf("index: pulled %v (want %v), children %v", m.PulledAt, at, m.Children)
				}
			case sig:
				if m.Subject != idx || !m.PulledAt.IsZero() {
					t.Errorf("signature: %+v", m)
				}
			}
		}
		tags, err := s.TagsOf(ctx, "team/app", v.Tags[0].Digest)
		if err != nil || len(tags) != 2 {
			t.Fatalf("TagsOf = %v, %v", tags, err)
		}
		repos, err := s.RepositoriesIn(ctx, "team")
		if err != nil || !slices.Equal(repos, []string{"team/app"}) {
			t.Fatalf("RepositoriesIn(team) = %v, %v", repos, err)
		}
		// The pull time goes with the manifest.
		if _, err := s.DeleteTag(ctx, "team/app", "v1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DeleteManifest(ctx, "team/app", sig); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DeleteManifest(ctx, "team/app", idx); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := s.do(ctx, func(q querier) error {
			return q.QueryRow(ctx, "SELECT COUNT(*) FROM manifest_pulls").Scan(&n)
		}); err != nil || n != 0 {
			t.Fatalf("manifest_pulls rows after the delete: %d, %v", n, err)
		}
	})
}

// TestPullEvents: a replica's pulls, noted in memory, are written by one flush as one
// repository.pulled event per manifest and tag with its count and window, with the
// pull times retention reads, and with no actor even when the flush runs in someone's
// context. Past the key bound, pulls are counted as one unattributed, hub-wide count.
// A flush with nothing noted writes nothing.
func TestPullEvents(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s, _ := openFresh(t, b)
		ctx := context.Background()
		a := putTestManifest(t, s, "team/app", "a", "v1", "")
		bd := putTestManifest(t, s, "team/app", "b", "", "")
		now := time.Unix(3_000_000, 0).UTC()
		e := &policy.Engine{Store: s, Meta: s, PullEvents: true, MaxPullKeys: 3, Now: func() time.Time { return now }}
		for range 5 {
			e.Pulled("team/app", a, "v1")
		}
		e.Pulled("team/app", a, "")
		e.Pulled("team/app", bd, "")
		e.Pulled("team/app", bd, "")
		e.Pulled("other/x", bd, "") // a fourth key: over the bound
		e.Pulled("team/app", a, "v1")
		now = now.Add(time.Minute)
		if err := e.FlushPulls(events.WithActor(ctx, events.Actor{Name: "admin"})); err != nil {
			t.Fatal(err)
		}
		p, err := s.ListEvents(ctx, events.Query{Types: []events.Type{events.RepositoryPulled}, Access: metadata.CatalogFilter{All: true}})
		if err != nil {
			t.Fatal(err)
		}
		type got struct {
			repo, digest, tag string
			count             float64
		}
		var have []got
		for _, ev := range p.Events {
			if ev.Actor != "" || ev.Detail["windowStart"] != "1970-02-04T17:20:00Z" || ev.Detail["windowEnd"] != "1970-02-04T17:21:00Z" {
				t.Errorf("event %+v: want no actor and the window of the flush", ev)
			}
			if ev.Detail["unattributed"] == true && ev.Repository != "" {
				t.Errorf("unattributed pulls under %s", ev.Repository)
			}
			have = append(have, got{ev.Repository, ev.Digest, ev.Tag, ev.Detail["count"].(float64)})
		}
		want := []got{{"team/app", a.String(), "", 1}, {"team/app", a.String(), "v1", 6}, {"team/app", bd.String(), "", 2}}
		// In the flush's order: by repository, digest, tag; the unattributed count last.
		slices.SortFunc(want, func(x, y got) int { return strings.Compare(x.digest+" "+x.tag, y.digest+" "+y.tag) })
		want = append(want, got{"", "", "", 1})
		if !slices.Equal(have, want) {
			t.Fatalf("pull events\n got %+v\nwant %+v", have, want)
		}
		if p.Events[0].RepositoryID == 0 {
			t.Errorf("pull event without its repository's id")
		}
		// The unattributed count is hub-wide: a reader of public repositories does not see it.
		ns, err := s.ListEvents(ctx, events.Query{Types: []events.Type{events.RepositoryPulled}, Access: metadata.CatalogFilter{Namespaces: []string{"team"}}})
		if err != nil || len(ns.Events) != 3 {
			t.Fatalf("the team's view: %d events (%v), want its 3", len(ns.Events), err)
		}
		v, err := s.RetentionView(ctx, "team/app")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range v.Manifests {
			if m.PulledAt.IsZero() {
				t.Errorf("manifest %s has no pull time", m.Digest)
			}
		}
		// Nothing noted: nothing written.
		if err := e.FlushPulls(ctx); err != nil {
			t.Fatal(err)
		}
		if p2, err := s.ListEvents(ctx, events.Query{After: p.Next, Access: metadata.CatalogFilter{All: true}}); err != nil || len(p2.Events) != 0 {
			t.Fatalf("an empty flush wrote %d events (%v)", len(p2.Events), err)
		}
		// The next window starts where the last ended.
		e.Pulled("team/app", a, "v1")
		now = now.Add(time.Minute)
		if err := e.FlushPulls(ctx); err != nil {
			t.Fatal(err)
		}
		p2, err := s.ListEvents(ctx, events.Query{After: p.Next, Access: metadata.CatalogFilter{All: true}})
		if err != nil || len(p2.Events) != 1 || p2.Events[0].Detail["windowStart"] != "1970-02-04T17:21:00Z" {
			t.Fatalf("second window: %+v (%v)", p2.Events, err)
		}
	})
}
