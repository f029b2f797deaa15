package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/web"
)

// wantHeaders checks the security headers of every response.
func wantHeaders(t *testing.T, what string, p page) {
	t.Helper()
	csp := p.Header.Get("Content-Security-Policy")
	if csp != web.ContentSecurityPolicy || !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
		strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("%s: Content-Security-Policy = %q", what, csp)
	}
	for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"} {
		if got := p.Header.Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", what, k, got, v)
		}
	}
}

// TestPages renders every page against a real hub: a multi-platform image pushed by
// alice, her pages as she, bob and anonymous see them, the security headers on all
// of them, and hostile strings in labels, annotations, queries and token names
// rendered inert.
func TestPages(t *testing.T) {
	h := startHub(t)
	h.user("alice")
	h.user("bob")
	tok := h.registryToken("alice", "alice-password", "alice/app")
	evil := `<script>alert("label")</script>`
	idx, imgs := h.pushIndex(tok, "alice/app", "v1", map[string]string{"org.opencontainers.image.title": evil, "x": "y"})
	h.setVisibility("alice/app", "public")
	stok := h.registryToken("alice", "alice-password", "alice/secret")
	h.pushImage(stok, "alice/secret", "s1", "amd64", nil, 100)

	alice := h.browser()
	alice.login("alice")
	anon := h.browser()

	// Explore: anonymous sees the public repository only; alice both.
	p := anon.get("/explore")
	if p.Status != 200 || !strings.Contains(p.Body, `href="/alice/app"`) || strings.Contains(p.Body, "alice/secret") {
		t.Errorf("anonymous explore: %d\n%s", p.Status, p.Body)
	}
	p = alice.get("/")
	if !strings.Contains(p.Body, `href="/alice/app"`) || !strings.Contains(p.Body, `href="/alice/secret"`) {
		t.Errorf("alice's explore lacks her repositories:\n%s", p.Body)
	}
	// The filter goes through the catalog; a hostile query comes back escaped.
	p = alice.get("/explore?q=" + url.QueryEscape("secr"))
	if !strings.Contains(p.Body, "alice/secret") || strings.Contains(p.Body, `href="/alice/app"`) {
		t.Errorf("filter secr:\n%s", p.Body)
	}
	p = anon.get("/explore?q=" + url.QueryEscape(`"><script>alert(1)</script>`))
	if strings.Contains(p.Body, "<script>alert(1)") || !strings.Contains(p.Body, "&lt;script&gt;alert(1)") {
		t.Errorf("the query is not escaped:\n%s", p.Body)
	}

	// The tag page of the index: platforms, sizes, pull commands.
	p = anon.get("/alice/app/-/tags/v1")
	if p.Status != 200 {
		t.Fatalf("tag page: %d\n%s", p.Status, p.Body)
	}
	for _, want := range []string{"linux/amd64", "linux/arm64", "Image index", idx,
		"docker pull " + h.addr + "/alice/app:v1", "docker pull " + h.addr + "/alice/app@" + idx,
		"crane pull " + h.addr + "/alice/app:v1 image.tar", "hubctl pull " + h.addr + "/alice/app:v1",
		`href="/alice/app/-/manifests/` + imgs[0].Digest + `"`} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("tag page lacks %q", want)
		}
	}
	for _, im := range imgs {
		if size := fmt.Sprintf("%.1f KiB", float64(im.Size)/1024); !strings.Contains(p.Body, "<td>"+size+"</td>") {
			t.Errorf("tag page lacks a platform's size %s", size)
		}
	}
	// Page weight: the tag page with its stylesheet and script, uncompressed.
	css, js := anon.get("/static/style.css"), anon.get("/static/copy.js")
	weight := len(p.Body) + len(css.Body) + len(js.Body)
	t.Logf("tag page weight: %d B HTML + %d B CSS + %d B JS = %.1f KiB", len(p.Body), len(css.Body), len(js.Body), float64(weight)/1024)
	if weight > 100<<10 {
		t.Errorf("the tag page weighs %d bytes, over the 100 KiB budget", weight)
	}
	// A child: config, labels (escaped), history, layers.
	p = anon.get("/alice/app/-/manifests/" + imgs[1].Digest)
	for _, want := range []string{"linux/arm64", "/app --serve", "GREETING=&lt;b&gt;hi&lt;/b&gt;", "COPY app /app # arm64",
		"ENV GREETING=&lt;b&gt;hi&lt;/b&gt;", "4.9 KiB", "&lt;script&gt;alert(&#34;label&#34;)&lt;/script&gt;"} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("manifest page lacks %q", want)
		}
	}
	if strings.Contains(p.Body, evil) || strings.Contains(p.Body, "<b>hi") {
		t.Errorf("a label or env value is not escaped:\n%s", p.Body)
	}

	// Repository and namespace pages.
	p = anon.get("/alice/app")
	if p.Status != 200 || !strings.Contains(p.Body, `href="/alice/app/-/tags/v1"`) || !strings.Contains(p.Body, "public") {
		t.Errorf("repository page: %d\n%s", p.Status, p.Body)
	}
	p = anon.get("/alice")
	if p.Status != 200 || !strings.Contains(p.Body, `href="/alice/app"`) || strings.Contains(p.Body, "alice/secret") {
		t.Errorf("namespace page as anonymous: %d\n%s", p.Status, p.Body)
	}

	// Every page, every viewer, every status: the headers and no inline script.
	bob := h.browser()
	bob.login("bob")
	paths := []string{"/", "/explore", "/login", "/alice", "/alice/app", "/alice/app/-/tags/v1", "/alice/app/-/manifests/" + idx,
		"/alice/secret", "/nobody", "/alice/app/-/tags/nope", "/static/style.css", "/static/copy.js", "/static/nope.css",
		"/settings/tokens", "/alice/app/-/bogus/x", "/v3", "/bob"}
	inline := regexp.MustCompile(`(?i)<script>|<script [^>]*>[^<]|\son[a-z]+=|style=`)
	for _, b := range []*browser{anon, alice, bob} {
		for _, path := range paths {
			p := b.get(path)
			wantHeaders(t, path, p)
			if strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") && inline.MatchString(p.Body) {
				t.Errorf("%s: inline script, style or event handler: %q", path, inline.FindString(p.Body))
			}
		}
	}
	p = anon.postWith("/settings/tokens", url.Values{}, nil)
	wantHeaders(t, "refused POST", p)
}

