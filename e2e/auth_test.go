package e2e

// Token auth (issue 3) driven over plain HTTP: the refresh-token flow done by hand and
// every refusal the issue lists, each checked for its status, its error code and for
// leaving the registry's content untouched. The third-party clients are in
// auth_clients_test.go.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// tokenResponse is the token service's answer (Docker token spec plus OAuth2 fields).
type tokenResponse struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	RefreshToken string `json:"refresh_token"`
}

// jwtAccess is one entry of a registry JWT's access claim.
type jwtAccess struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// jwtClaims are the registry JWT claims the tests look at.
type jwtClaims struct {
	Iss    string      `json:"iss"`
	Sub    string      `json:"sub"`
	Aud    string      `json:"aud"`
	Exp    int64       `json:"exp"`
	Nbf    int64       `json:"nbf"`
	Iat    int64       `json:"iat"`
	Jti    string      `json:"jti"`
	Access []jwtAccess `json:"access"`
}

// basic returns an Authorization header value for HTTP Basic.
func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// bearer returns request headers carrying a bearer token.
func bearer(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok}
}

// apiCall sends a hub API request authenticated with HTTP Basic; body, when not nil,
// is sent as JSON.
func apiCall(t testing.TB, s *server, method, path, user, pass string, body any) (*http.Response, []byte) {
	t.Helper()
	hdr := map[string]string{"Authorization": basic(user, pass)}
	var rd *bytes.Reader
	if body != nil {
		hdr["Content-Type"] = "application/json"
		rd = bytes.NewReader(mustJSON(t, body))
	} else {
		rd = bytes.NewReader(nil)
	}
	return do(t, method, s.URL(path), rd, hdr)
}

// createUser creates a non-admin user through the API as the site admin.
func createUser(t testing.TB, s *server, name, password string) {
	t.Helper()
	resp, body := apiCall(t, s, http.MethodPost, "/api/v1/users", "admin", adminPassword,
		map[string]any{"name": name, "password": password})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create user %s: %s %q", name, resp.Status, truncate(body, 300))
	}
}

// createAccessToken creates an access token for user through the API and returns its
// secret.
func createAccessToken(t testing.TB, s *server, user, pass, name string, scopes ...string) string {
	t.Helper()
	resp, body := apiCall(t, s, http.MethodPost, "/api/v1/tokens", user, pass,
		map[string]any{"name": name, "scopes": scopes})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create token %s for %s: %s %q", name, user, resp.Status, truncate(body, 300))
	}
	var tr struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || !strings.HasPrefix(tr.Token, "hub_") {
		t.Fatalf("create token %s: body %q: want a hub_ secret (err %v)", name, truncate(body, 300), err)
	}
	return tr.Token
}

// getToken asks GET /token for scopes, with HTTP Basic when user or pass is set, and
// returns the response and its body.
func getToken(t testing.TB, s *server, user, pass string, scopes ...string) (*http.Response, []byte) {
	t.Helper()
	q := url.Values{"service": {"hubctl"}}
	for _, sc := range scopes {
		q.Add("scope", sc)
	}
	hdr := map[string]string{}
	if user != "" || pass != "" {
		hdr["Authorization"] = basic(user, pass)
	}
	return do(t, http.MethodGet, s.URL("/token?"+q.Encode()), nil, hdr)
}

