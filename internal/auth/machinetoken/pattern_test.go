package machinetoken_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/machinetoken"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/auth/token"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
)

// TestMachineTokenPatterns: a pattern (NAMESPACE/*) is granted only when the creator's
// rights cover every repository below it now — their own namespace, an organisation
// they own or hold an organisation-wide team grant on, or site admin — and then only
// pull and push. A grant on some repositories of the namespace, public repositories,
// another namespace, `*` alone, `**` and other globs get nothing or are refused; asking
// delete or "*" on a pattern is refused; a disabled creator gets no token.
func TestMachineTokenPatterns(t *testing.T) {
	ctx := context.Background()
	store, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "db"))
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
	alice, err := store.CreateUser(ctx, accounts.User{Name: "alice", PasswordHash: "x"}) // owns acme
	must(err)
	bob, err := store.CreateUser(ctx, accounts.User{Name: "bob", PasswordHash: "x"}) // write on acme/api only
	must(err)
	carol, err := store.CreateUser(ctx, accounts.User{Name: "carol", PasswordHash: "x"}) // write on all of acme
	must(err)
	dave, err := store.CreateUser(ctx, accounts.User{Name: "dave", PasswordHash: "x"}) // read on all of acme
	must(err)
	root, err := store.CreateUser(ctx, accounts.User{Name: "root", PasswordHash: "x", Admin: true})
	must(err)
	_, err = store.CreateOrg(ctx, "acme", "alice")
	must(err)
	must(store.CreateTeam(ctx, accounts.Team{Org: "acme", Name: "devs"}))
	must(store.AddTeamMember(ctx, "acme", "devs", "bob"))
	must(store.SetTeamGrant(ctx, accounts.TeamGrant{Org: "acme", Team: "devs", Repository: "acme/api", Role: accounts.RoleWrite}))
	must(store.CreateTeam(ctx, accounts.Team{Org: "acme", Name: "all"}))
	must(store.AddTeamMember(ctx, "acme", "all", "carol"))
	must(store.SetTeamGrant(ctx, accounts.TeamGrant{Org: "acme", Team: "all", Repository: "", Role: accounts.RoleWrite}))
	must(store.CreateTeam(ctx, accounts.Team{Org: "acme", Name: "readers"}))
	must(store.AddTeamMember(ctx, "acme", "readers", "dave"))
	must(store.SetTeamGrant(ctx, accounts.TeamGrant{Org: "acme", Team: "readers", Repository: "", Role: accounts.RoleRead}))

	keys, err := token.LoadOrCreateKeySet(t.TempDir())
	must(err)
	m := &machinetoken.Minter{Keys: keys, Issuer: "hubctl", Service: "hub", Store: store, Policy: &authz.Policy{Store: store}}
	ver := &token.Verifier{Keys: keys, Issuer: "hubctl", Audience: "hub"}
	pp := []string{scope.Pull, scope.Push}

	granted := func(creator int64, name string, actions ...string) ([]string, error) {
		t.Helper()
		tok, err := m.Mint(ctx, machinetoken.Request{Creator: creator, Subject: "workflow-run:1",
			Access: []scope.Access{repo(name, actions...)}})
		if err != nil {
			return nil, err
		}
		c, err := ver.Verify(tok.Raw)
		must(err)
		for _, a := range c.Access {
			if a.Name == name {
				return a.Actions, nil
			}
		}
		t.Fatalf("token for %s lacks it: %+v", name, c.Access)
		return nil, nil
	}
	for _, tc := range []struct {
		who     accounts.User
		pattern string
		want    []string // nil: refused (no token)
	}{
		{alice, "acme/*", pp},                  // owner of the organisation
		{alice, "alice/*", pp},                 // her own namespace
		{alice, "alice/tools/*", pp},           // deeper prefixes of it
		{carol, "acme/*", pp},                  // organisation-wide write grant
		{carol, "acme/sub/*", pp},              // covers deeper prefixes too
		{dave, "acme/*", []string{scope.Pull}}, // organisation-wide read: pull only
		{root, "acme/*", pp},                   // site admin
		{bob, "acme/*", nil},                   // a grant on acme/api does not cover acme/*
		{bob, "acme/api/*", nil},               // nor what lies below acme/api
		{carol, "alice/*", nil},                // another namespace
		{carol, "acmecorp/*", nil},             // a namespace sharing the first letters
		{alice, "bob/*", nil},                  // an organisation owner is no one else's admin
	} {
		got, err := granted(tc.who.ID, tc.pattern, scope.Pull, scope.Push)
		switch {
		case tc.want == nil && !errors.Is(err, machinetoken.ErrRefused):
			t.Errorf("%s %s: granted %v (%v), want refused", tc.who.Name, tc.pattern, got, err)
		case tc.want != nil && (err != nil || !slices.Equal(got, tc.want)):
			t.Errorf("%s %s: granted %v (%v), want %v", tc.who.Name, tc.pattern, got, err, tc.want)
		}
	}

	// Refused outright, whoever asks (a site admin included): not a pattern the
	// registry matches, or more than pull and push.
	for _, bad := range []scope.Access{
		repo("*", pp...), repo("acme/**", pp...), repo("acme/**/*", pp...), repo("*/*", pp...),
		repo("acme/../*", pp...), repo("/*", pp...), repo("acme/a*", pp...), repo("acme*", pp...),
		repo("acme/*", scope.Delete), repo("acme/*", scope.Pull, scope.Delete), repo("acme/*", scope.All),
		{Type: scope.TypeRepository, Class: "plugin", Name: "acme/*", Actions: pp},
	} {
		_, err := m.Mint(ctx, machinetoken.Request{Creator: root.ID, Subject: "workflow-run:1", Access: []scope.Access{bad}})
		if err == nil || errors.Is(err, machinetoken.ErrRefused) {
			t.Errorf("%s: %v, want a refusal of the request", bad.Scope().String(), err)
		}
	}

	// A pattern beside names: each decided on its own; the audit names the pattern.
	tok, err := m.Mint(ctx, machinetoken.Request{Creator: bob.ID, Subject: "workflow-run:2",
		Access: []scope.Access{repo("acme/api", pp...), repo("acme/*", pp...)}})
	must(err)
	if len(tok.Access) != 1 || tok.Access[0].Name != "acme/api" {
		t.Fatalf("bob's token %+v", tok.Access)
	}
	tok, err = m.Mint(ctx, machinetoken.Request{Creator: carol.ID, Subject: "workflow-run:3", Access: []scope.Access{repo("acme/*", pp...)}})
	must(err)
	audit, err := store.ListAudit(ctx, accounts.AuditFilter{Action: machinetoken.AuditAction})
	must(err)
	found := false
	for _, e := range audit {
		if e.Actor == "workflow-run:3" && strings.Contains(e.Target, "repository:acme/*:pull,push") && strings.Contains(e.Detail, tok.ID) {
			found = true
		}
	}
	if !found {
		t.Errorf("no audit entry naming the pattern: %+v", audit)
	}

	// Rights are read at mint time: carol leaves the team, her next token has no pattern.
	must(store.RemoveTeamMember(ctx, "acme", "all", "carol"))
	if got, err := granted(carol.ID, "acme/*", pp...); !errors.Is(err, machinetoken.ErrRefused) {
		t.Errorf("carol after leaving the team: %v %v", got, err)
	}
	alice.Disabled = true
	must(store.UpdateUser(ctx, alice))
	if got, err := granted(alice.ID, "alice/*", pp...); !errors.Is(err, machinetoken.ErrRefused) {
		t.Errorf("disabled alice: %v %v", got, err)
	}
}