// TestPrivateLooksMissing: to another user and to anonymous visitors, a private
// repository, its tags, its namespace and things that do not exist give the same
// answer, byte for byte.
func TestPrivateLooksMissing(t *testing.T) {
	h := startHub(t)
	h.user("alice")
	h.user("bob")
	tok := h.registryToken("alice", "alice-password", "alice/secret")
	img := h.pushImage(tok, "alice/secret", "v1", "amd64", nil, 100)

	bob, anon, alice := h.browser(), h.browser(), h.browser()
	bob.login("bob")
	alice.login("alice")
	missing := anon.get("/alice/nothing")
	if missing.Status != http.StatusNotFound {
		t.Fatalf("missing repository: %d", missing.Status)
	}
	for _, b := range []*browser{anon, bob} {
		for _, path := range []string{"/alice/secret", "/alice/secret/-/tags/v1", "/alice/secret/-/manifests/" + img.Digest,
			"/alice", "/nobody", "/alice/nothing/-/tags/v1"} {
			p := b.get(path)
			want := missing
			if b == bob {
				want = bob.get("/alice/nothing")
			}
			if p.Status != http.StatusNotFound || p.Body != want.Body {
				t.Errorf("%s: %d, and the body differs from a missing repository's: %v\n%s", path, p.Status, p.Body != want.Body, p.Body)
			}
		}
		if p := b.get("/explore"); strings.Contains(p.Body, "alice/secret") {
			t.Errorf("explore shows alice/secret to an outsider")
		}
	}
	for _, path := range []string{"/alice/secret", "/alice/secret/-/tags/v1", "/alice"} {
		if p := alice.get(path); p.Status != 200 || !strings.Contains(p.Body, "secret") {
			t.Errorf("alice's own %s: %d", path, p.Status)
		}
	}
}

