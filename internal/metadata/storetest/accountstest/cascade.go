package accountstest

import (
	"errors"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/metadata"
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
	putManifest(t, m, "bob/web")
	linkBlob(t, m, "bobby/app") // a neighbouring name is not bob's
	must(t, s.Audit(ctx, accounts.AuditEntry{Actor: "bob", Action: "push", Target: "bob/tools"}))

	// A namespace holding repositories is not deleted by accident; nothing changes.
	_, err = s.DeleteUser(ctx, "bob", false)
	wantErr(t, "DeleteUser(namespace with repositories)", err, accounts.ErrNotEmpty)
	if !strings.Contains(err.Error(), "2 repositories") {
		t.Errorf("DeleteUser refusal %q does not say how many repositories", err)
	}
	if _, err := s.GetUser(ctx, "bob"); err != nil {
		t.Fatalf("refused DeleteUser deleted bob: %v", err)
	}
	purged, err := s.DeleteUser(ctx, "bob", true)
	must(t, err)
	if purged != 2 {
		t.Errorf("DeleteUser purged %d repositories, want 2", purged)
	}
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
	// Others keep theirs; bob's repositories went with him, the audit trail stays.
	if _, err := s.TokenByHash(ctx, hashOf("hub_alice")); err != nil {
		t.Fatalf("alice's token after deleting bob: %v", err)
	}
	for repo, want := range map[string]bool{"bob/tools": false, "bob/web": false, "bobby/app": true} {
		if ok, err := m.RepositoryExists(ctx, repo); err != nil || ok != want {
			t.Fatalf("%s after deleting bob with purge: exists %v, %v; want %v", repo, ok, err, want)
		}
	}
	if _, err := m.ResolveTag(ctx, "bob/web", "v1"); !errors.Is(err, metadata.ErrTagNotFound) {
		t.Fatalf("tag of a purged repository: %v", err)
	}
	if e, err := s.ListAudit(ctx, accounts.AuditFilter{Actor: "bob"}); err != nil || len(e) != 1 {
		t.Fatalf("bob's audit entries after deleting bob = %+v, %v; want kept", e, err)
	}
	_, err = s.DeleteUser(ctx, "bob", false)
	wantErr(t, "DeleteUser twice", err, accounts.ErrNotFound)

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

	_, err = s.DeleteOrg(ctx, "acme", false)
	wantErr(t, "DeleteOrg(namespace with repositories)", err, accounts.ErrNotEmpty)
	if _, err := s.GetUser(ctx, "acme-ci"); err != nil {
		t.Fatalf("refused DeleteOrg deleted its robot: %v", err)
	}
	purged, err := s.DeleteOrg(ctx, "acme", true)
	must(t, err)
	if purged != 1 {
		t.Errorf("DeleteOrg purged %d repositories, want 1", purged)
	}
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
	if ok, err := m.RepositoryExists(ctx, "acme/app"); err != nil || ok {
		t.Fatalf("acme/app after deleting acme with purge: exists %v, %v; want gone", ok, err)
	}
	// The name can become an organisation again, starting empty.
	newOrg(t, s, "acme", "alice")
	teams, err := s.ListTeams(ctx, "acme")
	must(t, err)
	if len(teams) != 1 {
		t.Fatalf("teams of a re-created org = %+v, want just owners", teams)
	}
}

// testNoTakeover: a name under which repositories are filed — left by a deleted account
// or pushed where there was none — cannot become someone's namespace, so nobody
// inherits repositories by registering a name.
func testNoTakeover(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	m := metaStore(t, s)
	newUser(t, s, "alice")
	linkBlob(t, m, "ghost/app")
	putManifest(t, m, "ghost")
	_, err := s.CreateOrg(ctx, "ghost", "alice")
	wantErr(t, "CreateOrg over leftover repositories", err, accounts.ErrExists)
	if !strings.Contains(err.Error(), "2 repositories") {
		t.Errorf("CreateOrg refusal %q does not say how many repositories", err)
	}
	_, err = s.CreateUser(ctx, accounts.User{Name: "ghost"})
	wantErr(t, "CreateUser over leftover repositories", err, accounts.ErrExists)
	// A robot has no namespace: its name may sit over repositories it never gets.
	newOrg(t, s, "acme", "alice")
	_, err = s.CreateUser(ctx, accounts.User{Name: "ghost", Robot: true, Owner: "acme"})
	must(t, err)
	if _, err := s.DeleteUser(ctx, "ghost", false); err != nil {
		t.Fatalf("DeleteUser(robot over repositories): %v", err)
	}
	if ok, err := m.RepositoryExists(ctx, "ghost/app"); err != nil || !ok {
		t.Fatalf("deleting a robot touched ghost/app: exists %v, %v", ok, err)
	}
	// Once the repositories are gone, the name is free.
	for _, repo := range []string{"ghost", "ghost/app"} {
		must(t, m.DeleteRepository(ctx, repo))
	}
	newOrg(t, s, "ghost", "alice")
}
