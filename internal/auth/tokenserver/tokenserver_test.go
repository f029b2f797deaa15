package tokenserver

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/password"
	"github.com/hubctl/hubctl/internal/auth/token"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
)

// fixture is a token service on a real SQLite store and real keys, with users alice
// (owns alice/…) and bob, and a public repository alice/public.
type fixture struct {
	t        testing.TB
	srv      *httptest.Server
	store    *sqlstore.Store
	verifier *token.Verifier
	now      time.Time
	// server and keys are the service's, for tests that set its hooks or mint tokens.
	server *Server
	keys   *token.KeySet
}

func newFixture(t testing.TB) *fixture {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlstore.OpenSQLite(ctx, dir+"/db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	keys, err := token.LoadOrCreateKeySet(dir + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, store: store, now: time.Now()}
	for _, u := range []string{"alice", "bob"} {
		h, err := password.Hash(u + "-password")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.CreateUser(ctx, accounts.User{Name: u, PasswordHash: h}); err != nil {
			t.Fatal(err)
		}
	}
	for _, repo := range []string{"alice/private", "alice/public"} {
		if err := store.EnsureRepository(ctx, repo); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.SetRepositoryVisibility(ctx, "alice/public", accounts.Public); err != nil {
		t.Fatal(err)
	}
	policy := &authz.Policy{Store: store}
	s := &Server{
		Accounts:   store,
		Policy:     policy,
		Access:     &token.Issuer{Keys: keys, Issuer: "hubctl", Service: "hubctl"},
		RefreshTTL: time.Hour,
		Keys:       keys,
	}
	f.verifier = &token.Verifier{Keys: keys, Issuer: "hubctl", Audience: "hubctl"}
	f.server, f.keys = s, keys
	f.srv = httptest.NewServer(s)
	t.Cleanup(f.srv.Close)
	return f
}

type tokenResp struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	RefreshToken string `json:"refresh_token"`
}

func (f *fixture) get(user, pass string, params url.Values) (*http.Response, tokenResp, string) {
	f.t.Helper()
	req, _ := http.NewRequest("GET", f.srv.URL+"/token?"+params.Encode(), nil)
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	return f.send(req)
}

func (f *fixture) post(form url.Values) (*http.Response, tokenResp, string) {
	f.t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return f.send(req)
}

func (f *fixture) send(req *http.Request) (*http.Response, tokenResp, string) {
	f.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var tr tokenResp
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(b, &tr); err != nil {
			f.t.Fatalf("token response %s: %v", b, err)
		}
	}
	return resp, tr, string(b)
}

// access verifies raw and returns the granted actions per resource name.
func (f *fixture) access(raw string) (string, map[string][]string) {
	f.t.Helper()
	c, err := f.verifier.Verify(raw)
	if err != nil {
		f.t.Fatalf("issued token does not verify: %v", err)
	}
	m := map[string][]string{}
	for _, a := range c.Access {
		m[a.Name] = a.Actions
	}
	return c.Subject, m
}

func scopes(s ...string) url.Values { return url.Values{"service": {"hubctl"}, "scope": s} }

func TestAnonymousGetsPublicPullOnly(t *testing.T) {
	f := newFixture(t)
	resp, tr, body := f.get("", "", scopes("repository:alice/public:pull,push", "repository:alice/private:pull"))
	if resp.StatusCode != 200 || tr.Token == "" || tr.Token != tr.AccessToken || tr.ExpiresIn != 300 || tr.RefreshToken != "" {
		t.Fatalf("anonymous: %d %s", resp.StatusCode, body)
	}
	sub, acc := f.access(tr.Token)
	if sub != authz.Anonymous || strings.Join(acc["alice/public"], ",") != "pull" || len(acc["alice/private"]) != 0 {
		t.Fatalf("anonymous grants: %s %v", sub, acc)
	}
}