// mustToken is getToken that must succeed; it returns the registry JWT.
func mustToken(t testing.TB, s *server, user, pass string, scopes ...string) string {
	t.Helper()
	resp, body := getToken(t, s, user, pass, scopes...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /token as %q for %v: %s %q", user, scopes, resp.Status, truncate(body, 300))
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || tr.Token == "" {
		t.Fatalf("GET /token: body %q: %v", truncate(body, 300), err)
	}
	return tr.Token
}

// postToken sends the OAuth2 form to POST /token.
func postToken(t testing.TB, s *server, form url.Values) (*http.Response, []byte) {
	t.Helper()
	return do(t, http.MethodPost, s.URL("/token"), strings.NewReader(form.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
}

// jwtParts splits a JWT and decodes its header and payload.
func jwtParts(t testing.TB, raw string) (header, payload map[string]any, parts []string) {
	t.Helper()
	parts = strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("%q is not a compact JWS (want 3 parts, got %d)", truncate([]byte(raw), 60), len(parts))
	}
	dec := func(s string) map[string]any {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("JWT part %q: %v", truncate([]byte(s), 60), err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("JWT part %q: %v", b, err)
		}
		return m
	}
	return dec(parts[0]), dec(parts[1]), parts
}

// claimsOf decodes (without verifying) a registry JWT's payload.
func claimsOf(t testing.TB, raw string) jwtClaims {
	t.Helper()
	_, _, parts := jwtParts(t, raw)
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c jwtClaims
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("JWT payload %q: %v", b, err)
	}
	return c
}

// actionsFor returns the actions a JWT grants on repository name.
func actionsFor(t testing.TB, raw, name string) []string {
	t.Helper()
	var out []string
	for _, a := range claimsOf(t, raw).Access {
		if a.Type == "repository" && a.Name == name {
			out = append(out, a.Actions...)
		}
	}
	slices.Sort(out)
	return out
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// serverSigner loads the server's current ES256 signing key from its data directory,
// so the tests can mint tokens that are correctly signed but wrong in one claim (expired,
// not yet valid, another audience or issuer): a forged signature would be refused for
// the signature alone and would not test the claim check at all.
func serverSigner(t testing.TB, s *server) *ecdsa.PrivateKey {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(s.DataDir, "keys", "*.pem"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no signing key under %s/keys (err %v)", s.DataDir, err)
	}
	if len(paths) != 1 {
		t.Fatalf("want one signing key on a fresh server, found %v", paths)
	}
	b, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", paths[0])
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", paths[0], err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		t.Fatalf("%s: %T, want an ECDSA key", paths[0], k)
	}
	return ek
}

// signES256 signs header.payload with key the way JWS ES256 does (r||s, 32 bytes each).
func signES256(t testing.TB, key *ecdsa.PrivateKey, header, payload map[string]any) string {
	t.Helper()
	in := b64(mustJSON(t, header)) + "." + b64(mustJSON(t, payload))
	h := sha256.Sum256([]byte(in))
	r, sv, err := ecdsa.Sign(rand.Reader, key, h[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	sv.FillBytes(sig[32:])
	return in + "." + b64(sig)
}

// registryState is what a refused request must not change: the content rows of the
// metadata DB and the blob files on disk.
type registryState struct {
	Counts map[string]int
	Blobs  []string
}

func stateOf(t testing.TB, s *server) registryState {
	t.Helper()
	st := registryState{Counts: map[string]int{}}
	for _, table := range []string{"repositories", "manifests", "tags", "blobs", "repository_blobs", "uploads"} {
		st.Counts[table] = count(t, s.DataDir, "SELECT COUNT(*) FROM "+table)
	}
	st.Blobs = files(t, s.DataDir, "blobs")
	slices.Sort(st.Blobs)
	return st
}

// unchanged fails the test when the registry's content differs from before.
func unchanged(t testing.TB, s *server, before registryState, what string) {
	t.Helper()
	after := stateOf(t, s)
	for k, v := range before.Counts {
		if after.Counts[k] != v {
			t.Errorf("%s changed the registry: %s rows %d -> %d", what, k, v, after.Counts[k])
		}
	}
	if !slices.Equal(before.Blobs, after.Blobs) {
		t.Errorf("%s changed the blob files: %v -> %v", what, before.Blobs, after.Blobs)
	}
}

// pushImageAs uploads img's blobs and manifest under repo:ref with a bearer token.
func pushImageAs(t testing.TB, s *server, tok, repo, ref string, img image) {
	t.Helper()
	for _, b := range [][]byte{img.Config, img.Layer} {
		resp, body := do(t, http.MethodPost, s.URL("/v2/"+repo+"/blobs/uploads/?digest="+sha256Digest(b)), bytes.NewReader(b),
			map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "application/octet-stream"})
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("push blob to %s: %s %q", repo, resp.Status, truncate(body, 300))
		}
	}
	resp, body := do(t, http.MethodPut, s.URL("/v2/"+repo+"/manifests/"+ref), bytes.NewReader(img.Manifest),
		map[string]string{"Authorization": "Bearer " + tok, "Content-Type": mtOCIManifest})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push manifest %s:%s: %s %q", repo, ref, resp.Status, truncate(body, 300))
	}
}

// wantRefused asserts a refusal: one of statuses, a spec error body with one of codes.
// For a 401 from the registry it also wants the Bearer challenge, which is what makes a
// client go to the token service instead of giving up.
func wantRefused(t testing.TB, resp *http.Response, body []byte, statuses []int, codes ...string) {
	t.Helper()
	wantError(t, resp, body, statuses, codes...)
	if resp.StatusCode == http.StatusUnauthorized && strings.HasPrefix(resp.Request.URL.Path, "/v2/") {
		if ch := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer realm=") {
			t.Errorf("%s %s: 401 with WWW-Authenticate %q, want a Bearer challenge", resp.Request.Method, resp.Request.URL, ch)
		}
	}
}

