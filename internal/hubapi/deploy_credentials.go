package hubapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/machinetoken"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/reference"
	"github.com/hubctl/hubctl/internal/secrets"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

// What a running deploy needs from the hub beyond its record: a short-lived pull
// token for the Docker engines (so they never hold the deployer's own credentials),
// and the values of the secrets its spec names. Both go to callers who may deploy
// the service, both are audited, and neither value reaches a log or an audit entry.

// DeploySecretStore opens a namespace's secrets (the workflow secrets store, sealed
// at rest); sqlstore implements it. Without it, or without a keyring, the secrets
// endpoint answers 404.
type DeploySecretStore interface {
	ResolveWorkflowSecrets(ctx context.Context, ring *secrets.Keyring, namespace string, names []string) (map[string]string, error)
}

// deployPullToken answers POST …/{service}/pull-token {"number": N, "repositories":
// […]}: a registry token of subject deploy:ID that pulls those repositories only, for
// DeployPullTokenTTL, minted by the hub's one minter for the caller's account. The
// deploy must be running; every repository must be one the caller may pull now
// (with its access token's scopes, when it uses one), or nothing is minted.
func (a *api) deployPullToken(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	t, err := a.deployAccess(r, p, accounts.RoleWrite, "minting pull tokens for")
	if err != nil {
		return err
	}
	if a.minter == nil {
		return notFound("this hub mints no tokens (its auth is off): pull with your own credentials")
	}
	var req hubtypes.DeployPullTokenRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Number < 1 {
		return invalid("number: want the running deploy the token is for")
	}
	if len(req.Repositories) == 0 || len(req.Repositories) > maxPullRepos {
		return invalid("repositories: want 1 to %d repository names", maxPullRepos)
	}
	repos := slices.Clone(req.Repositories)
	slices.Sort(repos)
	repos = slices.Compact(repos)
	access := make([]scope.Access, 0, len(repos))
	for _, repo := range repos {
		if err := reference.ValidateRepository(repo); err != nil {
			return invalid("repository %q: %v", clip(repo), err)
		}
		asked := scope.Scope{Type: scope.TypeRepository, Name: repo, Actions: []string{scope.Pull}}
		g, err := a.policy.Grant(r.Context(), *p, asked)
		if err != nil {
			return err
		}
		if !g.Allows(scope.Pull) {
			// The token service's answer for a repository one may not pull: it says
			// nothing of whether the repository exists.
			return denied("you may not pull %s, so no deploy token may either", repo)
		}
		access = append(access, asked.Access())
	}
	id, err := t.store.RunningDeployID(r.Context(), t.ns, t.service, req.Number)
	if err != nil {
		return deployStoreError(err)
	}
	tok, err := a.minter.Mint(r.Context(), machinetoken.Request{Creator: p.User.ID, Subject: "deploy:" + strconv.FormatInt(id, 10),
		Access: access, TTL: DeployPullTokenTTL, Purpose: "deploy " + strconv.Itoa(req.Number) + " of " + t.name() + " by " + p.Name()})
	if errors.Is(err, machinetoken.ErrRefused) {
		return denied("%v", err)
	}
	if err != nil {
		return err
	}
	granted := make([]string, 0, len(tok.Access))
	for _, g := range tok.Access {
		granted = append(granted, g.Name)
	}
	return reply(w, http.StatusOK, hubtypes.DeployPullToken{Token: tok.Raw, ExpiresAt: formatTime(tok.ExpiresAt), Repositories: granted})
}

// deploySecrets answers POST …/{service}/secrets {"names": […]}: the values of the
// namespace's secrets of those names, to a caller who may deploy there. Every name
// must be set, or nothing is answered. The read is audited (names only) before the
// values are sent: no audit, no values.
func (a *api) deploySecrets(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	t, err := a.deployAccess(r, p, accounts.RoleWrite, "reading secrets for")
	if err != nil {
		return err
	}
	ss, ok := a.workflows.(DeploySecretStore)
	if a.workflows == nil || !ok {
		return notFound("no API endpoint %s", r.URL.Path)
	}
	if a.keyring == nil {
		return notFound("this hub has no secrets keys, so it keeps no secrets: set HUBCTL_SECRETS_KEY or secrets.keys_file")
	}
	var req hubtypes.DeploySecretsRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if len(req.Names) == 0 || len(req.Names) > maxSecretNames {
		return invalid("names: want 1 to %d secret names", maxSecretNames)
	}
	names := slices.Clone(req.Names)
	slices.Sort(names)
	names = slices.Compact(names)
	for _, n := range names {
		if err := wfengine.CheckSecret(n, "-"); err != nil {
			return invalid("%v", err)
		}
	}
	values, err := ss.ResolveWorkflowSecrets(r.Context(), a.keyring, t.ns, names)
	if err != nil {
		return err
	}
	var missing []string
	for _, n := range names {
		if _, ok := values[n]; !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return errcode.New(errcode.NameUnknown, "%s has no secret %s: set it with 'hubctl workflow secret set %s/NAME'",
			t.ns, strings.Join(missing, ", "), t.ns)
	}
	e := accounts.AuditEntry{Time: a.now(), Actor: p.Name(), Action: "deploy.secrets", Target: t.name(), Remote: remoteAddr(r),
		Detail: "names " + strings.Join(names, ", ")}
	if p.Token != nil {
		e.Detail += " (token " + p.Token.Name + ")"
	}
	if err := a.store.Audit(r.Context(), e); err != nil {
		return err
	}
	return reply(w, http.StatusOK, hubtypes.DeploySecrets{Values: values})
}
