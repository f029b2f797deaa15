package storetest

import (
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/metadata"
)

func testRepositories(t *testing.T, s metadata.Store) {
	ok, err := s.RepositoryExists(ctx(t), "app")
	must(t, err)
	if ok {
		t.Fatal("RepositoryExists(app) = true in an empty store")
	}
	must(t, s.EnsureRepository(ctx(t), "app"))
	must(t, s.EnsureRepository(ctx(t), "app")) // idempotent
	ok, err = s.RepositoryExists(ctx(t), "app")
	must(t, err)
	if !ok {
		t.Fatal("RepositoryExists(app) = false after EnsureRepository")
	}
	got, err := s.ListRepositories(ctx(t), "", 0)
	must(t, err)
	equalStrings(t, "ListRepositories", got, []string{"app"})
}

func testListRepositoriesPagination(t *testing.T, s metadata.Store) {
	got, err := s.ListRepositories(ctx(t), "", 0)
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("ListRepositories on an empty store = %q", got)
	}
	// Created out of order; byte order puts '-' (0x2d) < '/' (0x2f) < '_' (0x5f) < 'b',
	// which a locale-aware collation would not.
	for _, name := range []string{"b", "a_b", "ab", "a/b", "a", "a-b"} {
		must(t, s.EnsureRepository(ctx(t), name))
	}
	all := []string{"a", "a-b", "a/b", "a_b", "ab", "b"}
	for _, tc := range []struct {
		last string
		n    int
		want []string
	}{
		{"", 0, all},
		{"", -1, all},
		{"", 100, all},
		{"", 2, all[:2]},
		{"a-b", 2, []string{"a/b", "a_b"}},
		{"a0", 0, []string{"a_b", "ab", "b"}}, // last need not exist
		{"ab", 10, []string{"b"}},
		{"b", 0, []string{}},
		{"zzz", 1, []string{}},
		{"", 6, all},
		{"", 1, []string{"a"}},
	} {
		got, err := s.ListRepositories(ctx(t), tc.last, tc.n)
		must(t, err)
		equalStrings(t, "ListRepositories(last="+tc.last+")", got, tc.want)
	}
}

func testBlobs(t *testing.T, s metadata.Store) {
	d := digest.FromString("layer")
	_, err := s.GetBlob(ctx(t), d)
	wantErr(t, err, metadata.ErrBlobNotFound)

	must(t, s.PutBlob(ctx(t), metadata.Blob{Digest: d, Size: 5, CreatedAt: testTime}))
	// A second record of the same blob is not an error and does not replace the first.
	must(t, s.PutBlob(ctx(t), metadata.Blob{Digest: d, Size: 5, CreatedAt: testTime.Add(time.Hour)}))
	b, err := s.GetBlob(ctx(t), d)
	must(t, err)
	if b.Digest != d || b.Size != 5 || !b.CreatedAt.Equal(testTime) {
		t.Fatalf("GetBlob = %+v, want digest %s size 5 created %s", b, d, testTime)
	}

	// Known to the registry but not linked to the repository.
	_, err = s.RepositoryBlob(ctx(t), "app", d)
	wantErr(t, err, metadata.ErrBlobNotFound)

	must(t, s.LinkBlob(ctx(t), "app", d))
	must(t, s.LinkBlob(ctx(t), "app", d)) // idempotent
	if ok, err := s.RepositoryExists(ctx(t), "app"); err != nil || !ok {
		t.Fatalf("RepositoryExists after LinkBlob = %v, %v; want true", ok, err)
	}
	rb, err := s.RepositoryBlob(ctx(t), "app", d)
	must(t, err)
	if rb.Digest != d || rb.Size != 5 {
		t.Fatalf("RepositoryBlob = %+v", rb)
	}
	_, err = s.RepositoryBlob(ctx(t), "other", d)
	wantErr(t, err, metadata.ErrBlobNotFound)

	must(t, s.UnlinkBlob(ctx(t), "app", d))
	_, err = s.RepositoryBlob(ctx(t), "app", d)
	wantErr(t, err, metadata.ErrBlobNotFound)
	wantErr(t, s.UnlinkBlob(ctx(t), "app", d), metadata.ErrBlobNotFound)
	wantErr(t, s.UnlinkBlob(ctx(t), "nosuchrepo", d), metadata.ErrBlobNotFound)
	// Unlinking leaves the blob known: other repositories may use it, GC decides.
	if _, err := s.GetBlob(ctx(t), d); err != nil {
		t.Fatalf("GetBlob after unlink: %v", err)
	}
}

func testLinkUnknownBlob(t *testing.T, s metadata.Store) {
	wantErr(t, s.LinkBlob(ctx(t), "app", digest.FromString("never stored")), metadata.ErrBlobNotFound)
	if ok, err := s.RepositoryExists(ctx(t), "app"); err != nil || ok {
		t.Fatalf("RepositoryExists after a failed LinkBlob = %v, %v; want false", ok, err)
	}
}

// testDeleteRepository: deleting a repository takes its tags, manifests and links with
// it and leaves every other repository (a neighbouring name included) alone.
func testDeleteRepository(t *testing.T, s metadata.Store) {
	m := putImage(t, s, "team/app", "one", "v1")
	putImage(t, s, "team/app-2", "two", "v1")
	layer := pushBlob(t, s, "team/app", "layer")
	must(t, s.DeleteRepository(ctx(t), "team/app"))
	if ok, err := s.RepositoryExists(ctx(t), "team/app"); err != nil || ok {
		t.Fatalf("RepositoryExists after delete = %v, %v", ok, err)
	}
	_, err := s.GetManifest(ctx(t), "team/app", m.Digest)
	wantErr(t, err, metadata.ErrManifestNotFound)
	_, err = s.RepositoryBlob(ctx(t), "team/app", layer)
	wantErr(t, err, metadata.ErrBlobNotFound)
	if _, err := s.GetBlob(ctx(t), layer); err != nil {
		t.Fatalf("the blob itself is garbage collection's to remove: %v", err)
	}
	if _, err := s.ResolveTag(ctx(t), "team/app-2", "v1"); err != nil {
		t.Fatalf("the neighbouring repository lost its tag: %v", err)
	}
	wantErr(t, s.DeleteRepository(ctx(t), "team/app"), metadata.ErrRepositoryNotFound)
	// The name can be pushed to again, starting empty.
	putImage(t, s, "team/app", "three", "v2")
	tags, err := s.ListTags(ctx(t), "team/app", "", 0)
	must(t, err)
	equalStrings(t, "tags after re-creating", tags, []string{"v2"})
}
