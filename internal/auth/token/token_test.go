package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hubctl/hubctl/internal/auth/scope"
)

// clock is a settable time source shared by an Issuer and a Verifier.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

type fixture struct {
	keys *KeySet
	clk  *clock
	iss  *Issuer
	ver  *Verifier
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ks, err := LoadOrCreateKeySet(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	return &fixture{
		keys: ks,
		clk:  clk,
		iss:  &Issuer{Keys: ks, Issuer: "hubctl-test", Service: "registry.test", Now: clk.now},
		ver:  &Verifier{Keys: ks, Issuer: "hubctl-test", Audience: "registry.test", Now: clk.now},
	}
}

var pullPush = []scope.Access{{Type: "repository", Name: "team/app", Actions: []string{"pull", "push"}}}

func TestIssueVerifyRoundTrip(t *testing.T) {
	f := newFixture(t)
	hub := Hub{UserID: 7, Epoch: 2, TokenID: 11, SessionID: 0}
	tok, err := f.iss.Issue("alice", hub, pullPush)
	if err != nil {
		t.Fatal(err)
	}
	if tok.ExpiresIn != 300 || !tok.IssuedAt.Equal(f.clk.t) || tok.ID == "" {
		t.Fatalf("token = %+v", tok)
	}
	c, err := f.ver.Verify(tok.Raw)
	if err != nil {
		t.Fatal(err)
	}
	want := &Claims{Subject: "alice", Access: pullPush, ExpiresAt: f.clk.t.Add(DefaultTTL), ID: tok.ID, Hub: hub}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("claims = %+v, want %+v", c, want)
	}

	// The wire form is what the Docker spec says: header and every claim.
	parts := strings.Split(tok.Raw, ".")
	var hdr map[string]any
	decodePart(t, parts[0], &hdr)
	if hdr["alg"] != "ES256" || hdr["typ"] != "JWT" || hdr["kid"] != f.keys.SigningKeyID() {
		t.Fatalf("header = %v", hdr)
	}
	var cl map[string]any
	decodePart(t, parts[1], &cl)
	iat := float64(f.clk.t.Unix())
	for k, v := range map[string]any{"iss": "hubctl-test", "sub": "alice", "aud": "registry.test",
		"iat": iat, "nbf": iat, "exp": iat + 300, "jti": tok.ID} {
		if cl[k] != v {
			t.Errorf("claim %s = %v (%T), want %v", k, cl[k], cl[k], v)
		}
	}
	if _, ok := cl["access"].([]any); !ok {
		t.Errorf("access claim = %v", cl["access"])
	}

	// jti is random per token.
	tok2, _ := f.iss.Issue("alice", Hub{}, pullPush)
	if tok2.ID == tok.ID {
		t.Fatal("two tokens share a jti")
	}
}

