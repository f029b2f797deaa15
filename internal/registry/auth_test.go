package registry

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/auth/token"
)

// authEnv is a registry with token auth whose tokens come from a real issuer and key
// set, so the test exercises the same signatures and checks as a running server.
type authEnv struct {
	*env
	issuer *token.Issuer
}

func newAuthEnv(t testing.TB) *authEnv {
	keys, err := token.LoadOrCreateKeySet(t.TempDir() + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	v := &token.Verifier{Keys: keys, Issuer: "hubctl", Audience: "hubctl"}
	e := newEnv(t, func(o *Options) {
		o.Auth = &Auth{Service: "hubctl", Anonymous: "anonymous", Verify: func(raw string) (Token, error) {
			c, err := v.Verify(raw)
			if err != nil {
				return Token{}, err
			}
			return Token{Subject: c.Subject, Access: c.Access, ExpiresAt: c.ExpiresAt}, nil
		}}
	})
	return &authEnv{env: e, issuer: &token.Issuer{Keys: keys, Issuer: "hubctl", Service: "hubctl"}}
}

// token signs a token for subject granting entries like "repository:app:pull,push";
// a "-" after the actions lists denied ones ("repository:app:pull-push").
func (a *authEnv) token(subject string, entries ...string) string {
	a.t.Helper()
	var access []scope.Access
	for _, e := range entries {
		granted, denied, _ := strings.Cut(e, "-")
		sc, err := scope.Parse(granted)
		if err != nil {
			a.t.Fatal(err)
		}
		acc := sc.Access()
		if denied != "" {
			acc.Denied = strings.Split(denied, ",")
		}
		access = append(access, acc)
	}
	tok, err := a.issuer.Issue(subject, token.Hub{}, access)
	if err != nil {
		a.t.Fatal(err)
	}
	return "Bearer " + tok.Raw
}

func TestAuthChallenges(t *testing.T) {
	a := newAuthEnv(t)
	host := strings.TrimPrefix(a.srv.URL, "http://")
	realm := `Bearer realm="http://` + host + `/token",service="hubctl"`
	for _, tc := range []struct {
		method, path, scope string
	}{
		{"GET", "/v2/", ""},
		{"GET", "/v2/_catalog", "registry:catalog:*"},
		{"GET", "/v2/team/app/tags/list", "repository:team/app:pull"},
		{"HEAD", "/v2/team/app/manifests/v1", "repository:team/app:pull"},
		{"PUT", "/v2/team/app/manifests/v1", "repository:team/app:pull,push"},
		{"DELETE", "/v2/team/app/manifests/v1", "repository:team/app:delete"},
		{"POST", "/v2/team/app/blobs/uploads/", "repository:team/app:pull,push"},
		{"DELETE", "/v2/team/app/blobs/" + digest.FromString("x").String(), "repository:team/app:delete"},
	} {
		r := a.do(tc.method, tc.path, nil)
		want := realm
		if tc.scope != "" {
			want += fmt.Sprintf(`,scope=%q`, tc.scope)
		}
		if r.status != 401 || r.header.Get("WWW-Authenticate") != want {
			t.Errorf("%s %s: %d %q, want 401 %q", tc.method, tc.path, r.status, r.header.Get("WWW-Authenticate"), want)
		}
		if tc.method != "HEAD" && r.code() != "UNAUTHORIZED" {
			t.Errorf("%s %s: code %q", tc.method, tc.path, r.code())
		}
	}
}

func TestAuthTokens(t *testing.T) {
	a := newAuthEnv(t)
	pushPull := a.token("alice", "repository:team/app:pull,push")
	// A granted token pushes and pulls.
	r := a.do("POST", "/v2/team/app/blobs/uploads/?digest="+digest.FromString("hi").String(), bytes.NewReader([]byte("hi")), "Authorization", pushPull)
	a.expect(r, 201, "")
	a.expect(a.do("HEAD", "/v2/team/app/blobs/"+digest.FromString("hi").String(), nil, "Authorization", pushPull), 200, "")
	if got := a.do("GET", "/v2/", nil, "Authorization", pushPull); got.status != 200 {
		t.Fatalf("/v2/ with a token: %d", got.status)
	}

	// Not listed at all: log in / ask again (401 insufficient_scope).
	r = a.do("GET", "/v2/team/other/tags/list", nil, "Authorization", pushPull)
	a.expect(r, 401, "UNAUTHORIZED")
	if !strings.Contains(r.header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
		t.Fatalf("challenge %q", r.header.Get("WWW-Authenticate"))
	}
	// Pull only, because only pull was asked: still 401, the client asks for push next.
	pullOnly := a.token("alice", "repository:team/app:pull")
	a.expect(a.do("POST", "/v2/team/app/blobs/uploads/", nil, "Authorization", pullOnly), 401, "UNAUTHORIZED")
	// Push asked and refused for a signed-in user: 403 DENIED, asking again cannot help.
	refused := a.token("bob", "repository:team/app:pull-push")
	a.expect(a.do("POST", "/v2/team/app/blobs/uploads/", nil, "Authorization", refused), 403, "DENIED")
	// The same refusal for an anonymous client is a 401: it should log in.
	anon := a.token("anonymous", "repository:team/app:pull-push")
	a.expect(a.do("POST", "/v2/team/app/blobs/uploads/", nil, "Authorization", anon), 401, "UNAUTHORIZED")

	// Garbage, tampered and foreign-audience tokens are refused as invalid.
	tampered := pushPull[:len(pushPull)-4] + "AAAA"
	foreign, err := (&token.Issuer{Keys: a.issuer.Keys, Issuer: "hubctl", Service: "elsewhere"}).Issue("alice", token.Hub{}, []scope.Access{{Type: "repository", Name: "team/app", Actions: []string{"pull"}}})
	if err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string]string{"garbage": "Bearer abc.def.ghi", "tampered": tampered, "audience": "Bearer " + foreign.Raw, "basic": "Basic YWRtaW46YWRtaW4="} {
		r := a.do("GET", "/v2/team/app/tags/list", nil, "Authorization", h)
		a.expect(r, 401, "UNAUTHORIZED")
		if name != "basic" && !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s: challenge %q", name, r.header.Get("WWW-Authenticate"))
		}
	}
}

func TestAuthMountNeedsPullOnSource(t *testing.T) {
	a := newAuthEnv(t)
	b := []byte("shared layer")
	d := digest.FromBytes(b)
	src := a.token("alice", "repository:team/src:pull,push")
	a.expect(a.do("POST", "/v2/team/src/blobs/uploads/?digest="+d.String(), bytes.NewReader(b), "Authorization", src), 201, "")

	// Push on the target but no pull on the source: no mount, a normal session.
	noSource := a.token("mallory", "repository:team/dst:pull,push")
	r := a.do("POST", fmt.Sprintf("/v2/team/dst/blobs/uploads/?mount=%s&from=team/src", d), nil, "Authorization", noSource)
	a.expect(r, 202, "")
	a.expect(a.do("HEAD", "/v2/team/dst/blobs/"+d.String(), nil, "Authorization", noSource), 404, "")

	both := a.token("alice", "repository:team/dst:pull,push", "repository:team/src:pull")
	a.expect(a.do("POST", fmt.Sprintf("/v2/team/dst/blobs/uploads/?mount=%s&from=team/src", d), nil, "Authorization", both), 201, "")
}
