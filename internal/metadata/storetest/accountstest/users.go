package accountstest

import (
	"testing"

	"github.com/hubctl/hubctl/internal/accounts"
)

func testUsers(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	_, err := s.GetUser(ctx, "alice")
	wantErr(t, "GetUser(missing)", err, accounts.ErrNotFound)
	users, err := s.ListUsers(ctx)
	must(t, err)
	if users == nil || len(users) != 0 {
		t.Fatalf("ListUsers on an empty store = %#v, want an empty slice", users)
	}

	alice := newUser(t, s, "alice")
	if alice.ID == 0 || !alice.CreatedAt.Equal(testTime) {
		t.Fatalf("CreateUser = %+v, want an ID and CreatedAt %s", alice, testTime)
	}
	got, err := s.GetUser(ctx, "alice")
	must(t, err)
	if got != alice {
		t.Fatalf("GetUser = %+v, want %+v", got, alice)
	}
	_, err = s.CreateUser(ctx, accounts.User{Name: "alice"})
	wantErr(t, "CreateUser(alice) twice", err, accounts.ErrExists)

	// Every person gets a private personal namespace.
	ns, err := s.GetNamespace(ctx, "alice")
	must(t, err)
	if ns.Name != "alice" || ns.Org || ns.DefaultVisibility != accounts.Private {
		t.Fatalf("personal namespace = %+v, want alice, not an org, private", ns)
	}

	// A zero CreatedAt means now.
	bob, err := s.CreateUser(ctx, accounts.User{Name: "bob"})
	must(t, err)
	if bob.CreatedAt.IsZero() {
		t.Fatal("CreateUser with a zero CreatedAt left it zero")
	}
	newUser(t, s, "0carol")
	users, err = s.ListUsers(ctx)
	must(t, err)
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	equalStrings(t, "ListUsers", names, []string{"0carol", "alice", "bob"})

	// UpdateUser changes what it says and nothing else.
	upd := alice
	upd.Email, upd.PasswordHash, upd.Admin, upd.Disabled = "a@new.example", "$argon2id$new", true, true
	upd.CreatedAt = testTime.AddDate(1, 0, 0)
	upd.ID = 999
	must(t, s.UpdateUser(ctx, upd))
	got, err = s.GetUser(ctx, "alice")
	must(t, err)
	want := alice
	want.Email, want.PasswordHash, want.Admin, want.Disabled = upd.Email, upd.PasswordHash, true, true
	want.SessionEpoch++ // a new password (and disabling) ends every session
	if got != want {
		t.Fatalf("after UpdateUser = %+v, want %+v", got, want)
	}
	upd.Admin, upd.Disabled = false, false
	must(t, s.UpdateUser(ctx, upd))
	if got, err = s.GetUser(ctx, "alice"); err != nil || got.Admin || got.Disabled {
		t.Fatalf("flags not cleared by UpdateUser: %+v, %v", got, err)
	}
	wantErr(t, "UpdateUser(missing)", s.UpdateUser(ctx, accounts.User{Name: "nobody"}), accounts.ErrNotFound)
	_, err = s.DeleteUser(ctx, "nobody", false)
	wantErr(t, "DeleteUser(missing)", err, accounts.ErrNotFound)
}

func testNames(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	for _, name := range []string{"a", "0", "a.b", "a_b", "a__b", "a-b", "a--b", "web-1.prod_x"} {
		if _, err := s.CreateUser(ctx, accounts.User{Name: name}); err != nil {
			t.Errorf("CreateUser(%q) = %v, want it accepted", name, err)
		}
		if err := accounts.CheckName(name); err != nil {
			t.Errorf("CheckName(%q) = %v", name, err)
		}
	}
	for _, name := range []string{"", "Alice", "a b", "a/b", "-a", "a-", ".a", "a.", "a..b", "a___b", "a._b",
		"é", "a\x00", "a:b", "../x"} {
		_, err := s.CreateUser(ctx, accounts.User{Name: name})
		wantErr(t, "CreateUser("+name+")", err, accounts.ErrInvalid)
		_, err = s.CreateOrg(ctx, name, "a")
		wantErr(t, "CreateOrg("+name+")", err, accounts.ErrInvalid)
	}
	if _, err := s.GetNamespace(ctx, "Alice"); err == nil {
		t.Fatal("a refused name got a namespace")
	}
}

