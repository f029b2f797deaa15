package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/metadata"
)

func testPutGetManifest(t *testing.T, s metadata.Store) {
	cfg := pushBlob(t, s, "app", "config")
	layer := pushBlob(t, s, "app", "layer")
	subject := digest.FromString("some subject")
	m := newManifest("app", "v1")
	m.ArtifactType = "application/vnd.example+type"
	m.Subject = subject
	m.Annotations = map[string]string{"org.opencontainers.image.title": "v1", "k": "v"}
	refs := metadata.References{Blobs: []digest.Digest{cfg, layer, layer}} // a repeated layer is legal

	res, err := s.PutManifest(ctx(t), m, refs, "")
	must(t, err)
	if !res.Created || res.TagMoved || res.PreviousTagDigest != "" {
		t.Fatalf("first PutManifest = %+v, want Created only", res)
	}
	got, err := s.GetManifest(ctx(t), "app", m.Digest)
	must(t, err)
	if got.Repository != "app" || got.Digest != m.Digest || got.MediaType != m.MediaType ||
		got.ArtifactType != m.ArtifactType || got.Size != m.Size || got.Subject != subject ||
		!bytes.Equal(got.Payload, m.Payload) || !maps.Equal(got.Annotations, m.Annotations) ||
		!got.CreatedAt.Equal(testTime) {
		t.Fatalf("GetManifest = %+v\nwant %+v", got, m)
	}

	// The same digest again: nothing new, the stored manifest stays.
	again := m
	again.CreatedAt = testTime.Add(1e9)
	res, err = s.PutManifest(ctx(t), again, refs, "")
	must(t, err)
	if res.Created {
		t.Fatal("second PutManifest of the same digest reported Created")
	}
	got, err = s.GetManifest(ctx(t), "app", m.Digest)
	must(t, err)
	if !got.CreatedAt.Equal(testTime) {
		t.Fatalf("CreatedAt = %s after a re-put, want the first %s", got.CreatedAt, testTime)
	}

	// No subject, no annotations, no artifact type round-trip as zero values.
	plain := newManifest("app", "plain")
	_, err = s.PutManifest(ctx(t), plain, metadata.References{}, "")
	must(t, err)
	got, err = s.GetManifest(ctx(t), "app", plain.Digest)
	must(t, err)
	if got.Subject != "" || got.ArtifactType != "" || len(got.Annotations) != 0 {
		t.Fatalf("GetManifest(plain) = %+v, want no subject, artifact type or annotations", got)
	}
}

func testManifestNotFound(t *testing.T, s metadata.Store) {
	m := putImage(t, s, "app", "v1", "v1")
	for _, tc := range []struct{ repo, tag string }{{"nosuchrepo", "v1"}, {"app", "v2"}} {
		_, err := s.ResolveTag(ctx(t), tc.repo, tc.tag)
		wantErr(t, err, metadata.ErrTagNotFound)
	}
	for _, tc := range []struct {
		repo string
		d    digest.Digest
	}{{"nosuchrepo", m.Digest}, {"app", digest.FromString("nope")}} {
		_, err := s.GetManifest(ctx(t), tc.repo, tc.d)
		wantErr(t, err, metadata.ErrManifestNotFound)
	}
	// A manifest is per repository even when another repository has the same bytes.
	must(t, s.EnsureRepository(ctx(t), "other"))
	_, err := s.GetManifest(ctx(t), "other", m.Digest)
	wantErr(t, err, metadata.ErrManifestNotFound)
}

