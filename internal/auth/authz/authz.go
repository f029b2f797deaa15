// Package authz is the hub's access policy: what a principal (anonymous, a user, or an
// access token) may do on the resources a client asks for. The token service asks it
// once per token; the registry then trusts the signed result.
package authz

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/auth/token"
	"github.com/hubctl/hubctl/internal/metadata"
)

// Anonymous is the subject of tokens issued without credentials.
const Anonymous = "anonymous"

// Principal is who asks: nobody (User nil), a user, or a user acting through one of
// their access tokens (Token set), whose scopes further restrict what the user may do.
// Session is set when the user signed in with a refresh session (docker's identity
// token) rather than a password.
type Principal struct {
	User    *accounts.User
	Token   *accounts.AccessToken
	Session *accounts.Session
	// TokenScopes are the parsed patterns of Token.
	TokenScopes []scope.Scope
	// Job is set for a workflow job's token with permissions.deploy: User is then
	// the account the job acts for, and the principal may do nothing but deploy the
	// services Job names, as far as User may now.
	Job *JobGrant
}

// JobGrant is what a workflow job's token may do in the hub API.
type JobGrant struct {
	// Subject is the token's subject, workflow-run:ID.
	Subject string
	// Deploys are NAMESPACE/SERVICE-PATTERN entries (scope.MatchDeploy).
	Deploys []string
}

// MayDeploy reports whether p, if a job's token, may deploy service of namespace;
// any other principal may as far as its account's rights go.
func (p Principal) MayDeploy(namespace, service string) bool {
	return p.Job == nil || scope.MatchDeploy(p.Job.Deploys, namespace, service)
}

// Name is the principal's subject for tokens and the audit log.
func (p Principal) Name() string {
	if p.User == nil {
		return Anonymous
	}
	return p.User.Name
}

// MayReadHub reports whether p may read the hub API area (scope.HubAccounts, …):
// a session (password or a registry token obtained with one) may, as far as its
// user's rights go; an access token only when one of its scopes names the area.
func (p Principal) MayReadHub(area string) bool {
	if p.Job != nil {
		return area == scope.HubDeploys
	}
	return p.Token == nil || scope.HubAllows(p.TokenScopes, area, scope.HubRead)
}

// MayWriteHub reports whether p may change the hub API area (scope.HubWebhooks): a
// session may, as far as its user's rights go; an access token only with a
// hub:AREA:write scope.
func (p Principal) MayWriteHub(area string) bool {
	if p.Job != nil {
		return area == scope.HubDeploys
	}
	return p.Token == nil || scope.HubAllows(p.TokenScopes, area, scope.HubWrite)
}

// Policy decides grants from the accounts store.
type Policy struct {
	Store accounts.Store
}

// actionsOf maps a role to the token actions it allows.
func actionsOf(r accounts.Role) []string {
	switch r {
	case accounts.RoleRead:
		return []string{scope.Pull}
	case accounts.RoleWrite:
		return []string{scope.Pull, scope.Push}
	case accounts.RoleAdmin:
		return []string{scope.All}
	}
	return nil
}

// Grant returns the part of asked that p may do: the intersection of what was asked
// and what is allowed, possibly with no actions, never an error for asking too much.
// Errors are failures of the store.
func (pol *Policy) Grant(ctx context.Context, p Principal, asked scope.Scope) (scope.Scope, error) {
	none := asked
	none.Actions = nil
	if !asked.Known() || asked.Class != "" && asked.Class != "image" {
		return none, nil
	}
	if p.User != nil && p.User.Disabled {
		return none, nil
	}
	var allowed []string
	switch asked.Type {
	case scope.TypeRegistry:
		// The catalog lists every repository, private ones included: admins only.
		if asked.Name == "catalog" && p.User != nil && p.User.Admin {
			allowed = []string{scope.All}
		}
	case scope.TypeRepository:
		if accounts.IsSystemRepository(asked.Name) {
			// The hub's own images: pulled by every job's pod, with or without
			// credentials; written by the hub alone, never through a token.
			allowed = []string{scope.Pull}
			break
		}
		role, err := pol.RoleOn(ctx, p.User, asked.Name)
		if err != nil {
			return none, err
		}
		allowed = actionsOf(role)
		if role.Rank() < accounts.RoleRead.Rank() {
			vis, _, err := pol.Store.RepositoryVisibility(ctx, asked.Name)
			if err != nil {
				return none, err
			}
			if vis == accounts.Public {
				allowed = []string{scope.Pull}
			}
		}
	}
	granted := scope.Intersect(asked, allowed)
	if p.Token != nil {
		granted = scope.Restrict(granted, p.TokenScopes)
	}
	return granted, nil
}

