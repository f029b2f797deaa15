package hubapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/password"
	"github.com/hubctl/hubctl/internal/auth/token"
	"github.com/hubctl/hubctl/internal/hubapi"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
)

// The store must implement the contract the API is written against.
var _ accounts.Store = (*sqlstore.Store)(nil)

// clock is the API's clock, moved by tests that need a token to expire.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is the real handler over a real SQLite store, with a real token issuer for
// registry JWTs, and three users: admin (site admin), alice and bob.
type fixture struct {
	t      *testing.T
	store  *sqlstore.Store
	srv    *httptest.Server
	issuer *token.Issuer
	clock  *clock
	// dbPath is the SQLite database, for tests that reach under the store.
	dbPath string
}

const (
	adminPass = "admin-password"
	alicePass = "alice-password"
	bobPass   = "bob-password"
)

func newFixture(t *testing.T, edit ...func(*hubapi.Options)) *fixture {
	t.Helper()
	ctx := context.Background()
	dbPath := t.TempDir() + "/db"
	store, err := sqlstore.OpenSQLite(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	keys, err := token.LoadOrCreateKeySet(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Now()}
	iss := &token.Issuer{Keys: keys, Issuer: "hubctl-test", Service: "registry.test", Now: clk.now}
	ver := &token.Verifier{Keys: keys, Issuer: "hubctl-test", Audience: "registry.test", Now: clk.now}
	o := hubapi.Options{
		Accounts:     store,
		Repositories: store,
		Events:       store,
		Webhooks:     store,
		Workflows:    store,
		Keyring:      testKeyring(t),
		VerifyJWT: func(raw string) (string, token.Hub, error) {
			c, err := ver.Verify(raw)
			if err != nil {
				return "", token.Hub{}, err
			}
			return c.Subject, c.Hub, nil
		},
		Now: clk.now,
	}
	for _, e := range edit {
		e(&o)
	}
	h := hubapi.New(o)
	f := &fixture{t: t, store: store, srv: httptest.NewServer(h), issuer: iss, clock: clk, dbPath: dbPath}
	t.Cleanup(f.srv.Close)
	f.createUser("admin", adminPass, true)
	f.createUser("alice", alicePass, false)
	f.createUser("bob", bobPass, false)
	return f
}

func (f *fixture) createUser(name, pass string, admin bool) {
	f.t.Helper()
	hash, err := password.Hash(pass)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.store.CreateUser(context.Background(), accounts.User{Name: name, Email: name + "@example.com", PasswordHash: hash, Admin: admin}); err != nil {
		f.t.Fatal(err)
	}
}

// auth sets a request's credentials.
type auth func(*http.Request)

func basic(user, pass string) auth { return func(r *http.Request) { r.SetBasicAuth(user, pass) } }
func bearer(tok string) auth {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

var (
	asAdmin = basic("admin", adminPass)
	asAlice = basic("alice", alicePass)
	asBob   = basic("bob", bobPass)
	anon    = auth(func(*http.Request) {})
)

type response struct {
	status int
	header http.Header
	body   []byte
}

// code is the first error code of an error body, "" for other bodies.
func (r response) code() string {
	var e struct {
		Errors []struct{ Code, Message string }
	}
	if json.Unmarshal(r.body, &e) != nil || len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

func (f *fixture) do(a auth, method, path string, body any) response {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	a(req)
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	// No response may ever carry a stored secret.
	for _, leak := range []string{"argon2", "password_hash", `"hash"`} {
		if bytes.Contains(b, []byte(leak)) {
			f.t.Fatalf("%s %s: response carries %s: %s", method, path, leak, b)
		}
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// want fails unless the response has status and, for errors, code.
func (f *fixture) want(r response, status int, code string) response {
	f.t.Helper()
	if r.status != status || r.code() != code {
		f.t.Fatalf("got %d %q, want %d %q; body %s", r.status, r.code(), status, code, r.body)
	}
	return r
}

func decodeAs[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return v
}

// audited returns the audit entries with action, newest first.
func (f *fixture) audited(action string) []accounts.AuditEntry {
	f.t.Helper()
	es, err := f.store.ListAudit(context.Background(), accounts.AuditFilter{Action: action, Limit: 1000})
	if err != nil {
		f.t.Fatal(err)
	}
	return es
}

func (f *fixture) wantAudit(action, actor, target string) accounts.AuditEntry {
	f.t.Helper()
	for _, e := range f.audited(action) {
		if e.Actor == actor && e.Target == target {
			if e.Remote != "127.0.0.1" {
				f.t.Errorf("audit %s: remote %q, want 127.0.0.1", action, e.Remote)
			}
			return e
		}
	}
	f.t.Fatalf("no audit entry %s by %s on %s; have %+v", action, actor, target, f.audited(action))
	return accounts.AuditEntry{}
}

// jwt issues a registry token for subject, as /token would after a password sign-in:
// it names the account by id and carries its session epoch.
func (f *fixture) jwt(subject string) string {
	f.t.Helper()
	var hub token.Hub
	if u, err := f.store.GetUser(f.t.Context(), subject); err == nil {
		hub = token.Hub{UserID: u.ID, Epoch: u.SessionEpoch}
	}
	tok, err := f.issuer.Issue(subject, hub, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return tok.Raw
}

// token creates an access token for the basic-authenticated user and returns its secret.
func (f *fixture) token(a auth, name string, scopes ...string) string {
	f.t.Helper()
	r := f.want(f.do(a, "POST", "/api/v1/tokens", map[string]any{"name": name, "scopes": scopes}), 201, "")
	return decodeAs[hubtypes.CreatedToken](f.t, r).Token
}

func TestUnauthenticated(t *testing.T) {
	f := newFixture(t)
	hubTok := f.token(asAlice, "t1", "repository:alice/*:pull")
	f.want(f.do(asAdmin, "PATCH", "/api/v1/users/bob", map[string]any{"disabled": true}), 200, "")

	tests := []struct {
		name string
		auth auth
		path string
	}{
		{"no credentials", anon, "/api/v1/user"},
		{"no credentials, unknown path", anon, "/api/v1/nothing-here"},
		{"wrong password", basic("alice", "wrong-password"), "/api/v1/user"},
		{"unknown user", basic("nobody", alicePass), "/api/v1/user"},
		{"disabled user", asBob, "/api/v1/user"},
		{"unknown access token", bearer("hub_0000000000000000000000000000000000000000000"), "/api/v1/user"},
		{"unknown access token as password", basic("alice", "hub_0000000000000000000000000000000000000000000"), "/api/v1/user"},
		{"tampered access token", bearer(tamper(hubTok)), "/api/v1/user"},
		{"garbage JWT", bearer("eyJhbGciOiJub25lIn0.e30."), "/api/v1/user"},
		{"anonymous JWT", bearer(f.jwt("")), "/api/v1/user"},
		{"JWT of unknown user", bearer(f.jwt("ghost")), "/api/v1/user"},
		{"JWT of disabled user", bearer(f.jwt("bob")), "/api/v1/user"},
		{"other scheme", func(r *http.Request) { r.Header.Set("Authorization", "Digest x") }, "/api/v1/user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.t = t
			r := f.want(f.do(tt.auth, "GET", tt.path, nil), 401, "UNAUTHORIZED")
			if got := r.header.Get("WWW-Authenticate"); got != `Basic realm="hubctl"` {
				t.Errorf("WWW-Authenticate %q", got)
			}
		})
	}
}

func TestWhoAmI(t *testing.T) {
	f := newFixture(t)
	secret := f.token(asAlice, "ci", "repository:alice/app:pull")
	for name, a := range map[string]auth{
		"password":          asAlice,
		"token as bearer":   bearer(secret),
		"token as password": basic("anything", secret),
		"registry JWT":      bearer(f.jwt("alice")),
	} {
		t.Run(name, func(t *testing.T) {
			f.t = t
			u := decodeAs[hubtypes.User](t, f.want(f.do(a, "GET", "/api/v1/user", nil), 200, ""))
			if u != (hubtypes.User{Name: "alice", Email: "alice@example.com", CreatedAt: u.CreatedAt}) || u.CreatedAt == "" {
				t.Errorf("got %+v", u)
			}
		})
	}
}

func TestUsers(t *testing.T) {
	f := newFixture(t)
	carol := map[string]any{"name": "carol", "email": "carol@example.com", "password": "carol-password"}

	f.want(f.do(asAlice, "POST", "/api/v1/users", carol), 403, "DENIED")
	f.want(f.do(asAlice, "GET", "/api/v1/users", nil), 403, "DENIED")
	f.want(f.do(asAdmin, "POST", "/api/v1/users", map[string]any{"name": "carol", "password": "short"}), 400, "INVALID_REQUEST")
	f.want(f.do(asAdmin, "POST", "/api/v1/users", map[string]any{"name": "Carol!", "password": "long-enough"}), 400, "INVALID_REQUEST")
	f.want(f.do(asAdmin, "POST", "/api/v1/users", map[string]any{"name": "carol", "password": "long-enough", "role": "x"}), 400, "INVALID_REQUEST")
	if _, err := f.store.GetUser(context.Background(), "carol"); err == nil {
		t.Fatal("a refused create left a user behind")
	}

	u := decodeAs[hubtypes.User](t, f.want(f.do(asAdmin, "POST", "/api/v1/users", carol), 201, ""))
	if u.Name != "carol" || u.Email != "carol@example.com" || u.Admin {
		t.Errorf("created %+v", u)
	}
	f.wantAudit("user.create", "admin", "carol")
	f.want(f.do(asAdmin, "POST", "/api/v1/users", carol), 409, "CONFLICT")
	f.want(f.do(basic("carol", "carol-password"), "GET", "/api/v1/user", nil), 200, "")

	list := decodeAs[[]hubtypes.User](t, f.want(f.do(asAdmin, "GET", "/api/v1/users", nil), 200, ""))
	var names []string
	for _, u := range list {
		names = append(names, u.Name)
	}
	if strings.Join(names, ",") != "admin,alice,bob,carol" {
		t.Errorf("users %v", names)
	}

	// Self-service: read and change own email; not admin, not others.
	f.want(f.do(asAlice, "GET", "/api/v1/users/alice", nil), 200, "")
	f.want(f.do(asAlice, "GET", "/api/v1/users/bob", nil), 403, "DENIED")
	f.want(f.do(asAlice, "PATCH", "/api/v1/users/bob", map[string]any{"email": "x@example.com"}), 403, "DENIED")
	got := decodeAs[hubtypes.User](t, f.want(f.do(asAlice, "PATCH", "/api/v1/users/alice", map[string]any{"email": "new@example.com"}), 200, ""))
	if got.Email != "new@example.com" {
		t.Errorf("email %q", got.Email)
	}
	f.wantAudit("user.update", "alice", "alice")
	f.want(f.do(asAlice, "PATCH", "/api/v1/users/alice", map[string]any{"admin": true}), 403, "DENIED")
	if u, _ := f.store.GetUser(context.Background(), "alice"); u.Admin {
		t.Fatal("alice made herself admin")
	}

	// Own password: the current one is required and checked.
	f.want(f.do(asAlice, "PATCH", "/api/v1/users/alice", map[string]any{"password": "brand-new-pass"}), 400, "INVALID_REQUEST")
	f.want(f.do(asAlice, "PATCH", "/api/v1/users/alice", map[string]any{"password": "brand-new-pass", "current_password": "wrong-password"}), 403, "DENIED")
	f.want(f.do(asAlice, "PATCH", "/api/v1/users/alice", map[string]any{"password": "short", "current_password": alicePass}), 400, "INVALID_REQUEST")
	f.want(f.do(asAlice, "GET", "/api/v1/user", nil), 200, "")
	f.want(f.do(asAlice, "PATCH", "/api/v1/users/alice", map[string]any{"password": "brand-new-pass", "current_password": alicePass}), 200, "")
	f.want(f.do(asAlice, "GET", "/api/v1/user", nil), 401, "UNAUTHORIZED")
	f.want(f.do(basic("alice", "brand-new-pass"), "GET", "/api/v1/user", nil), 200, "")
	for _, e := range f.audited("") {
		if strings.Contains(e.Detail, "brand-new-pass") || strings.Contains(e.Detail, alicePass) {
			t.Fatalf("audit entry carries a password: %+v", e)
		}
	}

	// An admin sets another user's password without the current one, and flags.
	f.want(f.do(asAdmin, "PATCH", "/api/v1/users/bob", map[string]any{"password": "reset-by-admin"}), 200, "")
	f.want(f.do(basic("bob", "reset-by-admin"), "GET", "/api/v1/user", nil), 200, "")
	f.want(f.do(asAdmin, "PATCH", "/api/v1/users/bob", map[string]any{"admin": true}), 200, "")
	f.wantAudit("permission.change", "admin", "bob")
	f.want(f.do(asAdmin, "PATCH", "/api/v1/users/admin", map[string]any{"admin": false}), 400, "INVALID_REQUEST")
	f.want(f.do(asAdmin, "PATCH", "/api/v1/users/ghost", map[string]any{"email": "g@example.com"}), 404, "NAME_UNKNOWN")

	f.want(f.do(basic("alice", "brand-new-pass"), "DELETE", "/api/v1/users/carol", nil), 403, "DENIED")
	f.want(f.do(asAdmin, "DELETE", "/api/v1/users/admin", nil), 400, "INVALID_REQUEST")
	f.want(f.do(asAdmin, "DELETE", "/api/v1/users/ghost", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asAdmin, "DELETE", "/api/v1/users/carol", nil), 204, "")
	f.wantAudit("user.delete", "admin", "carol")
	f.want(f.do(asAdmin, "GET", "/api/v1/users/carol", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(basic("carol", "carol-password"), "GET", "/api/v1/user", nil), 401, "UNAUTHORIZED")
}

func TestTokens(t *testing.T) {
	f := newFixture(t)
	req := map[string]any{"name": "ci", "scopes": []string{"repository:alice/app:push,pull", "repository:alice/*:pull", "registry:catalog:*"}, "expires_in_days": 30}
	r := f.want(f.do(asAlice, "POST", "/api/v1/tokens", req), 201, "")
	created := decodeAs[hubtypes.CreatedToken](t, r)
	if !strings.HasPrefix(created.Token, "hub_") || created.Name != "ci" || created.ExpiresAt == "" {
		t.Fatalf("created %+v", created)
	}
	if strings.Join(created.Scopes, " ") != "repository:alice/app:pull,push repository:alice/*:pull registry:catalog:*" {
		t.Errorf("scopes %v", created.Scopes)
	}
	f.wantAudit("token.create", "alice", "alice/ci")

	// The secret is shown once: never in a list, never in the audit log.
	list := f.want(f.do(asAlice, "GET", "/api/v1/tokens", nil), 200, "")
	if bytes.Contains(list.body, []byte(created.Token)) || bytes.Contains(list.body, []byte("hub_")) {
		t.Fatalf("token list carries the secret: %s", list.body)
	}
	toks := decodeAs[[]hubtypes.Token](t, list)
	if len(toks) != 1 || toks[0].Name != "ci" || !toks[0].Active || toks[0].ExpiresAt != created.ExpiresAt {
		t.Fatalf("tokens %+v", toks)
	}

	// The token signs in, but may not mint tokens or robots, however asked.
	withToken := bearer(created.Token)
	f.want(f.do(withToken, "GET", "/api/v1/user", nil), 200, "")
	f.want(f.do(withToken, "POST", "/api/v1/tokens", map[string]any{"name": "more", "scopes": []string{"repository:*:*"}}), 403, "DENIED")
	f.want(f.do(basic("alice", created.Token), "POST", "/api/v1/tokens", map[string]any{"name": "more", "scopes": []string{"repository:*:*"}}), 403, "DENIED")
	if toks := decodeAs[[]hubtypes.Token](t, f.do(asAlice, "GET", "/api/v1/tokens", nil)); len(toks) != 1 {
		t.Fatalf("a token minted a token: %+v", toks)
	}

	// A registry JWT session may create tokens.
	f.token(bearer(f.jwt("alice")), "from-jwt", "repository:alice/app:pull")

	// Refusals.
	f.want(f.do(asAlice, "POST", "/api/v1/tokens", req), 409, "CONFLICT")
	for name, body := range map[string]any{
		"bad scope":        map[string]any{"name": "x", "scopes": []string{"repository:Alice/App:pull"}},
		"scope no actions": map[string]any{"name": "x", "scopes": []string{"repository:alice/app:"}},
		"unknown type":     map[string]any{"name": "x", "scopes": []string{"plugin:x:pull"}},
		"no scopes":        map[string]any{"name": "x", "scopes": []string{}},
		"negative expiry":  map[string]any{"name": "x", "scopes": []string{"repository:alice/app:pull"}, "expires_in_days": -1},
		"unknown field":    map[string]any{"name": "x", "scopes": []string{"repository:alice/app:pull"}, "admin": true},
		"not JSON":         "name=x",
		"two objects":      `{"name":"x","scopes":["repository:alice/app:pull"]} {}`,
	} {
		t.Run(name, func(t *testing.T) {
			f.t = t
			f.want(f.do(asAlice, "POST", "/api/v1/tokens", body), 400, "INVALID_REQUEST")
		})
	}
	f.t = t
	if n := len(decodeAs[[]hubtypes.Token](t, f.do(asAlice, "GET", "/api/v1/tokens", nil))); n != 2 {
		t.Fatalf("refused requests created tokens: %d", n)
	}

	// Expiry, on the API's clock.
	short := f.token(asAlice, "short", "repository:alice/app:pull")
	f.want(f.do(asAlice, "POST", "/api/v1/tokens", map[string]any{"name": "day", "scopes": []string{"repository:alice/app:pull"}, "expires_in_days": 1}), 201, "")
	f.clock.add(31 * 24 * time.Hour)
	f.want(f.do(withToken, "GET", "/api/v1/user", nil), 401, "UNAUTHORIZED")
	f.want(f.do(bearer(short), "GET", "/api/v1/user", nil), 200, "")

	// Revocation, by name; unknown names and other users' tokens are 404.
	f.want(f.do(asBob, "DELETE", "/api/v1/tokens/short", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asAlice, "DELETE", "/api/v1/tokens/nope", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asAlice, "DELETE", "/api/v1/tokens/short", nil), 204, "")
	f.wantAudit("token.revoke", "alice", "alice/short")
	f.want(f.do(bearer(short), "GET", "/api/v1/user", nil), 401, "UNAUTHORIZED")
	toks = decodeAs[[]hubtypes.Token](t, f.do(asAlice, "GET", "/api/v1/tokens", nil))
	for _, tk := range toks {
		if tk.Name == "short" && (tk.Active || tk.RevokedAt == "") {
			t.Errorf("revoked token listed as %+v", tk)
		}
	}

	for _, e := range f.audited("") {
		if strings.Contains(e.Detail, "hub_") || strings.Contains(e.Target, "hub_") {
			t.Fatalf("audit entry carries a secret: %+v", e)
		}
	}
}

// TestAccessTokensCannotReshapeAccounts: an access token speaks for repositories only.
// Even a site admin's token with every repository scope is refused on the endpoints
// that change accounts, organisations, teams, grants and quotas; the same requests
// with the admin's password pass.
func TestAccessTokensCannotReshapeAccounts(t *testing.T) {
	f := newFixture(t)
	tok := bearer(f.token(asAdmin, "wide", "repository:*:*"))
	f.want(f.do(asAdmin, "POST", "/api/v1/orgs", map[string]any{"name": "acme"}), 201, "")
	f.want(f.do(asAdmin, "POST", "/api/v1/orgs/acme/teams", map[string]any{"name": "devs"}), 201, "")
	for _, tt := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/api/v1/users", map[string]any{"name": "mallory", "password": "long-enough-pw"}},
		{"PATCH", "/api/v1/users/bob", map[string]any{"admin": true}},
		{"DELETE", "/api/v1/users/bob", nil},
		{"POST", "/api/v1/orgs", map[string]any{"name": "evil"}},
		{"PATCH", "/api/v1/orgs/acme", map[string]any{"default_visibility": "public"}},
		{"DELETE", "/api/v1/orgs/acme", nil},
		{"POST", "/api/v1/orgs/acme/teams", map[string]any{"name": "ops"}},
		{"DELETE", "/api/v1/orgs/acme/teams/devs", nil},
		{"PUT", "/api/v1/orgs/acme/teams/devs/members/bob", nil},
		{"DELETE", "/api/v1/orgs/acme/teams/devs/members/bob", nil},
		{"PUT", "/api/v1/orgs/acme/teams/devs/grants", map[string]any{"repository": "*", "role": "admin"}},
		{"PUT", "/api/v1/namespaces/bob/quota", map[string]any{"bytes": 1}},
	} {
		r := f.want(f.do(tok, tt.method, tt.path, tt.body), 403, "DENIED")
		if !strings.Contains(string(r.body), "not an access token") {
			t.Errorf("%s %s: %s", tt.method, tt.path, r.body)
		}
	}
	// Reading needs a hub scope that names it, and the admin's password still changes
	// things.
	f.want(f.do(tok, "GET", "/api/v1/orgs/acme", nil), 403, "DENIED")
	reader := bearer(f.token(asAdmin, "org-reader", "hub:orgs:read"))
	f.want(f.do(reader, "GET", "/api/v1/orgs/acme", nil), 200, "")
	f.want(f.do(asAdmin, "POST", "/api/v1/orgs/acme/teams", map[string]any{"name": "ops"}), 201, "")
}

func TestOrgsAndTeams(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()

	f.want(f.do(asAlice, "POST", "/api/v1/orgs", map[string]any{"name": "team", "default_visibility": "sideways"}), 400, "INVALID_REQUEST")
	org := decodeAs[hubtypes.Org](t, f.want(f.do(asAlice, "POST", "/api/v1/orgs", map[string]any{"name": "team"}), 201, ""))
	if org.Name != "team" || org.DefaultVisibility != "private" {
		t.Errorf("org %+v", org)
	}
	f.wantAudit("org.create", "alice", "team")
	f.want(f.do(asBob, "POST", "/api/v1/orgs", map[string]any{"name": "team"}), 409, "CONFLICT")
	f.want(f.do(asBob, "POST", "/api/v1/orgs", map[string]any{"name": "alice"}), 409, "CONFLICT")
	f.want(f.do(asBob, "GET", "/api/v1/orgs/team", nil), 200, "")
	f.want(f.do(asBob, "GET", "/api/v1/orgs/alice", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asBob, "GET", "/api/v1/orgs/ghost", nil), 404, "NAME_UNKNOWN")
	orgs := decodeAs[[]hubtypes.Org](t, f.want(f.do(asBob, "GET", "/api/v1/orgs", nil), 200, ""))
	if len(orgs) != 1 || orgs[0].Name != "team" {
		t.Errorf("orgs %+v", orgs)
	}

	// Only org admins manage the org.
	f.want(f.do(asBob, "PATCH", "/api/v1/orgs/team", map[string]any{"default_visibility": "public"}), 403, "DENIED")
	f.want(f.do(asBob, "POST", "/api/v1/orgs/team/teams", map[string]any{"name": "devs"}), 403, "DENIED")
	f.want(f.do(asBob, "GET", "/api/v1/orgs/team/teams", nil), 403, "DENIED")
	f.want(f.do(asAlice, "PATCH", "/api/v1/orgs/team", map[string]any{"default_visibility": "public"}), 200, "")
	f.wantAudit("visibility.change", "alice", "team")
	if ns, _ := f.store.GetNamespace(ctx, "team"); ns.DefaultVisibility != accounts.Public {
		t.Errorf("default visibility %q", ns.DefaultVisibility)
	}

	f.want(f.do(asAlice, "POST", "/api/v1/orgs/team/teams", map[string]any{"name": "devs", "description": "developers"}), 201, "")
	f.wantAudit("team.create", "alice", "team/devs")
	f.want(f.do(asAlice, "POST", "/api/v1/orgs/team/teams", map[string]any{"name": "devs"}), 409, "CONFLICT")
	f.want(f.do(asAlice, "POST", "/api/v1/orgs/team/teams", map[string]any{"name": "Devs!"}), 400, "INVALID_REQUEST")
	teams := decodeAs[[]hubtypes.Team](t, f.want(f.do(asAlice, "GET", "/api/v1/orgs/team/teams", nil), 200, ""))
	if len(teams) != 2 || teams[0].Name != "devs" || teams[0].Description != "developers" || teams[1].Name != "owners" {
		t.Errorf("teams %+v", teams)
	}

	f.want(f.do(asAlice, "PUT", "/api/v1/orgs/team/teams/devs/members/bob", nil), 204, "")
	f.wantAudit("team.member.add", "alice", "team/devs")
	f.want(f.do(asAlice, "PUT", "/api/v1/orgs/team/teams/devs/members/ghost", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asAlice, "PUT", "/api/v1/orgs/team/teams/nope/members/bob", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asAlice, "GET", "/api/v1/orgs/team/teams/nope/members", nil), 404, "NAME_UNKNOWN")
	members := decodeAs[[]string](t, f.want(f.do(asAlice, "GET", "/api/v1/orgs/team/teams/devs/members", nil), 200, ""))
	if strings.Join(members, ",") != "bob" {
		t.Errorf("members %v", members)
	}

	// Grants: org-wide and per repository; admin on one repository does not make an
	// org admin.
	f.want(f.do(asAlice, "PUT", "/api/v1/orgs/team/teams/devs/grants", map[string]any{"repository": "", "role": "owner"}), 400, "INVALID_REQUEST")
	f.want(f.do(asAlice, "PUT", "/api/v1/orgs/team/teams/devs/grants", map[string]any{"repository": "other/app", "role": "read"}), 400, "INVALID_REQUEST")
	f.want(f.do(asAlice, "PUT", "/api/v1/orgs/team/teams/devs/grants", map[string]any{"repository": "", "role": "read"}), 200, "")
	f.want(f.do(asAlice, "PUT", "/api/v1/orgs/team/teams/devs/grants", map[string]any{"repository": "team/x", "role": "admin"}), 200, "")
	f.wantAudit("permission.change", "alice", "team/devs")
	if role, _ := f.store.RoleOf(ctx, "bob", "team/x"); role != accounts.RoleAdmin {
		t.Errorf("bob's role on team/x: %q", role)
	}
	f.want(f.do(asBob, "POST", "/api/v1/orgs/team/teams", map[string]any{"name": "mine"}), 403, "DENIED")
	grants := decodeAs[[]hubtypes.Grant](t, f.want(f.do(asAlice, "GET", "/api/v1/orgs/team/teams/devs/grants", nil), 200, ""))
	if len(grants) != 2 || grants[0] != (hubtypes.Grant{Repository: "", Role: "read"}) || grants[1] != (hubtypes.Grant{Repository: "team/x", Role: "admin"}) {
		t.Errorf("grants %+v", grants)
	}
	f.want(f.do(asAlice, "PUT", "/api/v1/orgs/team/teams/devs/grants", map[string]any{"repository": "team/x", "role": "none"}), 200, "")
	if role, _ := f.store.RoleOf(ctx, "bob", "team/x"); role != accounts.RoleRead {
		t.Errorf("after removing the grant bob's role on team/x is %q", role)
	}

	// An org-wide admin grant makes an org admin.
	f.want(f.do(asAlice, "PUT", "/api/v1/orgs/team/teams/devs/grants", map[string]any{"repository": "", "role": "admin"}), 200, "")
	f.want(f.do(asBob, "GET", "/api/v1/orgs/team/teams", nil), 200, "")
	f.want(f.do(asAlice, "PUT", "/api/v1/orgs/team/teams/devs/grants", map[string]any{"repository": "", "role": "none"}), 200, "")
	f.want(f.do(asBob, "GET", "/api/v1/orgs/team/teams", nil), 403, "DENIED")

	f.want(f.do(asAlice, "DELETE", "/api/v1/orgs/team/teams/devs/members/bob", nil), 204, "")
	f.wantAudit("team.member.remove", "alice", "team/devs")
	if m, _ := f.store.ListTeamMembers(ctx, "team", "devs"); len(m) != 0 {
		t.Errorf("members after removal %v", m)
	}
	f.want(f.do(asAlice, "DELETE", "/api/v1/orgs/team/teams/devs", nil), 204, "")
	f.wantAudit("team.delete", "alice", "team/devs")
	f.want(f.do(asAlice, "DELETE", "/api/v1/orgs/team/teams/devs", nil), 404, "NAME_UNKNOWN")

	f.want(f.do(asBob, "DELETE", "/api/v1/orgs/team", nil), 403, "DENIED")
	f.want(f.do(asAdmin, "DELETE", "/api/v1/orgs/alice", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asAlice, "DELETE", "/api/v1/orgs/team", nil), 204, "")
	f.wantAudit("org.delete", "alice", "team")
	f.want(f.do(asAlice, "GET", "/api/v1/orgs/team", nil), 404, "NAME_UNKNOWN")
}

func TestRobots(t *testing.T) {
	f := newFixture(t)
	f.want(f.do(asAlice, "POST", "/api/v1/orgs", map[string]any{"name": "team"}), 201, "")
	body := map[string]any{"name": "ci", "scopes": []string{"repository:team/*:pull,push"}, "expires_in_days": 7}

	f.want(f.do(asBob, "POST", "/api/v1/orgs/team/robots", body), 403, "DENIED")
	aliceTok := f.token(asAlice, "mine", "repository:team/*:pull,push")
	f.want(f.do(bearer(aliceTok), "POST", "/api/v1/orgs/team/robots", body), 403, "DENIED")
	f.want(f.do(asAlice, "POST", "/api/v1/orgs/team/robots", map[string]any{"name": "ci", "scopes": []string{"nonsense"}}), 400, "INVALID_REQUEST")
	if _, err := f.store.GetUser(context.Background(), "team.ci"); err == nil {
		t.Fatal("a refused robot request left a robot behind")
	}

	robot := decodeAs[hubtypes.Robot](t, f.want(f.do(asAlice, "POST", "/api/v1/orgs/team/robots", body), 201, ""))
	if robot.User.Name != "team.ci" || !robot.User.Robot || robot.User.Owner != "team" ||
		!strings.HasPrefix(robot.Token.Token, "hub_") || robot.Token.ExpiresAt == "" {
		t.Fatalf("robot %+v", robot)
	}
	f.wantAudit("user.create", "alice", "team.ci")
	f.wantAudit("token.create", "alice", "team.ci/ci")
	f.want(f.do(asAlice, "POST", "/api/v1/orgs/team/robots", body), 409, "CONFLICT")

	withRobot := bearer(robot.Token.Token)
	me := decodeAs[hubtypes.User](t, f.want(f.do(withRobot, "GET", "/api/v1/user", nil), 200, ""))
	if me.Name != "team.ci" || !me.Robot {
		t.Errorf("robot whoami %+v", me)
	}
	// A robot administers nothing, not even in its own organisation.
	f.want(f.do(withRobot, "POST", "/api/v1/orgs/team/teams", map[string]any{"name": "sneaky"}), 403, "DENIED")
	f.want(f.do(withRobot, "POST", "/api/v1/orgs", map[string]any{"name": "robots"}), 403, "DENIED")
	// Robots have no password to sign in with.
	f.want(f.do(basic("team.ci", ""), "GET", "/api/v1/user", nil), 401, "UNAUTHORIZED")
}

func TestRepositories(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// The organisation first: a name that repositories are already filed under cannot
	// become anyone's (TestNoNamespaceTakeover).
	f.want(f.do(asAlice, "POST", "/api/v1/orgs", map[string]any{"name": "team"}), 201, "")
	for _, name := range []string{"alice/app", "team/web/frontend"} {
		if err := f.store.EnsureRepository(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	f.want(f.do(asAlice, "POST", "/api/v1/orgs/team/teams", map[string]any{"name": "devs"}), 201, "")
	f.want(f.do(asAlice, "PUT", "/api/v1/orgs/team/teams/devs/members/bob", nil), 204, "")
	f.want(f.do(asAlice, "PUT", "/api/v1/orgs/team/teams/devs/grants", map[string]any{"repository": "team/web/frontend", "role": "write"}), 200, "")

	repo := decodeAs[hubtypes.Repository](t, f.want(f.do(asAlice, "GET", "/api/v1/repositories/alice/app", nil), 200, ""))
	if repo != (hubtypes.Repository{Name: "alice/app", Visibility: "private"}) {
		t.Errorf("repo %+v", repo)
	}
	// Someone else's private repository looks missing.
	f.want(f.do(asBob, "GET", "/api/v1/repositories/alice/app", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asBob, "PATCH", "/api/v1/repositories/alice/app", map[string]any{"visibility": "public"}), 404, "NAME_UNKNOWN")
	f.want(f.do(asAlice, "GET", "/api/v1/repositories/alice/none", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asAlice, "PATCH", "/api/v1/repositories/alice/none", map[string]any{"visibility": "public"}), 404, "NAME_UNKNOWN")
	f.want(f.do(asAlice, "GET", "/api/v1/repositories/Alice/App", nil), 400, "INVALID_REQUEST")
	f.want(f.do(asAlice, "PATCH", "/api/v1/repositories/alice/app", map[string]any{"visibility": "open"}), 400, "INVALID_REQUEST")

	f.want(f.do(asAlice, "PATCH", "/api/v1/repositories/alice/app", map[string]any{"visibility": "public"}), 200, "")
	f.wantAudit("visibility.change", "alice", "alice/app")
	if v, _, _ := f.store.RepositoryVisibility(ctx, "alice/app"); v != accounts.Public {
		t.Fatalf("visibility %q", v)
	}
	// Public: anyone signed in reads it, only admins change it.
	f.want(f.do(asBob, "GET", "/api/v1/repositories/alice/app", nil), 200, "")
	f.want(f.do(asBob, "PATCH", "/api/v1/repositories/alice/app", map[string]any{"visibility": "private"}), 403, "DENIED")

	// Nested names, and write (not admin) through a team.
	f.want(f.do(asBob, "GET", "/api/v1/repositories/team/web/frontend", nil), 200, "")
	f.want(f.do(asBob, "PATCH", "/api/v1/repositories/team/web/frontend", map[string]any{"visibility": "public"}), 403, "DENIED")
	f.want(f.do(asAlice, "PATCH", "/api/v1/repositories/team/web/frontend", map[string]any{"visibility": "public"}), 200, "")

	// A token is held to its scopes: pull-only cannot change settings.
	pullOnly := f.token(asAlice, "pull", "repository:alice/*:pull")
	f.want(f.do(bearer(pullOnly), "GET", "/api/v1/repositories/alice/app", nil), 200, "")
	f.want(f.do(bearer(pullOnly), "PATCH", "/api/v1/repositories/alice/app", map[string]any{"visibility": "private"}), 403, "DENIED")
	// A token scoped to another repository does not even see this one.
	otherRepo := f.token(asAlice, "other", "repository:alice/other:*")
	f.want(f.do(bearer(otherRepo), "PATCH", "/api/v1/repositories/alice/app", map[string]any{"visibility": "private"}), 404, "NAME_UNKNOWN")
	all := f.token(asAlice, "all", "repository:alice/*:*")
	f.want(f.do(bearer(all), "PATCH", "/api/v1/repositories/alice/app", map[string]any{"visibility": "private"}), 200, "")
	if v, _, _ := f.store.RepositoryVisibility(ctx, "alice/app"); v != accounts.Private {
		t.Fatalf("visibility %q", v)
	}
}

func TestAudit(t *testing.T) {
	f := newFixture(t)
	for _, name := range []string{"one", "two", "three"} {
		f.want(f.do(asAlice, "POST", "/api/v1/orgs", map[string]any{"name": name}), 201, "")
	}
	f.want(f.do(asAlice, "GET", "/api/v1/audit", nil), 403, "DENIED")
	f.want(f.do(asAdmin, "GET", "/api/v1/audit?limit=0", nil), 400, "INVALID_REQUEST")
	f.want(f.do(asAdmin, "GET", "/api/v1/audit?before=x", nil), 400, "INVALID_REQUEST")

	page := decodeAs[hubtypes.AuditPage](t, f.want(f.do(asAdmin, "GET", "/api/v1/audit?actor=alice&action=org.create&limit=2", nil), 200, ""))
	if len(page.Entries) != 2 || page.Entries[0].Target != "three" || page.Entries[1].Target != "two" || page.Next == 0 {
		t.Fatalf("page %+v", page)
	}
	if e := page.Entries[0]; e.Actor != "alice" || e.Action != "org.create" || e.Remote != "127.0.0.1" || e.Time == "" {
		t.Errorf("entry %+v", e)
	}
	next := decodeAs[hubtypes.AuditPage](t, f.want(f.do(asAdmin, "GET", "/api/v1/audit?actor=alice&action=org.create&limit=2&before="+itoa(page.Next), nil), 200, ""))
	if len(next.Entries) != 1 || next.Entries[0].Target != "one" || next.Next != 0 {
		t.Fatalf("next page %+v", next)
	}
	f.want(f.do(asAdmin, "GET", "/api/v1/audit?since=yesterday", nil), 400, "INVALID_REQUEST")
	for _, q := range []string{"since=2999-01-01T00:00:00Z", "until=2000-01-01T00:00:00Z"} {
		if p := decodeAs[hubtypes.AuditPage](t, f.want(f.do(asAdmin, "GET", "/api/v1/audit?"+q, nil), 200, "")); len(p.Entries) != 0 {
			t.Errorf("audit %s: %d entries", q, len(p.Entries))
		}
	}
	if p := decodeAs[hubtypes.AuditPage](t, f.want(f.do(asAdmin, "GET", "/api/v1/audit?action=org.create&since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z", nil), 200, "")); len(p.Entries) != 3 {
		t.Errorf("audit in a range holding every entry: %d entries", len(p.Entries))
	}
	none := decodeAs[hubtypes.AuditPage](t, f.want(f.do(asAdmin, "GET", "/api/v1/audit?actor=bob", nil), 200, ""))
	if none.Entries == nil || len(none.Entries) != 0 {
		t.Errorf("bob's entries %+v", none)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestProtocol(t *testing.T) {
	f := newFixture(t)
	r := f.want(f.do(asAlice, "DELETE", "/api/v1/tokens", nil), 405, "UNSUPPORTED")
	if r.header.Get("Allow") != "GET, POST" {
		t.Errorf("Allow %q", r.header.Get("Allow"))
	}
	f.want(f.do(asAlice, "GET", "/api/v1/nothing", nil), 404, "NAME_UNKNOWN")
	big := `{"name":"x","scopes":["` + strings.Repeat("a", hubapi.MaxBodySize) + `"]}`
	f.want(f.do(asAlice, "POST", "/api/v1/tokens", big), 413, "INVALID_REQUEST")
	f.want(f.do(asAlice, "POST", "/api/v1/tokens", ""), 400, "INVALID_REQUEST")
	r = f.want(f.do(asAlice, "GET", "/api/v1/user", nil), 200, "")
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
}

func TestPasswordGuessesAreLimited(t *testing.T) {
	f := newFixture(t)
	for range 5 {
		f.want(f.do(basic("alice", "guess"), "GET", "/api/v1/user", nil), 401, "UNAUTHORIZED")
	}
	// Locked out, even with the right password; another account is not.
	r := f.want(f.do(asAlice, "GET", "/api/v1/user", nil), 429, "TOOMANYREQUESTS")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	f.want(f.do(asAdmin, "GET", "/api/v1/user", nil), 200, "")
}

// tamper changes the last character of a secret (to another one, whatever it was).
func tamper(secret string) string {
	last := byte('x')
	if secret[len(secret)-1] == last {
		last = 'y'
	}
	return secret[:len(secret)-1] + string(last)
}