func testMissingReferences(t *testing.T, s metadata.Store) {
	present := pushBlob(t, s, "app", "present")
	elsewhere := pushBlob(t, s, "elsewhere", "linked to another repository only")
	known := digest.FromString("known but never linked")
	must(t, s.PutBlob(ctx(t), metadata.Blob{Digest: known, Size: 1}))
	old := putImage(t, s, "app", "old", "latest")
	missing1, missing2 := digest.FromString("missing 1"), digest.FromString("missing 2")

	for _, tc := range []struct {
		name string
		repo string
		refs metadata.References
		want metadata.MissingReferenceError
	}{
		{"first missing blob", "app",
			metadata.References{Blobs: []digest.Digest{present, missing1, missing2}},
			metadata.MissingReferenceError{Digest: missing1}},
		{"blob of another repository", "app",
			metadata.References{Blobs: []digest.Digest{elsewhere}},
			metadata.MissingReferenceError{Digest: elsewhere}},
		{"blob known but not linked", "app",
			metadata.References{Blobs: []digest.Digest{known}},
			metadata.MissingReferenceError{Digest: known}},
		{"missing child manifest", "app",
			metadata.References{Blobs: []digest.Digest{present}, Manifests: []digest.Digest{old.Digest, missing1}},
			metadata.MissingReferenceError{Digest: missing1, Manifest: true}},
		{"blob in a new repository", "newrepo",
			metadata.References{Blobs: []digest.Digest{present}},
			metadata.MissingReferenceError{Digest: present}},
		{"child manifest of another repository", "newrepo",
			metadata.References{Manifests: []digest.Digest{old.Digest}},
			metadata.MissingReferenceError{Digest: old.Digest, Manifest: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			existed, err := s.RepositoryExists(ctx(t), tc.repo)
			must(t, err)
			m := newManifest(tc.repo, tc.name)
			_, err = s.PutManifest(ctx(t), m, tc.refs, "latest")
			var missing *metadata.MissingReferenceError
			if !errors.As(err, &missing) {
				t.Fatalf("PutManifest error = %v, want *MissingReferenceError", err)
			}
			if *missing != tc.want {
				t.Fatalf("missing = %+v, want %+v", *missing, tc.want)
			}
			// Nothing was written: no manifest, the tag did not move, no repository appeared.
			_, err = s.GetManifest(ctx(t), tc.repo, m.Digest)
			wantErr(t, err, metadata.ErrManifestNotFound)
			if exists, err := s.RepositoryExists(ctx(t), tc.repo); err != nil || exists != existed {
				t.Fatalf("RepositoryExists(%s) = %v, %v; want %v", tc.repo, exists, err, existed)
			}
			d, err := s.ResolveTag(ctx(t), tc.repo, "latest")
			if existed {
				must(t, err)
				if d != old.Digest {
					t.Fatalf("latest = %s after a refused put, want %s", d, old.Digest)
				}
			} else {
				wantErr(t, err, metadata.ErrTagNotFound)
			}
		})
	}
}

func testIndexWithChildren(t *testing.T, s metadata.Store) {
	amd := putImage(t, s, "app", "amd64", "")
	arm := putImage(t, s, "app", "arm64", "")
	index := newManifest("app", "index")
	index.MediaType = "application/vnd.oci.image.index.v1+json"
	res, err := s.PutManifest(ctx(t), index, metadata.References{Manifests: []digest.Digest{amd.Digest, arm.Digest}}, "1.0")
	must(t, err)
	if !res.Created || !res.TagMoved {
		t.Fatalf("PutManifest(index) = %+v", res)
	}
	d, err := s.ResolveTag(ctx(t), "app", "1.0")
	must(t, err)
	if d != index.Digest {
		t.Fatalf("1.0 = %s, want the index %s", d, index.Digest)
	}
}