// RoleOn is the role user has on repository: read for everybody in
// accounts.SystemNamespace, admin for site admins and in the user's own namespace, admin for a robot inside its organisation, else the strongest team
// grant. A nil user (anonymous) has none; public pulls are decided by Grant.
func (pol *Policy) RoleOn(ctx context.Context, u *accounts.User, repository string) (accounts.Role, error) {
	if u == nil || u.Disabled {
		return accounts.RoleNone, nil
	}
	if accounts.IsSystemRepository(repository) {
		// Nobody administers the hub's own images, site admins included.
		return accounts.RoleRead, nil
	}
	if u.Admin {
		return accounts.RoleAdmin, nil
	}
	ns, _, _ := strings.Cut(repository, "/")
	if !strings.Contains(repository, "/") {
		// A repository without a namespace belongs to nobody but the admins.
		return accounts.RoleNone, nil
	}
	if u.Robot {
		if u.Owner == ns {
			return accounts.RoleAdmin, nil
		}
		return accounts.RoleNone, nil
	}
	if ns == u.Name {
		return accounts.RoleAdmin, nil
	}
	r, err := pol.Store.RoleOf(ctx, u.Name, repository)
	if err != nil {
		return accounts.RoleNone, fmt.Errorf("role of %s on %s: %w", u.Name, repository, err)
	}
	return r, nil
}

// ErrBadCredentials is returned by Authenticate for a wrong name, password or token.
var ErrBadCredentials = errors.New("invalid username, password or token")

// TokenPrincipal builds the principal of an access token found by its hash, refusing
// revoked and expired tokens and tokens of missing or disabled users.
func TokenPrincipal(ctx context.Context, store accounts.Store, t accounts.AccessToken, now time.Time) (Principal, error) {
	if !t.Active(now) {
		return Principal{}, ErrBadCredentials
	}
	u, err := store.GetUser(ctx, t.User)
	if errors.Is(err, accounts.ErrNotFound) {
		return Principal{}, ErrBadCredentials
	} else if err != nil {
		return Principal{}, err
	}
	if u.Disabled {
		return Principal{}, ErrBadCredentials
	}
	p := Principal{User: &u, Token: &t}
	for _, s := range t.Scopes {
		sc, err := scope.ParsePattern(s)
		if err != nil {
			// A scope stored earlier that no longer parses grants nothing.
			continue
		}
		p.TokenScopes = append(p.TokenScopes, sc)
	}
	return p, nil
}

// CatalogFilter selects what the catalog lists to p: the repositories Grant would let p
// pull, as one store query (metadata.Store.Catalog). Anonymous callers see public
// repositories; users their own namespace, what their teams are granted and public
// ones; robots their organisation's and public ones; site admins everything; a
// disabled user nothing. An access token narrows that to its patterns granting pull.
func (pol *Policy) CatalogFilter(p Principal) metadata.CatalogFilter {
	var f metadata.CatalogFilter
	switch u := p.User; {
	case u == nil:
		f.Public = true
	case u.Disabled:
		return metadata.CatalogFilter{}
	case u.Admin:
		f.All = true
	case u.Robot:
		f.Public, f.Namespaces = true, []string{u.Owner}
	default:
		f.Public, f.Namespaces, f.Member = true, []string{u.Name}, u.Name
	}
	if p.Token != nil {
		f.Restricted = true
		for _, sc := range p.TokenScopes {
			if sc.Type == scope.TypeRepository && sc.Class == "" && sc.Allows(scope.Pull) {
				f.Patterns = append(f.Patterns, sc.Name)
			}
		}
	}
	return f
}

// PrincipalOf is the principal behind a verified registry token of subject that says
// how it signed in (hub): anonymous for the anonymous subject, and also for a token
// whose account, access token or refresh session is gone, ended or disabled since it
// was issued, or belongs to an earlier account of the same name. Such a token's grants
// may live out their lifetime; what it is shown beyond public content must not.
func PrincipalOf(ctx context.Context, store accounts.Store, subject string, hub token.Hub, now time.Time) (Principal, error) {
	if subject == "" || subject == Anonymous {
		return Principal{}, nil
	}
	u, err := store.GetUser(ctx, subject)
	if errors.Is(err, accounts.ErrNotFound) {
		return Principal{}, nil
	} else if err != nil {
		return Principal{}, err
	}
	if u.ID != hub.UserID || u.SessionEpoch != hub.Epoch || u.Disabled {
		return Principal{}, nil
	}
	if hub.TokenID != 0 {
		t, err := store.TokenByID(ctx, hub.TokenID)
		if errors.Is(err, accounts.ErrNotFound) || (err == nil && (t.User != u.Name || !t.Active(now))) {
			return Principal{}, nil
		} else if err != nil {
			return Principal{}, err
		}
		p, err := TokenPrincipal(ctx, store, t, now)
		if errors.Is(err, ErrBadCredentials) {
			return Principal{}, nil
		}
		return p, err
	}
	if hub.SessionID != 0 {
		sess, err := store.SessionByID(ctx, hub.SessionID)
		if errors.Is(err, accounts.ErrNotFound) || (err == nil && (sess.UserID != u.ID || !sess.Active(now))) {
			return Principal{}, nil
		} else if err != nil {
			return Principal{}, err
		}
		return Principal{User: &u, Session: &sess}, nil
	}
	return Principal{User: &u}, nil
}

// MayPull reports whether user may pull repository now: its role, or the repository
// being public. Webhook delivery asks it of a hook's owner for every event.
func (pol *Policy) MayPull(ctx context.Context, user accounts.User, repository string) (bool, error) {
	g, err := pol.Grant(ctx, Principal{User: &user}, scope.Scope{Type: scope.TypeRepository, Name: repository, Actions: []string{scope.Pull}})
	if err != nil {
		return false, err
	}
	return slices.Contains(g.Actions, scope.Pull) || slices.Contains(g.Actions, scope.All), nil
}
