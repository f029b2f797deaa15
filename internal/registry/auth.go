package registry

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/reqlog"
)

// Auth makes the registry demand bearer tokens of the Docker token spec. The registry
// checks them with the token service's public keys only: no database call per request.
type Auth struct {
	// Verify checks a bearer token and returns what it says.
	Verify func(raw string) (Token, error)
	// Service is the token service's name, sent in challenges (the JWT audience).
	Service string
	// Realm is the token endpoint's absolute URL. Empty: built from each request's
	// Host, so the realm always matches the address the client used (crane and oras
	// refuse a realm on another loopback address).
	Realm string
	// Anonymous is the subject of tokens issued without credentials; such a token that
	// lacks a scope gets a 401 (log in and retry), never a 403.
	Anonymous string
	// Catalog, when set, opens the catalog to every valid token: one that holds
	// registry:catalog:* (site admins) gets every repository, any other the
	// repositories Catalog selects for it, given the raw token (already verified).
	// When nil, the catalog needs registry:catalog:*.
	Catalog func(ctx context.Context, raw string) (metadata.CatalogFilter, error)
}

// Token is what a verified bearer token says.
type Token struct {
	// Subject is the account, or Anonymous.
	Subject string
	// Access is what it grants, by name.
	Access []scope.Access
	// Patterns are repository pattern grants (NAMESPACE/*) of a machine token (see
	// MachinePatterns): pull and push on every repository below the prefix.
	Patterns []scope.Access
	// ExpiresAt is when it expires (its exp claim); a presigned URL given to its
	// bearer never outlives it. Zero: no bound.
	ExpiresAt time.Time
}

// grant is what one request needs: a resource and the actions it requires (all of
// them), and the actions to ask for in the challenge (docker asks pull,push to push).
type grant struct {
	sc   scope.Scope
	need []string
}

// required lists the grants route rt with method m needs; nil means any valid token.
func required(rt route, m string) []grant {
	repo := func(need []string, ask ...string) []grant {
		return []grant{{sc: scope.Scope{Type: scope.TypeRepository, Name: rt.name, Actions: ask}, need: need}}
	}
	switch rt.kind {
	case "catalog":
		return []grant{{sc: catalogScope, need: []string{scope.All}}}
	case "tags", "referrers":
		return repo([]string{scope.Pull}, scope.Pull)
	case "blob", "manifest":
		switch m {
		case http.MethodDelete:
			return repo([]string{scope.Delete}, scope.Delete)
		case http.MethodPut:
			return repo([]string{scope.Push}, scope.Pull, scope.Push)
		}
		return repo([]string{scope.Pull}, scope.Pull)
	case "uploads", "upload":
		return repo([]string{scope.Push}, scope.Pull, scope.Push)
	}
	return nil
}

// catalogScope is what a client asks the token service for to list the catalog.
var catalogScope = scope.Scope{Type: scope.TypeRegistry, Name: "catalog", Actions: []string{scope.All}}

// allows reports whether access holds action on the resource of sc ("*" holds all), and
// whether the token service refused that action when it was asked for it.
func allows(access []scope.Access, sc scope.Scope, action string) (has, denied bool) {
	for _, a := range access {
		if a.Type != sc.Type || a.Name != sc.Name || a.Class != sc.Class {
			continue
		}
		if slices.Contains(a.Actions, action) || slices.Contains(a.Actions, scope.All) {
			return true, false
		}
		if slices.Contains(a.Denied, action) {
			denied = true
		}
	}
	return false, denied
}

// realm is the token endpoint clients are sent to.
func (a *Auth) realm(r *http.Request) string {
	if a.Realm != "" {
		return a.Realm
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	return proto + "://" + r.Host + "/token"
}

// challenge sets the WWW-Authenticate header asking for gs.
func (a *Auth) challenge(w http.ResponseWriter, r *http.Request, gs []grant, errKind string) {
	v := fmt.Sprintf(`Bearer realm=%q,service=%q`, a.realm(r), a.Service)
	if len(gs) > 0 {
		scopes := make([]string, len(gs))
		for i, g := range gs {
			scopes[i] = g.sc.String()
		}
		v += fmt.Sprintf(`,scope=%q`, strings.Join(scopes, " "))
	}
	if errKind != "" {
		v += fmt.Sprintf(`,error=%q`, errKind)
	}
	w.Header().Set("WWW-Authenticate", v)
}

// authorize checks the request's bearer token against what it needs. It returns the
// token's access (for further checks, e.g. the source of a mount) or an error that is
// sent with a challenge.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, rt route) (Token, error) {
	a := h.o.Auth
	gs := required(rt, r.Method)
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || raw == "" {
		a.challenge(w, r, gs, "")
		return Token{}, errcode.New(errcode.Unauthorized, "authentication required")
	}
	tok, err := a.Verify(strings.TrimSpace(raw))
	if err != nil {
		a.challenge(w, r, gs, "invalid_token")
		return Token{}, errcode.New(errcode.Unauthorized, "invalid token: %v", err)
	}
	subject, access := tok.Subject, tok.Access
	reqlog.From(r.Context()).User = subject
	if rt.kind == "catalog" && a.Catalog != nil {
		// Every caller may list what it may pull; getCatalog decides what that is.
		return tok, nil
	}
	for _, g := range gs {
		for _, need := range g.need {
			has, denied := allows(access, g.sc, need)
			if !has {
				has = patternAllows(tok.Patterns, g.sc, need)
			}
			if has {
				continue
			}
			if denied && subject != a.Anonymous && subject != "" {
				// The token service was asked for this action by this user and
				// refused it: asking again cannot help.
				return Token{}, errcode.New(errcode.Denied, "requested access to %s is denied", g.sc.Name)
			}
			a.challenge(w, r, gs, "insufficient_scope")
			return Token{}, errcode.New(errcode.Unauthorized, "the token does not grant %s on %s", need, g.sc.Name)
		}
	}
	return tok, nil
}

type accessKey struct{}

// mayPull reports whether the request's token grants pull on repository; true when the
// registry runs without auth. A cross-repository mount needs it on the source.
func (h *Handler) mayPull(ctx context.Context, repository string) bool {
	if h.o.Auth == nil {
		return true
	}
	tok, _ := ctx.Value(accessKey{}).(Token)
	sc := scope.Scope{Type: scope.TypeRepository, Name: repository}
	has, _ := allows(tok.Access, sc, scope.Pull)
	return has || patternAllows(tok.Patterns, sc, scope.Pull)
}

// tokenExpiry is when the request's token expires; zero without auth.
func tokenExpiry(ctx context.Context) time.Time {
	tok, _ := ctx.Value(accessKey{}).(Token)
	return tok.ExpiresAt
}
