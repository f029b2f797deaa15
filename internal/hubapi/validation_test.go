package hubapi_test

import (
	"strings"
	"testing"
)

// TestInputIsBoundedAndPrintable is item 7 at the API: every field a client sets is
// refused with 400 when it is too long or holds control characters.
func TestInputIsBoundedAndPrintable(t *testing.T) {
	f := newFixture(t)
	f.want(f.do(asAlice, "POST", "/api/v1/orgs", map[string]any{"name": "acme"}), 201, "")
	long := strings.Repeat("a", 65)
	for _, tt := range []struct {
		who          auth
		method, path string
		body         any
	}{
		{asAdmin, "POST", "/api/v1/users", map[string]any{"name": long, "password": "long-enough"}},
		{asAdmin, "POST", "/api/v1/users", map[string]any{"name": "eve", "email": "eve@x\n3  admin  login", "password": "long-enough"}},
		{asAdmin, "POST", "/api/v1/users", map[string]any{"name": "eve", "email": "\x1b[2Jeve@x", "password": "long-enough"}},
		{asAdmin, "POST", "/api/v1/users", map[string]any{"name": "eve", "email": strings.Repeat("e", 300) + "@x", "password": "long-enough"}},
		{asAlice, "PATCH", "/api/v1/users/alice", map[string]any{"email": "alice@example.com\r\nBcc: x@y"}},
		{asAlice, "POST", "/api/v1/orgs", map[string]any{"name": long}},
		{asAlice, "POST", "/api/v1/orgs/acme/teams", map[string]any{"name": "devs", "description": "a\tb"}},
		{asAlice, "POST", "/api/v1/orgs/acme/teams", map[string]any{"name": "devs", "description": strings.Repeat("d", 257)}},
		{asAlice, "POST", "/api/v1/orgs/acme/teams", map[string]any{"name": long}},
		{asAlice, "POST", "/api/v1/tokens", map[string]any{"name": "ci\x1b[31m", "scopes": []string{"repository:alice/x:pull"}}},
		{asAlice, "POST", "/api/v1/tokens", map[string]any{"name": strings.Repeat("t", 101), "scopes": []string{"repository:alice/x:pull"}}},
		{asAlice, "POST", "/api/v1/orgs/acme/robots", map[string]any{"name": strings.Repeat("r", 60), "scopes": []string{"repository:acme/*:pull"}}},
	} {
		f.want(f.do(tt.who, tt.method, tt.path, tt.body), 400, "INVALID_REQUEST")
	}
	// What is fine stays fine.
	f.want(f.do(asAlice, "POST", "/api/v1/orgs/acme/teams", map[string]any{"name": "devs", "description": "Développeurs ✓"}), 201, "")
	f.want(f.do(asAlice, "PATCH", "/api/v1/users/alice", map[string]any{"email": "alice+hub@example.com"}), 200, "")
}