func TestPasswordGrantsAndIntersects(t *testing.T) {
	f := newFixture(t)
	resp, tr, body := f.get("alice", "alice-password", scopes("repository:alice/app:pull,push,delete", "registry:catalog:*"))
	if resp.StatusCode != 200 {
		t.Fatalf("alice: %d %s", resp.StatusCode, body)
	}
	_, acc := f.access(tr.Token)
	if strings.Join(acc["alice/app"], ",") != "delete,pull,push" || len(acc["catalog"]) != 0 {
		t.Fatalf("alice grants: %v", acc)
	}
	// Asking for another user's private repository is not an error: nothing granted.
	resp, tr, _ = f.get("bob", "bob-password", scopes("repository:alice/private:pull,push", "repository:alice/public:pull,push"))
	if resp.StatusCode != 200 {
		t.Fatalf("bob: %d", resp.StatusCode)
	}
	_, acc = f.access(tr.Token)
	if len(acc["alice/private"]) != 0 || strings.Join(acc["alice/public"], ",") != "pull" {
		t.Fatalf("bob grants: %v", acc)
	}
}

func TestRefusals(t *testing.T) {
	f := newFixture(t)
	for name, tc := range map[string]struct {
		user, pass string
		params     url.Values
		status     int
	}{
		"bad password":        {"alice", "wrong", scopes(), 401},
		"unknown user":        {"nobody", "whatever", scopes(), 401},
		"other service":       {"", "", url.Values{"service": {"elsewhere"}}, 400},
		"path trick in scope": {"alice", "alice-password", scopes("repository:alice/../bob/x:pull"), 400},
		"upper-case name":     {"alice", "alice-password", scopes("repository:Alice/x:pull"), 400},
		"unknown token":       {"alice", TokenPrefix + "doesnotexist", scopes(), 401},
	} {
		resp, _, body := f.get(tc.user, tc.pass, tc.params)
		if resp.StatusCode != tc.status || !strings.Contains(body, `"errors"`) {
			t.Errorf("%s: %d %s, want %d", name, resp.StatusCode, body, tc.status)
		}
	}
	entries, err := f.store.ListAudit(context.Background(), accounts.AuditFilter{Action: "login.failed"})
	if err != nil || len(entries) < 3 {
		t.Fatalf("audit of failed logins: %v %v", entries, err)
	}
	for _, e := range entries {
		if strings.Contains(e.Detail, "wrong") || strings.Contains(e.Detail, "whatever") {
			t.Fatalf("a password reached the audit log: %+v", e)
		}
	}
}

