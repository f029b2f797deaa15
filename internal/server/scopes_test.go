package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// apiDo sends an API request with the Authorization header auth and returns the status
// and body.
func apiDo(t *testing.T, method, u, auth string, body any) (int, string) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

func basicAuth(user, pass string) string {
	req, _ := http.NewRequest("GET", "http://x", nil)
	req.SetBasicAuth(user, pass)
	return req.Header.Get("Authorization")
}

// TestNarrowTokenAndItsRegistryTokenCannotReadTheHub is item 6 against a real server:
// the admin's repository:admin/x:pull token, and the registry JWT /token hands out for
// it, read neither user emails, nor the audit log, nor teams, members and grants.
func TestNarrowTokenAndItsRegistryTokenCannotReadTheHub(t *testing.T) {
	r := start(t, map[string]string{"auth.mode": "token"})
	base := "http://" + r.addr
	admin := basicAuth(AdminUser, testAdminPassword)
	mustAPI := func(method, path string, body any, want int) string {
		t.Helper()
		code, b := apiDo(t, method, base+path, admin, body)
		if code != want {
			t.Fatalf("%s %s = %d %s", method, path, code, b)
		}
		return b
	}
	mustAPI("POST", "/api/v1/users", map[string]any{"name": "alice", "email": "alice@example.com", "password": "alice-password"}, 201)
	mustAPI("POST", "/api/v1/orgs", map[string]any{"name": "acme"}, 201)
	var tok struct{ Token string }
	_ = json.Unmarshal([]byte(mustAPI("POST", "/api/v1/tokens", map[string]any{"name": "narrow", "scopes": []string{"repository:admin/x:pull"}}, 201)), &tok)

	q := url.Values{"service": {"hubctl"}, "scope": {"repository:admin/x:pull"}}
	code, body := apiDo(t, "GET", base+"/token?"+q.Encode(), basicAuth("ci", tok.Token), nil)
	var jwt struct{ Token string }
	if err := json.Unmarshal([]byte(body), &jwt); code != 200 || err != nil || jwt.Token == "" {
		t.Fatalf("/token with the access token = %d %s", code, body)
	}
	for name, auth := range map[string]string{
		"access token":          "Bearer " + tok.Token,
		"registry token of it":  "Bearer " + jwt.Token,
		"access token as Basic": basicAuth("admin", tok.Token),
	} {
		for _, path := range []string{"/api/v1/users", "/api/v1/users/alice", "/api/v1/audit", "/api/v1/orgs/acme/teams",
			"/api/v1/orgs/acme/teams/owners/members", "/api/v1/orgs/acme/teams/owners/grants"} {
			code, b := apiDo(t, "GET", base+path, auth, nil)
			if code != http.StatusForbidden || strings.Contains(b, "alice@example.com") || strings.Contains(b, `"admin"`) {
				t.Errorf("%s: GET %s = %d %s, want 403", name, path, code, b)
			}
		}
	}
	// The admin's password session reads them.
	if b := mustAPI("GET", "/api/v1/users", nil, 200); !strings.Contains(b, "alice@example.com") {
		t.Fatalf("users: %s", b)
	}
}

// TestFailedLoginNamesReachTheAuditLogEscaped: the user name of a failed login is what
// the attacker typed; the audit log keeps it, escaped and bounded.
func TestFailedLoginNamesReachTheAuditLogEscaped(t *testing.T) {
	r := start(t, map[string]string{"auth.mode": "token"})
	base := "http://" + r.addr
	forged := "eve\n99  2026-01-01T00:00:00Z  admin  login  -  10.0.0.1  -\x1b]0;pwned\x07" + strings.Repeat("y", 10000)
	if code, _ := apiDo(t, "GET", base+"/token?service=hubctl", basicAuth(forged, "guess"), nil); code != 401 {
		t.Fatalf("forged login = %d", code)
	}
	code, body := apiDo(t, "GET", base+"/api/v1/audit?action=login.failed", basicAuth(AdminUser, testAdminPassword), nil)
	var page struct {
		Entries []struct{ Actor string }
	}
	if err := json.Unmarshal([]byte(body), &page); code != 200 || err != nil || len(page.Entries) != 1 {
		t.Fatalf("audit = %d %s", code, body)
	}
	a := page.Entries[0].Actor
	if strings.ContainsAny(a, "\n\x1b\x07") || len(a) > 256 || !strings.HasPrefix(a, `eve\n99`) {
		t.Fatalf("actor stored raw or unbounded: %q (%d bytes)", a, len(a))
	}
}
