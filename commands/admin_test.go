package commands

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/password"
	"github.com/hubctl/hubctl/internal/hubapi"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/secrets"
	"github.com/hubctl/hubctl/internal/webhook"
)

// hub is the real hub API handler on a real SQLite store behind httptest, with a
// site admin "admin" and a user "bob".
type hub struct {
	t     *testing.T
	store *sqlstore.Store
	host  string // 127.0.0.1:PORT
	keys  *secrets.Keyring
}

func newHub(t *testing.T) *hub {
	t.Helper()
	store, err := sqlstore.OpenSQLite(context.Background(), t.TempDir()+"/db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	key, err := secrets.GenerateKey("test")
	if err != nil {
		t.Fatal(err)
	}
	ring, err := secrets.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	// Test deliveries may reach receivers on 127.0.0.1 (the tests' own).
	deliverer := &webhook.Deliverer{Store: store, Keyring: ring,
		Client: webhook.NewClient(webhook.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})}
	srv := httptest.NewServer(hubapi.New(hubapi.Options{Accounts: store, Events: store, Webhooks: store, Workflows: store, Keyring: ring, Deliverer: deliverer}))
	t.Cleanup(srv.Close)
	h := &hub{t: t, store: store, host: strings.TrimPrefix(srv.URL, "http://"), keys: ring}
	h.user("admin", "admin-password", true)
	h.user("bob", "bob-password", false)
	return h
}

func (h *hub) user(name, pass string, admin bool) {
	h.t.Helper()
	hash, err := password.Hash(pass)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.store.CreateUser(context.Background(), accounts.User{Name: name, PasswordHash: hash, Admin: admin}); err != nil {
		h.t.Fatal(err)
	}
}

