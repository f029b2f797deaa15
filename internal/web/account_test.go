package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/web"
)

// tokenStatus is the status /token answers user:pass with.
func (h *hub) tokenStatus(user, pass string) int {
	h.t.Helper()
	req, _ := http.NewRequest("GET", h.url("/token?service=hubctl"), nil)
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestSettingsPermissions: the settings page and its actions are the signed-in
// viewer's own: anonymous is sent to sign in (GET) or refused (POST), and every
// action is refused without the form's token or from another origin, changing
// nothing.
func TestSettingsPermissions(t *testing.T) {
	h := startHub(t)
	h.user("alice")
	anon := h.browser()
	if p := anon.get("/settings"); p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Header.Get("Location"), "/login") {
		t.Errorf("anonymous /settings: %d %q", p.Status, p.Header.Get("Location"))
	}
	alice := h.browser()
	alice.login("alice")
	set := alice.get("/settings")
	if set.Status != 200 || !strings.Contains(set.Body, "this browser") || !strings.Contains(set.Body, `action="/settings/password"`) {
		t.Fatalf("alice's settings: %d\n%s", set.Status, set.Body)
	}
	wantHeaders(t, "settings", set)
	csrf := set.csrf(t)
	pw := url.Values{"current": {"alice-password"}, "new": {"changed-password"}, "confirm": {"changed-password"}}
	actions := map[string]url.Values{
		"/settings/password":         pw,
		"/settings/email":            {"email": {"evil@example.com"}},
		"/settings/sessions/end-all": {},
		"/settings/sessions/end":     {"id": {"1"}},
	}
	for path, form := range actions {
		if p := anon.post(path, form); p.Status != http.StatusForbidden {
			t.Errorf("anonymous POST %s: %d", path, p.Status)
		}
		if p := alice.post(path, form); p.Status != http.StatusForbidden {
			t.Errorf("POST %s without a token: %d", path, p.Status)
		}
		withToken := url.Values{"csrf": {csrf}}
		for k, v := range form {
			withToken[k] = v
		}
		if p := alice.postWith(path, withToken, map[string]string{"Origin": "http://evil.example"}); p.Status != http.StatusForbidden {
			t.Errorf("POST %s from another origin: %d", path, p.Status)
		}
	}
	if h.tokenStatus("alice", "alice-password") != 200 {
		t.Error("a refused password change changed the password")
	}
	if p := alice.get("/settings"); p.Status != 200 || strings.Contains(p.Body, "evil@example.com") {
		t.Errorf("a refused post changed the account or ended the session: %d", p.Status)
	}
}

// TestPasswordChange: a wrong current password is refused and counts as a failed
// sign-in (the shared rate limit); the right one changes the password, ends every
// other session (web and docker login) and keeps this browser signed in.
func TestPasswordChange(t *testing.T) {
	h := startHub(t)
	h.user("alice")
	b1, b2 := h.browser(), h.browser()
	b1.login("alice")
	b2.login("alice")
	csrf := b1.get("/settings").csrf(t)
	change := func(cur, next, confirm string) page {
		return b1.post("/settings/password", url.Values{"csrf": {csrf}, "current": {cur}, "new": {next}, "confirm": {confirm}})
	}
	if p := change("alice-password", "short", "short"); p.Status != http.StatusBadRequest {
		t.Errorf("short password: %d", p.Status)
	}
	if p := change("alice-password", "new-password-1", "new-password-2"); p.Status != http.StatusBadRequest {
		t.Errorf("confirmation differs: %d", p.Status)
	}
	if p := change("wrong-password", "new-password-1", "new-password-1"); p.Status != http.StatusUnauthorized ||
		!strings.Contains(p.Body, "current password is not right") {
		t.Errorf("wrong current password: %d", p.Status)
	}
	p := change("alice-password", "new-password-1", "new-password-1")
	if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/settings?done=password" {
		t.Fatalf("password change: %d %q\n%s", p.Status, p.Header.Get("Location"), p.Body)
	}
	if s := h.tokenStatus("alice", "alice-password"); s != http.StatusUnauthorized {
		t.Errorf("old password at /token: %d", s)
	}
	if s := h.tokenStatus("alice", "new-password-1"); s != 200 {
		t.Errorf("new password at /token: %d", s)
	}
	if p := b1.get("/settings?done=password"); p.Status != 200 || !strings.Contains(p.Body, "Your password was changed") {
		t.Errorf("this browser after the change: %d", p.Status)
	}
	if p := b2.get("/settings"); p.Status != http.StatusSeeOther {
		t.Errorf("the other browser after the change: %d, want sent to sign in", p.Status)
	}

	// Failures at the password form count with those at /token and sign-in: after
	// five, even the right password is refused for a while.
	csrf = b1.get("/settings").csrf(t)
	for range 4 {
		change("wrong-password", "new-password-2", "new-password-2")
	}
	if s := h.tokenStatus("alice", "wrong"); s == 200 {
		t.Fatal("a wrong password got a token")
	}
	p = change("new-password-1", "new-password-2", "new-password-2")
	if p.Status != http.StatusTooManyRequests || p.Header.Get("Retry-After") == "" {
		t.Errorf("after 5 failures: %d, want 429 with Retry-After", p.Status)
	}
	if p := h.browser().loginAs("alice", "new-password-1"); p.Status != http.StatusTooManyRequests {
		t.Errorf("sign-in after failures at the password form: %d, want 429", p.Status)
	}
}

