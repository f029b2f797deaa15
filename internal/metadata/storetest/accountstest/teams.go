package accountstest

import (
	"testing"

	"github.com/hubctl/hubctl/internal/accounts"
)

// newOrg creates user owner (when missing) and an organisation owned by them.
func newOrg(t *testing.T, s accounts.Store, org, owner string) {
	t.Helper()
	if _, err := s.GetUser(t.Context(), owner); err != nil {
		newUser(t, s, owner)
	}
	_, err := s.CreateOrg(t.Context(), org, owner)
	must(t, err)
}

func testTeams(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	newOrg(t, s, "acme", "alice")
	wantErr(t, "CreateTeam(missing org)", s.CreateTeam(ctx, accounts.Team{Org: "nope", Name: "devs"}), accounts.ErrNotFound)
	wantErr(t, "CreateTeam(personal namespace)", s.CreateTeam(ctx, accounts.Team{Org: "alice", Name: "devs"}), accounts.ErrNotFound)
	wantErr(t, "CreateTeam(bad name)", s.CreateTeam(ctx, accounts.Team{Org: "acme", Name: "Dev Ops"}), accounts.ErrInvalid)

	devs := accounts.Team{Org: "acme", Name: "devs", Description: "Developers", CreatedAt: testTime}
	must(t, s.CreateTeam(ctx, devs))
	wantErr(t, "CreateTeam twice", s.CreateTeam(ctx, accounts.Team{Org: "acme", Name: "devs"}), accounts.ErrExists)
	must(t, s.CreateTeam(ctx, accounts.Team{Org: "acme", Name: "b-team"}))
	// The same team name in another organisation is another team.
	newOrg(t, s, "other", "alice")
	must(t, s.CreateTeam(ctx, accounts.Team{Org: "other", Name: "devs"}))

	teams, err := s.ListTeams(ctx, "acme")
	must(t, err)
	var names []string
	for _, tm := range teams {
		names = append(names, tm.Name)
		if tm.Org != "acme" {
			t.Errorf("ListTeams(acme) returned %+v", tm)
		}
	}
	equalStrings(t, "ListTeams(acme)", names, []string{"b-team", "devs", "owners"})
	if teams[1] != devs {
		t.Fatalf("ListTeams(acme)[1] = %+v, want %+v", teams[1], devs)
	}
	_, err = s.ListTeams(ctx, "nope")
	wantErr(t, "ListTeams(missing org)", err, accounts.ErrNotFound)

	must(t, s.DeleteTeam(ctx, "acme", "devs"))
	wantErr(t, "DeleteTeam twice", s.DeleteTeam(ctx, "acme", "devs"), accounts.ErrNotFound)
	teams, err = s.ListTeams(ctx, "other")
	must(t, err)
	if len(teams) != 2 {
		t.Fatalf("deleting acme/devs touched other's teams: %+v", teams)
	}
}

