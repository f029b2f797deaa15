package tokenserver

import (
	"net/url"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/password"
)

// offlineLogin signs user in with a refresh token, as `docker login` does.
func (f *fixture) offlineLogin(user string) string {
	f.t.Helper()
	p := scopes()
	p.Set("offline_token", "true")
	resp, tr, body := f.get(user, user+"-password", p)
	if resp.StatusCode != 200 || !strings.HasPrefix(tr.RefreshToken, password.RefreshTokenPrefix) {
		f.t.Fatalf("offline login of %s: %d %s", user, resp.StatusCode, body)
	}
	return tr.RefreshToken
}

// refresh exchanges a refresh token and returns the status.
func (f *fixture) refresh(rt string) int {
	f.t.Helper()
	resp, _, _ := f.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "service": {"hubctl"},
		"client_id": {"test"}, "scope": {"repository:alice/app:pull"}})
	return resp.StatusCode
}

// TestRefreshSessionsEnd is issue 12's attack on refresh tokens: each of a password
// change, an admin's reset, disabling, deleting the account (and a new account taking
// its name), revoking the session and "sign out everywhere" must end a refresh token
// at once, and every refresh grant is audited.
func TestRefreshSessionsEnd(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		end  func(t *testing.T, rt string)
	}{
		{"password change", func(t *testing.T, _ string) {
			u, _ := f.store.GetUser(ctx, "alice")
			h, _ := password.Hash("a-new-password")
			u.PasswordHash = h
			if err := f.store.UpdateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			u.PasswordHash, _ = password.Hash("alice-password") // for the next case
			if err := f.store.UpdateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
		}},
		{"disabled", func(t *testing.T, _ string) {
			u, _ := f.store.GetUser(ctx, "alice")
			u.Disabled = true
			if err := f.store.UpdateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			u.Disabled = false
			if err := f.store.UpdateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
		}},
		{"session revoked", func(t *testing.T, rt string) {
			s, err := f.store.SessionByHash(ctx, password.SecretHash(rt))
			if err != nil {
				t.Fatal(err)
			}
			if err := f.store.RevokeSession(ctx, "alice", s.ID); err != nil {
				t.Fatal(err)
			}
		}},
		{"signed out everywhere", func(t *testing.T, _ string) {
			if err := f.store.EndSessions(ctx, "alice"); err != nil {
				t.Fatal(err)
			}
		}},
		{"account deleted and its name taken", func(t *testing.T, _ string) {
			if _, err := f.store.DeleteUser(ctx, "alice", true); err != nil {
				t.Fatal(err)
			}
			h, _ := password.Hash("alice-password")
			if _, err := f.store.CreateUser(ctx, accounts.User{Name: "alice", PasswordHash: h}); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := f.offlineLogin("alice")
			other := f.offlineLogin("bob")
			if got := f.refresh(rt); got != 200 {
				t.Fatalf("refresh before: %d", got)
			}
			tc.end(t, rt)
			if got := f.refresh(rt); got != 401 {
				t.Fatalf("refresh after the %s: %d, want 401", tc.name, got)
			}
			if got := f.refresh(other); got != 200 {
				t.Fatalf("bob's refresh after alice's %s: %d", tc.name, got)
			}
		})
	}
	entries, err := f.store.ListAudit(ctx, accounts.AuditFilter{Action: "login.refresh", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	// Two successful refreshes per case (alice's first, bob's), each audited.
	if len(entries) != 10 {
		t.Fatalf("%d login.refresh audit entries, want 10", len(entries))
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Detail, "session ") || e.Remote != "127.0.0.1" {
			t.Fatalf("refresh audit entry %+v", e)
		}
	}
}

// TestRefreshTokenForms: what is not a live refresh session's secret is refused,
// including the JWT refresh tokens of earlier versions (bound to a name).
func TestRefreshTokenForms(t *testing.T) {
	f := newFixture(t)
	rt := f.offlineLogin("alice")
	s, err := f.store.SessionByHash(t.Context(), password.SecretHash(rt))
	if err != nil || s.User != "alice" || s.Kind != accounts.SessionRefresh || s.Remote != "127.0.0.1" || !s.Active(f.now) {
		t.Fatalf("session of the offline login = %+v, %v", s, err)
	}
	for name, tok := range map[string]string{
		"empty":              "",
		"another secret":     password.RefreshTokenPrefix + strings.Repeat("0", 43),
		"prefix of a secret": rt[:len(rt)-1],
		"an access token":    "hub_" + rt[len(password.RefreshTokenPrefix):],
		"an old JWT":         "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln",
	} {
		if got := f.refresh(tok); got != 401 {
			t.Errorf("refresh with %s: %d, want 401", name, got)
		}
	}
}
