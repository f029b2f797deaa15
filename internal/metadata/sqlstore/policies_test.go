package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

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
		if err := s.RecordPulls(ctx, []policy.Pull{{Repository: "team/app", Digest: idx, At: at},
			{Repository: "team/app", Digest: digest.FromString("gone"), At: at}}); err != nil {
			t.Fatal(err)
		}
		// An older time does not move it back.
		if err := s.RecordPulls(ctx, []policy.Pull{{Repository: "team/app", Digest: idx, At: at.Add(-time.Hour)}}); err != nil {
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
