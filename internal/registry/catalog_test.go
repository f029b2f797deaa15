package registry

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/auth/token"
	"github.com/hubctl/hubctl/internal/metadata"
)

// catalogEnv is a registry with token auth whose catalog is filtered by the real
// policy over the real accounts in its database, wired as `hubctl serve` wires it.
func catalogEnv(t *testing.T) (*authEnv, accounts.Store) {
	keys, err := token.LoadOrCreateKeySet(t.TempDir() + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	v := &token.Verifier{Keys: keys, Issuer: "hubctl", Audience: "hubctl"}
	var acc accounts.Store
	e := newEnv(t, func(o *Options) {
		acc = o.Meta.(accounts.Store)
		pol := &authz.Policy{Store: acc}
		o.Auth = &Auth{Service: "hubctl", Anonymous: authz.Anonymous,
			Verify: func(raw string) (Token, error) {
				c, err := v.Verify(raw)
				if err != nil {
					return Token{}, err
				}
				return Token{Subject: c.Subject, Access: c.Access, ExpiresAt: c.ExpiresAt}, nil
			},
			Catalog: func(ctx context.Context, raw string) (metadata.CatalogFilter, error) {
				c, err := v.Verify(raw)
				if err != nil {
					return metadata.CatalogFilter{}, err
				}
				p, err := authz.PrincipalOf(ctx, acc, c.Subject, c.Hub, time.Now())
				if err != nil {
					return metadata.CatalogFilter{}, err
				}
				return pol.CatalogFilter(p), nil
			}}
	})
	return &authEnv{env: e, issuer: &token.Issuer{Keys: keys, Issuer: "hubctl", Service: "hubctl"}}, acc
}

// catalog lists every page of the catalog, n at a time, following the Link header,
// with the Authorization header auth.
func (a *authEnv) catalog(auth string, n int) []string {
	a.t.Helper()
	var all []string
	path := "/v2/_catalog?n=" + strconv.Itoa(n)
	for i := 0; path != ""; i++ {
		r := a.do("GET", path, nil, "Authorization", auth)
		a.expect(r, 200, "")
		var body struct {
			Repositories []string `json:"repositories"`
		}
		if err := json.Unmarshal(r.body, &body); err != nil || body.Repositories == nil {
			a.t.Fatalf("catalog body %s: %v", r.body, err)
		}
		if len(body.Repositories) > n {
			a.t.Fatalf("catalog page of %d with n=%d", len(body.Repositories), n)
		}
		all = append(all, body.Repositories...)
		path = ""
		if link := r.header.Get("Link"); link != "" {
			path = strings.TrimSuffix(strings.TrimPrefix(strings.Split(link, ";")[0], "<"), ">")
		}
		if i > 100 {
			a.t.Fatal("catalog pages do not end")
		}
	}
	if all == nil {
		all = []string{}
	}
	return all
}

// TestCatalogFiltered (issue 13 item 4): every valid token may list the catalog, and
// sees what it may pull: anonymous the public repositories, a user their namespace,
// their teams' grants and public ones, an access token what its scopes allow, a site
// admin everything; paginated with n, last and Link as before.
func TestCatalogFiltered(t *testing.T) {
	a, acc := catalogEnv(t)
	ctx := t.Context()
	for _, u := range []accounts.User{{Name: "alice"}, {Name: "bob"}, {Name: "root", Admin: true}, {Name: "gone"}} {
		if _, err := acc.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := acc.CreateOrg(ctx, "acme", "root"); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"alice/a", "alice/b", "alice/c", "bob/x", "acme/app", "acme/lib", "pub/one", "pub/two", "top"} {
		if err := a.h.o.Meta.EnsureRepository(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []string{"pub/one", "pub/two"} {
		if err := acc.SetRepositoryVisibility(ctx, r, accounts.Public); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(acc.CreateTeam(ctx, accounts.Team{Org: "acme", Name: "devs"}))
	must(acc.AddTeamMember(ctx, "acme", "devs", "alice"))
	must(acc.SetTeamGrant(ctx, accounts.TeamGrant{Org: "acme", Team: "devs", Repository: "acme/app", Role: accounts.RoleRead}))
	tokenIDs := map[string]int64{}
	newToken := func(user, name string, scopes ...string) {
		h := sha256.Sum256([]byte(user + name))
		tok, err := acc.CreateToken(ctx, accounts.AccessToken{User: user, Name: name, Hash: h[:], Scopes: scopes})
		must(err)
		tokenIDs[user+"/"+name] = tok.ID
	}
	newToken("alice", "ci", "repository:alice/*:pull", "repository:acme/app:push")
	newToken("alice", "acme", "repository:acme/*:pull,push")
	newToken("root", "narrow", "repository:bob/x:pull")
	newToken("alice", "old", "repository:alice/*:pull")
	must(acc.RevokeToken(ctx, "alice", "old"))

	// issue signs a registry token for subject as the token service does: with the
	// account's id and session epoch, the access token's id when tok is not "", and
	// access. A subject that is no account gets the zero Hub.
	issue := func(subject, tok string, access ...scope.Access) string {
		var hub token.Hub
		if u, err := acc.GetUser(ctx, subject); err == nil {
			hub = token.Hub{UserID: u.ID, Epoch: u.SessionEpoch}
		}
		if tok != "" {
			hub.TokenID = tokenIDs[subject+"/"+tok]
			if hub.TokenID == 0 {
				hub.TokenID = 1 << 40 // a token that never was
			}
		}
		raw, err := a.issuer.Issue(subject, hub, access)
		must(err)
		return "Bearer " + raw.Raw
	}
	// The catalog scope as the token service answers it to everyone but admins: asked,
	// nothing granted.
	denied := scope.Access{Type: scope.TypeRegistry, Name: "catalog", Actions: []string{}, Denied: []string{scope.All}}
	granted := scope.Access{Type: scope.TypeRegistry, Name: "catalog", Actions: []string{scope.All}}
	goneTok := issue("gone", "")
	// bob's sessions end (a password change): his earlier tokens see public content only.
	bobBefore := issue("bob", "")
	must(acc.EndSessions(ctx, "bob"))
	for _, tc := range []struct {
		name, auth string
		want       []string
	}{
		{"anonymous", issue(authz.Anonymous, "", denied), []string{"pub/one", "pub/two"}},
		{"alice", issue("alice", "", denied), []string{"acme/app", "alice/a", "alice/b", "alice/c", "pub/one", "pub/two"}},
		{"bob", issue("bob", ""), []string{"bob/x", "pub/one", "pub/two"}},
		{"bob before his sessions ended", bobBefore, []string{"pub/one", "pub/two"}},
		{"admin", issue("root", "", granted), []string{"acme/app", "acme/lib", "alice/a", "alice/b", "alice/c", "bob/x", "pub/one", "pub/two", "top"}},
		{"alice's token on alice/*", issue("alice", "ci"), []string{"alice/a", "alice/b", "alice/c"}},
		{"alice's token on acme/*", issue("alice", "acme"), []string{"acme/app"}},
		{"admin's token on bob/x", issue("root", "narrow", denied), []string{"bob/x"}},
		{"a revoked token", issue("alice", "old"), []string{"pub/one", "pub/two"}},
		{"a token that never was", issue("alice", "nosuch"), []string{"pub/one", "pub/two"}},
		{"another user's token", issue("bob", "ci"), []string{"pub/one", "pub/two"}},
		{"a deleted user", goneTok, []string{"pub/one", "pub/two"}},
	} {
		if tc.name == "a deleted user" {
			_, err := acc.DeleteUser(ctx, "gone", false)
			must(err)
		}
		for _, n := range []int{2, 100} {
			if got := a.catalog(tc.auth, n); !slices.Equal(got, tc.want) {
				t.Errorf("catalog as %s, n=%d = %q, want %q", tc.name, n, got, tc.want)
			}
		}
	}

	// Without a token: a challenge for the catalog scope, as before.
	r := a.do("GET", "/v2/_catalog", nil)
	a.expect(r, 401, "UNAUTHORIZED")
	if !strings.Contains(r.header.Get("WWW-Authenticate"), `scope="registry:catalog:*"`) {
		t.Errorf("challenge %q does not ask for the catalog scope", r.header.Get("WWW-Authenticate"))
	}
	// last and n as the spec has them.
	r = a.do("GET", "/v2/_catalog?n=1&last=alice/a", nil, "Authorization", issue("alice", ""))
	a.expect(r, 200, "")
	if string(r.body) != `{"repositories":["alice/b"]}` || !strings.Contains(r.header.Get("Link"), "last=alice%2Fb") {
		t.Errorf("catalog n=1 last=alice/a: %s, Link %q", r.body, r.header.Get("Link"))
	}
}