func TestLoginRateLimit(t *testing.T) {
	f := newFixture(t)
	for i := range MaxFailures {
		if resp, _, _ := f.get("alice", "wrong", scopes()); resp.StatusCode != 401 {
			t.Fatalf("failure %d: %d", i, resp.StatusCode)
		}
	}
	// Locked out now, even with the right password.
	resp, _, body := f.get("alice", "alice-password", scopes())
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "TOOMANYREQUESTS") {
		t.Fatalf("after %d failures: %d %q %s", MaxFailures, resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// Another account from the same address is not affected.
	if resp, _, _ := f.get("bob", "bob-password", scopes()); resp.StatusCode != 200 {
		t.Fatalf("bob: %d", resp.StatusCode)
	}
}

func TestRefreshTokens(t *testing.T) {
	f := newFixture(t)
	p := scopes("repository:alice/app:pull")
	p.Set("offline_token", "true")
	p.Set("client_id", "test")
	resp, tr, body := f.get("alice", "alice-password", p)
	if resp.StatusCode != 200 || tr.RefreshToken == "" {
		t.Fatalf("offline login: %d %s", resp.StatusCode, body)
	}
	// The refresh token is not a registry token.
	if _, err := f.verifier.Verify(tr.RefreshToken); err == nil {
		t.Fatal("a refresh token verifies as a registry token")
	}
	resp, tr2, body := f.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}, "service": {"hubctl"},
		"client_id": {"test"}, "scope": {"repository:alice/app:pull,push"}})
	if resp.StatusCode != 200 || tr2.AccessToken == "" {
		t.Fatalf("refresh grant: %d %s", resp.StatusCode, body)
	}
	if sub, acc := f.access(tr2.AccessToken); sub != "alice" || strings.Join(acc["alice/app"], ",") != "pull,push" {
		t.Fatalf("refreshed grants: %s %v", sub, acc)
	}
	resp, tr3, body := f.post(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-password"},
		"access_type": {"offline"}, "service": {"hubctl"}, "client_id": {"test"}})
	if resp.StatusCode != 200 || tr3.RefreshToken == "" {
		t.Fatalf("password grant: %d %s", resp.StatusCode, body)
	}
	for name, form := range map[string]url.Values{
		"tampered refresh":  {"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken[:len(tr.RefreshToken)-3] + "abc"}},
		"access as refresh": {"grant_type": {"refresh_token"}, "refresh_token": {tr2.AccessToken}},
		"bad password":      {"grant_type": {"password"}, "username": {"alice"}, "password": {"nope"}},
	} {
		if resp, _, body := f.post(form); resp.StatusCode != 401 {
			t.Errorf("%s: %d %s", name, resp.StatusCode, body)
		}
	}
	if resp, _, _ := f.post(url.Values{"grant_type": {"client_credentials"}}); resp.StatusCode != 400 {
		t.Errorf("unsupported grant: %d", resp.StatusCode)
	}
}

func TestAccessTokens(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	mk := func(name string, scopes []string, expires time.Time) string {
		secret, err := password.RandomSecret(TokenPrefix)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.store.CreateToken(ctx, accounts.AccessToken{User: "alice", Name: name, Hash: password.SecretHash(secret), Scopes: scopes, ExpiresAt: expires}); err != nil {
			t.Fatal(err)
		}
		return secret
	}
	pull := mk("ci", []string{"repository:alice/*:pull"}, time.Time{})
	resp, tr, body := f.get("anything", pull, scopes("repository:alice/app:pull,push"))
	if resp.StatusCode != 200 || tr.RefreshToken != "" {
		t.Fatalf("token login: %d %s", resp.StatusCode, body)
	}
	// The token's scopes cap the owner's rights: no push, though alice may push.
	if sub, acc := f.access(tr.Token); sub != "alice" || strings.Join(acc["alice/app"], ",") != "pull" {
		t.Fatalf("token grants: %s %v", sub, acc)
	}
	expired := mk("old", []string{"repository:alice/*:pull"}, time.Now().Add(-time.Minute))
	if resp, _, _ := f.get("alice", expired, scopes()); resp.StatusCode != 401 {
		t.Fatalf("expired token: %d", resp.StatusCode)
	}
	if err := f.store.RevokeToken(ctx, "alice", "ci"); err != nil {
		t.Fatal(err)
	}
	if resp, _, _ := f.get("alice", pull, scopes()); resp.StatusCode != 401 {
		t.Fatalf("revoked token: %d", resp.StatusCode)
	}
}

func TestJWKS(t *testing.T) {
	f := newFixture(t)
	resp, err := http.Get(f.srv.URL + "/token/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	keys, err := token.ParseJWKS(b)
	if resp.StatusCode != 200 || err != nil || len(keys) != 1 {
		t.Fatalf("jwks: %d %s %v", resp.StatusCode, b, err)
	}
	// A verifier built from the published keys alone accepts issued tokens, as a
	// registry replica would.
	_, tr, _ := f.get("alice", "alice-password", scopes("repository:alice/app:pull"))
	v := &token.Verifier{Keys: keys, Issuer: "hubctl", Audience: "hubctl"}
	if _, err := v.Verify(tr.Token); err != nil {
		t.Fatalf("verify with JWKS keys: %v", err)
	}
}
