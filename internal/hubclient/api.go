package hubclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// The value types below mirror the JSON of docs/api.md. They are declared here rather
// than imported from the server package, so the client carries no server code.

// User is an account.
type User struct {
	Name      string `json:"name"`
	Email     string `json:"email"`
	Admin     bool   `json:"admin"`
	Robot     bool   `json:"robot"`
	Owner     string `json:"owner,omitempty"`
	Disabled  bool   `json:"disabled"`
	CreatedAt string `json:"created_at,omitempty"`
}

// NewUser is the body of a user creation.
type NewUser struct {
	Name     string `json:"name"`
	Email    string `json:"email,omitempty"`
	Password string `json:"password"`
	Admin    bool   `json:"admin,omitempty"`
}

// UserChange is a partial update of a user; nil fields stay as they are.
type UserChange struct {
	Email           *string `json:"email,omitempty"`
	Password        *string `json:"password,omitempty"`
	CurrentPassword *string `json:"current_password,omitempty"`
	Admin           *bool   `json:"admin,omitempty"`
	Disabled        *bool   `json:"disabled,omitempty"`
}

// Org is an organisation.
type Org struct {
	Name              string `json:"name"`
	DefaultVisibility string `json:"default_visibility"`
	CreatedAt         string `json:"created_at,omitempty"`
}

// Team is a team of an organisation.
type Team struct {
	Org         string `json:"org"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	CreatedAt   string `json:"created_at,omitempty"`
}

// Grant is a team's role on its organisation (Repository "") or one repository.
type Grant struct {
	Repository string `json:"repository"`
	Role       string `json:"role"`
}

// Repository holds a repository's settings.
type Repository struct {
	Name       string `json:"name"`
	Visibility string `json:"visibility"`
}

// Token is an access token as listed, without its secret.
type Token struct {
	Name       string   `json:"name"`
	Scopes     []string `json:"scopes"`
	ExpiresAt  string   `json:"expires_at,omitempty"`
	LastUsedAt string   `json:"last_used_at,omitempty"`
	CreatedAt  string   `json:"created_at,omitempty"`
	RevokedAt  string   `json:"revoked_at,omitempty"`
	Active     bool     `json:"active"`
}

// NewToken asks for an access token; ExpiresInDays 0 means it never expires.
type NewToken struct {
	Name          string   `json:"name"`
	Scopes        []string `json:"scopes"`
	ExpiresInDays int      `json:"expires_in_days"`
}

// CreatedToken is a new token with its secret, which the hub shows only once.
type CreatedToken struct {
	Name      string   `json:"name"`
	Token     string   `json:"token"`
	Scopes    []string `json:"scopes"`
	ExpiresAt string   `json:"expires_at,omitempty"`
}

// Robot is a new robot account with its first token.
type Robot struct {
	User  User         `json:"user"`
	Token CreatedToken `json:"token"`
}

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	ID     int64  `json:"id"`
	Time   string `json:"time"`
	Actor  string `json:"actor"`
	Action string `json:"action"`
	Target string `json:"target,omitempty"`
	Remote string `json:"remote,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// AuditPage is a page of the audit log, newest first; Next, when not zero, is the
// Before of the following page.
type AuditPage struct {
	Entries []AuditEntry `json:"entries"`
	Next    int64        `json:"next,omitempty"`
}

// AuditQuery selects audit entries; zero fields match everything.
type AuditQuery struct {
	Actor  string
	Action string
	Before int64
	Limit  int
}

// Whoami returns the signed-in user.
func (c *Client) Whoami(ctx context.Context) (User, error) {
	var u User
	return u, c.do(ctx, http.MethodGet, "user", nil, &u)
}

// ListUsers lists every account (site admins only).
func (c *Client) ListUsers(ctx context.Context) ([]User, error) {
	var us []User
	return us, c.do(ctx, http.MethodGet, "users", nil, &us)
}

// CreateUser creates an account (site admins only).
func (c *Client) CreateUser(ctx context.Context, u NewUser) (User, error) {
	var out User
	return out, c.do(ctx, http.MethodPost, "users", u, &out)
}

// UpdateUser changes a user.
func (c *Client) UpdateUser(ctx context.Context, name string, ch UserChange) (User, error) {
	var out User
	return out, c.do(ctx, http.MethodPatch, "users/"+seg(name), ch, &out)
}

// DeleteUser removes an account (site admins only).
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "users/"+seg(name), nil, nil)
}