// TestSessionsPage: the list shows web and docker login sessions; ending another
// session signs it out; ending one that is not the viewer's is refused; "sign out
// everywhere" ends them all, this browser's too.
func TestSessionsPage(t *testing.T) {
	h := startHub(t)
	h.user("alice")
	h.user("bob")
	// A docker login leaves a refresh session.
	req, _ := http.NewRequest("GET", h.url("/token?service=hubctl&offline_token=true&client_id=docker"), nil)
	req.SetBasicAuth("alice", "alice-password")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	b1, b2, bob := h.browser(), h.browser(), h.browser()
	b1.login("alice")
	b2.login("alice")
	bob.login("bob")
	var sessions []struct {
		ID   int64  `json:"id"`
		Kind string `json:"kind"`
	}
	_ = json.Unmarshal(h.api("GET", "/api/v1/users/alice/sessions", "alice", "alice-password", nil, 200), &sessions)
	set := b1.get("/settings")
	if strings.Count(set.Body, `action="/settings/sessions/end"`) != len(sessions) || !strings.Contains(set.Body, "this browser") {
		t.Fatalf("sessions listed, want %d (%+v):\n%s", len(sessions), sessions, set.Body)
	}
	hasRefresh := false
	for _, s := range sessions {
		hasRefresh = hasRefresh || s.Kind == "refresh"
	}
	if hasRefresh && !strings.Contains(set.Body, "docker login") {
		t.Error("the docker login session is not named so")
	}
	// Bob cannot end alice's session with his own form.
	var other int64
	for _, s := range sessions {
		if s.Kind == web.SessionKind {
			other = s.ID // the newest web session is b2's (newest first)
			break
		}
	}
	if p := bob.post("/settings/sessions/end", url.Values{"csrf": {bob.get("/settings").csrf(t)}, "id": {itoa(other)}}); p.Status != http.StatusNotFound {
		t.Errorf("bob ending alice's session: %d", p.Status)
	}
	if p := b2.get("/settings"); p.Status != 200 {
		t.Fatalf("b2 lost its session to bob's attempt: %d", p.Status)
	}
	if p := b1.post("/settings/sessions/end", url.Values{"csrf": {set.csrf(t)}, "id": {itoa(other)}}); p.Status != http.StatusSeeOther {
		t.Fatalf("end b2's session: %d\n%s", p.Status, p.Body)
	}
	if p := b2.get("/settings"); p.Status != http.StatusSeeOther {
		t.Errorf("b2 after its session was ended: %d", p.Status)
	}
	b2.login("alice")
	if p := b1.post("/settings/sessions/end-all", url.Values{"csrf": {set.csrf(t)}}); p.Status != http.StatusSeeOther {
		t.Fatalf("sign out everywhere: %d", p.Status)
	}
	for i, b := range []*browser{b1, b2} {
		if p := b.get("/settings"); p.Status != http.StatusSeeOther {
			t.Errorf("browser %d after sign out everywhere: %d", i+1, p.Status)
		}
	}
	if p := bob.get("/settings"); p.Status != 200 {
		t.Errorf("bob was signed out by alice: %d", p.Status)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestNamespaceAccountMatrix: the namespace page's quota, teams and members are shown
// to the organisation's owners and site admins, not to a reader or writer of one of
// its repositories nor to anonymous (who see its public repositories only).
func TestNamespaceAccountMatrix(t *testing.T) {
	h := startHub(t)
	for _, u := range []string{"alice", "bob", "carol"} {
		h.user(u)
	}
	h.api("POST", "/api/v1/orgs", "alice", "alice-password", map[string]string{"name": "acme"}, http.StatusCreated)
	h.api("POST", "/api/v1/orgs/acme/teams", "alice", "alice-password", map[string]string{"name": "readers", "description": "<b>they read</b>"}, http.StatusCreated)
	h.api("POST", "/api/v1/orgs/acme/teams", "alice", "alice-password", map[string]string{"name": "writers"}, http.StatusCreated)
	h.api("PUT", "/api/v1/orgs/acme/teams/readers/members/bob", "alice", "alice-password", nil, http.StatusNoContent)
	h.api("PUT", "/api/v1/orgs/acme/teams/writers/members/carol", "alice", "alice-password", nil, http.StatusNoContent)
	h.api("PUT", "/api/v1/orgs/acme/teams/readers/grants", "alice", "alice-password", map[string]string{"repository": "acme/app", "role": "read"}, http.StatusOK)
	h.api("PUT", "/api/v1/orgs/acme/teams/writers/grants", "alice", "alice-password", map[string]string{"repository": "acme/app", "role": "write"}, http.StatusOK)
	h.api("PUT", "/api/v1/namespaces/acme/quota", "admin", adminPassword, map[string]int64{"bytes": 10 << 20}, http.StatusOK)
	tok := h.registryToken("alice", "alice-password", "acme/app")
	h.pushImage(tok, "acme/app", "v1", "amd64", nil, 2000)
	h.setVisibility("acme/app", "public")

	admin, alice, bob, carol, anon := h.browser(), h.browser(), h.browser(), h.browser(), h.browser()
	admin.loginAs("admin", adminPassword)
	alice.login("alice")
	bob.login("bob")
	carol.login("carol")
	for _, c := range []struct {
		who  string
		b    *browser
		sees bool
	}{{"anonymous", anon, false}, {"reader", bob, false}, {"writer", carol, false}, {"owner", alice, true}, {"site admin", admin, true}} {
		p := c.b.get("/acme")
		if p.Status != 200 || !strings.Contains(p.Body, `href="/acme/app"`) {
			t.Errorf("%s: /acme %d", c.who, p.Status)
			continue
		}
		shown := strings.Contains(p.Body, `id="quota"`) && strings.Contains(p.Body, "10.0 MiB") && strings.Contains(p.Body, `id="teams"`) &&
			strings.Contains(p.Body, "&lt;b&gt;they read&lt;/b&gt;") && strings.Contains(p.Body, `href="/carol"`)
		hidden := !strings.Contains(p.Body, `id="quota"`) && !strings.Contains(p.Body, `id="teams"`) && !strings.Contains(p.Body, "writers")
		if c.sees && !shown || !c.sees && !hidden {
			t.Errorf("%s: quota/teams shown %v, want %v:\n%s", c.who, !hidden, c.sees, p.Body)
		}
	}
	// A user's own namespace: its quota use, to them.
	if p := bob.get("/bob"); p.Status != 200 || !strings.Contains(p.Body, `id="quota"`) || strings.Contains(p.Body, `id="teams"`) {
		t.Errorf("bob's own namespace: %d\n%s", p.Status, p.Body)
	}
}
