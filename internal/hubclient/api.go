package hubclient

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/hubtypes"
)

// AuditQuery selects audit entries; zero fields match everything.
type AuditQuery struct {
	Actor  string
	Action string
	// Since and Until bound the entries' time (both inclusive); zero is unbounded.
	Since, Until time.Time
	Before       int64
	Limit        int
}

// Whoami returns the signed-in user.
func (c *Client) Whoami(ctx context.Context) (hubtypes.User, error) {
	var u hubtypes.User
	return u, c.do(ctx, http.MethodGet, "user", nil, &u)
}

// ListUsers lists every account (site admins only).
func (c *Client) ListUsers(ctx context.Context) ([]hubtypes.User, error) {
	var us []hubtypes.User
	return us, c.do(ctx, http.MethodGet, "users", nil, &us)
}

// CreateUser creates an account (site admins only).
func (c *Client) CreateUser(ctx context.Context, u hubtypes.CreateUserRequest) (hubtypes.User, error) {
	var out hubtypes.User
	return out, c.do(ctx, http.MethodPost, "users", u, &out)
}

// UpdateUser changes a user.
func (c *Client) UpdateUser(ctx context.Context, name string, ch hubtypes.UpdateUserRequest) (hubtypes.User, error) {
	var out hubtypes.User
	return out, c.do(ctx, http.MethodPatch, "users/"+seg(name), ch, &out)
}

// DeleteUser removes an account (site admins only). A namespace holding repositories
// is refused unless purge, which deletes them too; it returns how many it purged.
func (c *Client) DeleteUser(ctx context.Context, name string, purge bool) (int, error) {
	return c.deleteNamespace(ctx, "users/"+seg(name), purge)
}

// deleteNamespace deletes the user or organisation at path, with ?purge=true when
// purge.
func (c *Client) deleteNamespace(ctx context.Context, path string, purge bool) (int, error) {
	if !purge {
		return 0, c.do(ctx, http.MethodDelete, path, nil, nil)
	}
	var out hubtypes.Deleted
	err := c.do(ctx, http.MethodDelete, path+"?purge=true", nil, &out)
	return out.PurgedRepositories, err
}

// ListOrgs lists the organisations.
func (c *Client) ListOrgs(ctx context.Context) ([]hubtypes.Org, error) {
	var out []hubtypes.Org
	return out, c.do(ctx, http.MethodGet, "orgs", nil, &out)
}

// CreateOrg creates an organisation owned by the caller; visibility "" keeps the
// default (private).
func (c *Client) CreateOrg(ctx context.Context, name, visibility string) (hubtypes.Org, error) {
	var out hubtypes.Org
	return out, c.do(ctx, http.MethodPost, "orgs", hubtypes.CreateOrgRequest{Name: name, DefaultVisibility: visibility}, &out)
}

// SetOrgVisibility sets the default visibility of repositories created in org.
func (c *Client) SetOrgVisibility(ctx context.Context, org, visibility string) (hubtypes.Org, error) {
	var out hubtypes.Org
	return out, c.do(ctx, http.MethodPatch, "orgs/"+seg(org), hubtypes.UpdateOrgRequest{DefaultVisibility: visibility}, &out)
}

// DeleteOrg removes an organisation; repositories as DeleteUser.
func (c *Client) DeleteOrg(ctx context.Context, org string, purge bool) (int, error) {
	return c.deleteNamespace(ctx, "orgs/"+seg(org), purge)
}

// ListTeams lists the teams of org.
func (c *Client) ListTeams(ctx context.Context, org string) ([]hubtypes.Team, error) {
	var out []hubtypes.Team
	return out, c.do(ctx, http.MethodGet, "orgs/"+seg(org)+"/teams", nil, &out)
}

// CreateTeam creates a team in org.
func (c *Client) CreateTeam(ctx context.Context, org, team, description string) (hubtypes.Team, error) {
	var out hubtypes.Team
	return out, c.do(ctx, http.MethodPost, "orgs/"+seg(org)+"/teams", hubtypes.CreateTeamRequest{Name: team, Description: description}, &out)
}