// TestCSRF: a form post from another origin, without a token, with another session's
// token or with no origin at all is refused and changes nothing.
func TestCSRF(t *testing.T) {
	h := startHub(t)
	h.user("alice")
	h.user("bob")
	alice, bob := h.browser(), h.browser()
	alice.login("alice")
	bob.login("bob")
	tokenPage := alice.get("/settings/tokens")
	good := tokenPage.csrf(t)
	form := func(csrf string) url.Values {
		return url.Values{"csrf": {csrf}, "name": {"stolen"}, "scopes": {"repository:alice/*:pull"}, "expires": {"30"}}
	}
	cases := []struct {
		name string
		form url.Values
		hdr  map[string]string
	}{
		{"another origin", form(good), map[string]string{"Origin": "http://evil.example"}},
		{"another origin by fetch metadata", form(good), map[string]string{"Origin": alice.origin, "Sec-Fetch-Site": "cross-site"}},
		{"a null origin", form(good), map[string]string{"Origin": "null", "Referer": alice.origin + "/settings/tokens"}},
		{"a referer of another site", form(good), map[string]string{"Referer": "http://evil.example/x"}},
		{"neither origin nor referer", form(good), nil},
		{"no token", form(""), map[string]string{"Origin": alice.origin}},
		{"a wrong token", form(good + "x"), map[string]string{"Origin": alice.origin}},
		{"bob's token", form(bob.get("/settings/tokens").csrf(t)), map[string]string{"Origin": alice.origin}},
	}
	for _, c := range cases {
		p := alice.postWith("/settings/tokens", c.form, c.hdr)
		if p.Status != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", c.name, p.Status)
		}
		wantHeaders(t, c.name, p)
	}
	if p := alice.postWith("/logout", url.Values{"csrf": {good}}, map[string]string{"Origin": "http://evil.example"}); p.Status != http.StatusForbidden {
		t.Errorf("cross-origin logout: %d", p.Status)
	}
	if p := alice.get("/settings/tokens"); p.Status != 200 || strings.Contains(p.Body, "stolen") {
		t.Fatalf("a refused post made a token, or ended the session: %d", p.Status)
	}
	var tokens []json.RawMessage
	_ = json.Unmarshal(h.api("GET", "/api/v1/tokens", "alice", "alice-password", nil, 200), &tokens)
	if len(tokens) != 0 {
		t.Errorf("tokens after refused posts: %d", len(tokens))
	}
	// The sign-in form: from another origin, or without its cookie's token.
	anon := h.browser()
	login := anon.get("/login")
	if p := anon.postWith("/login", url.Values{"csrf": {login.loginCSRF(t)}, "username": {"alice"}, "password": {"alice-password"}},
		map[string]string{"Origin": "http://evil.example"}); p.Status != http.StatusForbidden {
		t.Errorf("cross-origin sign-in: %d", p.Status)
	}
	if p := h.browser().post("/login", url.Values{"csrf": {login.loginCSRF(t)}, "username": {"alice"}, "password": {"alice-password"}}); p.Status != http.StatusForbidden {
		t.Errorf("sign-in without the form's cookie: %d", p.Status)
	}
	// The right token from the right origin works.
	if p := alice.post("/settings/tokens", form(good)); p.Status != http.StatusCreated {
		t.Errorf("a good post: %d\n%s", p.Status, p.Body)
	}
}