func testTagMove(t *testing.T, s metadata.Store) {
	cfg := pushBlob(t, s, "app", "config")
	refs := metadata.References{Blobs: []digest.Digest{cfg}}
	m1, m2 := newManifest("app", "1"), newManifest("app", "2")
	for _, tc := range []struct {
		name string
		m    metadata.Manifest
		tag  string
		want metadata.PutManifestResult
	}{
		{"new manifest, new tag", m1, "latest", metadata.PutManifestResult{Created: true, TagMoved: true}},
		{"new manifest moves tag", m2, "latest", metadata.PutManifestResult{Created: true, PreviousTagDigest: m1.Digest, TagMoved: true}},
		{"same manifest, same tag", m2, "latest", metadata.PutManifestResult{PreviousTagDigest: m2.Digest}},
		{"old manifest moves tag back", m1, "latest", metadata.PutManifestResult{PreviousTagDigest: m2.Digest, TagMoved: true}},
		{"no tag", m2, "", metadata.PutManifestResult{}},
		{"second tag", m2, "stable", metadata.PutManifestResult{TagMoved: true}},
	} {
		res, err := s.PutManifest(ctx(t), tc.m, refs, tc.tag)
		must(t, err)
		if res != tc.want {
			t.Errorf("%s: PutManifest = %+v, want %+v", tc.name, res, tc.want)
		}
	}
	for tag, want := range map[string]metadata.Manifest{"latest": m1, "stable": m2} {
		d, err := s.ResolveTag(ctx(t), "app", tag)
		must(t, err)
		if d != want.Digest {
			t.Errorf("ResolveTag(%s) = %s, want %s", tag, d, want.Digest)
		}
		m, err := s.GetManifestByTag(ctx(t), "app", tag)
		must(t, err)
		if m.Digest != want.Digest || string(m.Payload) != string(want.Payload) || m.MediaType != want.MediaType || m.Repository != "app" {
			t.Errorf("GetManifestByTag(%s) = %s %q, want %s", tag, m.Digest, m.Payload, want.Digest)
		}
	}
	for _, tc := range []struct{ repo, tag string }{{"app", "nosuchtag"}, {"nosuchrepo", "latest"}} {
		_, err := s.GetManifestByTag(ctx(t), tc.repo, tc.tag)
		wantErr(t, err, metadata.ErrTagNotFound)
	}
}

func testListTags(t *testing.T, s metadata.Store) {
	_, err := s.ListTags(ctx(t), "nosuchrepo", "", 0)
	wantErr(t, err, metadata.ErrRepositoryNotFound)

	must(t, s.EnsureRepository(ctx(t), "app"))
	got, err := s.ListTags(ctx(t), "app", "", 0)
	must(t, err)
	equalStrings(t, "ListTags of a repository without tags", got, []string{})

	m := putImage(t, s, "app", "x", "")
	for _, tag := range []string{"v2", "V1", "v10", "latest", "1.0", "1.0-rc", "1.0_b"} {
		_, err := s.PutManifest(ctx(t), m, metadata.References{}, tag)
		must(t, err)
	}
	putImage(t, s, "other", "y", "zzz") // tags of another repository never leak in
	all := []string{"1.0", "1.0-rc", "1.0_b", "V1", "latest", "v10", "v2"}
	for _, tc := range []struct {
		last string
		n    int
		want []string
	}{
		{"", 0, all},
		{"", -5, all},
		{"", 3, all[:3]},
		{"1.0_b", 2, []string{"V1", "latest"}},
		{"V", 1, []string{"V1"}},
		{"v1", 0, []string{"v10", "v2"}},
		{"v2", 0, []string{}},
		{"", 7, all},
		{"", 8, all},
	} {
		got, err := s.ListTags(ctx(t), "app", tc.last, tc.n)
		must(t, err)
		equalStrings(t, "ListTags(last="+tc.last+")", got, tc.want)
	}
}

func testDeleteTag(t *testing.T, s metadata.Store) {
	m := putImage(t, s, "app", "x", "latest")
	_, err := s.DeleteTag(ctx(t), "app", "nope")
	wantErr(t, err, metadata.ErrTagNotFound)
	_, err = s.DeleteTag(ctx(t), "nosuchrepo", "latest")
	wantErr(t, err, metadata.ErrTagNotFound)

	d, err := s.DeleteTag(ctx(t), "app", "latest")
	must(t, err)
	if d != m.Digest {
		t.Fatalf("DeleteTag = %s, want %s", d, m.Digest)
	}
	_, err = s.ResolveTag(ctx(t), "app", "latest")
	wantErr(t, err, metadata.ErrTagNotFound)
	_, err = s.DeleteTag(ctx(t), "app", "latest")
	wantErr(t, err, metadata.ErrTagNotFound)
	// The manifest outlives its tag.
	if _, err := s.GetManifest(ctx(t), "app", m.Digest); err != nil {
		t.Fatalf("GetManifest after DeleteTag: %v", err)
	}
}

