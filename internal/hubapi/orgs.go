package hubapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/hubtypes"
)

// orgOf is ns as the API shows it.
func orgOf(ns accounts.Namespace) hubtypes.Org {
	return hubtypes.Org{Name: ns.Name, DefaultVisibility: string(ns.DefaultVisibility), CreatedAt: formatTime(ns.CreatedAt)}
}

func parseVisibility(s string) (accounts.Visibility, error) {
	switch v := accounts.Visibility(s); v {
	case accounts.Private, accounts.Public:
		return v, nil
	}
	return "", invalid("visibility %q: want public or private", s)
}

func (a *api) listOrgs(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	// Organisation names are not secret: they are the first component of every
	// repository name anyone may see in a pull, so any signed-in user may list them.
	all, err := a.store.ListNamespaces(r.Context())
	if err != nil {
		return err
	}
	out := []hubtypes.Org{}
	for _, ns := range all {
		if ns.Org {
			out = append(out, orgOf(ns))
		}
	}
	return reply(w, http.StatusOK, out)
}

func (a *api) createOrg(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	var req hubtypes.CreateOrgRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	ns, err := a.addOrg(r, p, req)
	if err != nil {
		return err
	}
	return reply(w, http.StatusCreated, orgOf(ns))
}

// addOrg creates the organisation req asks for with p as its admin, as POST
// /api/v1/orgs does: any user but robots, audited as org.create (and
// visibility.change when it is not private).
func (a *api) addOrg(r *http.Request, p *authz.Principal, req hubtypes.CreateOrgRequest) (accounts.Namespace, error) {
	if p.User.Robot {
		return accounts.Namespace{}, denied("a robot cannot create organisations")
	}
	if err := accounts.CheckName(req.Name); err != nil {
		return accounts.Namespace{}, err
	}
	var vis accounts.Visibility
	if req.DefaultVisibility != "" {
		var err error
		if vis, err = parseVisibility(req.DefaultVisibility); err != nil {
			return accounts.Namespace{}, err
		}
	}
	ns, err := a.store.CreateOrg(a.audited(r, p, "org.create", req.Name, ""), req.Name, p.User.Name)
	if err != nil {
		return ns, err
	}
	if vis != "" && vis != ns.DefaultVisibility {
		if err := a.store.SetDefaultVisibility(a.audited(r, p, "visibility.change", ns.Name, "default "+string(vis)), ns.Name, vis); err != nil {
			return ns, err
		}
		ns.DefaultVisibility = vis
	}
	return ns, nil
}

func (a *api) getOrg(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	ns, err := a.org(r.Context(), r.PathValue("org"))
	if err != nil {
		return err
	}
	o := orgOf(ns)
	if o.Usage, err = a.withUsage(r.Context(), p, ns.Name); err != nil {
		return err
	}
	return reply(w, http.StatusOK, o)
}

func (a *api) updateOrg(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	ns, err := a.orgAdmin(r.Context(), p, r.PathValue("org"))
	if err != nil {
		return err
	}
	var req hubtypes.UpdateOrgRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	vis, err := parseVisibility(req.DefaultVisibility)
	if err != nil {
		return err
	}
	if err := a.store.SetDefaultVisibility(a.audited(r, p, "visibility.change", ns.Name, "default "+string(vis)), ns.Name, vis); err != nil {
		return err
	}
	ns.DefaultVisibility = vis
	return reply(w, http.StatusOK, orgOf(ns))
}

func (a *api) deleteOrg(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if _, err := a.orgAdmin(r.Context(), p, r.PathValue("org")); err != nil {
		return err
	}
	purge, err := purgeParam(r)
	if err != nil {
		return err
	}
	n, err := a.removeOrg(r, p, r.PathValue("org"), purge)
	if err != nil {
		return err
	}
	return deleted(w, purge, n)
}

// removeOrg deletes organisation org (with purge, its repositories too), as DELETE
// /api/v1/orgs/{org} does: its administrators only, audited as org.delete. It
// returns how many repositories went.
func (a *api) removeOrg(r *http.Request, p *authz.Principal, org string, purge bool) (int, error) {
	ns, err := a.orgAdmin(r.Context(), p, org)
	if err != nil {
		return 0, err
	}
	return a.store.DeleteOrg(a.audited(r, p, "org.delete", ns.Name, ""), ns.Name, purge)
}

func (a *api) listTeams(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	ns, err := a.orgAdmin(r.Context(), p, r.PathValue("org"))
	if err != nil {
		return err
	}
	teams, err := a.store.ListTeams(r.Context(), ns.Name)
	if err != nil {
		return err
	}
	out := make([]hubtypes.Team, 0, len(teams))
	for _, t := range teams {
		out = append(out, hubtypes.Team{Org: t.Org, Name: t.Name, Description: t.Description, CreatedAt: formatTime(t.CreatedAt)})
	}
	return reply(w, http.StatusOK, out)
}

func (a *api) createTeam(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if _, err := a.orgAdmin(r.Context(), p, r.PathValue("org")); err != nil {
		return err
	}
	var req hubtypes.CreateTeamRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	t, err := a.addTeam(r, p, r.PathValue("org"), req)
	if err != nil {
		return err
	}
	return reply(w, http.StatusCreated, hubtypes.Team{Org: t.Org, Name: t.Name, Description: t.Description})
}

