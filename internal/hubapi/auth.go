package hubapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/machinetoken"
	"github.com/hubctl/hubctl/internal/auth/password"
	"github.com/hubctl/hubctl/internal/auth/token"
	"github.com/hubctl/hubctl/internal/auth/tokenserver"
	"github.com/hubctl/hubctl/internal/errcode"
)

// errUnauthenticated is the one answer for every failed authentication, so a client
// cannot tell a wrong user name from a wrong password or a revoked token.
func errUnauthenticated(format string, args ...any) error {
	return errcode.New(errcode.Unauthorized, format, args...)
}

// authenticate finds the principal of a request from its Authorization header:
// Bearer with a registry JWT or an access token, or Basic with a password or an
// access token. No credentials, or an anonymous JWT, is refused: the API has nothing
// for anonymous callers.
func (a *api) authenticate(r *http.Request) (*authz.Principal, error) {
	ctx := r.Context()
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, errUnauthenticated("authentication required: an access token, a registry token or a password")
	}
	if user, pass, ok := r.BasicAuth(); ok {
		if strings.HasPrefix(pass, password.AccessTokenPrefix) {
			// Docker clients send an access token as the password with any user name,
			// as the token service accepts it; the token alone says whose it is.
			return a.tokenPrincipal(ctx, pass)
		}
		return a.limitedPasswordPrincipal(r, user, pass)
	}
	scheme, raw, _ := strings.Cut(h, " ")
	raw = strings.TrimSpace(raw)
	if !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return nil, errUnauthenticated("unsupported Authorization scheme; use Bearer or Basic")
	}
	if strings.HasPrefix(raw, password.AccessTokenPrefix) {
		return a.tokenPrincipal(ctx, raw)
	}
	return a.jwtPrincipal(ctx, raw)
}

func (a *api) tokenPrincipal(ctx context.Context, secret string) (*authz.Principal, error) {
	t, err := a.store.TokenByHash(ctx, password.SecretHash(secret))
	if errors.Is(err, accounts.ErrNotFound) {
		return nil, errUnauthenticated("invalid access token")
	} else if err != nil {
		return nil, fmt.Errorf("look up access token: %w", err)
	}
	p, err := authz.TokenPrincipal(ctx, a.store, t, a.now())
	if errors.Is(err, authz.ErrBadCredentials) {
		return nil, errUnauthenticated("access token is revoked, expired or its user disabled")
	} else if err != nil {
		return nil, err
	}
	if err := a.store.TouchToken(ctx, t.ID, a.now()); err != nil {
		a.log.WarnContext(ctx, "record token use", "token_id", t.ID, "error", err)
	}
	return &p, nil
}

// limitedPasswordPrincipal is passwordPrincipal behind the login guard shared with
// /token, so the API is no faster a password oracle than the token service.
func (a *api) limitedPasswordPrincipal(r *http.Request, name, pass string) (*authz.Principal, error) {
	var p *authz.Principal
	err := a.guard.Login(r.Context(), name, remoteAddr(r), true, func() (bool, error) {
		var err error
		p, err = a.passwordPrincipal(r.Context(), name, pass)
		var e *errcode.Error
		return errors.As(err, &e) && e.Code.Name == errcode.Unauthorized.Name, err
	})
	return p, err
}

func (a *api) passwordPrincipal(ctx context.Context, name, pass string) (*authz.Principal, error) {
	u, err := a.store.GetUser(ctx, name)
	if errors.Is(err, accounts.ErrNotFound) || (err == nil && (u.Robot || u.PasswordHash == "")) {
		// A missing user (or a robot, which signs in only with its tokens) costs one
		// verification too, so user names cannot be probed by timing.
		_, _ = password.Verify(pass, a.dummyHash())
		return nil, errUnauthenticated("invalid username or password")
	} else if err != nil {
		return nil, fmt.Errorf("look up user: %w", err)
	}
	ok, err := password.Verify(pass, u.PasswordHash)
	if err != nil {
		return nil, fmt.Errorf("verify password of %s: %w", u.Name, err)
	}
	if !ok || u.Disabled {
		return nil, errUnauthenticated("invalid username or password")
	}
	return &authz.Principal{User: &u}, nil
}

// dummyHash is a hash to verify against when there is no user's hash, made once.
func (a *api) dummyHash() string {
	a.dummyOnce.Do(func() { a.dummy, _ = password.Hash("no such user") })
	return a.dummy
}

