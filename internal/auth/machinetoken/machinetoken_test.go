package machinetoken_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/machinetoken"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/auth/token"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
)

func repo(name string, actions ...string) scope.Access {
	return scope.Access{Type: scope.TypeRepository, Name: name, Actions: actions}
}

// TestMachineTokenIntersection: a machine token grants what was asked AND what the
// creator may do now, verified by the registry's verifier; a creator who lost push gets
// pull only, one who never had access to a repository gets nothing for it, a disabled
// or deleted one gets no token; each token is audited, never its text.
func TestMachineTokenIntersection(t *testing.T) {
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
	alice, err := store.CreateUser(ctx, accounts.User{Name: "alice", PasswordHash: "x"})
	must(err)
	bob, err := store.CreateUser(ctx, accounts.User{Name: "bob", PasswordHash: "x"})
	must(err)
	_, err = store.CreateOrg(ctx, "acme", "alice")
	must(err)
	must(store.CreateTeam(ctx, accounts.Team{Org: "acme", Name: "devs"}))
	must(store.AddTeamMember(ctx, "acme", "devs", "bob"))
	must(store.SetTeamGrant(ctx, accounts.TeamGrant{Org: "acme", Team: "devs", Repository: "acme/api", Role: accounts.RoleWrite}))
	must(store.SetTeamGrant(ctx, accounts.TeamGrant{Org: "acme", Team: "devs", Repository: "acme/web", Role: accounts.RoleRead}))

	keys, err := token.LoadOrCreateKeySet(t.TempDir())
	must(err)
	m := &machinetoken.Minter{Keys: keys, Issuer: "hubctl", Service: "hub", Store: store, Policy: &authz.Policy{Store: store}}
	ver := &token.Verifier{Keys: keys, Issuer: "hubctl", Audience: "hub"}
	ask := []scope.Access{repo("acme/api", scope.Pull, scope.Push), repo("acme/web", scope.Pull, scope.Push),
		repo("alice/secret", scope.Pull, scope.Push)}

	tok, err := m.Mint(ctx, machinetoken.Request{Creator: bob.ID, Subject: "workflow-run:7", Access: ask, TTL: 20 * time.Minute,
		Purpose: "job 3 of acme/release"})
	must(err)
	c, err := ver.Verify(tok.Raw)
	must(err)
	if c.Subject != "workflow-run:7" || c.UserID != 0 || c.ExpiresAt.Sub(time.Now()) > 20*time.Minute ||
		c.ExpiresAt.Sub(time.Now()) < 19*time.Minute || !c.ExpiresAt.Equal(tok.ExpiresAt) || c.ID != tok.ID {
		t.Fatalf("claims %+v, token %v", c, tok)
	}
	for _, tc := range []struct {
		repo, action string
		want         bool
	}{
		{"acme/api", scope.Pull, true}, {"acme/api", scope.Push, true},
		{"acme/web", scope.Pull, true}, {"acme/web", scope.Push, false},
		{"alice/secret", scope.Pull, false}, {"alice/secret", scope.Push, false},
		{"acme/other", scope.Pull, false},
	} {
		if got := c.Allows(scope.TypeRepository, tc.repo, tc.action); got != tc.want {
			t.Errorf("%s %s: %v, want %v", tc.repo, tc.action, got, tc.want)
		}
	}
	if fmt.Sprintf("%v %+v %#v", tok, tok, tok) != fmt.Sprintf("%v %v %v", tok, tok, tok) || strings.Contains(fmt.Sprint(tok), tok.Raw) {
		t.Errorf("a formatted token shows its text")
	}

	// Bob loses push on acme/api: the next token pulls only.
	must(store.SetTeamGrant(ctx, accounts.TeamGrant{Org: "acme", Team: "devs", Repository: "acme/api", Role: accounts.RoleRead}))
	tok2, err := m.Mint(ctx, machinetoken.Request{Creator: bob.ID, Subject: "workflow-run:8", Access: ask})
	must(err)
	c, err = ver.Verify(tok2.Raw)
	must(err)
	if !c.Allows(scope.TypeRepository, "acme/api", scope.Pull) || c.Allows(scope.TypeRepository, "acme/api", scope.Push) {
		t.Fatalf("after losing push: %+v", c.Access)
	}
	if d := time.Until(c.ExpiresAt); d > machinetoken.DefaultTTL || d < machinetoken.DefaultTTL-time.Minute {
		t.Fatalf("default lifetime: expires in %v", d)
	}

	// Nothing of the request is granted: no token.
	if _, err := m.Mint(ctx, machinetoken.Request{Creator: bob.ID, Subject: "webhook:h1", Access: []scope.Access{repo("alice/secret", scope.Pull)}}); !errors.Is(err, machinetoken.ErrRefused) {
		t.Fatalf("a repository never granted: %v", err)
	}
	// Disabled, then deleted.
	alice.Disabled = true
	must(store.UpdateUser(ctx, alice))
	if _, err := m.Mint(ctx, machinetoken.Request{Creator: alice.ID, Subject: "webhook:h1", Access: []scope.Access{repo("alice/app", scope.Pull)}}); !errors.Is(err, machinetoken.ErrRefused) {
		t.Fatalf("disabled creator: %v", err)
	}
	_, err = store.DeleteUser(ctx, "bob", true)
	must(err)
	if _, err := m.Mint(ctx, machinetoken.Request{Creator: bob.ID, Subject: "workflow-run:9", Access: ask}); !errors.Is(err, machinetoken.ErrRefused) {
		t.Fatalf("deleted creator: %v", err)
	}

	entries, err := store.ListAudit(ctx, accounts.AuditFilter{Action: machinetoken.AuditAction})
	must(err)
	if len(entries) != 2 {
		t.Fatalf("audit: %+v", entries)
	}
	e := entries[1] // oldest last
	if e.Actor != "workflow-run:7" || e.Target != "repository:acme/api:pull,push repository:acme/web:pull" ||
		!strings.Contains(e.Detail, "bob") || !strings.Contains(e.Detail, tok.ID) || !strings.Contains(e.Detail, "job 3 of acme/release") {
		t.Fatalf("audit entry %+v", e)
	}
	for _, e := range entries {
		if strings.Contains(e.Detail+e.Target+e.Actor, tok.Raw) || strings.Contains(e.Detail+e.Target+e.Actor, tok2.Raw) {
			t.Fatalf("a token is in the audit: %+v", e)
		}
	}
}