// addTeam creates team req in organisation org, as POST /api/v1/orgs/{org}/teams
// does: its administrators only, audited as team.create.
func (a *api) addTeam(r *http.Request, p *authz.Principal, org string, req hubtypes.CreateTeamRequest) (accounts.Team, error) {
	ns, err := a.orgAdmin(r.Context(), p, org)
	if err != nil {
		return accounts.Team{}, err
	}
	if err := accounts.CheckName(req.Name); err != nil {
		return accounts.Team{}, err
	}
	if err := accounts.CheckDescription(req.Description); err != nil {
		return accounts.Team{}, err
	}
	t := accounts.Team{Org: ns.Name, Name: req.Name, Description: req.Description}
	return t, a.store.CreateTeam(a.audited(r, p, "team.create", ns.Name+"/"+req.Name, ""), t)
}

func (a *api) deleteTeam(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if err := a.removeTeam(r, p, r.PathValue("org"), r.PathValue("team")); err != nil {
		return err
	}
	return noContent(w)
}

// removeTeam deletes team of organisation org, as DELETE /api/v1/orgs/{org}/teams/
// {team} does: its administrators only, audited as team.delete.
func (a *api) removeTeam(r *http.Request, p *authz.Principal, org, team string) error {
	ns, err := a.orgAdmin(r.Context(), p, org)
	if err != nil {
		return err
	}
	return a.store.DeleteTeam(a.audited(r, p, "team.delete", ns.Name+"/"+team, ""), ns.Name, team)
}

func (a *api) listMembers(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	ns, err := a.orgAdmin(r.Context(), p, r.PathValue("org"))
	if err != nil {
		return err
	}
	members, err := a.store.ListTeamMembers(r.Context(), ns.Name, r.PathValue("team"))
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, members)
}

func (a *api) addMember(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	ns, err := a.orgAdmin(r.Context(), p, r.PathValue("org"))
	if err != nil {
		return err
	}
	team, user := r.PathValue("team"), r.PathValue("user")
	if err := a.store.AddTeamMember(a.audited(r, p, "team.member.add", ns.Name+"/"+team, "member "+user), ns.Name, team, user); err != nil {
		return err
	}
	return noContent(w)
}

func (a *api) removeMember(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	ns, err := a.orgAdmin(r.Context(), p, r.PathValue("org"))
	if err != nil {
		return err
	}
	team, user := r.PathValue("team"), r.PathValue("user")
	if err := a.store.RemoveTeamMember(a.audited(r, p, "team.member.remove", ns.Name+"/"+team, "member "+user), ns.Name, team, user); err != nil {
		return err
	}
	return noContent(w)
}

func (a *api) listGrants(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	ns, err := a.orgAdmin(r.Context(), p, r.PathValue("org"))
	if err != nil {
		return err
	}
	grants, err := a.store.ListTeamGrants(r.Context(), ns.Name, r.PathValue("team"))
	if err != nil {
		return err
	}
	out := make([]hubtypes.Grant, 0, len(grants))
	for _, g := range grants {
		out = append(out, hubtypes.Grant{Repository: g.Repository, Role: string(g.Role)})
	}
	return reply(w, http.StatusOK, out)
}

func (a *api) setGrant(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	ns, err := a.orgAdmin(r.Context(), p, r.PathValue("org"))
	if err != nil {
		return err
	}
	var req hubtypes.Grant
	if err := decode(w, r, &req); err != nil {
		return err
	}
	role := accounts.Role(req.Role)
	if req.Role == "none" {
		role = accounts.RoleNone
	} else if !role.Valid() {
		return invalid("role %q: want read, write, admin or none", req.Role)
	}
	team := r.PathValue("team")
	g := accounts.TeamGrant{Org: ns.Name, Team: team, Repository: req.Repository, Role: role}
	on := req.Repository
	if on == "" {
		on = ns.Name + " (whole organisation)"
	}
	ctx := a.audited(r, p, "permission.change", ns.Name+"/"+team, fmt.Sprintf("role %s on %s", req.Role, on))
	if err := a.store.SetTeamGrant(ctx, g); err != nil {
		return err
	}
	return reply(w, http.StatusOK, req)
}

func (a *api) createRobot(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	// Creating a robot mints a token, so it is refused to access tokens for the same
	// reason as POST /tokens.
	if err := requireSession(p, "creating a robot"); err != nil {
		return err
	}
	ns, err := a.orgAdmin(r.Context(), p, r.PathValue("org"))
	if err != nil {
		return err
	}
	var req hubtypes.CreateRobotRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := accounts.CheckName(req.Name); err != nil {
		return err
	}
	// Check the token request before creating the account, so a bad scope leaves
	// nothing behind.
	tr := hubtypes.CreateTokenRequest{Name: req.Name, Scopes: req.Scopes, ExpiresInDays: req.ExpiresInDays, ExpiresInHours: req.ExpiresInHours}
	if err := checkTokenRequest(&tr); err != nil {
		return err
	}
	name := ns.Name + "." + req.Name
	robot, err := a.store.CreateUser(a.audited(r, p, "user.create", name, "robot of "+ns.Name),
		accounts.User{Name: name, Robot: true, Owner: ns.Name})
	if err != nil {
		return err
	}
	tok, err := a.mintToken(r, p, robot.Name, tr)
	if err != nil {
		// A robot without a token is useless and its name would be taken: undo.
		if _, derr := a.store.DeleteUser(a.audited(r, p, "user.delete", robot.Name, "robot token creation failed"), robot.Name, false); derr != nil {
			return errors.Join(err, derr)
		}
		return err
	}
	return reply(w, http.StatusCreated, hubtypes.Robot{User: userOf(robot), Token: tok})
}
