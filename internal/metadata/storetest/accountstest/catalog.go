package accountstest

import (
	"fmt"
	"testing"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/metadata"
)

// testCatalog: the catalog lists what a filter selects — public repositories, a
// namespace's, those granted to a user's teams (one repository, or a whole
// organisation) — narrowed by an access token's patterns, in byte order, paginated.
func testCatalog(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	m := metaStore(t, s)
	newUser(t, s, "alice")
	newUser(t, s, "bob")
	// carol owns the organisations (their owners team holds every repository of each).
	newOrg(t, s, "acme", "carol")
	newOrg(t, s, "acme_x", "carol") // '_' must not act as a wildcard
	newOrg(t, s, "other", "carol")
	for _, r := range []string{
		"acme/app", "acme/team/web", "acme_x/app", "acmex/app", "alice/tools", "alice/tools/sub",
		"alice", "bob/secret", "other/lib", "other/pub", "zzz/public",
	} {
		must(t, m.EnsureRepository(ctx, r))
	}
	must(t, s.SetRepositoryVisibility(ctx, "other/pub", accounts.Public))
	must(t, s.SetRepositoryVisibility(ctx, "zzz/public", accounts.Public))
	must(t, s.CreateTeam(ctx, accounts.Team{Org: "acme", Name: "devs"}))
	must(t, s.AddTeamMember(ctx, "acme", "devs", "bob"))
	must(t, s.SetTeamGrant(ctx, accounts.TeamGrant{Org: "acme", Team: "devs", Repository: "", Role: accounts.RoleRead}))
	must(t, s.CreateTeam(ctx, accounts.Team{Org: "other", Name: "ops"}))
	must(t, s.AddTeamMember(ctx, "other", "ops", "bob"))
	must(t, s.SetTeamGrant(ctx, accounts.TeamGrant{Org: "other", Team: "ops", Repository: "other/lib", Role: accounts.RoleWrite}))
	// A team bob is not in grants nothing to bob.
	must(t, s.CreateTeam(ctx, accounts.Team{Org: "acme_x", Name: "x"}))
	must(t, s.SetTeamGrant(ctx, accounts.TeamGrant{Org: "acme_x", Team: "x", Repository: "", Role: accounts.RoleAdmin}))

	all := []string{"acme/app", "acme/team/web", "acme_x/app", "acmex/app", "alice", "alice/tools", "alice/tools/sub",
		"bob/secret", "other/lib", "other/pub", "zzz/public"}
	for _, tc := range []struct {
		name string
		f    metadata.CatalogFilter
		want []string
	}{
		{"nothing", metadata.CatalogFilter{}, []string{}},
		{"admin", metadata.CatalogFilter{All: true}, all},
		{"anonymous", metadata.CatalogFilter{Public: true}, []string{"other/pub", "zzz/public"}},
		{"alice", metadata.CatalogFilter{Public: true, Namespaces: []string{"alice"}, Member: "alice"},
			[]string{"alice/tools", "alice/tools/sub", "other/pub", "zzz/public"}},
		{"carol", metadata.CatalogFilter{Public: true, Namespaces: []string{"carol"}, Member: "carol"},
			[]string{"acme/app", "acme/team/web", "acme_x/app", "other/lib", "other/pub", "zzz/public"}},
		{"bob", metadata.CatalogFilter{Public: true, Namespaces: []string{"bob"}, Member: "bob"},
			[]string{"acme/app", "acme/team/web", "bob/secret", "other/lib", "other/pub", "zzz/public"}},
		{"robot of acme", metadata.CatalogFilter{Public: true, Namespaces: []string{"acme"}},
			[]string{"acme/app", "acme/team/web", "other/pub", "zzz/public"}},
		{"bob's token on acme/*", metadata.CatalogFilter{Public: true, Namespaces: []string{"bob"}, Member: "bob",
			Restricted: true, Patterns: []string{"acme/*"}}, []string{"acme/app", "acme/team/web"}},
		{"bob's token on two names", metadata.CatalogFilter{Public: true, Namespaces: []string{"bob"}, Member: "bob",
			Restricted: true, Patterns: []string{"other/lib", "zzz/public", "alice/tools"}}, []string{"other/lib", "zzz/public"}},
		{"bob's token on *", metadata.CatalogFilter{Public: true, Namespaces: []string{"bob"}, Member: "bob",
			Restricted: true, Patterns: []string{"*"}},
			[]string{"acme/app", "acme/team/web", "bob/secret", "other/lib", "other/pub", "zzz/public"}},
		{"a token without pull", metadata.CatalogFilter{Public: true, Restricted: true}, []string{}},
		{"admin's token on alice/tools/*", metadata.CatalogFilter{All: true, Restricted: true, Patterns: []string{"alice/tools/*"}},
			[]string{"alice/tools/sub"}},
	} {
		got, err := m.Catalog(ctx, tc.f, "", 0)
		must(t, err)
		equalStrings(t, "Catalog("+tc.name+")", got, tc.want)

		// Page by page, two at a time, as the registry pages with n and last.
		var paged []string
		last := ""
		for i := 0; ; i++ {
			page, err := m.Catalog(ctx, tc.f, last, 2)
			must(t, err)
			paged = append(paged, page...)
			if len(page) < 2 {
				break
			}
			last = page[len(page)-1]
			if i > len(all) {
				t.Fatalf("Catalog(%s) pages do not end", tc.name)
			}
		}
		if paged == nil {
			paged = []string{}
		}
		equalStrings(t, fmt.Sprintf("Catalog(%s) in pages of 2", tc.name), paged, tc.want)
	}

	// Grants and visibility are read at the time of the query.
	must(t, s.RemoveTeamMember(ctx, "acme", "devs", "bob"))
	got, err := m.Catalog(ctx, metadata.CatalogFilter{Public: true, Namespaces: []string{"bob"}, Member: "bob"}, "", 0)
	must(t, err)
	equalStrings(t, "Catalog(bob) after leaving acme/devs", got, []string{"bob/secret", "other/lib", "other/pub", "zzz/public"})
	must(t, s.SetRepositoryVisibility(ctx, "other/pub", accounts.Private))
	got, err = m.Catalog(ctx, metadata.CatalogFilter{Public: true}, "", 0)
	must(t, err)
	equalStrings(t, "Catalog(anonymous) after other/pub went private", got, []string{"zzz/public"})
}