// TestMachineTokenBadRequests: what an attacker or a bug might ask is refused before
// any token exists.
func TestMachineTokenBadRequests(t *testing.T) {
	ctx := context.Background()
	store, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	admin, err := store.CreateUser(ctx, accounts.User{Name: "root", PasswordHash: "x", Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := token.LoadOrCreateKeySet(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := &machinetoken.Minter{Keys: keys, Issuer: "hubctl", Service: "hub", Store: store, Policy: &authz.Policy{Store: store}}
	pull := []scope.Access{repo("acme/app", scope.Pull)}
	for name, r := range map[string]machinetoken.Request{
		"subject naming an account": {Subject: "root", Access: pull},
		"empty subject":             {Subject: "", Access: pull},
		"subject with spaces":       {Subject: "webhook:a b", Access: pull},
		"subject too long":          {Subject: "webhook:" + strings.Repeat("a", 130), Access: pull},
		"pattern with delete":       {Subject: "webhook:x", Access: []scope.Access{repo("acme/*", scope.Delete)}},
		"star":                      {Subject: "webhook:x", Access: []scope.Access{repo("*", scope.Pull)}},
		"bad name":                  {Subject: "webhook:x", Access: []scope.Access{repo("Acme/App", scope.Pull)}},
		"no actions":                {Subject: "webhook:x", Access: []scope.Access{repo("acme/app")}},
		"unknown type":              {Subject: "webhook:x", Access: []scope.Access{{Type: "hub", Name: "audit", Actions: []string{"read"}}}},
		"nothing asked":             {Subject: "webhook:x"},
		"lifetime over the cap":     {Subject: "webhook:x", Access: pull, TTL: 2 * time.Hour},
		"lifetime under a second":   {Subject: "webhook:x", Access: pull, TTL: time.Millisecond},
	} {
		r.Creator = admin.ID
		if tok, err := m.Mint(ctx, r); err == nil || tok.Raw != "" {
			t.Errorf("%s: minted", name)
		}
	}
	if entries, _ := store.ListAudit(ctx, accounts.AuditFilter{Action: machinetoken.AuditAction}); len(entries) != 0 {
		t.Fatalf("refusals audited as tokens: %+v", entries)
	}

	// A job's token may ask for nothing: it carries its creator for the run's job
	// endpoints and grants nothing of the registry; it is audited like any other.
	tok, err := m.Mint(ctx, machinetoken.Request{Creator: admin.ID, Subject: machinetoken.JobSubjectPrefix + "7"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := (&token.Verifier{Keys: keys, Issuer: "hubctl", Audience: "hub"}).Verify(tok.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok.Access) != 0 || len(c.Access) != 0 || c.Hub != (token.Hub{Creator: admin.ID}) || c.Allows(scope.TypeRepository, "acme/app", scope.Pull) {
		t.Fatalf("a job token asking nothing: access %v, claims %+v", tok.Access, c)
	}
	if entries, _ := store.ListAudit(ctx, accounts.AuditFilter{Action: machinetoken.AuditAction}); len(entries) != 1 || entries[0].Actor != "workflow-run:7" {
		t.Fatalf("audit %+v", entries)
	}
	// ...but not for a disabled creator, and a job asking for something its creator
	// may not do is still refused rather than given an empty token.
	bob, err := store.CreateUser(ctx, accounts.User{Name: "bob", PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Mint(ctx, machinetoken.Request{Creator: bob.ID, Subject: "workflow-run:8", Access: pull}); !errors.Is(err, machinetoken.ErrRefused) {
		t.Fatalf("a job asking for what its creator may not do: %v", err)
	}
	bob.Disabled = true
	if err := store.UpdateUser(ctx, bob); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Mint(ctx, machinetoken.Request{Creator: bob.ID, Subject: "workflow-run:9"}); !errors.Is(err, machinetoken.ErrRefused) {
		t.Fatalf("a disabled creator's job token: %v", err)
	}
}
