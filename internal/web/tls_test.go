package web_test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/password"
	"github.com/hubctl/hubctl/internal/auth/ratelimit"
	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/web"
)

// TestSecureCookie: the session cookie is Secure when the sign-in came over TLS, and
// when the hub's external URL is https (TLS ends at a proxy in front of it).
func TestSecureCookie(t *testing.T) {
	ctx := context.Background()
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	blobs, err := blobstore.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	hash, err := password.Hash("alice-password")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateUser(ctx, accounts.User{Name: "alice", PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	handler := func(external string) http.Handler {
		h, err := web.New(web.Options{Accounts: st, Meta: st, Search: st, Views: st, Blobs: blobs, Policy: &authz.Policy{Store: st},
			Guard: ratelimit.NewGuard(ratelimit.GuardOptions{}), ExternalURL: external})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	for _, c := range []struct {
		name string
		srv  *httptest.Server
	}{
		{"TLS", httptest.NewTLSServer(handler(""))},
		{"https external URL", httptest.NewServer(handler("https://hub.example"))},
	} {
		t.Cleanup(c.srv.Close)
		client := c.srv.Client()
		client.Jar, _ = cookiejar.New(nil)
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := client.Get(c.srv.URL + "/login")
		if err != nil {
			t.Fatal(err)
		}
		p := read(t, resp)
		m := loginCSRFRe.FindStringSubmatch(p.Body)
		if m == nil {
			t.Fatalf("%s: no sign-in form", c.name)
		}
		form := url.Values{"csrf": {m[1]}, "username": {"alice"}, "password": {"alice-password"}}
		req, _ := http.NewRequest("POST", c.srv.URL+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", c.srv.URL)
		resp, err = client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: sign in: %s", c.name, resp.Status)
		}
		found := false
		for _, ck := range resp.Cookies() {
			if ck.Name == web.SessionCookie {
				found = true
				if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode {
					t.Errorf("%s: session cookie %+v, want Secure, HttpOnly, SameSite=Lax", c.name, ck)
				}
			}
		}
		if !found {
			t.Errorf("%s: no session cookie", c.name)
		}
	}
}