func testRobots(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	newUser(t, s, "alice")
	_, err := s.CreateUser(ctx, accounts.User{Name: "ci", Robot: true, Owner: "acme"})
	wantErr(t, "robot of a missing org", err, accounts.ErrNotFound)
	_, err = s.CreateUser(ctx, accounts.User{Name: "ci", Robot: true, Owner: "alice"})
	wantErr(t, "robot of a personal namespace", err, accounts.ErrNotFound)
	_, err = s.CreateOrg(ctx, "acme", "alice")
	must(t, err)
	_, err = s.CreateUser(ctx, accounts.User{Name: "ci", Robot: true, Owner: "acme", PasswordHash: "$argon2id$x"})
	wantErr(t, "robot with a password", err, accounts.ErrInvalid)
	_, err = s.CreateUser(ctx, accounts.User{Name: "ci", Robot: true})
	wantErr(t, "robot without an owner", err, accounts.ErrInvalid)
	_, err = s.CreateUser(ctx, accounts.User{Name: "ci", Owner: "acme"})
	wantErr(t, "person with an owner", err, accounts.ErrInvalid)

	ci, err := s.CreateUser(ctx, accounts.User{Name: "ci", Robot: true, Owner: "acme"})
	must(t, err)
	got, err := s.GetUser(ctx, "ci")
	must(t, err)
	if got != ci || !got.Robot || got.Owner != "acme" {
		t.Fatalf("GetUser(robot) = %+v, want %+v", got, ci)
	}
	// A robot acts for its organisation only: no namespace of its own.
	_, err = s.GetNamespace(ctx, "ci")
	wantErr(t, "GetNamespace(robot)", err, accounts.ErrNotFound)
	// ... but its name is still taken.
	_, err = s.CreateOrg(ctx, "ci", "alice")
	wantErr(t, "CreateOrg with a robot's name", err, accounts.ErrExists)
	_, err = s.CreateUser(ctx, accounts.User{Name: "ci"})
	wantErr(t, "CreateUser with a robot's name", err, accounts.ErrExists)

	wantErr(t, "UpdateUser(robot with a password)",
		s.UpdateUser(ctx, accounts.User{Name: "ci", PasswordHash: "$argon2id$x"}), accounts.ErrInvalid)
	_, err = s.CreateOrg(ctx, "bots", "ci")
	wantErr(t, "CreateOrg owned by a robot", err, accounts.ErrInvalid)

	// Robots join their own organisation's teams only.
	must(t, s.AddTeamMember(ctx, "acme", "owners", "ci"))
	_, err = s.CreateOrg(ctx, "other", "alice")
	must(t, err)
	wantErr(t, "robot joining another org", s.AddTeamMember(ctx, "other", "owners", "ci"), accounts.ErrInvalid)
}