func testDeleteManifest(t *testing.T, s metadata.Store) {
	m := putImage(t, s, "app", "x", "b")
	_, err := s.PutManifest(ctx(t), m, metadata.References{}, "a")
	must(t, err)
	keep := putImage(t, s, "app", "y", "c")
	referrer := newManifest("app", "signature")
	referrer.Subject = keep.Digest
	referrer.ArtifactType = "application/vnd.example.sig"
	_, err = s.PutManifest(ctx(t), referrer, metadata.References{}, "")
	must(t, err)

	_, err = s.DeleteManifest(ctx(t), "nosuchrepo", m.Digest)
	wantErr(t, err, metadata.ErrManifestNotFound)
	_, err = s.DeleteManifest(ctx(t), "app", digest.FromString("nope"))
	wantErr(t, err, metadata.ErrManifestNotFound)

	res, err := s.DeleteManifest(ctx(t), "app", m.Digest)
	must(t, err)
	if res.Manifest.Digest != m.Digest || res.Manifest.Repository != "app" || res.Manifest.MediaType != m.MediaType || res.Manifest.Payload != nil {
		t.Errorf("DeleteManifest manifest = %+v, want %s without payload", res.Manifest, m.Digest)
	}
	if !slices.Equal(res.Tags, []string{"a", "b"}) {
		t.Errorf("DeleteManifest tags = %q, want [a b]", res.Tags)
	}
	_, err = s.GetManifest(ctx(t), "app", m.Digest)
	wantErr(t, err, metadata.ErrManifestNotFound)
	for _, tag := range []string{"a", "b"} {
		_, err := s.ResolveTag(ctx(t), "app", tag)
		wantErr(t, err, metadata.ErrTagNotFound)
	}
	tags, err := s.ListTags(ctx(t), "app", "", 0)
	must(t, err)
	equalStrings(t, "ListTags after delete", tags, []string{"c"})
	_, err = s.DeleteManifest(ctx(t), "app", m.Digest)
	wantErr(t, err, metadata.ErrManifestNotFound)

	// Deleting a referrer removes it from its subject's referrers.
	refs, err := s.Referrers(ctx(t), "app", keep.Digest, "")
	must(t, err)
	if len(refs) != 1 {
		t.Fatalf("Referrers before delete = %d, want 1", len(refs))
	}
	res, err = s.DeleteManifest(ctx(t), "app", referrer.Digest)
	must(t, err)
	if res.Manifest.Subject != keep.Digest || len(res.Tags) != 0 {
		t.Errorf("DeleteManifest(referrer) = %+v", res)
	}
	refs, err = s.Referrers(ctx(t), "app", keep.Digest, "")
	must(t, err)
	if len(refs) != 0 {
		t.Fatalf("Referrers after deleting the referrer = %+v", refs)
	}

	// Gone means gone: putting it again creates it anew.
	put, err := s.PutManifest(ctx(t), m, metadata.References{}, "")
	must(t, err)
	if !put.Created {
		t.Fatal("PutManifest after DeleteManifest did not report Created")
	}
}

