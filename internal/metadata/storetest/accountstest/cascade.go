package accountstest

import (
	"testing"

	"github.com/hubctl/hubctl/internal/accounts"
)

func testDeleteUserCascades(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	m := metaStore(t, s)
	newOrg(t, s, "acme", "alice")
	newUser(t, s, "bob")
	must(t, s.CreateTeam(ctx, accounts.Team{Org: "acme", Name: "devs"}))
	must(t, s.SetTeamGrant(ctx, accounts.TeamGrant{Org: "acme", Team: "devs", Role: accounts.RoleWrite}))
	must(t, s.AddTeamMember(ctx, "acme", "devs", "bob"))
	must(t, s.AddTeamMember(ctx, "acme", "owners", "bob"))
	_, err := s.CreateToken(ctx, accounts.AccessToken{User: "bob", Name: "ci", Hash: hashOf("hub_bob")})
	must(t, err)
	_, err = s.CreateToken(ctx, accounts.AccessToken{User: "alice", Name: "ci", Hash: hashOf("hub_alice")})
	must(t, err)
	linkBlob(t, m, "bob/tools")
	must(t, s.Audit(ctx, accounts.AuditEntry{Actor: "bob", Action: "push", Target: "bob/tools"}))

	must(t, s.DeleteUser(ctx, "bob"))
	_, err = s.GetUser(ctx, "bob")
	wantErr(t, "GetUser(deleted)", err, accounts.ErrNotFound)
	_, err = s.TokenByHash(ctx, hashOf("hub_bob"))
	wantErr(t, "TokenByHash(deleted user's token)", err, accounts.ErrNotFound)
	_, err = s.GetNamespace(ctx, "bob")
	wantErr(t, "GetNamespace(deleted user)", err, accounts.ErrNotFound)
	for _, team := range []string{"devs", "owners"} {
		members, err := s.ListTeamMembers(ctx, "acme", team)
		must(t, err)
		for _, u := range members {
			if u == "bob" {
				t.Fatalf("deleted user still in %s", team)
			}
		}
	}
	if role, err := s.RoleOf(ctx, "bob", "acme/app"); err != nil || role != accounts.RoleNone {
		t.Fatalf("RoleOf(deleted user) = %q, %v", role, err)
	}
	// Others keep theirs; the repositories and the audit trail stay.
	if _, err := s.TokenByHash(ctx, hashOf("hub_alice")); err != nil {
		t.Fatalf("alice's token after deleting bob: %v", err)
	}
	if ok, err := m.RepositoryExists(ctx, "bob/tools"); err != nil || !ok {
		t.Fatalf("bob/tools after deleting bob: exists %v, %v; want kept", ok, err)
	}
	if e, err := s.ListAudit(ctx, accounts.AuditFilter{Actor: "bob"}); err != nil || len(e) != 1 {
		t.Fatalf("bob's audit entries after deleting bob = %+v, %v; want kept", e, err)
	}
	wantErr(t, "DeleteUser twice", s.DeleteUser(ctx, "bob"), accounts.ErrNotFound)

	// The name is free again, and the new account inherits no membership or token.
	newUser(t, s, "bob")
	if toks, err := s.ListTokens(ctx, "bob"); err != nil || len(toks) != 0 {
		t.Fatalf("tokens of a re-created user = %+v, %v", toks, err)
	}
	if role, err := s.RoleOf(ctx, "bob", "acme/app"); err != nil || role != accounts.RoleNone {
		t.Fatalf("RoleOf(re-created user) = %q, %v", role, err)
	}
}

func testDeleteOrgCascades(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	m := metaStore(t, s)
	newOrg(t, s, "acme", "alice")
	newOrg(t, s, "other", "alice")
	must(t, s.CreateTeam(ctx, accounts.Team{Org: "acme", Name: "devs"}))
	must(t, s.AddTeamMember(ctx, "acme", "devs", "alice"))
	_, err := s.CreateUser(ctx, accounts.User{Name: "acme-ci", Robot: true, Owner: "acme"})
	must(t, err)
	_, err = s.CreateToken(ctx, accounts.AccessToken{User: "acme-ci", Name: "push", Hash: hashOf("hub_robot")})
	must(t, err)
	linkBlob(t, m, "acme/app")

	must(t, s.DeleteOrg(ctx, "acme"))
	_, err = s.GetNamespace(ctx, "acme")
	wantErr(t, "GetNamespace(deleted org)", err, accounts.ErrNotFound)
	_, err = s.ListTeams(ctx, "acme")
	wantErr(t, "ListTeams(deleted org)", err, accounts.ErrNotFound)
	_, err = s.GetUser(ctx, "acme-ci")
	wantErr(t, "GetUser(robot of a deleted org)", err, accounts.ErrNotFound)
	_, err = s.TokenByHash(ctx, hashOf("hub_robot"))
	wantErr(t, "TokenByHash(robot of a deleted org)", err, accounts.ErrNotFound)
	if role, err := s.RoleOf(ctx, "alice", "acme/app"); err != nil || role != accounts.RoleNone {
		t.Fatalf("RoleOf(owner of a deleted org) = %q, %v", role, err)
	}
	if role, err := s.RoleOf(ctx, "alice", "other/app"); err != nil || role != accounts.RoleAdmin {
		t.Fatalf("RoleOf(alice, other/app) after deleting acme = %q, %v", role, err)
	}
	if ok, err := m.RepositoryExists(ctx, "acme/app"); err != nil || !ok {
		t.Fatalf("acme/app after deleting acme: exists %v, %v; want kept", ok, err)
	}
	// The name can become an organisation again, starting empty.
	newOrg(t, s, "acme", "alice")
	teams, err := s.ListTeams(ctx, "acme")
	must(t, err)
	if len(teams) != 1 {
		t.Fatalf("teams of a re-created org = %+v, want just owners", teams)
	}
}
