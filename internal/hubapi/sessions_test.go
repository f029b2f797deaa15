package hubapi_test

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/token"
	"github.com/hubctl/hubctl/internal/hubtypes"
)

// jwtVia issues a registry token for user as /token does after a sign-in with the
// access token or refresh session given by id (0 for neither).
func (f *fixture) jwtVia(user string, tokenID, sessionID int64) string {
	f.t.Helper()
	u, err := f.store.GetUser(f.t.Context(), user)
	if err != nil {
		f.t.Fatal(err)
	}
	tok, err := f.issuer.Issue(user, token.Hub{UserID: u.ID, Epoch: u.SessionEpoch, TokenID: tokenID, SessionID: sessionID}, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return tok.Raw
}

// TestRegistryTokensBoundToIDs is issue 12's attack on registry tokens in the hub API:
// a JWT must stop working the moment the account, the access token or the session it
// was obtained with is gone, even when a new one of the same name takes its place,
// and when the account's sessions are ended.
func TestRegistryTokensBoundToIDs(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()

	// The account is deleted and a new one takes its name: the old JWT is not the new
	// person's.
	f.createUser("carol", "carol-password-1", false)
	old := f.jwtVia("carol", 0, 0)
	f.want(f.do(bearer(old), "GET", "/api/v1/user", nil), 200, "")
	f.want(f.do(asAdmin, "DELETE", "/api/v1/users/carol", nil), 204, "")
	f.createUser("carol", "carol-password-2", false)
	f.want(f.do(bearer(old), "GET", "/api/v1/user", nil), 401, "UNAUTHORIZED")
	f.want(f.do(bearer(f.jwtVia("carol", 0, 0)), "GET", "/api/v1/user", nil), 200, "")

	// A password change ends the JWTs issued before it.
	before := f.jwtVia("alice", 0, 0)
	f.want(f.do(asAdmin, "PATCH", "/api/v1/users/alice", map[string]any{"password": "a-brand-new-password"}), 200, "")
	r := f.want(f.do(bearer(before), "GET", "/api/v1/user", nil), 401, "UNAUTHORIZED")
	if !strings.Contains(string(r.body), "log in again") {
		t.Errorf("refusal %s does not say to log in again", r.body)
	}
	f.want(f.do(bearer(f.jwtVia("alice", 0, 0)), "GET", "/api/v1/user", nil), 200, "")

	// The access token behind a JWT is revoked and a new one of the same name made.
	f.want(f.do(asBob, "POST", "/api/v1/tokens", map[string]any{"name": "ci", "scopes": []string{"repository:bob/*:pull"}}), 201, "")
	toks, err := f.store.ListTokens(ctx, "bob")
	if err != nil || len(toks) != 1 {
		t.Fatalf("bob's tokens: %+v, %v", toks, err)
	}
	viaToken := f.jwtVia("bob", toks[0].ID, 0)
	f.want(f.do(bearer(viaToken), "GET", "/api/v1/tokens", nil), 200, "")
	f.want(f.do(asBob, "DELETE", "/api/v1/tokens/ci", nil), 204, "")
	f.want(f.do(asBob, "POST", "/api/v1/tokens", map[string]any{"name": "ci", "scopes": []string{"repository:bob/*:pull"}}), 201, "")
	f.want(f.do(bearer(viaToken), "GET", "/api/v1/tokens", nil), 401, "UNAUTHORIZED")
	// Someone else's token id in a JWT of bob's does not make bob its owner.
	f.want(f.do(basic("alice", "a-brand-new-password"), "POST", "/api/v1/tokens", map[string]any{"name": "mine", "scopes": []string{"repository:alice/*:pull"}}), 201, "")
	alices, _ := f.store.ListTokens(ctx, "alice")
	f.want(f.do(bearer(f.jwtVia("bob", alices[0].ID, 0)), "GET", "/api/v1/user", nil), 401, "UNAUTHORIZED")

	// A JWT from a refresh session ends with the session.
	u, _ := f.store.GetUser(ctx, "bob")
	h := sha256.Sum256([]byte("hubr_bob"))
	sess, err := f.store.CreateSession(ctx, accounts.Session{UserID: u.ID, Kind: accounts.SessionRefresh, Hash: h[:], ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	viaSession := f.jwtVia("bob", 0, sess.ID)
	f.want(f.do(bearer(viaSession), "GET", "/api/v1/user", nil), 200, "")
	f.want(f.do(asBob, "DELETE", fmt.Sprintf("/api/v1/users/bob/sessions/%d", sess.ID), nil), 204, "")
	f.want(f.do(bearer(viaSession), "GET", "/api/v1/user", nil), 401, "UNAUTHORIZED")

	// A JWT of an earlier hubctl, which named the account only.
	legacy, err := f.issuer.Issue("bob", token.Hub{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.want(f.do(bearer(legacy.Raw), "GET", "/api/v1/user", nil), 401, "UNAUTHORIZED")
}

// TestSessionsAPI: users list and end their own sessions, admins anyone's, access
// tokens neither; "sign out everywhere" ends registry tokens too.
func TestSessionsAPI(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	u, _ := f.store.GetUser(ctx, "alice")
	var ids []int64
	for _, secret := range []string{"hubr_one", "hubr_two"} {
		h := sha256.Sum256([]byte(secret))
		s, err := f.store.CreateSession(ctx, accounts.Session{UserID: u.ID, Kind: accounts.SessionRefresh, Hash: h[:],
			ExpiresAt: time.Now().Add(time.Hour), Remote: "192.0.2.9", Client: "docker/28.2.2"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	list := decodeAs[[]hubtypes.Session](t, f.want(f.do(asAlice, "GET", "/api/v1/users/alice/sessions", nil), 200, ""))
	if len(list) != 2 || list[0].ID != ids[1] || !list[0].Active || list[0].Client != "docker/28.2.2" || list[0].Remote != "192.0.2.9" {
		t.Fatalf("sessions = %+v", list)
	}
	f.want(f.do(asBob, "GET", "/api/v1/users/alice/sessions", nil), 403, "DENIED")
	f.want(f.do(asBob, "DELETE", fmt.Sprintf("/api/v1/users/alice/sessions/%d", ids[0]), nil), 403, "DENIED")
	f.want(f.do(asBob, "DELETE", fmt.Sprintf("/api/v1/users/bob/sessions/%d", ids[0]), nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asAdmin, "GET", "/api/v1/users/alice/sessions", nil), 200, "")
	f.want(f.do(asAlice, "DELETE", "/api/v1/users/alice/sessions/abc", nil), 400, "INVALID_REQUEST")
	tok := f.token(asAlice, "t", "repository:alice/*:pull")
	f.want(f.do(bearer(tok), "GET", "/api/v1/users/alice/sessions", nil), 403, "DENIED")
	f.want(f.do(bearer(tok), "DELETE", "/api/v1/users/alice/sessions", nil), 403, "DENIED")

	jwt := f.jwtVia("alice", 0, 0)
	f.want(f.do(bearer(jwt), "GET", "/api/v1/user", nil), 200, "")
	f.want(f.do(asAlice, "DELETE", "/api/v1/users/alice/sessions", nil), 204, "")
	f.want(f.do(bearer(jwt), "GET", "/api/v1/user", nil), 401, "UNAUTHORIZED")
	for _, s := range decodeAs[[]hubtypes.Session](t, f.want(f.do(asAlice, "GET", "/api/v1/users/alice/sessions", nil), 200, "")) {
		if s.Active || s.RevokedAt == "" {
			t.Errorf("session %+v still active after signing out everywhere", s)
		}
	}
	f.wantAudit("session.end_all", "alice", "alice")
}

// TestDeleteNamespacePurge: deleting a user or organisation that holds repositories is
// refused with how many, or purges them on request.
func TestDeleteNamespacePurge(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.want(f.do(asAlice, "POST", "/api/v1/orgs", map[string]any{"name": "acme"}), 201, "")
	for _, repo := range []string{"bob/app", "bob/web", "acme/app"} {
		if err := f.store.EnsureRepository(ctx, repo); err != nil {
			t.Fatal(err)
		}
	}
	r := f.want(f.do(asAdmin, "DELETE", "/api/v1/users/bob", nil), 409, "CONFLICT")
	if !strings.Contains(string(r.body), "2 repositories") {
		t.Errorf("refusal %s does not say how many repositories", r.body)
	}
	f.want(f.do(asAdmin, "DELETE", "/api/v1/users/bob?purge=yes", nil), 400, "INVALID_REQUEST")
	d := decodeAs[hubtypes.Deleted](t, f.want(f.do(asAdmin, "DELETE", "/api/v1/users/bob?purge=true", nil), 200, ""))
	if d.PurgedRepositories != 2 {
		t.Errorf("purged %d, want 2", d.PurgedRepositories)
	}
	f.want(f.do(asAlice, "DELETE", "/api/v1/orgs/acme", nil), 409, "CONFLICT")
	f.want(f.do(asAlice, "DELETE", "/api/v1/orgs/acme?purge=true", nil), 200, "")
	if e := f.wantAudit("org.delete", "alice", "acme"); e.Detail != "purged 1 repositories" {
		t.Errorf("audit detail %q", e.Detail)
	}
	// The names are free, and whoever takes them starts with nothing.
	f.want(f.do(asBob, "POST", "/api/v1/orgs", nil), 401, "UNAUTHORIZED")
	f.want(f.do(asAlice, "POST", "/api/v1/orgs", map[string]any{"name": "bob"}), 201, "")
	if ok, err := f.store.RepositoryExists(ctx, "bob/app"); err != nil || ok {
		t.Fatalf("bob/app after purge: %v, %v", ok, err)
	}
}