func testReferrers(t *testing.T, s metadata.Store) {
	subject := putImage(t, s, "app", "subject", "v1")
	mk := func(repo, name, artifactType string, subj digest.Digest) metadata.Manifest {
		m := newManifest(repo, name)
		m.ArtifactType = artifactType
		m.Subject = subj
		m.Annotations = map[string]string{"name": name}
		_, err := s.PutManifest(ctx(t), m, metadata.References{}, "")
		must(t, err)
		return m
	}
	sigA := mk("app", "sig a", "application/vnd.a", subject.Digest)
	sbom := mk("app", "sbom", "application/vnd.b", subject.Digest)
	sigB := mk("app", "sig b", "application/vnd.a", subject.Digest)
	mk("app", "other subject", "application/vnd.a", digest.FromString("other"))
	mk("other", "other repo", "application/vnd.a", subject.Digest)
	mk("app", "no artifact type", "", digest.FromString("x"))

	byDigest := func(ms ...metadata.Manifest) []metadata.Manifest {
		return slices.SortedFunc(slices.Values(ms), func(a, b metadata.Manifest) int {
			return strings.Compare(a.Digest.String(), b.Digest.String())
		})
	}
	for _, tc := range []struct {
		name, repo   string
		subject      digest.Digest
		artifactType string
		want         []metadata.Manifest
	}{
		{"all", "app", subject.Digest, "", byDigest(sigA, sbom, sigB)},
		{"filtered", "app", subject.Digest, "application/vnd.a", byDigest(sigA, sigB)},
		{"filtered to one", "app", subject.Digest, "application/vnd.b", []metadata.Manifest{sbom}},
		{"filter matches none", "app", subject.Digest, "application/vnd.none", nil},
		{"no referrers", "app", digest.FromString("lonely"), "", nil},
		{"unknown repository", "nosuchrepo", subject.Digest, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Referrers(ctx(t), tc.repo, tc.subject, tc.artifactType)
			must(t, err)
			if got == nil {
				t.Fatal("Referrers = nil, want an empty slice rather than nil")
			}
			if len(got) != len(tc.want) {
				t.Fatalf("Referrers = %d manifests, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Digest != w.Digest || g.ArtifactType != w.ArtifactType || g.Subject != w.Subject ||
					g.MediaType != w.MediaType || g.Size != w.Size || g.Repository != tc.repo ||
					!maps.Equal(g.Annotations, w.Annotations) || g.Payload != nil {
					t.Errorf("Referrers[%d] = %+v\nwant %+v without payload", i, g, w)
				}
			}
		})
	}
}

// testDeleteIndexChild: a manifest an index of the repository lists is not deleted,
// and the error names the index; once the index is gone, the child may go. A child
// listed by an index of another repository is not held.
func testDeleteIndexChild(t *testing.T, s metadata.Store) {
	amd := putImage(t, s, "app", "amd64", "amd")
	arm := putImage(t, s, "app", "arm64", "")
	idx := newManifest("app", "index")
	idx.MediaType = "application/vnd.oci.image.index.v1+json"
	_, err := s.PutManifest(ctx(t), idx, metadata.References{Manifests: []digest.Digest{amd.Digest, arm.Digest}}, "1.0")
	must(t, err)
	idx2 := newManifest("app", "index 2")
	idx2.MediaType = idx.MediaType
	_, err = s.PutManifest(ctx(t), idx2, metadata.References{Manifests: []digest.Digest{amd.Digest}}, "")
	must(t, err)
	// The same child bytes in another repository, with no index there.
	other := putImage(t, s, "other", "amd64", "x")

	_, err = s.DeleteManifest(ctx(t), "app", amd.Digest)
	var ref *metadata.ReferencedManifestError
	if !errors.As(err, &ref) {
		t.Fatalf("DeleteManifest(child) = %v, want *ReferencedManifestError", err)
	}
	want := []digest.Digest{idx.Digest, idx2.Digest}
	slices.Sort(want)
	if ref.Digest != amd.Digest || !slices.Equal(ref.Indexes, want) || ref.More != 0 {
		t.Fatalf("ReferencedManifestError = %+v, want %s held by %v", ref, amd.Digest, want)
	}
	if !strings.Contains(err.Error(), want[0].String()) {
		t.Errorf("error %q does not name the index", err)
	}
	// Nothing was deleted, not even the child's tag.
	if d, err := s.ResolveTag(ctx(t), "app", "amd"); err != nil || d != amd.Digest {
		t.Fatalf("tag amd = %s, %v after a refused delete", d, err)
	}
	_, err = s.GetManifest(ctx(t), "app", amd.Digest)
	must(t, err)
	if _, err := s.DeleteManifest(ctx(t), "other", other.Digest); err != nil {
		t.Fatalf("DeleteManifest in a repository without the index: %v", err)
	}

	// Deleting a tag is not deleting the manifest: allowed.
	_, err = s.DeleteTag(ctx(t), "app", "amd")
	must(t, err)
	_, err = s.DeleteManifest(ctx(t), "app", idx.Digest)
	must(t, err)
	_, err = s.DeleteManifest(ctx(t), "app", arm.Digest) // its only index is gone
	must(t, err)
	_, err = s.DeleteManifest(ctx(t), "app", amd.Digest)
	if !errors.As(err, &ref) || !slices.Equal(ref.Indexes, []digest.Digest{idx2.Digest}) {
		t.Fatalf("DeleteManifest(child of idx2) = %v, want held by %s", err, idx2.Digest)
	}
	_, err = s.DeleteManifest(ctx(t), "app", idx2.Digest)
	must(t, err)
	_, err = s.DeleteManifest(ctx(t), "app", amd.Digest)
	must(t, err)

	// Many indexes: a few are named, the rest counted.
	child := putImage(t, s, "many", "child", "")
	for i := range 5 {
		x := newManifest("many", fmt.Sprintf("index %d", i))
		x.MediaType = idx.MediaType
		_, err := s.PutManifest(ctx(t), x, metadata.References{Manifests: []digest.Digest{child.Digest}}, "")
		must(t, err)
	}
	_, err = s.DeleteManifest(ctx(t), "many", child.Digest)
	if !errors.As(err, &ref) || len(ref.Indexes) == 0 || len(ref.Indexes)+ref.More != 5 {
		t.Fatalf("DeleteManifest(child of 5) = %v (%+v)", err, ref)
	}
}