// TestSessions: cookie attributes; a cookie planted before sign-in is never the
// session after it; signing in again ends the previous session; logout ends the
// session in the store, so the old cookie no longer signs in.
func TestSessions(t *testing.T) {
	h := startHub(t)
	h.user("alice")
	b := h.browser()
	form := b.get("/login")
	planted := "hubw_0000000000000000000000000000000000000000000"
	u, _ := url.Parse(h.url("/"))
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: web.SessionCookie, Value: planted, Path: "/"}})
	p := b.post("/login", url.Values{"csrf": {form.loginCSRF(t)}, "username": {"alice"}, "password": {"alice-password"}, "next": {"//evil.example/x"}})
	if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/" {
		t.Fatalf("sign in: %d to %q", p.Status, p.Header.Get("Location"))
	}
	var set *http.Cookie
	for _, c := range (&http.Response{Header: p.Header}).Cookies() {
		if c.Name == web.SessionCookie {
			set = c
		}
	}
	if set == nil || !set.HttpOnly || set.SameSite != http.SameSiteLaxMode || set.Secure || set.Path != "/" {
		t.Fatalf("session cookie = %+v, want HttpOnly, SameSite=Lax, not Secure on plain HTTP", set)
	}
	first := b.cookie(web.SessionCookie)
	if first == planted || !strings.HasPrefix(first, "hubw_") {
		t.Fatalf("session after sign-in = %q (planted %q)", first, planted)
	}
	if p := b.get("/settings/tokens"); p.Status != 200 {
		t.Fatalf("signed in, tokens page: %d", p.Status)
	}
	// Signing in again (an attacker's session planted in a victim's browser, say)
	// starts a new session and ends the one the browser came with.
	b.login("alice")
	second := b.cookie(web.SessionCookie)
	if second == first {
		t.Fatal("sign-in kept the session it came with")
	}
	old := h.browser()
	old.c.Jar.SetCookies(u, []*http.Cookie{{Name: web.SessionCookie, Value: first, Path: "/"}})
	if p := old.get("/settings/tokens"); p.Status != http.StatusSeeOther {
		t.Errorf("the previous session still works: %d", p.Status)
	}
	// Logout ends it server-side: replaying the cookie does not sign in.
	csrf := b.get("/settings/tokens").csrf(t)
	if p := b.post("/logout", url.Values{"csrf": {csrf}}); p.Status != http.StatusSeeOther {
		t.Fatalf("logout: %d", p.Status)
	}
	if b.cookie(web.SessionCookie) != "" {
		t.Error("logout left the cookie")
	}
	replay := h.browser()
	replay.c.Jar.SetCookies(u, []*http.Cookie{{Name: web.SessionCookie, Value: second, Path: "/"}})
	if p := replay.get("/settings/tokens"); p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Header.Get("Location"), "/login") {
		t.Errorf("a logged-out session's cookie: %d %q", p.Status, p.Header.Get("Location"))
	}
	var sessions []struct {
		Kind   string `json:"kind"`
		Active bool   `json:"active"`
	}
	_ = json.Unmarshal(h.api("GET", "/api/v1/users/alice/sessions", "alice", "alice-password", nil, 200), &sessions)
	if len(sessions) != 2 {
		t.Fatalf("sessions: %+v, want the two web sessions", sessions)
	}
	for _, s := range sessions {
		if s.Kind != web.SessionKind || s.Active {
			t.Errorf("session %+v, want an ended web session", s)
		}
	}
	// A wrong password says so, and nothing more.
	if p := b.loginAs("alice", "wrong-password"); p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, "Invalid username or password") {
		t.Errorf("wrong password: %d", p.Status)
	}
}

// TestLoginLimitShared: failures at /token count against the web sign-in (one guard).
func TestLoginLimitShared(t *testing.T) {
	h := startHub(t)
	h.user("alice")
	for range 5 {
		req, _ := http.NewRequest("GET", h.url("/token?service=hubctl"), nil)
		req.SetBasicAuth("alice", "wrong")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	p := h.browser().loginAs("alice", "alice-password")
	if p.Status != http.StatusTooManyRequests || p.Header.Get("Retry-After") == "" {
		t.Errorf("sign-in after 5 failures at /token: %d, want 429 with Retry-After", p.Status)
	}
}

// TestTokens: create (secret shown once, works), hostile names escaped, bad input
// refused, revoke (no longer works).
func TestTokens(t *testing.T) {
	h := startHub(t)
	h.user("alice")
	b := h.browser()
	if p := b.get("/settings/tokens"); p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/login?next=%2Fsettings%2Ftokens" {
		t.Errorf("signed out: %d %q", p.Status, p.Header.Get("Location"))
	}
	b.login("alice")
	csrf := b.get("/settings/tokens").csrf(t)
	name := `<img src=x onerror=alert(1)>`
	p := b.post("/settings/tokens", url.Values{"csrf": {csrf}, "name": {name}, "scopes": {"repository:alice/*:pull\nhub:accounts:read"}, "expires": {"7"}})
	if p.Status != http.StatusCreated {
		t.Fatalf("create: %d\n%s", p.Status, p.Body)
	}
	secret := regexp.MustCompile(`<code id="secret">(hub_[0-9A-Za-z]+)</code>`).FindStringSubmatch(p.Body)
	if secret == nil {
		t.Fatalf("no secret on the page:\n%s", p.Body)
	}
	if strings.Contains(p.Body, "<img src=x") || !strings.Contains(p.Body, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Errorf("the token name is not escaped")
	}
	h.api("GET", "/api/v1/user", "alice", secret[1], nil, 200)
	if p := b.get("/settings/tokens"); strings.Contains(p.Body, secret[1]) || !strings.Contains(p.Body, "repository:alice/*:pull") {
		t.Errorf("the list shows the secret again, or lacks the token")
	}
	for _, bad := range []url.Values{
		{"name": {"x"}, "scopes": {"bogus"}, "expires": {"7"}},
		{"name": {"x"}, "scopes": {""}, "expires": {"7"}},
		{"name": {"x"}, "scopes": {"repository:a/b:pull"}, "expires": {"8"}},
		{"name": {"a/b"}, "scopes": {"repository:a/b:pull"}, "expires": {"7"}},
		{"name": {name}, "scopes": {"repository:a/b:pull"}, "expires": {"7"}}, // taken
	} {
		bad.Set("csrf", csrf)
		if p := b.post("/settings/tokens", bad); p.Status != http.StatusBadRequest && p.Status != http.StatusConflict {
			t.Errorf("%v: %d", bad, p.Status)
		}
	}
	p = b.post("/settings/tokens/revoke", url.Values{"csrf": {csrf}, "name": {name}})
	if p.Status != http.StatusSeeOther {
		t.Fatalf("revoke: %d\n%s", p.Status, p.Body)
	}
	h.api("GET", "/api/v1/user", "alice", secret[1], nil, 401)
	if p := b.get("/settings/tokens?done=revoked"); !strings.Contains(p.Body, "revoked") {
		t.Errorf("the list does not say revoked")
	}
	if p := b.post("/settings/tokens/revoke", url.Values{"csrf": {csrf}, "name": {"nope"}}); p.Status != http.StatusNotFound {
		t.Errorf("revoke a missing token: %d", p.Status)
	}
}