// DeleteTeam removes a team.
func (c *Client) DeleteTeam(ctx context.Context, org, team string) error {
	return c.do(ctx, http.MethodDelete, teamPath(org, team), nil, nil)
}

func teamPath(org, team string) string { return "orgs/" + seg(org) + "/teams/" + seg(team) }

// ListMembers lists the members of a team.
func (c *Client) ListMembers(ctx context.Context, org, team string) ([]string, error) {
	var out []string
	return out, c.do(ctx, http.MethodGet, teamPath(org, team)+"/members", nil, &out)
}

// AddMember adds user to a team; adding a member twice is not an error.
func (c *Client) AddMember(ctx context.Context, org, team, user string) error {
	return c.do(ctx, http.MethodPut, teamPath(org, team)+"/members/"+seg(user), nil, nil)
}

// RemoveMember removes user from a team.
func (c *Client) RemoveMember(ctx context.Context, org, team, user string) error {
	return c.do(ctx, http.MethodDelete, teamPath(org, team)+"/members/"+seg(user), nil, nil)
}

// ListGrants lists a team's roles.
func (c *Client) ListGrants(ctx context.Context, org, team string) ([]hubtypes.Grant, error) {
	var out []hubtypes.Grant
	return out, c.do(ctx, http.MethodGet, teamPath(org, team)+"/grants", nil, &out)
}

// SetGrant gives a team a role (read, write, admin, or none to remove it) on its
// whole organisation (g.Repository "") or one repository.
func (c *Client) SetGrant(ctx context.Context, org, team string, g hubtypes.Grant) error {
	return c.do(ctx, http.MethodPut, teamPath(org, team)+"/grants", g, nil)
}

// CreateRobot creates the robot account <org>.<name> with one access token.
func (c *Client) CreateRobot(ctx context.Context, org string, t hubtypes.CreateRobotRequest) (hubtypes.Robot, error) {
	var out hubtypes.Robot
	return out, c.do(ctx, http.MethodPost, "orgs/"+seg(org)+"/robots", t, &out)
}

// ListRobots returns the robots of an organisation with their tokens.
func (c *Client) ListRobots(ctx context.Context, org string) ([]hubtypes.RobotAccount, error) {
	var out []hubtypes.RobotAccount
	return out, c.do(ctx, http.MethodGet, "orgs/"+seg(org)+"/robots", nil, &out)
}

// DeleteRobot removes the robot <org>.<name> and its tokens.
func (c *Client) DeleteRobot(ctx context.Context, org, name string) error {
	return c.do(ctx, http.MethodDelete, "orgs/"+seg(org)+"/robots/"+seg(name), nil, nil)
}

// RotateRobot revokes the robot's tokens and returns a new one.
func (c *Client) RotateRobot(ctx context.Context, org, name string, t hubtypes.RotateRobotRequest) (hubtypes.Robot, error) {
	var out hubtypes.Robot
	return out, c.do(ctx, http.MethodPost, "orgs/"+seg(org)+"/robots/"+seg(name)+"/token", t, &out)
}

// repoPath keeps the slashes of a repository name: they are part of the route.
func repoPath(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = seg(p)
	}
	return "repositories/" + strings.Join(parts, "/")
}

// GetRepository returns a repository's settings.
func (c *Client) GetRepository(ctx context.Context, name string) (hubtypes.Repository, error) {
	var out hubtypes.Repository
	return out, c.do(ctx, http.MethodGet, repoPath(name), nil, &out)
}

// DeleteRepository deletes a whole repository (its tags, manifests and blob links).
func (c *Client) DeleteRepository(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, repoPath(name), nil, nil)
}

// SetRepositoryVisibility makes a repository public or private.
func (c *Client) SetRepositoryVisibility(ctx context.Context, name, visibility string) (hubtypes.Repository, error) {
	var out hubtypes.Repository
	return out, c.do(ctx, http.MethodPatch, repoPath(name), hubtypes.UpdateRepositoryRequest{Visibility: visibility}, &out)
}

