package hubapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/hubtypes"
)

// robotOf returns the robot named short in org (the account org.short), or
// NAME_UNKNOWN when there is no such robot of that organisation.
func (a *api) robotOf(ctx context.Context, org, short string) (accounts.User, error) {
	u, err := a.store.GetUser(ctx, org+"."+short)
	if errors.Is(err, accounts.ErrNotFound) || (err == nil && (!u.Robot || u.Owner != org)) {
		return accounts.User{}, notFound("organisation %s has no robot %s", org, short)
	}
	return u, err
}

// tokensOf lists a user's tokens as the API shows them.
func (a *api) tokensOf(ctx context.Context, user string, now time.Time) ([]hubtypes.Token, error) {
	tokens, err := a.store.ListTokens(ctx, user)
	if err != nil {
		return nil, err
	}
	out := make([]hubtypes.Token, 0, len(tokens))
	for _, t := range tokens {
		scopes := t.Scopes
		if scopes == nil {
			scopes = []string{}
		}
		out = append(out, hubtypes.Token{Name: t.Name, Scopes: scopes, ExpiresAt: formatTime(t.ExpiresAt),
			LastUsedAt: formatTime(t.LastUsedAt), CreatedAt: formatTime(t.CreatedAt),
			RevokedAt: formatTime(t.RevokedAt), Active: t.Active(now)})
	}
	return out, nil
}

// listRobots answers GET /api/v1/orgs/{org}/robots: the organisation's robots with
// their tokens (no secrets), for its administrators.
func (a *api) listRobots(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	ctx := r.Context()
	ns, err := a.orgAdmin(ctx, p, r.PathValue("org"))
	if err != nil {
		return err
	}
	users, err := a.store.ListUsers(ctx)
	if err != nil {
		return err
	}
	now := a.now()
	out := []hubtypes.RobotAccount{}
	for _, u := range users {
		if !u.Robot || u.Owner != ns.Name {
			continue
		}
		toks, err := a.tokensOf(ctx, u.Name, now)
		if err != nil {
			return err
		}
		out = append(out, hubtypes.RobotAccount{User: userOf(u), Tokens: toks})
	}
	return reply(w, http.StatusOK, out)
}

// deleteRobot answers DELETE /api/v1/orgs/{org}/robots/{name}: the account goes with
// its tokens, so they stop working for new logins at once.
func (a *api) deleteRobot(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	ctx := r.Context()
	ns, err := a.orgAdmin(ctx, p, r.PathValue("org"))
	if err != nil {
		return err
	}
	robot, err := a.robotOf(ctx, ns.Name, r.PathValue("name"))
	if err != nil {
		return err
	}
	if _, err := a.store.DeleteUser(a.audited(r, p, "user.delete", robot.Name, "robot of "+ns.Name), robot.Name, false); err != nil {
		return err
	}
	return noContent(w)
}

// rotateRobot answers POST /api/v1/orgs/{org}/robots/{name}/token: every active token
// of the robot is revoked and a new one made, named as the robot, with the scopes
// given or else those of the token it replaces. The secret is in this answer only.
func (a *api) rotateRobot(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	// Minting a token: refused to access tokens, as POST /tokens is.
	if err := requireSession(p, "rotating a robot's token"); err != nil {
		return err
	}
	ctx := r.Context()
	ns, err := a.orgAdmin(ctx, p, r.PathValue("org"))
	if err != nil {
		return err
	}
	short := r.PathValue("name")
	robot, err := a.robotOf(ctx, ns.Name, short)
	if err != nil {
		return err
	}
	var req hubtypes.RotateRobotRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	old, err := a.store.ListTokens(ctx, robot.Name)
	if err != nil {
		return err
	}
	now := a.now()
	tr := hubtypes.CreateTokenRequest{Name: short, Scopes: req.Scopes, ExpiresInDays: req.ExpiresInDays, ExpiresInHours: req.ExpiresInHours}
	if len(tr.Scopes) == 0 {
		for _, t := range old { // newest first
			if t.Active(now) || t.Name == short {
				tr.Scopes = append([]string(nil), t.Scopes...)
				break
			}
		}
	}
	if err := checkTokenRequest(&tr); err != nil {
		return err
	}
	for _, t := range old {
		if !t.RevokedAt.IsZero() {
			continue
		}
		// Revoked meanwhile (ErrNotFound): nothing changed, nothing audited.
		revoke := a.audited(r, p, "token.revoke", robot.Name+"/"+t.Name, "robot token rotation")
		if err := a.store.RevokeToken(revoke, robot.Name, t.Name); err != nil && !errors.Is(err, accounts.ErrNotFound) {
			return err
		}
	}
	tok, err := a.mintToken(r, p, robot.Name, tr)
	if err != nil {
		return err
	}
	return reply(w, http.StatusCreated, hubtypes.Robot{User: userOf(robot), Token: tok})
}