// TestReservedNames: a user or an organisation cannot take a name a hub route needs.
func TestReservedNames(t *testing.T) {
	h := startHub(t)
	for _, n := range []string{"login", "static", "explore", "settings", "v2", "api"} {
		h.api("POST", "/api/v1/users", "admin", adminPassword, map[string]string{"name": n, "password": "long-enough-password"}, http.StatusBadRequest)
		h.api("POST", "/api/v1/orgs", "admin", adminPassword, map[string]string{"name": n}, http.StatusBadRequest)
	}
	// The reserved paths are the hub's, not a namespace page.
	b := h.browser()
	if p := b.get("/login"); p.Status != 200 || !strings.Contains(p.Body, `action="/login"`) {
		t.Errorf("/login: %d", p.Status)
	}
	if p := b.get("/healthz"); p.Status != 200 || strings.Contains(p.Body, "<html") {
		t.Errorf("/healthz is shadowed: %d %q", p.Status, p.Body)
	}
	if p := b.get("/v2/"); p.Status != http.StatusUnauthorized {
		t.Errorf("/v2/ is shadowed: %d", p.Status)
	}
}

// TestRepositoryTags: 60 tags, paged by 50, sorted by name both ways and by push time.
func TestRepositoryTags(t *testing.T) {
	h := startHub(t)
	h.user("alice")
	tok := h.registryToken("alice", "alice-password", "alice/many")
	h.pushImage(tok, "alice/many", "t00", "amd64", nil, 10)
	man := h.manifest(tok, "alice/many", "t00")
	for i := 1; i < 60; i++ {
		h.put(tok, "PUT", "/v2/alice/many/manifests/t"+twoDigits(i), "application/vnd.oci.image.manifest.v1+json", man)
	}
	b := h.browser()
	b.login("alice")
	tagRe := regexp.MustCompile(`href="/alice/many/-/tags/(t\d\d)"`)
	tags := func(path string) []string {
		p := b.get(path)
		if p.Status != 200 {
			t.Fatalf("%s: %d", path, p.Status)
		}
		var out []string
		for _, m := range tagRe.FindAllStringSubmatch(p.Body, -1) {
			out = append(out, m[1])
		}
		return out
	}
	first := tags("/alice/many?sort=name&order=asc")
	if len(first) != 50 || first[0] != "t00" || first[49] != "t49" {
		t.Errorf("page 1 by name: %d tags, %v", len(first), first)
	}
	second := tags("/alice/many?sort=name&order=asc&page=2")
	if len(second) != 10 || second[0] != "t50" {
		t.Errorf("page 2 by name: %v", second)
	}
	if desc := tags("/alice/many?sort=name&order=desc"); desc[0] != "t59" {
		t.Errorf("by name descending starts with %s", desc[0])
	}
	if pushed := tags("/alice/many"); pushed[0] != "t59" {
		t.Errorf("by push time (the default, newest first) starts with %s", pushed[0])
	}
	if far := tags("/alice/many?page=99&sort=bogus"); len(far) != 10 {
		t.Errorf("a page past the end shows the last one: %d tags", len(far))
	}
}

func twoDigits(i int) string { return string([]byte{byte('0' + i/10), byte('0' + i%10)}) }