// SetQuota sets a namespace's storage quota in bytes, or removes it with bytes <= 0
// (site admins only), and returns the namespace's usage.
func (c *Client) SetQuota(ctx context.Context, namespace string, bytes int64) (hubtypes.Usage, error) {
	var out hubtypes.Usage
	return out, c.do(ctx, http.MethodPut, "namespaces/"+seg(namespace)+"/quota", hubtypes.SetQuotaRequest{Bytes: bytes}, &out)
}

// Usage returns a namespace's storage usage and quota.
func (c *Client) Usage(ctx context.Context, namespace string) (hubtypes.Usage, error) {
	var out hubtypes.Usage
	return out, c.do(ctx, http.MethodGet, "namespaces/"+seg(namespace)+"/usage", nil, &out)
}

// ListTokens lists the caller's access tokens, revoked ones included.
func (c *Client) ListTokens(ctx context.Context) ([]hubtypes.Token, error) {
	var out []hubtypes.Token
	return out, c.do(ctx, http.MethodGet, "tokens", nil, &out)
}

// CreateToken creates an access token for the caller.
func (c *Client) CreateToken(ctx context.Context, t hubtypes.CreateTokenRequest) (hubtypes.CreatedToken, error) {
	var out hubtypes.CreatedToken
	return out, c.do(ctx, http.MethodPost, "tokens", t, &out)
}

// RevokeToken revokes the caller's token of that name.
func (c *Client) RevokeToken(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "tokens/"+seg(name), nil, nil)
}

// ListAudit returns a page of the audit log (site admins only).
func (c *Client) ListAudit(ctx context.Context, q AuditQuery) (hubtypes.AuditPage, error) {
	v := url.Values{}
	if q.Actor != "" {
		v.Set("actor", q.Actor)
	}
	if q.Action != "" {
		v.Set("action", q.Action)
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	if q.Before > 0 {
		v.Set("before", strconv.FormatInt(q.Before, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := "audit"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out hubtypes.AuditPage
	return out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// EventQuery selects events; zero fields match everything the caller may read.
type EventQuery struct {
	// Since is the cursor (or event number) to continue after.
	Since      string
	Types      []string
	Repository string
	Namespace  string
	Limit      int
	// Wait, in seconds (at most 30), makes the hub hold the request until an event
	// arrives or the time is up: a long poll.
	Wait int
}

// ListEvents returns events after q.Since in feed order, only those of repositories
// the caller may read (all, for site admins).
func (c *Client) ListEvents(ctx context.Context, q EventQuery) (hubtypes.EventPage, error) {
	v := url.Values{}
	if q.Since != "" {
		v.Set("since", q.Since)
	}
	for _, t := range q.Types {
		v.Add("type", t)
	}
	if q.Repository != "" {
		v.Set("repository", q.Repository)
	}
	if q.Namespace != "" {
		v.Set("namespace", q.Namespace)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Wait > 0 {
		v.Set("wait", strconv.Itoa(q.Wait))
	}
	path := "events"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out hubtypes.EventPage
	return out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// SearchQuery is a search; zero fields match everything the caller may pull.
type SearchQuery struct {
	Text       string
	Kind       string // image, chart, artifact
	Namespace  string
	Visibility string // public, private
	After      string
	Limit      int
}

// Search finds repositories the caller may pull by name, description, labels or
// manifest digest prefix (GET /api/v1/search). Without credentials it searches as an
// anonymous visitor: public repositories only.
func (c *Client) Search(ctx context.Context, q SearchQuery) (hubtypes.SearchPage, error) {
	v := url.Values{}
	for k, s := range map[string]string{"q": q.Text, "kind": q.Kind, "namespace": q.Namespace, "visibility": q.Visibility, "after": q.After} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := "/api/v1/search"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	auth, err := c.authenticate(ctx)
	if errors.Is(err, ErrNotLoggedIn) {
		auth, err = nil, nil
	}
	if err != nil {
		return hubtypes.SearchPage{}, err
	}
	var out hubtypes.SearchPage
	return out, c.send(ctx, http.MethodGet, path, auth, nil, &out, 16<<20)
}