// login writes a docker config.json with Basic credentials for the hub, as
// `docker login` does without a credential helper, and returns its directory.
func (h *hub) login(user, pass string) string {
	h.t.Helper()
	dir := h.t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	cfg := `{"auths":{"` + h.host + `":{"auth":"` + auth + `"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		h.t.Fatal(err)
	}
	return dir
}

// hubRun runs hubctl in-process with DOCKER_CONFIG=dockerConfig and
// HUBCTL_REGISTRY=the hub, stdin content and stdin a terminal or not.
func (h *hub) run(dockerConfig, stdin string, tty bool, args ...string) (int, string, string) {
	h.t.Helper()
	ios, in, out, errOut := iostreams.Test()
	in.WriteString(stdin)
	ios.SetTTY(tty, false, false)
	f := NewFactory(ios, BuildInfo{})
	env := map[string]string{"DOCKER_CONFIG": dockerConfig, "HUBCTL_REGISTRY": h.host}
	f.LookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	code := Execute(context.Background(), f, args)
	return code, out.String(), errOut.String()
}

// ok runs a command that must succeed and returns its stdout.
func (h *hub) ok(dockerConfig string, args ...string) string {
	h.t.Helper()
	code, out, errOut := h.run(dockerConfig, "", false, args...)
	if code != 0 {
		h.t.Fatalf("hubctl %s: exit %d, stderr %q", strings.Join(args, " "), code, errOut)
	}
	return out
}

// fails runs a command that must fail with one error line containing want.
func (h *hub) fails(dockerConfig, want string, args ...string) {
	h.t.Helper()
	code, out, errOut := h.run(dockerConfig, "", false, args...)
	if code != 1 || out != "" || !strings.HasPrefix(errOut, "hubctl: ") || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, want) {
		h.t.Fatalf("hubctl %s: exit %d, stdout %q, stderr %q; want one error line with %q", strings.Join(args, " "), code, out, errOut, want)
	}
}

func TestTokenCommands(t *testing.T) {
	h := newHub(t)
	bob := h.login("bob", "bob-password")

	code, out, errOut := h.run(bob, "", false, "token", "create", "ci", "--scope", "repository:bob/app:pull,push", "--scope", "repository:bob/*:pull", "--expires", "30d")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	secret := strings.TrimSuffix(out, "\n")
	if !strings.HasPrefix(secret, "hub_") || strings.Contains(secret, "\n") {
		t.Fatalf("stdout %q, want only the secret", out)
	}
	if !strings.Contains(errOut, "shown only once") || strings.Contains(errOut, secret) {
		t.Errorf("stderr %q", errOut)
	}

	ls := h.ok(bob, "token", "ls")
	if !strings.HasPrefix(ls, "NAME") || !strings.Contains(ls, "ci ") || !strings.Contains(ls, "repository:bob/app:pull,push repository:bob/*:pull") ||
		!strings.Contains(ls, "active") || strings.Contains(ls, "hub_") {
		t.Errorf("token ls:\n%s", ls)
	}
	var toks []hubtypes.Token
	if err := json.Unmarshal([]byte(h.ok(bob, "token", "ls", "-o", "json")), &toks); err != nil || len(toks) != 1 || toks[0].ExpiresAt == "" {
		t.Fatalf("token ls -o json: %v %+v", err, toks)
	}

	// The token signs in (docker-style: as a password), but cannot mint tokens.
	withToken := h.login("bob", secret)
	h.ok(withToken, "token", "ls")
	h.fails(withToken, "create token more: denied: creating an access token needs a password", "token", "create", "more", "--scope", "repository:*:*")

	h.fails(bob, "create token x: invalid request", "token", "create", "x", "--scope", "repository:BOB:pull")
	h.fails(bob, "conflict", "token", "create", "ci", "--scope", "repository:bob/app:pull")
	h.fails(bob, "revoke token nope: you have no active token of that name ('hubctl token ls --registry "+h.host+"' lists them)", "token", "revoke", "nope")

	// Hours as well as days (issue 13).
	var short hubtypes.CreatedToken
	if err := json.Unmarshal([]byte(h.ok(bob, "token", "create", "short", "--scope", "repository:bob/app:pull", "--expires", "12h", "-o", "json")), &short); err != nil {
		t.Fatal(err)
	}
	if at, err := time.Parse(time.RFC3339, short.ExpiresAt); err != nil || time.Until(at) < 11*time.Hour || time.Until(at) > 13*time.Hour {
		t.Errorf("token create --expires 12h: expires_at %q (%v), want about 12 hours from now", short.ExpiresAt, err)
	}
	h.ok(bob, "token", "revoke", "short")

	_, _, errOut = h.run(bob, "", false, "token", "revoke", "ci")
	if errOut != "Token ci revoked\n" {
		t.Errorf("revoke stderr %q", errOut)
	}
	h.fails(withToken, "unauthorized: access token is revoked, expired or its user disabled: run 'hubctl login "+h.host+"'", "token", "ls")
	if !strings.Contains(h.ok(bob, "token", "ls"), "revoked") {
		t.Error("revoked token not listed as revoked")
	}
}

func TestTokenCreateFlags(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	f := NewFactory(ios, BuildInfo{})
	f.LookupEnv = func(k string) (string, bool) { return "", false }
	tests := []struct {
		args    []string
		want    expiry
		wantErr string
	}{
		{[]string{"ci", "--scope", "repository:a/b:pull", "--registry", "h"}, expiry{}, ""},
		{[]string{"ci", "--scope", "repository:a/b:pull", "--registry", "h", "--expires", "90d"}, expiry{days: 90}, ""},
		{[]string{"ci", "--scope", "repository:a/b:pull", "--registry", "h", "--expires", "12h"}, expiry{hours: 12}, ""},
		{[]string{"ci", "--scope", "repository:a/b:pull", "--registry", "h", "--expires", "never"}, expiry{}, ""},
		{[]string{"ci", "--scope", "repository:a/b:pull", "--registry", "h", "--expires", "2w"}, expiry{}, `invalid --expires "2w": want days like 30d, hours like 12h, or never`},
		{[]string{"ci", "--scope", "repository:a/b:pull", "--registry", "h", "--expires", "0h"}, expiry{}, `say never`},
		{[]string{"ci", "--registry", "h"}, expiry{}, "at least one --scope is required"},
		{[]string{"ci", "--scope", "repository:a/b:pull"}, expiry{}, "--registry is required (or set HUBCTL_REGISTRY)"},
		{[]string{"ci", "--scope", "repository:a/b:pull", "--registry", "h", "-o", "yaml"}, expiry{}, `invalid --output "yaml"`},
	}
	for _, tt := range tests {
		var got *TokenCreateOptions
		cmd := NewCmdTokenCreate(f, func(o *TokenCreateOptions) error { got = o; return nil })
		cmd.SetArgs(tt.args)
		cmd.SetOut(ios.Out)
		cmd.SetErr(ios.ErrOut)
		err := cmd.Execute()
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%v: error %v, want %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got == nil || got.Expiry != tt.want || got.Name != "ci" || got.Hub.Registry != "h" || len(got.Scopes) != 1 {
			t.Errorf("%v: err %v, options %+v", tt.args, err, got)
		}
	}
}

func TestTeamGrantArgs(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	f := NewFactory(ios, BuildInfo{})
	f.LookupEnv = func(k string) (string, bool) {
		return map[string]string{"HUBCTL_REGISTRY": "env-host"}[k], k == "HUBCTL_REGISTRY"
	}
	for _, tt := range []struct {
		args     []string
		repo     string
		role     string
		wantFail bool
	}{
		{[]string{"team", "devs", "write"}, "", "write", false},
		{[]string{"team", "devs", "team/app", "admin"}, "team/app", "admin", false},
		{[]string{"team", "devs", "team/app", "none"}, "team/app", "none", false},
		{[]string{"team", "devs", "owner"}, "", "", true},
		{[]string{"team", "devs"}, "", "", true},
	} {
		var got *TeamGrantOptions
		cmd := NewCmdTeamGrant(f, func(o *TeamGrantOptions) error { got = o; return nil })
		cmd.SetArgs(tt.args)
		cmd.SetOut(ios.Out)
		cmd.SetErr(ios.ErrOut)
		err := cmd.Execute()
		if tt.wantFail {
			if err == nil {
				t.Errorf("%v: no error", tt.args)
			}
			continue
		}
		if err != nil || got.Repository != tt.repo || got.Role != tt.role || got.Org != "team" || got.Team != "devs" || got.Hub.Registry != "env-host" {
			t.Errorf("%v: err %v, options %+v", tt.args, err, got)
		}
	}
}

func TestUserCommands(t *testing.T) {
	h := newHub(t)
	admin := h.login("admin", "admin-password")

	code, out, errOut := h.run(admin, "carol-password\n", false, "user", "create", "carol", "--email", "carol@example.com", "--password-stdin")
	if code != 0 || out != "" || errOut != "User carol created\n" {
		t.Fatalf("user create: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	carol := h.login("carol", "carol-password")
	ls := h.ok(admin, "user", "ls")
	if !strings.Contains(ls, "carol  ") || !strings.Contains(ls, "carol@example.com") || strings.Contains(ls, "argon2") {
		t.Errorf("user ls:\n%s", ls)
	}
	var users []hubtypes.User
	if err := json.Unmarshal([]byte(h.ok(admin, "user", "ls", "-o", "json")), &users); err != nil || len(users) != 3 {
		t.Fatalf("user ls -o json: %v %+v", err, users)
	}

	// Prompted passwords on a terminal must match; without a terminal, --password-stdin.
	if code, _, errOut := h.run(admin, "dave-password\ndave-password\n", true, "user", "create", "dave"); code != 0 {
		t.Fatalf("prompted create: %s", errOut)
	}
	if code, _, errOut := h.run(admin, "erin-password\nother-password\n", true, "user", "create", "erin"); code != 1 || !strings.Contains(errOut, "do not match") {
		t.Errorf("mismatched prompt: exit %d, %q", code, errOut)
	}
	if code, _, errOut := h.run(admin, "", false, "user", "create", "erin"); code != 1 || !strings.Contains(errOut, "use --password-stdin") {
		t.Errorf("no terminal: exit %d, %q", code, errOut)
	}
	if _, err := h.store.GetUser(context.Background(), "erin"); err == nil {
		t.Error("a refused user create created erin")
	}
	if code, _, errOut := h.run(carol, "frank-password\n", false, "user", "create", "frank", "--password-stdin"); code != 1 || errOut != "hubctl: create user frank: denied: site administrators only\n" {
		t.Errorf("non-admin create: exit %d, %q", code, errOut)
	}
	code, _, errOut = h.run(admin, "short\n", false, "user", "create", "frank", "--password-stdin")
	if code != 1 || !strings.Contains(errOut, "at least 8 characters") {
		t.Errorf("short password: exit %d, %q", code, errOut)
	}

	// Own password: current then new on stdin; a wrong current one is refused.
	if code, _, errOut := h.run(carol, "wrong-password\nnew-carol-pass\n", false, "user", "passwd", "--password-stdin"); code != 1 || !strings.Contains(errOut, "current password is wrong") {
		t.Errorf("wrong current: exit %d, %q", code, errOut)
	}
	if code, _, errOut := h.run(carol, "new-carol-pass\n", false, "user", "passwd", "--password-stdin"); code != 1 || !strings.Contains(errOut, "2 non-empty lines") {
		t.Errorf("one line: exit %d, %q", code, errOut)
	}
	if code, _, errOut := h.run(carol, "carol-password\nnew-carol-pass\n", false, "user", "passwd", "--password-stdin"); code != 0 || !strings.Contains(errOut, "Password of carol changed") {
		t.Fatalf("passwd: exit %d, %q", code, errOut)
	}
	h.fails(carol, "unauthorized", "token", "ls")
	carol = h.login("carol", "new-carol-pass")
	h.ok(carol, "token", "ls")

	// An admin resets another user's password without the current one.
	if code, _, errOut := h.run(admin, "reset-password\n", false, "user", "passwd", "carol", "--password-stdin"); code != 0 {
		t.Fatalf("admin passwd: %q", errOut)
	}
	h.ok(h.login("carol", "reset-password"), "token", "ls")

	h.fails(admin, "remove user ghost: name unknown", "user", "rm", "ghost")
	h.ok(admin, "user", "rm", "carol")
	if _, err := h.store.GetUser(context.Background(), "carol"); err == nil {
		t.Error("carol still exists")
	}
}

func TestOrgTeamRepoCommands(t *testing.T) {
	h := newHub(t)
	ctx := context.Background()
	admin := h.login("admin", "admin-password")
	bob := h.login("bob", "bob-password")

	var org hubtypes.Org
	if err := json.Unmarshal([]byte(h.ok(bob, "org", "create", "team", "-o", "json")), &org); err != nil || org.Name != "team" || org.DefaultVisibility != "private" {
		t.Fatalf("org create: %v %+v", err, org)
	}
	h.fails(admin, "conflict", "org", "create", "team")
	if ls := h.ok(admin, "org", "ls"); !strings.Contains(ls, "team  ") || !strings.Contains(ls, "private") {
		t.Errorf("org ls:\n%s", ls)
	}
	h.fails(bob, `invalid visibility "open"`, "org", "set-visibility", "team", "open")
	h.ok(bob, "org", "set-visibility", "team", "public")
	if ns, _ := h.store.GetNamespace(ctx, "team"); ns.DefaultVisibility != accounts.Public {
		t.Errorf("default visibility %q", ns.DefaultVisibility)
	}

	h.ok(bob, "team", "create", "team", "devs", "--description", "Developers")
	if ls := h.ok(bob, "team", "ls", "team"); !strings.Contains(ls, "devs") || !strings.Contains(ls, "Developers") || !strings.Contains(ls, "owners") {
		t.Errorf("team ls:\n%s", ls)
	}
	h.user("carol", "carol-password", false)
	carol := h.login("carol", "carol-password")
	h.fails(carol, "denied", "team", "create", "team", "sneaky")
	h.ok(bob, "team", "add-member", "team", "devs", "carol")
	h.fails(bob, "name unknown", "team", "add-member", "team", "devs", "ghost")
	h.ok(bob, "team", "grant", "team", "devs", "team/app", "write")
	if role, _ := h.store.RoleOf(ctx, "carol", "team/app"); role != accounts.RoleWrite {
		t.Errorf("carol's role on team/app %q", role)
	}
	if m := h.ok(bob, "team", "members", "team", "devs"); m != "USER\ncarol\n" {
		t.Errorf("team members:\n%s", m)
	}
	if g := h.ok(bob, "team", "grants", "team", "devs"); !strings.Contains(g, "team/app  write") {
		t.Errorf("team grants:\n%s", g)
	}
	var grants []hubtypes.Grant
	if err := json.Unmarshal([]byte(h.ok(bob, "team", "grants", "team", "devs", "-o", "json")), &grants); err != nil || len(grants) != 1 || grants[0] != (hubtypes.Grant{Repository: "team/app", Role: "write"}) {
		t.Errorf("team grants -o json: %v %+v", err, grants)
	}
	h.fails(carol, "denied", "team", "members", "team", "devs")
	h.fails(bob, `invalid role "owner"`, "team", "grant", "team", "devs", "owner")
	h.fails(bob, "invalid request", "team", "grant", "team", "devs", "other/app", "read")
	h.ok(bob, "team", "grant", "team", "devs", "team/app", "none")
	if role, _ := h.store.RoleOf(ctx, "carol", "team/app"); role != accounts.RoleNone {
		t.Errorf("carol's role after none %q", role)
	}
	h.ok(bob, "team", "rm-member", "team", "devs", "carol")
	h.ok(bob, "team", "rm", "team", "devs")
	if teams, _ := h.store.ListTeams(ctx, "team"); len(teams) != 1 {
		t.Errorf("teams after rm: %+v", teams)
	}

	// Robots: the token goes to stdout, once.
	code, out, errOut := h.run(bob, "", false, "robot", "create", "team", "ci", "--scope", "repository:team/*:pull,push")
	if code != 0 || !strings.HasPrefix(out, "hub_") || !strings.Contains(errOut, "team.ci") {
		t.Fatalf("robot create: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	robot := h.login("team.ci", strings.TrimSpace(out))
	h.fails(robot, "denied", "robot", "create", "team", "ci2", "--scope", "repository:team/*:pull")

	// robot ls, rotate, rm (issue 13).
	if ls := h.ok(bob, "robot", "ls", "team"); !strings.Contains(ls, "team.ci  ci     repository:team/*:pull,push  never") {
		t.Errorf("robot ls:\n%s", ls)
	}
	h.fails(carol, "denied", "robot", "ls", "team")
	code, out, errOut = h.run(bob, "", false, "robot", "rotate", "team", "ci", "--expires", "12h")
	if code != 0 || !strings.HasPrefix(out, "hub_") || !strings.Contains(errOut, "old ones are revoked") {
		t.Fatalf("robot rotate: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	h.fails(robot, "unauthorized", "token", "ls") // the old token
	rotated := h.login("team.ci", strings.TrimSpace(out))
	h.ok(rotated, "token", "ls")
	var robots []hubtypes.RobotAccount
	if err := json.Unmarshal([]byte(h.ok(bob, "robot", "ls", "team", "-o", "json")), &robots); err != nil || len(robots) != 1 ||
		len(robots[0].Tokens) != 2 || !robots[0].Tokens[0].Active || robots[0].Tokens[0].ExpiresAt == "" ||
		robots[0].Tokens[0].Scopes[0] != "repository:team/*:pull,push" || robots[0].Tokens[1].Active {
		t.Errorf("robot ls -o json after rotate: %v %+v", err, robots)
	}
	h.fails(bob, "organisation team has no robot nope", "robot", "rotate", "team", "nope")
	h.ok(h.login("team.ci", strings.TrimSpace(out)), "token", "ls")
	h.ok(bob, "robot", "create", "team", "spare", "--scope", "repository:team/*:pull")
	h.ok(bob, "robot", "rm", "team", "team.spare")
	h.fails(bob, "organisation team has no robot spare", "robot", "rm", "team", "spare")
	if ls := h.ok(bob, "robot", "ls", "team"); strings.Contains(ls, "spare") {
		t.Errorf("robot ls after rm:\n%s", ls)
	}

	// Repositories.
	if err := h.store.EnsureRepository(ctx, "bob/app"); err != nil {
		t.Fatal(err)
	}
	if show := h.ok(bob, "repo", "show", "bob/app"); !strings.Contains(show, "bob/app") || !strings.Contains(show, "private") {
		t.Errorf("repo show:\n%s", show)
	}
	h.fails(carol, "repository bob/app: name unknown", "repo", "show", "bob/app")
	h.ok(bob, "repo", "set-visibility", "bob/app", "public")
	var repo hubtypes.Repository
	if err := json.Unmarshal([]byte(h.ok(carol, "repo", "show", "bob/app", "-o", "json")), &repo); err != nil || repo.Visibility != "public" {
		t.Errorf("repo show -o json: %v %+v", err, repo)
	}
	h.fails(carol, "denied", "repo", "set-visibility", "bob/app", "private")

	// Audit.
	h.fails(bob, "denied", "audit")
	audit := h.ok(admin, "audit", "--action", "visibility.change")
	if !strings.Contains(audit, "bob/app") || !strings.Contains(audit, "127.0.0.1") || strings.Contains(audit, "org.create") {
		t.Errorf("audit:\n%s", audit)
	}
	var page hubtypes.AuditPage
	if err := json.Unmarshal([]byte(h.ok(admin, "audit", "--actor", "bob", "--limit", "2", "-o", "json")), &page); err != nil || len(page.Entries) != 2 || page.Next == 0 {
		t.Errorf("audit -o json: %v %+v", err, page)
	}
	if !strings.Contains(h.ok(admin, "audit", "--action", "token.create"), "team.ci/ci") {
		t.Error("robot token creation not audited")
	}
	// Time bounds: the last hour holds the visibility change, a window in the
	// past holds nothing, and a bad bound is a usage error before any request.
	if !strings.Contains(h.ok(admin, "audit", "--action", "visibility.change", "--since", "1h"), "bob/app") {
		t.Error("audit --since 1h lost the visibility change")
	}
	if old := h.ok(admin, "audit", "--since", "2001-01-01", "--until", "2001-01-02T00:00:00Z"); strings.Contains(old, "bob/app") || strings.Contains(old, "visibility.change") {
		t.Errorf("audit of 2001 shows today's entries:\n%s", old)
	}
	h.fails(admin, `invalid --since "yesterday"`, "audit", "--since", "yesterday")

	h.fails(carol, "denied", "org", "rm", "team")
	h.ok(bob, "org", "rm", "team")
	h.fails(bob, "name unknown", "org", "rm", "team")
}

func TestHubFlagsAndLogin(t *testing.T) {
	h := newHub(t)
	empty := t.TempDir()
	h.fails(empty, "not logged in to "+h.host+": run 'hubctl login "+h.host+"'", "token", "ls")

	ios, _, _, errOut := iostreams.Test()
	f := NewFactory(ios, BuildInfo{})
	f.LookupEnv = func(string) (string, bool) { return "", false }
	if code := Execute(context.Background(), f, []string{"org", "ls"}); code != 1 ||
		errOut.String() != "hubctl: --registry is required (or set HUBCTL_REGISTRY) (see 'hubctl org ls --help')\n" {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	// --registry wins over HUBCTL_REGISTRY: bob's login is for the hub, not for it.
	h.fails(h.login("bob", "bob-password"), "not logged in to other.example:5000", "org", "ls", "--registry", "other.example:5000")
}