// testRepositoryLimits: a repository holds at most the manifests and tags its limits
// allow (issue 16, item 1); at the limit a new one is refused with ErrRepositoryFull
// and nothing is written, while re-puts and tag moves still work; other repositories
// are not affected.
func testRepositoryLimits(t *testing.T, s metadata.Store) {
	s.SetRepositoryLimits(metadata.RepositoryLimits{Manifests: 3, Tags: 2})
	defer s.SetRepositoryLimits(metadata.RepositoryLimits{})
	put := func(repo string, n int, tag string) (metadata.Manifest, error) {
		payload := []byte(fmt.Sprintf(`{"schemaVersion":2,"n":%d}`, n))
		m := metadata.Manifest{Repository: repo, Digest: digest.FromBytes(payload), MediaType: "application/vnd.oci.image.manifest.v1+json",
			Size: int64(len(payload)), Payload: payload, CreatedAt: testTime}
		_, err := s.PutManifest(ctx(t), m, metadata.References{}, tag)
		return m, err
	}
	for i, tag := range []string{"a", "b", ""} {
		if _, err := put("lim", i, tag); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	m, err := put("lim", 3, "")
	wantErr(t, err, metadata.ErrRepositoryFull)
	if _, err := s.GetManifest(ctx(t), "lim", m.Digest); !errors.Is(err, metadata.ErrManifestNotFound) {
		t.Fatalf("refused manifest: %v", err)
	}
	_, err = put("lim", 0, "c") // a third tag
	wantErr(t, err, metadata.ErrRepositoryFull)
	if _, err := put("lim", 2, "a"); err != nil { // a tag move
		t.Fatalf("tag move at the limit: %v", err)
	}
	if _, err := put("lim", 1, ""); err != nil { // a re-put
		t.Fatalf("re-put at the limit: %v", err)
	}
	if _, err := put("other", 3, "a"); err != nil {
		t.Fatalf("another repository: %v", err)
	}
	_, err = s.DeleteTag(ctx(t), "lim", "b")
	must(t, err)
	if _, err := put("lim", 0, "c"); err != nil {
		t.Fatalf("a tag after one was deleted: %v", err)
	}
}