func testOrgs(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	_, err := s.CreateOrg(ctx, "acme", "alice")
	wantErr(t, "CreateOrg with a missing owner", err, accounts.ErrNotFound)
	// Nothing of the failed organisation was left behind.
	_, err = s.GetNamespace(ctx, "acme")
	wantErr(t, "GetNamespace after a failed CreateOrg", err, accounts.ErrNotFound)

	newUser(t, s, "alice")
	ns, err := s.CreateOrg(ctx, "acme", "alice")
	must(t, err)
	if ns.Name != "acme" || !ns.Org || ns.DefaultVisibility != accounts.Private || ns.CreatedAt.IsZero() {
		t.Fatalf("CreateOrg = %+v, want acme, an org, private, with a creation time", ns)
	}
	got, err := s.GetNamespace(ctx, "acme")
	must(t, err)
	if got != ns {
		t.Fatalf("GetNamespace = %+v, want %+v", got, ns)
	}
	// The owner administers the organisation through the "owners" team.
	teams, err := s.ListTeams(ctx, "acme")
	must(t, err)
	if len(teams) != 1 || teams[0].Name != "owners" || teams[0].Org != "acme" {
		t.Fatalf("teams of a new org = %+v, want just owners", teams)
	}
	members, err := s.ListTeamMembers(ctx, "acme", "owners")
	must(t, err)
	equalStrings(t, "owners", members, []string{"alice"})
	grants, err := s.ListTeamGrants(ctx, "acme", "owners")
	must(t, err)
	if len(grants) != 1 || grants[0] != (accounts.TeamGrant{Org: "acme", Team: "owners", Repository: "", Role: accounts.RoleAdmin}) {
		t.Fatalf("owners grants = %+v, want org-wide admin", grants)
	}
	role, err := s.RoleOf(ctx, "alice", "acme/app")
	must(t, err)
	if role != accounts.RoleAdmin {
		t.Fatalf("RoleOf(owner, acme/app) = %q, want admin", role)
	}

	_, err = s.CreateOrg(ctx, "acme", "alice")
	wantErr(t, "CreateOrg twice", err, accounts.ErrExists)

	list, err := s.ListNamespaces(ctx)
	must(t, err)
	if len(list) != 2 || list[0].Name != "acme" || !list[0].Org || list[1].Name != "alice" || list[1].Org {
		t.Fatalf("ListNamespaces = %+v, want acme (org), alice (personal)", list)
	}

	must(t, s.SetDefaultVisibility(ctx, "acme", accounts.Public))
	if got, err = s.GetNamespace(ctx, "acme"); err != nil || got.DefaultVisibility != accounts.Public {
		t.Fatalf("after SetDefaultVisibility(public) = %+v, %v", got, err)
	}
	must(t, s.SetDefaultVisibility(ctx, "alice", accounts.Public)) // personal namespaces have one too
	wantErr(t, "SetDefaultVisibility(missing)", s.SetDefaultVisibility(ctx, "nope", accounts.Public), accounts.ErrNotFound)
	wantErr(t, "SetDefaultVisibility(bad)", s.SetDefaultVisibility(ctx, "acme", "internal"), accounts.ErrInvalid)
	wantErr(t, "SetDefaultVisibility(empty)", s.SetDefaultVisibility(ctx, "acme", ""), accounts.ErrInvalid)

	_, err = s.DeleteOrg(ctx, "alice", false)
	wantErr(t, "DeleteOrg(personal namespace)", err, accounts.ErrNotFound)
	_, err = s.DeleteOrg(ctx, "nope", false)
	wantErr(t, "DeleteOrg(missing)", err, accounts.ErrNotFound)
	_, err = s.GetNamespace(ctx, "alice")
	must(t, err)
	_, err = s.GetNamespace(ctx, "nope")
	wantErr(t, "GetNamespace(missing)", err, accounts.ErrNotFound)
}

// testSharedNameSpace: a name is a person or an organisation, never both, or the policy
// ("a user owns the namespace of their name") would hand an organisation to a user.
func testSharedNameSpace(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	newUser(t, s, "alice")
	_, err := s.CreateOrg(ctx, "alice", "alice")
	wantErr(t, "CreateOrg with a user's name", err, accounts.ErrExists)
	_, err = s.CreateOrg(ctx, "acme", "alice")
	must(t, err)
	_, err = s.CreateUser(ctx, accounts.User{Name: "acme"})
	wantErr(t, "CreateUser with an org's name", err, accounts.ErrExists)
	if _, err := s.GetUser(ctx, "acme"); err == nil {
		t.Fatal("a refused user was created")
	}
}