func TestIssueAnonymousNoAccess(t *testing.T) {
	f := newFixture(t)
	f.iss.TTL = 90 * time.Second
	tok, err := f.iss.Issue("", Hub{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok.ExpiresIn != 90 {
		t.Fatalf("ExpiresIn = %d", tok.ExpiresIn)
	}
	var cl map[string]json.RawMessage
	decodePart(t, strings.Split(tok.Raw, ".")[1], &cl)
	if string(cl["access"]) != "[]" {
		t.Fatalf("access = %s, want []", cl["access"])
	}
	c, err := f.ver.Verify(tok.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "" || len(c.Access) != 0 || c.Allows("repository", "team/app", "pull") {
		t.Fatalf("anonymous claims = %+v", c)
	}
}

func TestMisconfigured(t *testing.T) {
	f := newFixture(t)
	if _, err := (&Issuer{Keys: f.keys, Issuer: "x"}).Issue("a", Hub{}, nil); err == nil {
		t.Fatal("Issue without Service succeeded")
	}
	if _, err := (&Issuer{Keys: f.keys, Issuer: "x", Service: "y", TTL: time.Millisecond}).Issue("a", Hub{}, nil); err == nil {
		t.Fatal("Issue with a sub-second TTL succeeded")
	}
	tok, err := f.iss.Issue("alice", Hub{}, pullPush)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []*Verifier{
		{Keys: f.keys, Issuer: "hubctl-test", Now: f.clk.now},
		{Keys: f.keys, Audience: "registry.test", Now: f.clk.now},
		{Issuer: "hubctl-test", Audience: "registry.test", Now: f.clk.now},
	} {
		if _, err := v.Verify(tok.Raw); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("misconfigured verifier %+v: err = %v", v, err)
		}
	}
}

func decodePart(t *testing.T, part string, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func enc(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// craftES256 signs arbitrary header and claims with key, to build tokens Issue
// would never make.
func craftES256(t *testing.T, header, claims map[string]any, key *ecdsa.PrivateKey) string {
	t.Helper()
	signing := enc(t, header) + "." + enc(t, claims)
	sig, err := jwt.SigningMethodES256.Sign(signing, key)
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func craftHS256(t *testing.T, header, claims map[string]any, secret []byte) string {
	t.Helper()
	signing := enc(t, header) + "." + enc(t, claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func TestRefusals(t *testing.T) {
	f := newFixture(t)
	kid := f.keys.SigningKeyID()
	signer := f.keys.signer().priv
	pub := &signer.PublicKey
	now := f.clk.t.Unix()
	claims := func(edit func(map[string]any)) map[string]any {
		c := map[string]any{
			"iss": "hubctl-test", "sub": "alice", "aud": "registry.test",
			"exp": now + 300, "nbf": now, "iat": now, "jti": "j1",
			"access": []map[string]any{{"type": "repository", "name": "team/app", "actions": []string{"pull", "push", "delete"}}},
		}
		if edit != nil {
			edit(c)
		}
		return c
	}
	hdr := map[string]any{"alg": "ES256", "typ": "JWT", "kid": kid}
	good := craftES256(t, hdr, claims(nil), signer)

	// The crafted baseline verifies, so each refusal below is for its own reason.
	if _, err := f.ver.Verify(good); err != nil {
		t.Fatalf("baseline crafted token refused: %v", err)
	}

	pkix, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})
	pubRaw, _ := pub.Bytes()
	jwks, _ := f.keys.JWKS()
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherKid, _ := Thumbprint(&other.PublicKey)
	goodParts := strings.Split(good, ".")

	tests := []struct {
		name string
		raw  string
		want error
	}{
		{"alg none", enc(t, map[string]any{"alg": "none", "typ": "JWT", "kid": kid}) + "." + enc(t, claims(nil)) + ".", jwt.ErrTokenSignatureInvalid},
		{"alg none with signature", enc(t, map[string]any{"alg": "none", "kid": kid}) + "." + goodParts[1] + "." + goodParts[2], jwt.ErrTokenSignatureInvalid},
		{"alg None", enc(t, map[string]any{"alg": "None", "kid": kid}) + "." + enc(t, claims(nil)) + ".", jwt.ErrTokenUnverifiable},
		{"HS256 with public key PEM", craftHS256(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}, claims(nil), pubPEM), jwt.ErrTokenSignatureInvalid},
		{"HS256 with public key DER", craftHS256(t, map[string]any{"alg": "HS256", "kid": kid}, claims(nil), pkix), jwt.ErrTokenSignatureInvalid},
		{"HS256 with public point", craftHS256(t, map[string]any{"alg": "HS256", "kid": kid}, claims(nil), pubRaw), jwt.ErrTokenSignatureInvalid},
		{"HS256 with JWKS", craftHS256(t, map[string]any{"alg": "HS256", "kid": kid}, claims(nil), jwks), jwt.ErrTokenSignatureInvalid},
		{"ES384 header", enc(t, map[string]any{"alg": "ES384", "kid": kid}) + "." + goodParts[1] + "." + goodParts[2], jwt.ErrTokenSignatureInvalid},
		{"RS256 header", enc(t, map[string]any{"alg": "RS256", "kid": kid}) + "." + goodParts[1] + "." + goodParts[2], jwt.ErrTokenSignatureInvalid},
		{"EdDSA header", enc(t, map[string]any{"alg": "EdDSA", "kid": kid}) + "." + goodParts[1] + "." + goodParts[2], jwt.ErrTokenSignatureInvalid},
		{"unknown kid", craftES256(t, map[string]any{"alg": "ES256", "kid": otherKid}, claims(nil), other), jwt.ErrTokenUnverifiable},
		{"no kid", craftES256(t, map[string]any{"alg": "ES256"}, claims(nil), signer), jwt.ErrTokenUnverifiable},
		{"kid not a string", craftES256(t, map[string]any{"alg": "ES256", "kid": 7}, claims(nil), signer), jwt.ErrTokenUnverifiable},
		{"other key, our kid", craftES256(t, hdr, claims(nil), other), jwt.ErrTokenSignatureInvalid},
		{"tampered claims", goodParts[0] + "." + enc(t, claims(func(c map[string]any) { c["sub"] = "admin" })) + "." + goodParts[2], jwt.ErrTokenSignatureInvalid},
		{"tampered header", enc(t, map[string]any{"alg": "ES256", "typ": "JWT", "kid": kid, "x": 1}) + "." + goodParts[1] + "." + goodParts[2], jwt.ErrTokenSignatureInvalid},
		{"signature removed", goodParts[0] + "." + goodParts[1] + ".", jwt.ErrTokenSignatureInvalid},
		{"non-canonical signature base64", goodParts[0] + "." + goodParts[1] + "." + flipPadBits(goodParts[2]), jwt.ErrTokenMalformed},
		{"wrong iss", craftES256(t, hdr, claims(func(c map[string]any) { c["iss"] = "evil" }), signer), jwt.ErrTokenInvalidIssuer},
		{"missing iss", craftES256(t, hdr, claims(func(c map[string]any) { delete(c, "iss") }), signer), jwt.ErrTokenRequiredClaimMissing},
		{"wrong aud", craftES256(t, hdr, claims(func(c map[string]any) { c["aud"] = "other.registry" }), signer), jwt.ErrTokenInvalidAudience},
		{"wrong aud array", craftES256(t, hdr, claims(func(c map[string]any) { c["aud"] = []string{"a", "b"} }), signer), jwt.ErrTokenInvalidAudience},
		{"missing aud", craftES256(t, hdr, claims(func(c map[string]any) { delete(c, "aud") }), signer), jwt.ErrTokenRequiredClaimMissing},
		{"expired", craftES256(t, hdr, claims(func(c map[string]any) { c["exp"] = now - 61 }), signer), jwt.ErrTokenExpired},
		{"missing exp", craftES256(t, hdr, claims(func(c map[string]any) { delete(c, "exp") }), signer), jwt.ErrTokenRequiredClaimMissing},
		{"exp not a number", craftES256(t, hdr, claims(func(c map[string]any) { c["exp"] = "tomorrow" }), signer), jwt.ErrTokenMalformed},
		{"nbf in the future", craftES256(t, hdr, claims(func(c map[string]any) { c["nbf"] = now + 61 }), signer), jwt.ErrTokenNotValidYet},
		{"iat in the future", craftES256(t, hdr, claims(func(c map[string]any) { c["iat"] = now + 61; c["nbf"] = now }), signer), jwt.ErrTokenUsedBeforeIssued},
		{"two segments", goodParts[0] + "." + goodParts[1], jwt.ErrTokenMalformed},
		{"empty", "", jwt.ErrTokenMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := f.ver.Verify(tt.raw)
			if err == nil {
				t.Fatalf("verified: %+v", c)
			}
			if !errors.Is(err, ErrInvalidToken) || !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			// Other algorithms must be refused by the ES256-only rule itself, not
			// only later by a key of the wrong type.
			if strings.HasPrefix(tt.name, "alg") || strings.Contains(tt.name, "HS256") || strings.Contains(tt.name, " header") && tt.name != "tampered header" {
				if !strings.Contains(err.Error(), "signing method") {
					t.Fatalf("err = %v, want a refusal of the signing method", err)
				}
			}
		})
	}
	if n := f.ver.cache.len(); n != 1 {
		t.Fatalf("cache holds %d tokens, want only the one good token", n)
	}

	// Inside the leeway, and with an array aud naming us, a token is fine: the
	// refusals above are not just refusals of everything.
	for name, edit := range map[string]func(map[string]any){
		"exp within leeway": func(c map[string]any) { c["exp"] = now - 59 },
		"nbf within leeway": func(c map[string]any) { c["nbf"] = now + 59; c["iat"] = now + 59 },
		"aud array":         func(c map[string]any) { c["aud"] = []string{"x", "registry.test"} },
	} {
		if _, err := f.ver.Verify(craftES256(t, hdr, claims(edit), signer)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// flipPadBits changes the unused low bits of the last base64url character, which a
// lax decoder ignores: the same signature bytes under another spelling.
func flipPadBits(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, s[len(s)-1])
	return s[:len(s)-1] + string(alphabet[last^1])
}

func TestNoLeeway(t *testing.T) {
	f := newFixture(t)
	f.ver.Leeway = -1
	tok, _ := f.iss.Issue("alice", Hub{}, pullPush)
	f.clk.t = f.clk.t.Add(DefaultTTL)
	if _, err := f.ver.Verify(tok.Raw); !errors.Is(err, jwt.ErrTokenExpired) {
		t.Fatalf("at exp with no leeway: err = %v", err)
	}
}

func TestAllows(t *testing.T) {
	c := &Claims{Access: []scope.Access{
		{Type: "repository", Name: "team/app", Actions: []string{"pull", "push"}},
		{Type: "repository", Class: "plugin", Name: "plug", Actions: []string{"pull"}},
		{Type: "registry", Name: "catalog", Actions: []string{"*"}},
	}}
	tests := []struct {
		typ, name, action string
		want              bool
	}{
		{"repository", "team/app", "pull", true},
		{"repository", "team/app", "push", true},
		{"repository", "team/app", "delete", false},
		{"repository", "team/app2", "pull", false},
		{"repository", "team", "pull", false},
		{"registry", "team/app", "pull", false},
		{"repository", "plug", "pull", true},
		{"registry", "catalog", "*", true},
		{"registry", "catalog", "pull", true},
	}
	for _, tt := range tests {
		if got := c.Allows(tt.typ, tt.name, tt.action); got != tt.want {
			t.Errorf("Allows(%s, %s, %s) = %v, want %v", tt.typ, tt.name, tt.action, got, tt.want)
		}
	}
}

func TestCache(t *testing.T) {
	f := newFixture(t)
	tok, _ := f.iss.Issue("alice", Hub{}, pullPush)
	c1, err := f.ver.Verify(tok.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if f.ver.cache.len() != 1 {
		t.Fatalf("cache len = %d after one verification", f.ver.cache.len())
	}
	// A caller scribbling on its claims must not widen the next caller's.
	c1.Access[0].Actions[0] = "delete"
	c1.Access = append(c1.Access, scope.Access{Type: "repository", Name: "x", Actions: []string{"*"}})
	c2, err := f.ver.Verify(tok.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c2.Access, pullPush) {
		t.Fatalf("cached claims changed by a caller: %+v", c2.Access)
	}
	c2.Access[0].Actions[1] = "delete"
	if c3, _ := f.ver.Verify(tok.Raw); !reflect.DeepEqual(c3.Access, pullPush) {
		t.Fatalf("cached claims changed by a caller: %+v", c3.Access)
	}

	// A cached token still expires.
	f.clk.t = f.clk.t.Add(DefaultTTL + DefaultLeeway)
	if _, err := f.ver.Verify(tok.Raw); !errors.Is(err, jwt.ErrTokenExpired) {
		t.Fatalf("cached token past exp+leeway: err = %v", err)
	}
	if f.ver.cache.len() != 0 {
		t.Fatal("expired token left in the cache")
	}
}

func TestCacheBounded(t *testing.T) {
	f := newFixture(t)
	f.ver.CacheSize = 5
	var toks []Token
	for range 40 {
		tok, err := f.iss.Issue("alice", Hub{}, pullPush)
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
		if _, err := f.ver.Verify(tok.Raw); err != nil {
			t.Fatal(err)
		}
		if n := f.ver.cache.len(); n > 5 {
			t.Fatalf("cache holds %d tokens, bound is 5", n)
		}
	}
	// Evicted tokens verify afresh.
	for _, tok := range toks {
		if _, err := f.ver.Verify(tok.Raw); err != nil {
			t.Fatal(err)
		}
	}
	// Expired entries are evicted before live ones.
	f.clk.t = f.clk.t.Add(DefaultTTL + DefaultLeeway)
	fresh, _ := f.iss.Issue("bob", Hub{}, pullPush)
	if _, err := f.ver.Verify(fresh.Raw); err != nil {
		t.Fatal(err)
	}
	if n := f.ver.cache.len(); n != 1 {
		t.Fatalf("cache holds %d tokens after expiry, want 1", n)
	}

	off := &Verifier{Keys: f.keys, Issuer: "hubctl-test", Audience: "registry.test", Now: f.clk.now, CacheSize: -1}
	if _, err := off.Verify(fresh.Raw); err != nil {
		t.Fatal(err)
	}
	if off.cache != nil {
		t.Fatal("CacheSize -1 still made a cache")
	}
}

func TestRotateRetire(t *testing.T) {
	dir := t.TempDir()
	ks, err := LoadOrCreateKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Now()}
	iss := &Issuer{Keys: ks, Issuer: "i", Service: "s", Now: clk.now}
	ver := &Verifier{Keys: ks, Issuer: "i", Audience: "s", Now: clk.now}
	oldKid := ks.SigningKeyID()
	old, err := iss.Issue("alice", Hub{}, pullPush)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ver.Verify(old.Raw); err != nil { // now cached
		t.Fatal(err)
	}

	newKid, err := ks.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if newKid == oldKid || ks.SigningKeyID() != newKid {
		t.Fatalf("after Rotate signer = %s, old %s, new %s", ks.SigningKeyID(), oldKid, newKid)
	}
	fresh, err := iss.Issue("alice", Hub{}, pullPush)
	if err != nil {
		t.Fatal(err)
	}
	var hdr map[string]any
	decodePart(t, strings.Split(fresh.Raw, ".")[0], &hdr)
	if hdr["kid"] != newKid {
		t.Fatalf("new token signed by %v, want %s", hdr["kid"], newKid)
	}
	for _, tok := range []Token{old, fresh} {
		if _, err := ver.Verify(tok.Raw); err != nil {
			t.Fatalf("after Rotate: %v", err)
		}
	}

	// A reload finds both keys, and the rotated one still signs, even when its file
	// looks older than the first (copies reset modification times).
	newest := ks.signer().path
	past := time.Now().Add(-time.Hour)
	if err := os.Chtimes(newest, past, past); err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreateKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again.SigningKeyID() != newKid || len(again.PublicKeys()) != 2 {
		t.Fatalf("reloaded: signer %s, %d keys", again.SigningKeyID(), len(again.PublicKeys()))
	}

	if err := ks.Retire(oldKid); err != nil {
		t.Fatal(err)
	}
	// Refused although the verifier had it cached.
	if _, err := ver.Verify(old.Raw); !errors.Is(err, jwt.ErrTokenUnverifiable) {
		t.Fatalf("token of a retired key: err = %v", err)
	}
	if _, err := ver.Verify(fresh.Raw); err != nil {
		t.Fatalf("token of the current key after Retire: %v", err)
	}
	if err := ks.Retire(oldKid); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Retire twice: %v", err)
	}
	if err := ks.Retire(newKid); err == nil {
		t.Fatal("retired the only key")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.pem"))
	if len(files) != 1 {
		t.Fatalf("key files after Retire: %v", files)
	}
	reloaded, err := LoadOrCreateKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := reloaded.PublicKey(oldKid); ok {
		t.Fatal("retired key came back after a reload")
	}
}
