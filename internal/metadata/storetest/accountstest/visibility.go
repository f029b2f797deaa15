package accountstest

import (
	"testing"

	"github.com/hubctl/hubctl/internal/accounts"
)

func wantVisibility(t *testing.T, s accounts.Store, repo string, want accounts.Visibility, wantExists bool) {
	t.Helper()
	v, exists, err := s.RepositoryVisibility(t.Context(), repo)
	must(t, err)
	if v != want || exists != wantExists {
		t.Errorf("RepositoryVisibility(%s) = %q, exists %v; want %q, exists %v", repo, v, exists, want, wantExists)
	}
}

func testRepositoryVisibility(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	m := metaStore(t, s)
	// No repository, no namespace: private.
	wantVisibility(t, s, "ghost/app", accounts.Private, false)
	wantVisibility(t, s, "app", accounts.Private, false)

	newOrg(t, s, "acme", "alice")
	wantVisibility(t, s, "acme/app", accounts.Private, false)
	must(t, s.SetDefaultVisibility(ctx, "acme", accounts.Public))
	// A repository not pushed yet reports its namespace's default.
	wantVisibility(t, s, "acme/app", accounts.Public, false)
	wantVisibility(t, s, "acme/team/app", accounts.Public, false)
	wantVisibility(t, s, "acmex/app", accounts.Private, false) // not acme's
	wantVisibility(t, s, "acme", accounts.Public, false)       // a single component is its own namespace

	must(t, m.EnsureRepository(ctx, "acme/app"))
	wantVisibility(t, s, "acme/app", accounts.Public, true)
	// Changing the default later leaves existing repositories alone.
	must(t, s.SetDefaultVisibility(ctx, "acme", accounts.Private))
	wantVisibility(t, s, "acme/app", accounts.Public, true)
	wantVisibility(t, s, "acme/web", accounts.Private, false)

	must(t, s.SetRepositoryVisibility(ctx, "acme/app", accounts.Private))
	wantVisibility(t, s, "acme/app", accounts.Private, true)
	must(t, s.SetRepositoryVisibility(ctx, "acme/app", accounts.Public))
	wantVisibility(t, s, "acme/app", accounts.Public, true)
	// Re-creating an existing repository keeps its visibility.
	must(t, m.EnsureRepository(ctx, "acme/app"))
	linkBlob(t, m, "acme/app")
	wantVisibility(t, s, "acme/app", accounts.Public, true)

	wantErr(t, "SetRepositoryVisibility(missing)",
		s.SetRepositoryVisibility(ctx, "acme/web", accounts.Public), accounts.ErrNotFound)
	wantVisibility(t, s, "acme/web", accounts.Private, false) // and it was not created
	wantErr(t, "SetRepositoryVisibility(bad)",
		s.SetRepositoryVisibility(ctx, "acme/app", "internal"), accounts.ErrInvalid)
	wantVisibility(t, s, "acme/app", accounts.Public, true)

	// Personal namespaces have a default too.
	must(t, s.SetDefaultVisibility(ctx, "alice", accounts.Public))
	must(t, m.EnsureRepository(ctx, "alice/tools"))
	wantVisibility(t, s, "alice/tools", accounts.Public, true)
}

// testVisibilityOnImplicitCreate: a push creates repositories through LinkBlob or
// PutManifest, never EnsureRepository; both must apply the namespace's default.
func testVisibilityOnImplicitCreate(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	m := metaStore(t, s)
	newOrg(t, s, "pub", "alice")
	must(t, s.SetDefaultVisibility(ctx, "pub", accounts.Public))
	newOrg(t, s, "priv", "alice")

	linkBlob(t, m, "pub/by-blob")
	putManifest(t, m, "pub/by-manifest")
	linkBlob(t, m, "priv/by-blob")
	putManifest(t, m, "priv/by-manifest")
	linkBlob(t, m, "nobody/by-blob")
	putManifest(t, m, "nobody/by-manifest")
	putManifest(t, m, "pub/deep/nested/name")

	wantVisibility(t, s, "pub/by-blob", accounts.Public, true)
	wantVisibility(t, s, "pub/by-manifest", accounts.Public, true)
	wantVisibility(t, s, "pub/deep/nested/name", accounts.Public, true)
	wantVisibility(t, s, "priv/by-blob", accounts.Private, true)
	wantVisibility(t, s, "priv/by-manifest", accounts.Private, true)
	wantVisibility(t, s, "nobody/by-blob", accounts.Private, true)
	wantVisibility(t, s, "nobody/by-manifest", accounts.Private, true)

	// The default is read when the repository is created, not when it is looked at.
	must(t, s.SetDefaultVisibility(ctx, "pub", accounts.Private))
	wantVisibility(t, s, "pub/by-blob", accounts.Public, true)
	wantVisibility(t, s, "pub/by-manifest", accounts.Public, true)
}