func testTeamMembers(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	newOrg(t, s, "acme", "alice")
	newUser(t, s, "bob")
	newUser(t, s, "carol")
	must(t, s.CreateTeam(ctx, accounts.Team{Org: "acme", Name: "devs"}))

	got, err := s.ListTeamMembers(ctx, "acme", "devs")
	must(t, err)
	equalStrings(t, "members of a new team", got, []string{})

	must(t, s.AddTeamMember(ctx, "acme", "devs", "carol"))
	must(t, s.AddTeamMember(ctx, "acme", "devs", "bob"))
	must(t, s.AddTeamMember(ctx, "acme", "devs", "bob")) // idempotent
	got, err = s.ListTeamMembers(ctx, "acme", "devs")
	must(t, err)
	equalStrings(t, "members", got, []string{"bob", "carol"})

	wantErr(t, "AddTeamMember(missing user)", s.AddTeamMember(ctx, "acme", "devs", "nobody"), accounts.ErrNotFound)
	wantErr(t, "AddTeamMember(missing team)", s.AddTeamMember(ctx, "acme", "ops", "bob"), accounts.ErrNotFound)
	wantErr(t, "AddTeamMember(missing org)", s.AddTeamMember(ctx, "nope", "devs", "bob"), accounts.ErrNotFound)
	_, err = s.ListTeamMembers(ctx, "acme", "ops")
	wantErr(t, "ListTeamMembers(missing team)", err, accounts.ErrNotFound)

	must(t, s.RemoveTeamMember(ctx, "acme", "devs", "bob"))
	wantErr(t, "RemoveTeamMember twice", s.RemoveTeamMember(ctx, "acme", "devs", "bob"), accounts.ErrNotFound)
	wantErr(t, "RemoveTeamMember(missing team)", s.RemoveTeamMember(ctx, "acme", "ops", "carol"), accounts.ErrNotFound)
	got, err = s.ListTeamMembers(ctx, "acme", "devs")
	must(t, err)
	equalStrings(t, "members after removal", got, []string{"carol"})

	// Deleting a team takes its members and grants with it: a team of the same name
	// created later starts empty and grants nothing.
	must(t, s.SetTeamGrant(ctx, accounts.TeamGrant{Org: "acme", Team: "devs", Role: accounts.RoleWrite}))
	must(t, s.DeleteTeam(ctx, "acme", "devs"))
	must(t, s.CreateTeam(ctx, accounts.Team{Org: "acme", Name: "devs"}))
	got, err = s.ListTeamMembers(ctx, "acme", "devs")
	must(t, err)
	equalStrings(t, "members of a re-created team", got, []string{})
	grants, err := s.ListTeamGrants(ctx, "acme", "devs")
	must(t, err)
	if len(grants) != 0 {
		t.Fatalf("grants of a re-created team = %+v", grants)
	}
	if role, err := s.RoleOf(ctx, "carol", "acme/app"); err != nil || role != accounts.RoleNone {
		t.Fatalf("RoleOf(member of a deleted team) = %q, %v; want none", role, err)
	}
}

func testGrants(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	newOrg(t, s, "acme", "alice")
	must(t, s.CreateTeam(ctx, accounts.Team{Org: "acme", Name: "devs"}))
	g := func(repo string, r accounts.Role) accounts.TeamGrant {
		return accounts.TeamGrant{Org: "acme", Team: "devs", Repository: repo, Role: r}
	}
	must(t, s.SetTeamGrant(ctx, g("acme/web", accounts.RoleWrite)))
	must(t, s.SetTeamGrant(ctx, g("", accounts.RoleRead)))
	must(t, s.SetTeamGrant(ctx, g("acme/api/v2", accounts.RoleAdmin)))
	must(t, s.SetTeamGrant(ctx, g("acme/web", accounts.RoleAdmin))) // replaces write
	got, err := s.ListTeamGrants(ctx, "acme", "devs")
	must(t, err)
	want := []accounts.TeamGrant{g("", accounts.RoleRead), g("acme/api/v2", accounts.RoleAdmin), g("acme/web", accounts.RoleAdmin)}
	if len(got) != len(want) {
		t.Fatalf("ListTeamGrants = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("ListTeamGrants = %+v, want %+v", got, want)
		}
	}

	// RoleNone removes; removing what is not there is not an error.
	must(t, s.SetTeamGrant(ctx, g("acme/web", accounts.RoleNone)))
	must(t, s.SetTeamGrant(ctx, g("acme/web", accounts.RoleNone)))
	got, err = s.ListTeamGrants(ctx, "acme", "devs")
	must(t, err)
	if len(got) != 2 || got[1].Repository != "acme/api/v2" {
		t.Fatalf("after removing acme/web: %+v", got)
	}

	for _, bad := range []accounts.TeamGrant{
		g("", "owner"),
		g("acme/web", "READ"),
		g("other/web", accounts.RoleRead),   // another organisation
		g("acmex/web", accounts.RoleRead),   // a prefix is not the organisation
		g("acme", accounts.RoleRead),        // the org itself: use ""
		g("acme/Web", accounts.RoleRead),    // not a repository name
		g("acme/../x", accounts.RoleRead),   // path tricks
		g("acme//web", accounts.RoleRead),   // empty component
		g("acme/web/", accounts.RoleRead),   // trailing slash
		g("/acme/web", accounts.RoleRead),   // leading slash
		g("acme/web:1", accounts.RoleRead),  // a reference, not a repository
		g("acme/w b", accounts.RoleNone),    // even to remove
		g("acme/web@x", accounts.RoleWrite), // a digest suffix
	} {
		wantErr(t, "SetTeamGrant("+bad.Repository+", "+string(bad.Role)+")", s.SetTeamGrant(ctx, bad), accounts.ErrInvalid)
	}
	wantErr(t, "SetTeamGrant(missing team)",
		s.SetTeamGrant(ctx, accounts.TeamGrant{Org: "acme", Team: "ops", Role: accounts.RoleRead}), accounts.ErrNotFound)
	_, err = s.ListTeamGrants(ctx, "acme", "ops")
	wantErr(t, "ListTeamGrants(missing team)", err, accounts.ErrNotFound)
}

