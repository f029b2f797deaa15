package token

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hubctl/hubctl/internal/auth/scope"
)

// DefaultLeeway is the clock skew Verifier tolerates when Leeway is zero, the same
// minute the CNCF distribution registry allows.
const DefaultLeeway = time.Minute

// DefaultCacheSize bounds the verified-token cache when Verifier.CacheSize is zero.
const DefaultCacheSize = 4096

// ErrInvalidToken is wrapped by every refusal of Verify; the jwt package's own
// sentinel (jwt.ErrTokenExpired, jwt.ErrTokenSignatureInvalid, …) is wrapped too.
var ErrInvalidToken = errors.New("invalid token")

// KeyLookup finds the public key a token's kid names. *KeySet and StaticKeys
// implement it. It is called on every request, so it must be cheap.
type KeyLookup interface {
	PublicKey(kid string) (*ecdsa.PublicKey, bool)
}

// Verifier checks registry tokens with public keys alone. Set its fields, then call
// Verify from any number of goroutines; do not change or copy it after the first call.
type Verifier struct {
	// Keys resolves the kid of a token to a public key; it must not be nil.
	Keys KeyLookup
	// Issuer is the required iss claim; it must not be empty.
	Issuer string
	// Audience is the required aud claim (the registry's service name); it must not
	// be empty.
	Audience string
	// Leeway is the tolerated clock skew on exp, nbf and iat: zero means
	// DefaultLeeway, negative means none.
	Leeway time.Duration
	// Now reads the clock; nil means time.Now. Tests set it.
	Now func() time.Time
	// CacheSize bounds the cache of verified tokens (a client reuses one token for
	// many requests, and an ES256 verification costs tens of microseconds): zero
	// means DefaultCacheSize, negative disables the cache.
	CacheSize int

	once   sync.Once
	parser *jwt.Parser
	leeway time.Duration
	now    func() time.Time
	cache  *verifiedCache
}

// Claims is what a verified token says.
type Claims struct {
	// Subject is the account name, or empty for an anonymous client.
	Subject string
	// Access is what the token grants.
	Access []scope.Access
	// ExpiresAt is the exp claim.
	ExpiresAt time.Time
	// ID is the jti claim.
	ID string
	// Hub says how Subject signed in (ids of the account, access token, session).
	Hub
}

// Allows reports whether the claims grant action on the resource typ/name, a "*"
// action granting every action. The resource class is not compared, as the
// distribution registry does not compare it either.
func (c *Claims) Allows(typ, name, action string) bool {
	for _, a := range c.Access {
		if a.Type == typ && a.Name == name &&
			(slices.Contains(a.Actions, action) || slices.Contains(a.Actions, scope.All)) {
			return true
		}
	}
	return false
}

// clone copies c deeply, so no caller can change what the cache hands the next one.
func (c *Claims) clone() *Claims {
	out := *c
	out.Access = make([]scope.Access, len(c.Access))
	for i, a := range c.Access {
		a.Actions = slices.Clone(a.Actions)
		a.Denied = slices.Clone(a.Denied)
		out.Access[i] = a
	}
	return &out
}

// claimsIn is what Verify reads: RegisteredClaims takes aud as a string or an array.
type claimsIn struct {
	jwt.RegisteredClaims
	Access []scope.Access `json:"access"`
	Hub
}

func (v *Verifier) init() {
	v.leeway = v.Leeway
	switch {
	case v.leeway == 0:
		v.leeway = DefaultLeeway
	case v.leeway < 0:
		v.leeway = 0
	}
	v.now = v.Now
	if v.now == nil {
		v.now = time.Now
	}
	v.parser = jwt.NewParser(
		// Only ES256: this refuses alg=none and the HS256-with-the-public-key
		// confusion before any key is looked up.
		jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
		jwt.WithIssuer(v.Issuer),
		jwt.WithAudience(v.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(v.leeway),
		jwt.WithTimeFunc(v.now),
		// Canonical base64 only, so one token has one spelling (and one cache entry).
		jwt.WithStrictDecoding(),
	)
	size := v.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	if size > 0 {
		v.cache = &verifiedCache{max: size, m: make(map[string]cacheEntry)}
	}
}

// Verify checks raw's signature, algorithm, issuer, audience and times and returns
// its claims. The result is a copy the caller may keep.
func (v *Verifier) Verify(raw string) (*Claims, error) {
	if v.Keys == nil || v.Issuer == "" || v.Audience == "" {
		// An empty issuer or audience would switch the jwt package's check off.
		return nil, fmt.Errorf("%w: verifier needs Keys, Issuer and Audience", ErrInvalidToken)
	}
	v.once.Do(v.init)
	now := v.now()
	if v.cache != nil {
		if e, ok := v.cache.get(raw); ok {
			// Still unexpired, and its key not retired since: otherwise verify afresh,
			// which refuses it with the precise reason.
			if now.Before(e.claims.ExpiresAt.Add(v.leeway)) {
				if _, ok := v.Keys.PublicKey(e.kid); ok {
					return e.claims.clone(), nil
				}
			}
			v.cache.remove(raw)
		}
	}
	var kid string
	var in claimsIn
	_, err := v.parser.ParseWithClaims(raw, &in, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("no kid in the token header")
		}
		key, ok := v.Keys.PublicKey(kid)
		if !ok {
			return nil, fmt.Errorf("unknown kid %q", kid)
		}
		return key, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	c := &Claims{Subject: in.Subject, Access: in.Access, ExpiresAt: in.ExpiresAt.Time, ID: in.ID, Hub: in.Hub}
	if v.cache != nil {
		v.cache.put(strings.Clone(raw), cacheEntry{claims: c.clone(), kid: kid}, now.Add(-v.leeway))
	}
	return c, nil
}

// verifiedCache maps raw tokens that verified to their claims. Only successful
// verifications enter it, so filling it takes valid tokens; it is bounded all the
// same, evicting expired entries first and then arbitrary ones.
type verifiedCache struct {
	mu  sync.RWMutex
	max int
	m   map[string]cacheEntry
}

type cacheEntry struct {
	claims *Claims
	kid    string
}

func (c *verifiedCache) get(raw string) (cacheEntry, bool) {
	c.mu.RLock()
	e, ok := c.m[raw]
	c.mu.RUnlock()
	return e, ok
}

func (c *verifiedCache) remove(raw string) {
	c.mu.Lock()
	delete(c.m, raw)
	c.mu.Unlock()
}

// put inserts e; expiredBefore is the instant before which an entry is past its exp
// plus leeway.
func (c *verifiedCache) put(raw string, e cacheEntry, expiredBefore time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k, old := range c.m {
			if !old.claims.ExpiresAt.After(expiredBefore) {
				delete(c.m, k)
			}
		}
		// Still full of live tokens: drop an eighth, in map order, which is
		// arbitrary enough that no client can keep its entry by timing.
		if len(c.m) >= c.max {
			n := c.max/8 + 1
			for k := range c.m {
				if n == 0 {
					break
				}
				delete(c.m, k)
				n--
			}
		}
	}
	c.m[raw] = e
}

// len reports how many tokens the cache holds, for tests.
func (c *verifiedCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