// TestAuthChallenge checks the 401 challenge an unauthenticated pull gets: the realm is
// this very listener (crane and oras refuse a realm on another loopback address) and
// the scope is what the request needs.
func TestAuthChallenge(t *testing.T) {
	s := startAuthServer(t)
	resp, body := do(t, http.MethodGet, s.URL("/v2/alice/app/tags/list"), nil, nil)
	wantRefused(t, resp, body, []int{http.StatusUnauthorized}, "UNAUTHORIZED")
	want := fmt.Sprintf(`Bearer realm="http://%s/token",service="hubctl",scope="repository:alice/app:pull"`, s.Addr)
	if got := resp.Header.Get("WWW-Authenticate"); got != want {
		t.Errorf("WWW-Authenticate = %q, want %q", got, want)
	}
	// A push asks for pull and push, as docker expects.
	resp, _ = do(t, http.MethodPost, s.URL("/v2/alice/app/blobs/uploads/"), nil, nil)
	if got := resp.Header.Get("WWW-Authenticate"); !strings.Contains(got, `scope="repository:alice/app:pull,push"`) {
		t.Errorf("upload challenge = %q, want scope repository:alice/app:pull,push", got)
	}
}

// TestAuthRefreshTokenFlow does docker's OAuth2 exchange by hand: a password grant with
// access_type=offline yields a refresh token, and the refresh grant yields registry
// tokens that work, without the password.
func TestAuthRefreshTokenFlow(t *testing.T) {
	s := startAuthServer(t)
	const pw = "alice-password-1"
	createUser(t, s, "alice", pw)
	pushImageAs(t, s, mustToken(t, s, "alice", pw, "repository:alice/app:pull,push"), "alice/app", "v1", newImage(t, "amd64"))

	resp, body := postToken(t, s, url.Values{
		"grant_type": {"password"}, "service": {"hubctl"}, "client_id": {"hubctl-e2e"},
		"access_type": {"offline"}, "username": {"alice"}, "password": {pw},
		"scope": {"repository:alice/app:pull"},
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /token grant_type=password: %s %q", resp.Status, truncate(body, 300))
	}
	var first tokenResponse
	if err := json.Unmarshal(body, &first); err != nil {
		t.Fatal(err)
	}
	if first.RefreshToken == "" || first.AccessToken == "" {
		t.Fatalf("password grant with access_type=offline: %q, want access_token and refresh_token", truncate(body, 400))
	}
	if first.ExpiresIn <= 0 || first.ExpiresIn > 3600 {
		t.Errorf("expires_in = %d, want a short-lived token (default 300)", first.ExpiresIn)
	}
	if c := claimsOf(t, first.AccessToken); c.Sub != "alice" || c.Aud != "hubctl" {
		t.Errorf("access token claims sub %q aud %q, want alice and hubctl", c.Sub, c.Aud)
	}

	// The refresh grant, with a scope docker asks for on a pull and no password.
	resp, body = postToken(t, s, url.Values{
		"grant_type": {"refresh_token"}, "service": {"hubctl"}, "client_id": {"hubctl-e2e"},
		"refresh_token": {first.RefreshToken}, "scope": {"repository:alice/app:pull"},
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /token grant_type=refresh_token: %s %q", resp.Status, truncate(body, 300))
	}
	var second tokenResponse
	if err := json.Unmarshal(body, &second); err != nil || second.AccessToken == "" {
		t.Fatalf("refresh grant body %q: %v", truncate(body, 300), err)
	}
	if got := actionsFor(t, second.AccessToken, "alice/app"); !slices.Equal(got, []string{"pull"}) {
		t.Errorf("refreshed token grants %v on alice/app, want [pull]", got)
	}
	resp, body = do(t, http.MethodGet, s.URL("/v2/alice/app/tags/list"), nil, bearer(second.AccessToken))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"v1"`) {
		t.Fatalf("tags/list with the refreshed token: %s %q, want 200 with v1", resp.Status, truncate(body, 300))
	}

	// GET /token with offline_token=true is the other way to get one (docker login).
	q := url.Values{"service": {"hubctl"}, "offline_token": {"true"}, "client_id": {"e2e"}}
	resp, body = do(t, http.MethodGet, s.URL("/token?"+q.Encode()), nil, map[string]string{"Authorization": basic("alice", pw)})
	var viaGet tokenResponse
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &viaGet) != nil || viaGet.RefreshToken == "" {
		t.Errorf("GET /token?offline_token=true: %s %q, want a refresh_token", resp.Status, truncate(body, 300))
	}

	// A refresh token is not a password: the password grant refuses it.
	resp, body = postToken(t, s, url.Values{
		"grant_type": {"password"}, "service": {"hubctl"}, "username": {"alice"}, "password": {first.RefreshToken},
	})
	wantRefused(t, resp, body, []int{http.StatusUnauthorized}, "UNAUTHORIZED")

	// A garbage refresh token is refused with 401.
	resp, body = postToken(t, s, url.Values{
		"grant_type": {"refresh_token"}, "service": {"hubctl"}, "refresh_token": {first.RefreshToken + "x"},
	})
	wantRefused(t, resp, body, []int{http.StatusUnauthorized}, "UNAUTHORIZED")
}

// TestAuthRefusals covers every refusal of issue 3. Each case asserts the status, the
// error code, and that the registry's content (DB rows and blob files) did not change.
func TestAuthRefusals(t *testing.T) {
	s := startAuthServer(t)
	const alicePW, bobPW = "alice-password-1", "bob-password-1"
	createUser(t, s, "alice", alicePW)
	createUser(t, s, "bob", bobPW)

	// Seed: alice's private image, and one of bob's, pushed with password tokens.
	img := newImage(t, "amd64")
	pushImageAs(t, s, mustToken(t, s, "alice", alicePW, "repository:alice/private:pull,push"), "alice/private", "1", img)
	pushImageAs(t, s, mustToken(t, s, "bob", bobPW, "repository:bob/x:pull,push"), "bob/x", "1", newImage(t, "arm64"))
	before := stateOf(t, s)
	if before.Counts["manifests"] != 2 || before.Counts["tags"] != 2 {
		t.Fatalf("seed state %v, want 2 manifests and 2 tags", before.Counts)
	}
	manifestPath := "/v2/alice/private/manifests/" + img.ManifestDigest
	accept := map[string]string{"Accept": mtOCIManifest}
	withAuth := func(tok string, extra map[string]string) map[string]string {
		h := bearer(tok)
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	// A valid pull token of alice, the raw material of the forgeries below; proven
	// valid first so each refusal is due to the change, not to the token.
	good := mustToken(t, s, "alice", alicePW, "repository:alice/private:pull")
	if resp, body := do(t, http.MethodGet, s.URL(manifestPath), nil, withAuth(good, accept)); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET manifest with a valid token: %s %q", resp.Status, truncate(body, 300))
	}
	goodHeader, goodPayload, goodParts := jwtParts(t, good)

	// tryForged sends a bad token to a pull and a push of alice/private and wants both
	// refused with 401 and the invalid_token challenge, and the registry unchanged.
	tryForged := func(t *testing.T, tok string) {
		t.Helper()
		resp, body := do(t, http.MethodGet, s.URL(manifestPath), nil, withAuth(tok, accept))
		wantRefused(t, resp, body, []int{http.StatusUnauthorized}, "UNAUTHORIZED")
		if ch := resp.Header.Get("WWW-Authenticate"); !strings.Contains(ch, `error="invalid_token"`) {
			t.Errorf("challenge %q, want error=\"invalid_token\"", ch)
		}
		resp, body = do(t, http.MethodPost, s.URL("/v2/alice/private/blobs/uploads/"), nil, bearer(tok))
		wantRefused(t, resp, body, []int{http.StatusUnauthorized}, "UNAUTHORIZED")
		unchanged(t, s, before, "a forged token")
	}

	t.Run("bad password", func(t *testing.T) {
		resp, body := getToken(t, s, "alice", "wrong-password", "repository:alice/private:pull")
		wantRefused(t, resp, body, []int{http.StatusUnauthorized}, "UNAUTHORIZED")
		if bytes.Contains(body, []byte(`"token"`)) {
			t.Errorf("a refused login returned a token: %q", truncate(body, 300))
		}
		resp, body = postToken(t, s, url.Values{"grant_type": {"password"}, "service": {"hubctl"},
			"username": {"alice"}, "password": {"wrong-password"}, "access_type": {"offline"}})
		wantRefused(t, resp, body, []int{http.StatusUnauthorized}, "UNAUTHORIZED")
		// An unknown user is refused alike (no user enumeration).
		resp, body = getToken(t, s, "nobody", "wrong-password", "repository:alice/private:pull")
		wantRefused(t, resp, body, []int{http.StatusUnauthorized}, "UNAUTHORIZED")
		// The hub API refuses a bad password too.
		resp, body = apiCall(t, s, http.MethodGet, "/api/v1/user", "alice", "wrong-password", nil)
		wantRefused(t, resp, body, []int{http.StatusUnauthorized}, "UNAUTHORIZED")
		unchanged(t, s, before, "a bad password")
	})

	t.Run("expired token", func(t *testing.T) {
		p := map[string]any{}
		for k, v := range goodPayload {
			p[k] = v
		}
		past := time.Now().Add(-2 * time.Hour).Unix()
		p["iat"], p["nbf"], p["exp"] = past-300, past-300, past
		tryForged(t, signES256(t, serverSigner(t, s), goodHeader, p))
	})

	t.Run("not yet valid token", func(t *testing.T) {
		p := map[string]any{}
		for k, v := range goodPayload {
			p[k] = v
		}
		future := time.Now().Add(2 * time.Hour).Unix()
		p["iat"], p["nbf"], p["exp"] = future, future, future+300
		tryForged(t, signES256(t, serverSigner(t, s), goodHeader, p))
	})

	t.Run("wrong audience or issuer, correctly signed", func(t *testing.T) {
		for claim, val := range map[string]string{"aud": "another-service", "iss": "someone-else"} {
			p := map[string]any{}
			for k, v := range goodPayload {
				p[k] = v
			}
			p[claim] = val
			t.Logf("%s=%s", claim, val)
			tryForged(t, signES256(t, serverSigner(t, s), goodHeader, p))
		}
		// The control: the same signer with the claims untouched is accepted, so the
		// refusals above are due to the claim alone.
		ok := signES256(t, serverSigner(t, s), goodHeader, goodPayload)
		if resp, body := do(t, http.MethodGet, s.URL(manifestPath), nil, withAuth(ok, accept)); resp.StatusCode != http.StatusOK {
			t.Fatalf("control token re-signed with the server key refused: %s %q", resp.Status, truncate(body, 300))
		}
	})

	t.Run("wrong audience: refresh token as registry bearer", func(t *testing.T) {
		resp, body := postToken(t, s, url.Values{"grant_type": {"password"}, "service": {"hubctl"},
			"username": {"alice"}, "password": {alicePW}, "access_type": {"offline"}})
		var tr tokenResponse
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &tr) != nil || tr.RefreshToken == "" {
			t.Fatalf("password grant: %s %q", resp.Status, truncate(body, 300))
		}
		// Today's refresh tokens are JWTs signed with the same keys (audience
		// hubctl/refresh), which is what makes this case worth testing; an opaque
		// refresh token must be refused just the same.
		if strings.Count(tr.RefreshToken, ".") == 2 {
			if aud := claimsOf(t, tr.RefreshToken).Aud; aud == "hubctl" {
				t.Fatalf("refresh token audience is %q, the registry's own", aud)
			}
		}
		tryForged(t, tr.RefreshToken)
	})

	t.Run("tampered token", func(t *testing.T) {
		// Flip one byte of the decoded payload (sub alice -> blice) and re-encode:
		// the signature no longer matches.
		pb, _ := base64.RawURLEncoding.DecodeString(goodParts[1])
		i := bytes.Index(pb, []byte(`"alice"`))
		if i < 0 {
			t.Fatalf("payload %s has no \"alice\"", pb)
		}
		pb[i+1] ^= 0x03
		tryForged(t, goodParts[0]+"."+b64(pb)+"."+goodParts[2])
		// Widen the grant to push, keeping the signature.
		p := map[string]any{}
		for k, v := range goodPayload {
			p[k] = v
		}
		p["access"] = []jwtAccess{{Type: "repository", Name: "alice/private", Actions: []string{"pull", "push", "delete"}}}
		tryForged(t, goodParts[0]+"."+b64(mustJSON(t, p))+"."+goodParts[2])
	})

	t.Run("alg none", func(t *testing.T) {
		h := map[string]any{"alg": "none", "typ": "JWT"}
		if kid, ok := goodHeader["kid"]; ok {
			h["kid"] = kid
		}
		tryForged(t, b64(mustJSON(t, h))+"."+goodParts[1]+".")
	})

	t.Run("HS256 signed with the public key", func(t *testing.T) {
		resp, body := do(t, http.MethodGet, s.URL("/token/jwks.json"), nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /token/jwks.json: %s", resp.Status)
		}
		var jwks struct {
			Keys []struct {
				Kid, Kty, Crv, X, Y string
			} `json:"keys"`
		}
		if err := json.Unmarshal(body, &jwks); err != nil || len(jwks.Keys) == 0 {
			t.Fatalf("JWKS %q: %v", truncate(body, 300), err)
		}
		k := jwks.Keys[0]
		x, errX := base64.RawURLEncoding.DecodeString(k.X)
		y, errY := base64.RawURLEncoding.DecodeString(k.Y)
		if errX != nil || errY != nil || k.Kty != "EC" || k.Crv != "P-256" {
			t.Fatalf("JWKS key %+v is not an EC P-256 key", k)
		}
		if k.Kid != goodHeader["kid"] {
			t.Errorf("JWKS kid %q, token kid %v", k.Kid, goodHeader["kid"])
		}
		pub := &ecdsa.PublicKey{Curve: serverSigner(t, s).Curve, X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		// The key-confusion attack uses whatever byte form a verifier would load the
		// public key as: PEM, DER, or the JWK's own JSON.
		secrets := map[string][]byte{
			"pem": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
			"der": der,
			"jwk": body,
		}
		for form, secret := range secrets {
			h := map[string]any{"alg": "HS256", "typ": "JWT", "kid": k.Kid}
			in := b64(mustJSON(t, h)) + "." + goodParts[1]
			mac := hmac.New(sha256.New, secret)
			mac.Write([]byte(in))
			t.Logf("HMAC key form: %s", form)
			tryForged(t, in+"."+b64(mac.Sum(nil)))
		}
	})

	t.Run("revoked access token", func(t *testing.T) {
		tok := createAccessToken(t, s, "alice", alicePW, "revoke-me", "repository:alice/*:pull,push")
		// It works before revocation, so the refusal below is due to the revocation.
		if got := actionsFor(t, mustToken(t, s, "ci", tok, "repository:alice/private:pull"), "alice/private"); !slices.Equal(got, []string{"pull"}) {
			t.Fatalf("access token before revocation grants %v, want [pull]", got)
		}
		resp, body := apiCall(t, s, http.MethodDelete, "/api/v1/tokens/revoke-me", "alice", alicePW, nil)
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE /api/v1/tokens/revoke-me: %s %q", resp.Status, truncate(body, 300))
		}
		resp, body = getToken(t, s, "ci", tok, "repository:alice/private:pull,push")
		wantRefused(t, resp, body, []int{http.StatusUnauthorized}, "UNAUTHORIZED")
		resp, body = postToken(t, s, url.Values{"grant_type": {"password"}, "service": {"hubctl"},
			"username": {"alice"}, "password": {tok}, "scope": {"repository:alice/private:pull"}})
		wantRefused(t, resp, body, []int{http.StatusUnauthorized}, "UNAUTHORIZED")
		// The hub API refuses it too, as a bearer and as a Basic password.
		resp, body = do(t, http.MethodGet, s.URL("/api/v1/user"), nil, bearer(tok))
		wantRefused(t, resp, body, []int{http.StatusUnauthorized}, "UNAUTHORIZED")
		resp, body = apiCall(t, s, http.MethodGet, "/api/v1/user", "alice", tok, nil)
		wantRefused(t, resp, body, []int{http.StatusUnauthorized}, "UNAUTHORIZED")
		unchanged(t, s, before, "a revoked token")
	})

	t.Run("scope escalation", func(t *testing.T) {
		tok := createAccessToken(t, s, "alice", alicePW, "pull-only", "repository:alice/private:pull")
		// Asking for more than the token's scopes is not an error: less is granted.
		jwt := mustToken(t, s, "ci", tok, "repository:alice/private:pull,push,delete", "repository:alice/other:pull,push")
		if got := actionsFor(t, jwt, "alice/private"); !slices.Equal(got, []string{"pull"}) {
			t.Errorf("pull-only token asking pull,push,delete was granted %v on alice/private, want [pull]", got)
		}
		if got := actionsFor(t, jwt, "alice/other"); len(got) != 0 {
			t.Errorf("pull-only token for alice/private was granted %v on alice/other, want nothing", got)
		}
		// Uploading with it is refused, monolithic and by session.
		b := randomBytes(t, 512)
		resp, body := do(t, http.MethodPost, s.URL("/v2/alice/private/blobs/uploads/?digest="+sha256Digest(b)), bytes.NewReader(b),
			withAuth(jwt, map[string]string{"Content-Type": "application/octet-stream"}))
		wantRefused(t, resp, body, []int{http.StatusUnauthorized, http.StatusForbidden}, "UNAUTHORIZED", "DENIED")
		resp, body = do(t, http.MethodPost, s.URL("/v2/alice/private/blobs/uploads/"), nil, bearer(jwt))
		wantRefused(t, resp, body, []int{http.StatusUnauthorized, http.StatusForbidden}, "UNAUTHORIZED", "DENIED")
		resp, body = do(t, http.MethodPut, s.URL("/v2/alice/private/manifests/escalated"), bytes.NewReader(img.Manifest),
			withAuth(jwt, map[string]string{"Content-Type": mtOCIManifest}))
		wantRefused(t, resp, body, []int{http.StatusUnauthorized, http.StatusForbidden}, "UNAUTHORIZED", "DENIED")
		// A pull-only token may not mint a broader access token through the API.
		resp, body = do(t, http.MethodPost, s.URL("/api/v1/tokens"),
			bytes.NewReader(mustJSON(t, map[string]any{"name": "wider", "scopes": []string{"repository:alice/*:pull,push,delete"}})),
			map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
		wantRefused(t, resp, body, []int{http.StatusForbidden}, "DENIED")
		unchanged(t, s, before, "a scope escalation")
	})

	t.Run("another user's private repository", func(t *testing.T) {
		jwt := mustToken(t, s, "bob", bobPW, "repository:alice/private:pull,push,delete")
		if got := actionsFor(t, jwt, "alice/private"); len(got) != 0 {
			t.Errorf("bob was granted %v on alice/private, want nothing", got)
		}
		for _, req := range []struct{ method, path string }{
			{http.MethodGet, manifestPath},
			{http.MethodGet, "/v2/alice/private/manifests/1"},
			{http.MethodHead, "/v2/alice/private/manifests/1"},
			{http.MethodGet, "/v2/alice/private/blobs/" + img.LayerDigest},
			{http.MethodGet, "/v2/alice/private/tags/list"},
			{http.MethodDelete, manifestPath},
			{http.MethodPost, "/v2/alice/private/blobs/uploads/"},
		} {
			resp, body := do(t, req.method, s.URL(req.path), nil, withAuth(jwt, accept))
			if req.method == http.MethodHead {
				if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
					t.Errorf("HEAD %s as bob: %s, want 401 or 403", req.path, resp.Status)
				}
				continue
			}
			wantRefused(t, resp, body, []int{http.StatusUnauthorized, http.StatusForbidden}, "UNAUTHORIZED", "DENIED")
			if bytes.Contains(body, img.Manifest) {
				t.Errorf("%s %s as bob leaked alice's manifest", req.method, req.path)
			}
		}
		// A cross-repository mount from alice's private repository into bob's own
		// must not link alice's blob into bob/x.
		jwtBoth := mustToken(t, s, "bob", bobPW, "repository:bob/x:pull,push", "repository:alice/private:pull")
		resp, _ := do(t, http.MethodPost, s.URL("/v2/bob/x/blobs/uploads/?mount="+img.LayerDigest+"&from=alice/private"), nil, bearer(jwtBoth))
		if resp.StatusCode == http.StatusCreated {
			t.Errorf("bob mounted %s from alice/private into bob/x (201)", img.LayerDigest)
		}
		if resp.StatusCode == http.StatusAccepted {
			// A mount that falls back to an upload session is fine (no blob linked);
			// cancel it so the uploads table is as before.
			if loc := resp.Header.Get("Location"); loc != "" {
				if !strings.HasPrefix(loc, "http") {
					loc = s.URL(loc)
				}
				do(t, http.MethodDelete, loc, nil, bearer(jwtBoth))
			}
		}
		if st := headStatusAuth(t, s, "/v2/bob/x/blobs/"+img.LayerDigest, mustToken(t, s, "bob", bobPW, "repository:bob/x:pull")); st == http.StatusOK {
			t.Errorf("alice's private layer is readable from bob/x after a mount attempt")
		}
		unchanged(t, s, before, "bob on alice's repository")
	})

	t.Run("anonymous", func(t *testing.T) {
		// An anonymous token grants nothing on a private repository.
		anon := mustToken(t, s, "", "", "repository:alice/private:pull,push")
		if got := actionsFor(t, anon, "alice/private"); len(got) != 0 {
			t.Errorf("anonymous token grants %v on alice/private, want nothing", got)
		}
		b := randomBytes(t, 256)
		// Without any token, and with the anonymous one.
		for _, auth := range []string{"", "Bearer " + anon} {
			h := func(kv ...string) map[string]string {
				m := map[string]string{}
				if auth != "" {
					m["Authorization"] = auth
				}
				for i := 0; i+1 < len(kv); i += 2 {
					m[kv[i]] = kv[i+1]
				}
				return m
			}
			resp, body := do(t, http.MethodPost, s.URL("/v2/alice/private/blobs/uploads/?digest="+sha256Digest(b)), bytes.NewReader(b),
				h("Content-Type", "application/octet-stream"))
			wantRefused(t, resp, body, []int{http.StatusUnauthorized}, "UNAUTHORIZED")
			resp, body = do(t, http.MethodPost, s.URL("/v2/anon/new/blobs/uploads/"), nil, h())
			wantRefused(t, resp, body, []int{http.StatusUnauthorized}, "UNAUTHORIZED")
			resp, body = do(t, http.MethodPut, s.URL("/v2/alice/private/manifests/anon"), bytes.NewReader(img.Manifest),
				h("Content-Type", mtOCIManifest))
			wantRefused(t, resp, body, []int{http.StatusUnauthorized}, "UNAUTHORIZED")
			resp, body = do(t, http.MethodGet, s.URL(manifestPath), nil, h("Accept", mtOCIManifest))
			wantRefused(t, resp, body, []int{http.StatusUnauthorized}, "UNAUTHORIZED")
			// The catalog: a challenge without a token; with the anonymous one, what
			// anonymous clients may pull, which alice/private is not (issue 13).
			resp, body = do(t, http.MethodGet, s.URL("/v2/_catalog"), nil, h())
			if auth == "" {
				wantRefused(t, resp, body, []int{http.StatusUnauthorized}, "UNAUTHORIZED")
			} else if resp.StatusCode != http.StatusOK || strings.Contains(string(body), "alice/private") {
				t.Errorf("anonymous catalog: %s %s, want 200 without alice/private", resp.Status, truncate(body, 300))
			}
		}
		unchanged(t, s, before, "an anonymous push")
	})

	t.Run("delete without the delete action", func(t *testing.T) {
		tok := createAccessToken(t, s, "alice", alicePW, "no-delete", "repository:alice/*:pull,push")
		jwt := mustToken(t, s, "ci", tok, "repository:alice/private:pull,push,delete")
		if got := actionsFor(t, jwt, "alice/private"); !slices.Equal(got, []string{"pull", "push"}) {
			t.Errorf("pull,push token asking for delete was granted %v, want [pull push]", got)
		}
		for _, p := range []string{manifestPath, "/v2/alice/private/manifests/1", "/v2/alice/private/blobs/" + img.LayerDigest} {
			resp, body := do(t, http.MethodDelete, s.URL(p), nil, bearer(jwt))
			wantRefused(t, resp, body, []int{http.StatusUnauthorized, http.StatusForbidden}, "UNAUTHORIZED", "DENIED")
		}
		// A password token without delete asked for: the same refusal.
		pushOnly := mustToken(t, s, "alice", alicePW, "repository:alice/private:pull,push")
		resp, body := do(t, http.MethodDelete, s.URL(manifestPath), nil, bearer(pushOnly))
		wantRefused(t, resp, body, []int{http.StatusUnauthorized, http.StatusForbidden}, "UNAUTHORIZED", "DENIED")
		unchanged(t, s, before, "a delete without the delete action")
		if resp, _ := do(t, http.MethodGet, s.URL(manifestPath), nil, withAuth(good, accept)); resp.StatusCode != http.StatusOK {
			t.Errorf("alice's manifest is gone after refused deletes: %s", resp.Status)
		}
	})

	t.Run("path tricks in repository names", func(t *testing.T) {
		// The token service refuses a scope whose name is not a repository name.
		for _, sc := range []string{
			"repository:alice/../bob/x:pull",
			"repository:alice/./private:pull",
			"repository:../bob/x:pull",
			"repository:alice//private:pull",
			"repository:/alice/private:pull",
			"repository:alice/private/:pull",
			"repository:ALICE/private:pull",
			"repository:alice/%2e%2e/bob/x:pull",
		} {
			resp, body := getToken(t, s, "alice", alicePW, sc)
			if resp.StatusCode != http.StatusBadRequest {
				// Granting nothing is also safe; granting anything is not.
				if resp.StatusCode == http.StatusOK {
					var tr tokenResponse
					_ = json.Unmarshal(body, &tr)
					for _, a := range claimsOf(t, tr.Token).Access {
						if len(a.Actions) > 0 {
							t.Errorf("GET /token scope=%s granted %+v", sc, a)
						}
					}
				}
				t.Errorf("GET /token scope=%s: %s %q, want 400", sc, resp.Status, truncate(body, 200))
			}
		}
		// bob, with every right on his own bob/x, walks out of it by path into alice's
		// private repository, and alice into bob's. Nothing may answer 2xx or change
		// anything. Each path is sent only with the token of the user it attacks, so a
		// server that cleans the path and then serves the owner's own repository to the
		// owner is not mistaken for a hole.
		bobTok := mustToken(t, s, "bob", bobPW, "repository:bob/x:pull,push,delete")
		aliceTok := mustToken(t, s, "alice", alicePW, "repository:alice/private:pull,push,delete")
		tricks := []struct{ path, attacker string }{
			{"/v2/bob/x/../../alice/private/tags/list", "bob"},
			{"/v2/bob/x/../../alice/private/manifests/1", "bob"},
			{"/v2/bob/x/%2e%2e/%2e%2e/alice/private/manifests/1", "bob"},
			{"/v2/bob%2fx%2f..%2f..%2falice/private/manifests/1", "bob"},
			{"/v2/bob/x/..%2f..%2falice/private/tags/list", "bob"},
			{"/v2/./alice/private/tags/list", "bob"},
			{"/v2//alice/private/tags/list", "bob"},
			{"/v2/alice/../bob/x/tags/list", "alice"},
			{"/v2/alice/private/../../bob/x/manifests/1", "alice"},
		}
		for _, tr := range tricks {
			tok := bobTok
			if tr.attacker == "alice" {
				tok = aliceTok
			}
			for _, m := range []string{http.MethodGet, http.MethodDelete, http.MethodPost} {
				target := tr.path
				if m == http.MethodPost {
					target = strings.TrimSuffix(strings.TrimSuffix(target, "/tags/list"), "/manifests/1") + "/blobs/uploads/"
				}
				req, err := http.NewRequest(m, s.URL("/"), nil)
				if err != nil {
					t.Fatal(err)
				}
				// Opaque sends the path exactly as written: Go would otherwise
				// re-escape %2f.
				req.URL.Opaque = "//" + s.Addr + target
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Accept", mtOCIManifest)
				resp, err := noRedirect.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", m, target, err)
				}
				resp.Body.Close()
				if resp.StatusCode < 300 {
					t.Errorf("%s %s as %s: %s, want no 2xx", m, target, tr.attacker, resp.Status)
				}
			}
		}
		unchanged(t, s, before, "path tricks")
	})

	// The last refusal made no change either, and nothing was left half-done.
	unchanged(t, s, before, "the refusals")
}

// headStatusAuth returns the status of a HEAD on path with a bearer token.
func headStatusAuth(t testing.TB, s *server, path, tok string) int {
	t.Helper()
	resp, _ := do(t, http.MethodHead, s.URL(path), nil, bearer(tok))
	return resp.StatusCode
}
