package hubapi

import (
	"net/http"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/password"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/hubtypes"
)

// MaxTokenDays bounds expires_in_days: ten years is "never" in all but name, and a
// larger number would overflow time arithmetic.
const MaxTokenDays = 3650

// checkTokenRequest validates req and normalises its scopes to their canonical form, so
// lists show them as the registry will apply them.
func checkTokenRequest(req *hubtypes.CreateTokenRequest) error {
	if err := accounts.CheckTokenName(req.Name); err != nil {
		return err
	}
	if len(req.Scopes) == 0 {
		return invalid("a token needs at least one scope, e.g. repository:team/app:pull")
	}
	for i, s := range req.Scopes {
		sc, err := scope.ParsePattern(s)
		if err != nil {
			return invalid("%v", err)
		}
		switch {
		case sc.Type == scope.TypeHub:
			if err := scope.CheckHubScope(sc); err != nil {
				return invalid("%v", err)
			}
		case !sc.Known():
			return invalid("scope %q: resource type %q is never granted (repository, registry, hub)", s, sc.Type)
		}
		req.Scopes[i] = sc.String()
	}
	if req.ExpiresInDays < 0 || req.ExpiresInDays > MaxTokenDays {
		return invalid("expires_in_days must be between 0 (never) and %d", MaxTokenDays)
	}
	if req.ExpiresInHours < 0 || req.ExpiresInHours > MaxTokenDays*24 {
		return invalid("expires_in_hours must be between 0 and %d", MaxTokenDays*24)
	}
	if req.ExpiresInHours > 0 && req.ExpiresInDays > 0 {
		return invalid("give expires_in_days or expires_in_hours, not both")
	}
	return nil
}

// mintToken creates a token for user and returns it with its secret.
func (a *api) mintToken(r *http.Request, p *authz.Principal, user string, req hubtypes.CreateTokenRequest) (hubtypes.CreatedToken, error) {
	secret, err := password.RandomSecret(password.AccessTokenPrefix)
	if err != nil {
		return hubtypes.CreatedToken{}, err
	}
	t := accounts.AccessToken{User: user, Name: req.Name, Hash: password.SecretHash(secret), Scopes: req.Scopes, CreatedAt: a.now()}
	switch {
	case req.ExpiresInDays > 0:
		t.ExpiresAt = a.now().Add(time.Duration(req.ExpiresInDays) * 24 * time.Hour)
	case req.ExpiresInHours > 0:
		t.ExpiresAt = a.now().Add(time.Duration(req.ExpiresInHours) * time.Hour)
	}
	t, err = a.store.CreateToken(a.audited(r, p, "token.create", user+"/"+t.Name, "scopes "+strings.Join(t.Scopes, " ")), t)
	if err != nil {
		return hubtypes.CreatedToken{}, err
	}
	return hubtypes.CreatedToken{Name: t.Name, Token: secret, Scopes: t.Scopes, ExpiresAt: formatTime(t.ExpiresAt)}, nil
}

func (a *api) listTokens(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	out, err := a.tokensOf(r.Context(), p.User.Name, a.now())
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, out)
}

func (a *api) createToken(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	// Only a password or registry-token session may mint tokens: a leaked narrow
	// token must not be able to mint a broader (or longer-lived) one, nor a fresh one
	// that survives the leaked token's revocation.
	if err := requireSession(p, "creating an access token"); err != nil {
		return err
	}
	var req hubtypes.CreateTokenRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := checkTokenRequest(&req); err != nil {
		return err
	}
	tok, err := a.mintToken(r, p, p.User.Name, req)
	if err != nil {
		return err
	}
	return reply(w, http.StatusCreated, tok)
}

func (a *api) revokeToken(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	// Revoking only takes rights away, so a token may revoke its owner's tokens,
	// itself included: whoever finds a leaked token can kill it with it.
	name := r.PathValue("name")
	if err := a.store.RevokeToken(a.audited(r, p, "token.revoke", p.User.Name+"/"+name, ""), p.User.Name, name); err != nil {
		return err
	}
	return noContent(w)
}
