// Package token signs and verifies the registry's ES256 JWTs (Docker registry token
// spec) and keeps the P-256 signing keys they are made with.
//
// The token service signs with a KeySet; the registry side verifies with public keys
// alone (a KeySet in the same process, or the JWKS on another replica), so no request
// needs a database call to be authenticated.
package token

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hubctl/hubctl/internal/auth/scope"
)

// DefaultTTL is the lifetime of a registry token when Issuer.TTL is zero: the Docker
// spec's clients refresh as needed, so short-lived tokens cost little and make a
// revoked grant die quickly.
const DefaultTTL = 5 * time.Minute

// Issuer signs registry tokens with the newest key of Keys.
type Issuer struct {
	// Keys signs; it must not be nil.
	Keys *KeySet
	// Issuer is the iss claim; verifiers expect exactly this string.
	Issuer string
	// Service is the aud claim: the `service` of the token request, which names the
	// registry the token is for.
	Service string
	// TTL is the token lifetime, whole seconds; zero means DefaultTTL.
	TTL time.Duration
	// Now reads the clock; nil means time.Now. Tests set it.
	Now func() time.Time
}

// Token is a signed registry token and what a /token response says about it.
type Token struct {
	// Raw is the compact JWT.
	Raw string
	// ExpiresIn is the lifetime in seconds, the response's expires_in.
	ExpiresIn int
	// IssuedAt is the iat claim, the response's issued_at.
	IssuedAt time.Time
	// ID is the jti claim, for the audit log.
	ID string
}

// claimsOut is what Issue signs. It is our own struct rather than jwt.RegisteredClaims
// because the Docker spec's aud is a single string, which RegisteredClaims would write
// as an array.
type claimsOut struct {
	Issuer    string         `json:"iss"`
	Subject   string         `json:"sub"`
	Audience  string         `json:"aud"`
	ExpiresAt int64          `json:"exp"`
	NotBefore int64          `json:"nbf"`
	IssuedAt  int64          `json:"iat"`
	ID        string         `json:"jti"`
	Access    []scope.Access `json:"access"`
	Hub
}

// Hub is what a token says about how its subject signed in, in claims of the hub's own
// (RFC 7519 private names): immutable ids rather than names, so that the hub API can
// tell the account, access token or session behind a token from a later one of the
// same name, and refuse it the moment that credential is revoked. A registry verifies
// tokens with the public key alone and ignores these.
type Hub struct {
	// UserID is the account's id; 0 for an anonymous client.
	UserID int64 `json:"hub_uid,omitempty"`
	// Epoch is the account's session epoch when the token was issued: ending every
	// session of the account raises it.
	Epoch int64 `json:"hub_epoch,omitempty"`
	// TokenID is the access token the client signed in with; 0 for a password or
	// refresh-session sign-in.
	TokenID int64 `json:"hub_tid,omitempty"`
	// SessionID is the refresh session the token was exchanged for; 0 otherwise.
	SessionID int64 `json:"hub_sid,omitempty"`
	// Creator is, in a workflow job's machine token that may deploy, the account the
	// job acts for (the workflow's applier); the hub API re-checks its rights at each
	// call. 0 in every other token.
	Creator int64 `json:"hub_creator,omitempty"`
	// Deploy lists, space-separated, the NAMESPACE/SERVICE-PATTERN entries a job token
	// may deploy (hub:deploys:write on those services alone; scope.MatchDeploy); ""
	// in every other token.
	Deploy string `json:"hub_deploy,omitempty"`
}

// Issue signs a token for subject (empty for an anonymous client) granting access.
// hub says how the subject signed in.
//
// nbf equals iat rather than lying a few seconds in the past: backdating nbf alone
// would not help a verifier whose clock is behind, because it also refuses an iat in
// its future. Clock skew between replicas is absorbed by Verifier.Leeway instead.
func (i *Issuer) Issue(subject string, hub Hub, access []scope.Access) (Token, error) {
	if i.Keys == nil || i.Issuer == "" || i.Service == "" {
		return Token{}, errors.New("issue token: issuer needs Keys, Issuer and Service")
	}
	ttl := i.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	ttl = ttl.Truncate(time.Second)
	if ttl <= 0 {
		return Token{}, fmt.Errorf("issue token: lifetime %v is under a second", i.TTL)
	}
	now := time.Now
	if i.Now != nil {
		now = i.Now
	}
	iat := now().Truncate(time.Second)
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return Token{}, fmt.Errorf("issue token: %w", err)
	}
	if access == nil {
		access = []scope.Access{} // the claim is an array even when nothing is granted
	}
	c := claimsOut{
		Issuer:    i.Issuer,
		Subject:   subject,
		Audience:  i.Service,
		ExpiresAt: iat.Add(ttl).Unix(),
		NotBefore: iat.Unix(),
		IssuedAt:  iat.Unix(),
		ID:        base64.RawURLEncoding.EncodeToString(jti[:]),
		Access:    access,
		Hub:       hub,
	}
	key := i.Keys.signer()
	raw, err := sign(map[string]string{"alg": "ES256", "typ": "JWT", "kid": key.kid}, c, key.priv)
	if err != nil {
		return Token{}, fmt.Errorf("issue token: %w", err)
	}
	return Token{Raw: raw, ExpiresIn: int(ttl / time.Second), IssuedAt: iat, ID: c.ID}, nil
}

// sign builds a compact JWS over header and claims with ES256.
func sign(header map[string]string, claims any, key any) (string, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	p, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signing := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	sig, err := jwt.SigningMethodES256.Sign(signing, key)
	if err != nil {
		return "", err
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
