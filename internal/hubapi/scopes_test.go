package hubapi_test

import (
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/hubtypes"
)

// TestNarrowTokensReadOnlyWhatTheirScopesName is issue 12's item 6 as an attacker
// tries it: an admin's token made to pull one repository, and a user's CI token, probe
// every read of the hub API outside repositories. They are refused unless a hub scope
// names the area; the same user's password session reads it all.
func TestNarrowTokensReadOnlyWhatTheirScopesName(t *testing.T) {
	f := newFixture(t)
	f.want(f.do(asAlice, "POST", "/api/v1/orgs", map[string]any{"name": "acme"}), 201, "")
	f.want(f.do(asAlice, "PUT", "/api/v1/orgs/acme/teams/owners/members/bob", nil), 204, "")
	f.want(f.do(asAlice, "PUT", "/api/v1/orgs/acme/teams/owners/grants", map[string]any{"repository": "acme/app", "role": "read"}), 200, "")

	adminSecret := f.token(asAdmin, "narrow", "repository:admin/x:pull")
	aliceSecret := f.token(asAlice, "ci", "repository:alice/private:pull")
	reads := []string{
		"/api/v1/users",
		"/api/v1/users/alice",
		"/api/v1/audit",
		"/api/v1/orgs",
		"/api/v1/orgs/acme",
		"/api/v1/orgs/acme/teams",
		"/api/v1/orgs/acme/teams/owners/members",
		"/api/v1/orgs/acme/teams/owners/grants",
		"/api/v1/namespaces/acme/usage",
		"/api/v1/namespaces/alice/usage",
	}
	for _, who := range []struct {
		name  string
		auth  auth
		reads []string
	}{
		{"admin's token as Bearer", bearer(adminSecret), reads},
		{"admin's token as password", basic("admin", adminSecret), reads},
		// alice owns acme, so her password reads its teams; her CI token must not.
		{"alice's CI token", bearer(aliceSecret), []string{"/api/v1/orgs", "/api/v1/orgs/acme", "/api/v1/orgs/acme/teams",
			"/api/v1/orgs/acme/teams/owners/members", "/api/v1/orgs/acme/teams/owners/grants", "/api/v1/namespaces/acme/usage"}},
	} {
		for _, path := range who.reads {
			r := f.want(f.do(who.auth, "GET", path, nil), 403, "DENIED")
			for _, leak := range []string{"@example.com", "owners", "acme/app", "org.create"} {
				if strings.Contains(string(r.body), leak) {
					t.Errorf("%s: GET %s leaks %q: %s", who.name, path, leak, r.body)
				}
			}
		}
	}
	// What the tokens may still do: their own account, their repository.
	f.want(f.do(bearer(adminSecret), "GET", "/api/v1/user", nil), 200, "")
	f.want(f.do(bearer(aliceSecret), "GET", "/api/v1/users/alice", nil), 200, "")
	if u := decodeAs[hubtypes.User](t, f.want(f.do(bearer(aliceSecret), "GET", "/api/v1/users/alice", nil), 200, "")); u.Usage != nil {
		t.Errorf("a token without hub:quotas:read sees its owner's usage: %+v", u.Usage)
	}

	// Sessions read as before.
	for _, path := range reads {
		f.want(f.do(asAdmin, "GET", path, nil), 200, "")
	}
	f.want(f.do(asAlice, "GET", "/api/v1/orgs/acme/teams", nil), 200, "")

	// A scope that names the area opens exactly that area.
	audit := bearer(f.token(asAdmin, "auditor", "hub:audit:read"))
	f.want(f.do(audit, "GET", "/api/v1/audit", nil), 200, "")
	f.want(f.do(audit, "GET", "/api/v1/users", nil), 403, "DENIED")
	teams := bearer(f.token(asAlice, "teams", "hub:teams:read"))
	f.want(f.do(teams, "GET", "/api/v1/orgs/acme/teams/owners/grants", nil), 200, "")
	f.want(f.do(teams, "GET", "/api/v1/namespaces/acme/usage", nil), 403, "DENIED")
	// …never beyond its owner's rights: bob's hub:*:read token is still not an admin.
	bobAll := bearer(f.token(asBob, "all", "hub:*:read"))
	f.want(f.do(bobAll, "GET", "/api/v1/audit", nil), 403, "DENIED")
	f.want(f.do(bobAll, "GET", "/api/v1/users", nil), 403, "DENIED")
	// alice's session reads acme's teams; bob is a member of owners, so with hub:*:read
	// he does too (he administers acme).
	f.want(f.do(bobAll, "GET", "/api/v1/orgs/acme/teams", nil), 200, "")
}

// TestHubScopesAreValidated: tokens take known hub areas with read only.
func TestHubScopesAreValidated(t *testing.T) {
	f := newFixture(t)
	for _, s := range []string{"hub:accounts:read", "hub:orgs:read", "hub:teams:read", "hub:audit:read", "hub:quotas:read", "hub:*:read"} {
		f.want(f.do(asAlice, "POST", "/api/v1/tokens", map[string]any{"name": "t" + strings.NewReplacer(":", "", "*", "all").Replace(s), "scopes": []string{s}}), 201, "")
	}
	for _, s := range []string{"hub:accounts:write", "hub:teams:*", "hub:secrets:read", "hub(x):audit:read"} {
		r := f.want(f.do(asAlice, "POST", "/api/v1/tokens", map[string]any{"name": "bad", "scopes": []string{s}}), 400, "INVALID_REQUEST")
		if !strings.Contains(string(r.body), "hub") {
			t.Errorf("scope %s refused with %s", s, r.body)
		}
	}
}

// TestOutsidersGetOneAnswerForNamespaces is item 8: whether a namespace exists is not
// told to someone who may not see it.
func TestOutsidersGetOneAnswerForNamespaces(t *testing.T) {
	f := newFixture(t)
	f.want(f.do(asAlice, "POST", "/api/v1/orgs", map[string]any{"name": "acme"}), 201, "")
	same := func(existing, missing string) {
		t.Helper()
		a := f.do(asBob, "GET", existing, nil)
		b := f.do(asBob, "GET", missing, nil)
		strip := func(r response, name string) string { return strings.ReplaceAll(string(r.body), name, "NAME") }
		if a.status != b.status || strip(a, "alice") != strip(b, "nosuch") && strip(a, "acme") != strip(b, "nosuch") {
			t.Errorf("GET %s = %d %s\nGET %s = %d %s", existing, a.status, a.body, missing, b.status, b.body)
		}
		if a.status != 404 {
			t.Errorf("GET %s = %d, want 404", existing, a.status)
		}
	}
	same("/api/v1/namespaces/alice/usage", "/api/v1/namespaces/nosuch/usage")
	same("/api/v1/namespaces/acme/usage", "/api/v1/namespaces/nosuch/usage")
	same("/api/v1/orgs/alice", "/api/v1/orgs/nosuch")
	same("/api/v1/orgs/alice/teams", "/api/v1/orgs/nosuch/teams")
}
