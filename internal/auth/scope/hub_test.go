package scope

import (
	"strings"
	"testing"
)

func TestHubScopes(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"hub:accounts:read", true},
		{"hub:orgs:read", true},
		{"hub:teams:read", true},
		{"hub:audit:read", true},
		{"hub:quotas:read", true},
		{"hub:*:read", true},
		{"hub:accounts:write", false},
		{"hub:audit:*", false},
		{"hub:audit:read,write", false},
		{"hub:webhooks:read", true},
		{"hub:webhooks:write", true},
		{"hub:webhooks:read,write", true},
		{"hub:*:write", false},
		{"hub:workflows:read", true}, {"hub:workflows:write", true}, {"hub:deploy:read", false},
		{"hub:deploys:read", true}, {"hub:deploys:write", true}, {"hub:deploys:run", false},
		{"hub:workflows:run", true}, {"hub:workflows:read,run", true}, {"hub:webhooks:run", false}, {"hub:*:run", false},
		{"hub:accounts:run", false},
		{"hub(x):audit:read", false},
	} {
		sc, err := ParsePattern(tt.in)
		if err == nil {
			err = CheckHubScope(sc)
		}
		if (err == nil) != tt.ok {
			t.Errorf("%s: err %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
	parse := func(ss ...string) []Scope {
		var out []Scope
		for _, s := range ss {
			sc, err := ParsePattern(s)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, sc)
		}
		return out
	}
	for _, tt := range []struct {
		patterns []Scope
		area     string
		want     bool
	}{
		{parse("repository:*:*"), HubAudit, false},
		{parse("registry:catalog:*"), HubAccounts, false},
		{parse("hub:audit:read"), HubAudit, true},
		{parse("hub:audit:read"), HubTeams, false},
		{parse("hub:*:read"), HubTeams, true},
		{parse("repository:a/b:pull", "hub:teams:read"), HubTeams, true},
	} {
		if got := HubAllows(tt.patterns, tt.area, HubRead); got != tt.want {
			t.Errorf("HubAllows(%v, %s) = %v, want %v", tt.patterns, tt.area, got, tt.want)
		}
	}
}

func TestDeployPatterns(t *testing.T) {
	for _, p := range []string{"web", "*", "api-*", "a", "web.v2_x", "w*"} {
		if err := CheckDeployPattern(p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	for _, p := range []string{"", "Web", "-web", "web-", "*web", "a*b", "**", "acme/web", "we b", strings.Repeat("a", 65)} {
		if err := CheckDeployPattern(p); err == nil {
			t.Errorf("%q accepted", p)
		}
	}
	grants := []string{"acme/web", "acme/api-*", "ops/*", "bad/Web", "nons"}
	for _, c := range []struct {
		ns, service string
		want        bool
	}{
		{"acme", "web", true}, {"acme", "web2", false}, {"acme", "api-v1", true}, {"acme", "api", false},
		{"ops", "anything", true}, {"acme2", "web", false}, {"bad", "Web", false}, {"nons", "", false}, {"", "web", false},
	} {
		if got := MatchDeploy(grants, c.ns, c.service); got != c.want {
			t.Errorf("MatchDeploy(%s, %s) = %v", c.ns, c.service, got)
		}
	}
}