// testRolePrecedence: the strongest of org-wide and per-repository grants over all of
// a user's teams wins, and only on the repository named.
func testRolePrecedence(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	newOrg(t, s, "acme", "alice")
	newOrg(t, s, "acmex", "alice")
	for _, u := range []string{"bob", "carol", "dave"} {
		newUser(t, s, u)
	}
	for _, tm := range []string{"readers", "app-admins", "writers"} {
		must(t, s.CreateTeam(ctx, accounts.Team{Org: "acme", Name: tm}))
	}
	must(t, s.SetTeamGrant(ctx, accounts.TeamGrant{Org: "acme", Team: "readers", Role: accounts.RoleRead}))
	must(t, s.SetTeamGrant(ctx, accounts.TeamGrant{Org: "acme", Team: "app-admins", Repository: "acme/app", Role: accounts.RoleAdmin}))
	must(t, s.SetTeamGrant(ctx, accounts.TeamGrant{Org: "acme", Team: "writers", Role: accounts.RoleWrite}))
	must(t, s.SetTeamGrant(ctx, accounts.TeamGrant{Org: "acme", Team: "writers", Repository: "acme/app", Role: accounts.RoleRead}))
	// bob: org-wide read + admin on acme/app.
	must(t, s.AddTeamMember(ctx, "acme", "readers", "bob"))
	must(t, s.AddTeamMember(ctx, "acme", "app-admins", "bob"))
	// carol: org-wide write + read on acme/app: the org-wide write still wins there.
	must(t, s.AddTeamMember(ctx, "acme", "writers", "carol"))
	// dave: admin on acme/app only.
	must(t, s.AddTeamMember(ctx, "acme", "app-admins", "dave"))
	// acmex has a team with an org-wide admin grant that nobody above is in, except alice.

	for _, tc := range []struct {
		user, repo string
		want       accounts.Role
	}{
		{"bob", "acme/app", accounts.RoleAdmin},
		{"bob", "acme/other", accounts.RoleRead},
		{"bob", "acme/app/sub", accounts.RoleRead}, // a grant names one repository, not a prefix
		{"bob", "acme/ap", accounts.RoleRead},
		{"bob", "acmex/app", accounts.RoleNone}, // another organisation with a longer name
		{"bob", "other/app", accounts.RoleNone},
		{"carol", "acme/app", accounts.RoleWrite},
		{"carol", "acme/web", accounts.RoleWrite},
		{"dave", "acme/app", accounts.RoleAdmin},
		{"dave", "acme/web", accounts.RoleNone},
		{"alice", "acme/web", accounts.RoleAdmin},
		{"alice", "acmex/web", accounts.RoleAdmin},
		{"nobody", "acme/app", accounts.RoleNone},
		{"bob", "", accounts.RoleNone},
	} {
		got, err := s.RoleOf(ctx, tc.user, tc.repo)
		must(t, err)
		if got != tc.want {
			t.Errorf("RoleOf(%s, %s) = %q, want %q", tc.user, tc.repo, got, tc.want)
		}
	}

	// Leaving a team takes its grants away.
	must(t, s.RemoveTeamMember(ctx, "acme", "app-admins", "bob"))
	if got, err := s.RoleOf(ctx, "bob", "acme/app"); err != nil || got != accounts.RoleRead {
		t.Fatalf("RoleOf(bob, acme/app) after leaving app-admins = %q, %v; want read", got, err)
	}
}