// ListOrgs lists the organisations.
func (c *Client) ListOrgs(ctx context.Context) ([]Org, error) {
	var out []Org
	return out, c.do(ctx, http.MethodGet, "orgs", nil, &out)
}

// CreateOrg creates an organisation owned by the caller; visibility "" keeps the
// default (private).
func (c *Client) CreateOrg(ctx context.Context, name, visibility string) (Org, error) {
	var out Org
	body := map[string]string{"name": name}
	if visibility != "" {
		body["default_visibility"] = visibility
	}
	return out, c.do(ctx, http.MethodPost, "orgs", body, &out)
}

// SetOrgVisibility sets the default visibility of repositories created in org.
func (c *Client) SetOrgVisibility(ctx context.Context, org, visibility string) (Org, error) {
	var out Org
	return out, c.do(ctx, http.MethodPatch, "orgs/"+seg(org), map[string]string{"default_visibility": visibility}, &out)
}

// DeleteOrg removes an organisation (not its repositories).
func (c *Client) DeleteOrg(ctx context.Context, org string) error {
	return c.do(ctx, http.MethodDelete, "orgs/"+seg(org), nil, nil)
}

// ListTeams lists the teams of org.
func (c *Client) ListTeams(ctx context.Context, org string) ([]Team, error) {
	var out []Team
	return out, c.do(ctx, http.MethodGet, "orgs/"+seg(org)+"/teams", nil, &out)
}

// CreateTeam creates a team in org.
func (c *Client) CreateTeam(ctx context.Context, org, team, description string) (Team, error) {
	var out Team
	body := map[string]string{"name": team}
	if description != "" {
		body["description"] = description
	}
	return out, c.do(ctx, http.MethodPost, "orgs/"+seg(org)+"/teams", body, &out)
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
func (c *Client) ListGrants(ctx context.Context, org, team string) ([]Grant, error) {
	var out []Grant
	return out, c.do(ctx, http.MethodGet, teamPath(org, team)+"/grants", nil, &out)
}

// SetGrant gives a team a role (read, write, admin, or none to remove it) on its
// whole organisation (g.Repository "") or one repository.
func (c *Client) SetGrant(ctx context.Context, org, team string, g Grant) error {
	return c.do(ctx, http.MethodPut, teamPath(org, team)+"/grants", g, nil)
}

// CreateRobot creates the robot account <org>.<name> with one access token.
func (c *Client) CreateRobot(ctx context.Context, org string, t NewToken) (Robot, error) {
	var out Robot
	return out, c.do(ctx, http.MethodPost, "orgs/"+seg(org)+"/robots", t, &out)
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
func (c *Client) GetRepository(ctx context.Context, name string) (Repository, error) {
	var out Repository
	return out, c.do(ctx, http.MethodGet, repoPath(name), nil, &out)
}

// SetRepositoryVisibility makes a repository public or private.
func (c *Client) SetRepositoryVisibility(ctx context.Context, name, visibility string) (Repository, error) {
	var out Repository
	return out, c.do(ctx, http.MethodPatch, repoPath(name), map[string]string{"visibility": visibility}, &out)
}

// ListTokens lists the caller's access tokens, revoked ones included.
func (c *Client) ListTokens(ctx context.Context) ([]Token, error) {
	var out []Token
	return out, c.do(ctx, http.MethodGet, "tokens", nil, &out)
}

// CreateToken creates an access token for the caller.
func (c *Client) CreateToken(ctx context.Context, t NewToken) (CreatedToken, error) {
	var out CreatedToken
	return out, c.do(ctx, http.MethodPost, "tokens", t, &out)
}

// RevokeToken revokes the caller's token of that name.
func (c *Client) RevokeToken(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "tokens/"+seg(name), nil, nil)
}

// ListAudit returns a page of the audit log (site admins only).
func (c *Client) ListAudit(ctx context.Context, q AuditQuery) (AuditPage, error) {
	v := url.Values{}
	if q.Actor != "" {
		v.Set("actor", q.Actor)
	}
	if q.Action != "" {
		v.Set("action", q.Action)
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
	var out AuditPage
	return out, c.do(ctx, http.MethodGet, path, nil, &out)
}
