package authz

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
)

func TestGrant(t *testing.T) {
	ctx := context.Background()
	store, err := sqlstore.OpenSQLite(ctx, t.TempDir()+"/db")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	users := map[string]*accounts.User{}
	for _, u := range []accounts.User{{Name: "root", Admin: true}, {Name: "alice"}, {Name: "bob"}, {Name: "carol", Disabled: true}} {
		created, err := store.CreateUser(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		users[u.Name] = &created
	}
	if _, err := store.CreateOrg(ctx, "acme", "alice"); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(store.CreateTeam(ctx, accounts.Team{Org: "acme", Name: "devs"}))
	must(store.AddTeamMember(ctx, "acme", "devs", "bob"))
	must(store.SetTeamGrant(ctx, accounts.TeamGrant{Org: "acme", Team: "devs", Role: accounts.RoleRead}))
	must(store.SetTeamGrant(ctx, accounts.TeamGrant{Org: "acme", Team: "devs", Repository: "acme/api", Role: accounts.RoleWrite}))
	for _, r := range []string{"acme/public", "alice/private"} {
		must(store.EnsureRepository(ctx, r))
	}
	must(store.SetRepositoryVisibility(ctx, "acme/public", accounts.Public))
	robot, err := store.CreateUser(ctx, accounts.User{Name: "acme.ci", Robot: true, Owner: "acme"})
	must(err)

	pol := &Policy{Store: store}
	for _, tc := range []struct {
		who   *accounts.User
		scope string
		want  string
	}{
		{nil, "repository:acme/public:pull,push", "pull"},
		{nil, "repository:alice/private:pull", ""},
		{nil, "registry:catalog:*", ""},
		{users["root"], "registry:catalog:*", "*"},
		{users["root"], "repository:anything/x:pull,push,delete", "delete,pull,push"},
		{users["root"], "repository:library:pull", "pull"},
		{users["alice"], "repository:alice/new:pull,push,delete", "delete,pull,push"},
		{users["alice"], "repository:acme/api:delete", "delete"}, // org owner
		{users["alice"], "registry:catalog:*", ""},
		{users["alice"], "repository:library:pull", ""}, // no namespace: admins only
		{users["bob"], "repository:acme/api:pull,push,delete", "pull,push"},
		{users["bob"], "repository:acme/other:pull,push", "pull"},
		{users["bob"], "repository:alice/private:pull", ""},
		{users["bob"], "repository:acme/public:pull,push", "pull"},
		{users["bob"], "repository:acme/api:pull,bogus", "pull"},
		{users["carol"], "repository:carol/x:pull", ""}, // disabled
		{&robot, "repository:acme/api:pull,push", "pull,push"},
		{&robot, "repository:alice/private:pull", ""},
		{users["alice"], "repository(plugin):alice/x:pull", ""},
	} {
		sc, err := scope.Parse(tc.scope)
		if err != nil {
			t.Fatal(err)
		}
		p := Principal{User: tc.who}
		g, err := pol.Grant(ctx, p, sc)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(g.Actions, ","); got != tc.want {
			t.Errorf("%s asks %s: got %q, want %q", p.Name(), tc.scope, got, tc.want)
		}
	}
}

func TestTokenPrincipalRestricts(t *testing.T) {
	ctx := context.Background()
	store, err := sqlstore.OpenSQLite(ctx, t.TempDir()+"/db")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.CreateUser(ctx, accounts.User{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	tok := accounts.AccessToken{User: "alice", Name: "ci", Scopes: []string{"repository:alice/*:pull", "repository:alice/app:push", "not a scope"}}
	p, err := TokenPrincipal(ctx, store, tok, tok.CreatedAt)
	if err != nil {
		t.Fatal(err)
	}
	pol := &Policy{Store: store}
	for scopeStr, want := range map[string]string{
		"repository:alice/app:pull,push,delete": "pull,push",
		"repository:alice/lib:pull,push":        "pull",
		"repository:bob/x:pull":                 "",
	} {
		sc, _ := scope.Parse(scopeStr)
		g, err := pol.Grant(ctx, p, sc)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(g.Actions, ","); got != want {
			t.Errorf("%s: got %q, want %q", scopeStr, got, want)
		}
	}
	if _, err := TokenPrincipal(ctx, store, accounts.AccessToken{User: "ghost"}, tok.CreatedAt); err != ErrBadCredentials {
		t.Errorf("token of a missing user: %v", err)
	}
}

// TestCatalogAgreesWithGrant: for every kind of principal, the catalog lists exactly
// the repositories for which Grant gives pull.
func TestCatalogAgreesWithGrant(t *testing.T) {
	ctx := context.Background()
	store, err := sqlstore.OpenSQLite(ctx, t.TempDir()+"/db")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	users := map[string]*accounts.User{}
	for _, u := range []accounts.User{{Name: "root", Admin: true}, {Name: "alice"}, {Name: "bob"}, {Name: "carol", Disabled: true}} {
		created, err := store.CreateUser(ctx, u)
		must(err)
		users[u.Name] = &created
	}
	_, err = store.CreateOrg(ctx, "acme", "alice")
	must(err)
	bot, err := store.CreateUser(ctx, accounts.User{Name: "ci", Robot: true, Owner: "acme"})
	must(err)
	must(store.CreateTeam(ctx, accounts.Team{Org: "acme", Name: "devs"}))
	must(store.AddTeamMember(ctx, "acme", "devs", "bob"))
	must(store.SetTeamGrant(ctx, accounts.TeamGrant{Org: "acme", Team: "devs", Repository: "acme/api", Role: accounts.RoleWrite}))
	repos := []string{"acme/api", "acme/web", "acme/deep/x", "acmex/app", "alice/a", "alice", "bob/b", "carol/c", "pub/p", "top"}
	for _, r := range repos {
		must(store.EnsureRepository(ctx, r))
	}
	must(store.SetRepositoryVisibility(ctx, "pub/p", accounts.Public))
	must(store.SetRepositoryVisibility(ctx, "acme/web", accounts.Public))
	must(store.SetRepositoryVisibility(ctx, "top", accounts.Public))

	tokenOf := func(u *accounts.User, scopes ...string) Principal {
		p := Principal{User: u, Token: &accounts.AccessToken{User: u.Name, Name: "t", Scopes: scopes}}
		for _, s := range scopes {
			sc, err := scope.ParsePattern(s)
			must(err)
			p.TokenScopes = append(p.TokenScopes, sc)
		}
		return p
	}
	pol := &Policy{Store: store}
	for name, p := range map[string]Principal{
		"anonymous":           {},
		"root":                {User: users["root"]},
		"alice":               {User: users["alice"]},
		"bob":                 {User: users["bob"]},
		"carol (disabled)":    {User: users["carol"]},
		"robot of acme":       {User: &bot},
		"alice's acme token":  tokenOf(users["alice"], "repository:acme/*:pull", "repository:alice/a:push"),
		"root's narrow token": tokenOf(users["root"], "repository:bob/b:pull,push", "repository:pub/p:pull"),
		"bob's star token":    tokenOf(users["bob"], "repository:*:pull"),
		"bob's push token":    tokenOf(users["bob"], "repository:*:push"),
	} {
		var want []string
		for _, r := range repos {
			g, err := pol.Grant(ctx, p, scope.Scope{Type: scope.TypeRepository, Name: r, Actions: []string{scope.Pull}})
			must(err)
			if g.Allows(scope.Pull) {
				want = append(want, r)
			}
		}
		slices.Sort(want)
		got, err := store.Catalog(ctx, pol.CatalogFilter(p), "", 0)
		must(err)
		if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("%s: catalog %q, but Grant gives pull on %q", name, got, want)
		}
		// The store's search selects by the same filter: with no text, every
		// repository the caller may pull; with terms, those of them that match them
		// all (each of three characters at least).
		for _, text := range []string{"", "acme", "app acm", "p/p"} {
			var hits []string
			for after := ""; ; {
				res, err := store.Search(ctx, pol.CatalogFilter(p), metadata.SearchQuery{Text: text, After: after, Limit: 2})
				must(err)
				for _, h := range res.Hits {
					hits = append(hits, h.Repository)
				}
				if after = res.Next; after == "" {
					break
				}
			}
			slices.Sort(hits)
			var match []string
			for _, r := range want {
				all := true
				for _, term := range strings.Fields(text) {
					all = all && strings.Contains(r, term)
				}
				if all {
					match = append(match, r)
				}
			}
			if !slices.Equal(hits, match) {
				t.Errorf("%s: search %q finds %q, but Grant gives pull on %q of the matches", name, text, hits, match)
			}
		}
	}
}
