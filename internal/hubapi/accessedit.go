package hubapi

import (
	"net/http"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/hubtypes"
)

// The account changes of the hub API for another front end (the web UI's forms):
// each runs the endpoint's own check, store call and audit entry (with r's remote
// address), so a form can do no more than the endpoint. A refusal is an error whose
// Message is fit to show; the store's sentinel errors come back mapped as the API
// answers them.

// CreateUser creates an account as POST /api/v1/users does (site administrators).
func (x *Access) CreateUser(r *http.Request, p *authz.Principal, req hubtypes.CreateUserRequest) (accounts.User, error) {
	if p.User == nil {
		return accounts.User{}, denied("sign in first")
	}
	u, err := x.a.addUser(r, p, req)
	return u, storeError(err)
}

// DeleteUser deletes an account as DELETE /api/v1/users/{name}[?purge=true] does
// (site administrators, never themselves) and returns the repositories purged.
func (x *Access) DeleteUser(r *http.Request, p *authz.Principal, name string, purge bool) (int, error) {
	if p.User == nil {
		return 0, denied("sign in first")
	}
	n, err := x.a.removeUser(r, p, name, purge)
	return n, storeError(err)
}

// CreateOrg creates an organisation administered by p, as POST /api/v1/orgs does.
func (x *Access) CreateOrg(r *http.Request, p *authz.Principal, req hubtypes.CreateOrgRequest) (accounts.Namespace, error) {
	if p.User == nil {
		return accounts.Namespace{}, denied("sign in first")
	}
	ns, err := x.a.addOrg(r, p, req)
	return ns, storeError(err)
}

// DeleteOrg deletes an organisation as DELETE /api/v1/orgs/{org}[?purge=true] does
// (its administrators) and returns the repositories purged.
func (x *Access) DeleteOrg(r *http.Request, p *authz.Principal, org string, purge bool) (int, error) {
	if p.User == nil {
		return 0, notFound("organisation %s not found", org)
	}
	n, err := x.a.removeOrg(r, p, org, purge)
	return n, storeError(err)
}

// CreateTeam creates a team as POST /api/v1/orgs/{org}/teams does (the
// organisation's administrators).
func (x *Access) CreateTeam(r *http.Request, p *authz.Principal, org string, req hubtypes.CreateTeamRequest) (accounts.Team, error) {
	if p.User == nil {
		return accounts.Team{}, notFound("organisation %s not found", org)
	}
	t, err := x.a.addTeam(r, p, org, req)
	return t, storeError(err)
}

// DeleteTeam deletes a team as DELETE /api/v1/orgs/{org}/teams/{team} does (the
// organisation's administrators).
func (x *Access) DeleteTeam(r *http.Request, p *authz.Principal, org, team string) error {
	if p.User == nil {
		return notFound("organisation %s not found", org)
	}
	return storeError(x.a.removeTeam(r, p, org, team))
}