// jwtPrincipal is the principal of a registry token. The token is checked against
// the store, by immutable ids, so that the API refuses it the moment what it was
// issued for is gone: the account (deleted, even if a new one took its name), its
// sessions (a password change or reset, disabling, "sign out everywhere"), the access
// token or the refresh session it was obtained with (revoked, even if a new one took
// its name). The registry itself verifies tokens with the public key alone, so there a
// token lives out its lifetime (docs/security.md).
func (a *api) jwtPrincipal(ctx context.Context, raw string) (*authz.Principal, error) {
	if a.jwt == nil {
		return nil, errUnauthenticated("registry tokens are not accepted here; use an access token")
	}
	sub, hub, err := a.jwt(raw)
	if err != nil {
		return nil, errUnauthenticated("invalid registry token")
	}
	if sub == "" || sub == authz.Anonymous {
		return nil, errUnauthenticated("an anonymous registry token does not sign in; log in first")
	}
	if strings.Contains(sub, ":") {
		return a.jobPrincipal(ctx, sub, hub)
	}
	u, err := a.store.GetUser(ctx, sub)
	if errors.Is(err, accounts.ErrNotFound) {
		return nil, errUnauthenticated("invalid registry token")
	} else if err != nil {
		return nil, fmt.Errorf("look up user: %w", err)
	}
	switch {
	case hub.UserID != u.ID:
		// Issued to an account of this name that no longer exists, or by a hubctl that
		// did not say which account: log in again.
		return nil, errUnauthenticated("the account this registry token was issued to is gone; log in again")
	case hub.Epoch != u.SessionEpoch:
		return nil, errUnauthenticated("this account's sessions were ended (password change, reset or sign-out); log in again")
	case u.Disabled:
		return nil, errUnauthenticated("user is disabled")
	}
	now := a.now()
	if hub.TokenID != 0 {
		t, err := a.store.TokenByID(ctx, hub.TokenID)
		if errors.Is(err, accounts.ErrNotFound) || (err == nil && (t.User != u.Name || !t.Active(now))) {
			return nil, errUnauthenticated("the access token behind this registry token is revoked or expired")
		} else if err != nil {
			return nil, fmt.Errorf("look up access token: %w", err)
		}
		p, err := authz.TokenPrincipal(ctx, a.store, t, now)
		if errors.Is(err, authz.ErrBadCredentials) {
			return nil, errUnauthenticated("the access token behind this registry token is revoked or expired")
		} else if err != nil {
			return nil, err
		}
		return &p, nil
	}
	p := &authz.Principal{User: &u}
	if hub.SessionID != 0 {
		sess, err := a.store.SessionByID(ctx, hub.SessionID)
		if errors.Is(err, accounts.ErrNotFound) || (err == nil && (sess.UserID != u.ID || !sess.Active(now))) {
			return nil, errUnauthenticated("the session behind this registry token was ended; log in again")
		} else if err != nil {
			return nil, fmt.Errorf("look up session: %w", err)
		}
		p.Session = &sess
	}
	return p, nil
}

// errMachineToken answers a machine token where it does not sign in: as a request
// without credentials.
func errMachineToken() error {
	return errUnauthenticated("authentication required: a machine token signs in to the hub API only to move its own job's artifacts and to deploy what its workflow's permissions.deploy names")
}

// jobPrincipal is the principal of a machine token (subject KIND:ID): only a workflow
// job's token signs in, and only while its run has not ended and the account it acts
// for exists and is enabled. The principal may do nothing but move its own run's
// artifacts (jobartifacts.go) and, when it carries permissions.deploy, deploy those
// services (authz.JobGrant); deployAccess re-checks that account's role on the
// namespace at each call.
func (a *api) jobPrincipal(ctx context.Context, sub string, hub token.Hub) (*authz.Principal, error) {
	if !strings.HasPrefix(sub, machinetoken.JobSubjectPrefix) || hub.Creator == 0 ||
		hub.UserID != 0 || hub.Epoch != 0 || hub.TokenID != 0 || hub.SessionID != 0 || a.jobActive == nil || a.minter == nil {
		return nil, errMachineToken()
	}
	if err := a.jobActive(ctx, sub); err != nil {
		if errors.Is(err, tokenserver.ErrJobRevoked) {
			return nil, errUnauthenticated("this job token is revoked: %v", err)
		}
		return nil, fmt.Errorf("check the run of %s: %w", sub, err)
	}
	u, err := a.minter.Store.UserByID(ctx, hub.Creator)
	if errors.Is(err, accounts.ErrNotFound) || (err == nil && u.Disabled) {
		return nil, errUnauthenticated("the account this job token acts for is gone or disabled")
	} else if err != nil {
		return nil, fmt.Errorf("look up user: %w", err)
	}
	return &authz.Principal{User: &u, Job: &authz.JobGrant{Subject: sub, Deploys: strings.Fields(hub.Deploy)}}, nil
}

// requireAdmin refuses everyone but site administrators.
func requireAdmin(p *authz.Principal) error {
	if !p.User.Admin {
		return denied("site administrators only")
	}
	return nil
}

// requireSession refuses access tokens. An access token may not mint credentials
// (tokens, robots): a leaked narrow token, e.g. a CI token for one repository, must
// not be able to create a token with broader scopes or outliving its own revocation.
func requireSession(p *authz.Principal, what string) error {
	if p.Token != nil {
		return denied("%s needs a password or registry-token session, not an access token", what)
	}
	return nil
}

// orgAdmin returns the organisation if p may administer it: site admins, and users
// holding the admin role on the whole organisation through a team. Robots never
// administer, even in their own organisation, where authz gives them admin on every
// repository: they are service accounts, and one that could create robots could mint
// tokens.
func (a *api) orgAdmin(ctx context.Context, p *authz.Principal, org string) (accounts.Namespace, error) {
	ns, err := a.org(ctx, org)
	if err != nil {
		return ns, err
	}
	if p.User.Admin {
		return ns, nil
	}
	if !p.User.Robot {
		// The probe is "org/", a name no repository can have: a probe like "org/x"
		// would also match a per-repository admin grant on org/x and make that
		// repository's admin an admin of the whole organisation.
		role, err := a.policy.RoleOn(ctx, p.User, org+"/")
		if err != nil {
			return ns, err
		}
		if role == accounts.RoleAdmin {
			return ns, nil
		}
	}
	return ns, denied("administrators of organisation %s only", org)
}

// org returns the organisation named org; a personal namespace is not one.
func (a *api) org(ctx context.Context, org string) (accounts.Namespace, error) {
	ns, err := a.store.GetNamespace(ctx, org)
	// A missing name and a user's personal namespace get one answer, so this cannot
	// tell which user names exist.
	if errors.Is(err, accounts.ErrNotFound) || (err == nil && !ns.Org) {
		return accounts.Namespace{}, notFound("organisation %s not found", org)
	}
	return ns, err
}
