package chartrepo

import (
	"context"
	"net/http"
	"sync"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/auth/token"
	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/reqlog"
)

// Auth is how the chart repository decides who may do what: the hub's own sign-in
// (HTTP Basic with a password or an access token, Bearer with an access token or a
// registry token) and the hub's access policy, the same that the token service
// applies. Nil Auth (--auth=none) lets everyone do everything.
type Auth struct {
	// Principal finds who sends the request; nil, nil for a request without
	// credentials. Errors are *errcode.Error for bad credentials (401) or a rate limit.
	Principal func(w http.ResponseWriter, r *http.Request) (*authz.Principal, error)
	// Policy decides grants.
	Policy *authz.Policy
	// Issuer signs the registry tokens with which ChartMuseum uploads and deletes go
	// through the registry in-process, with exactly what the policy granted.
	Issuer *token.Issuer
}

// caller is the principal of one request with its grant decisions, memoised per
// repository so that an index of many charts asks the policy once per repository.
type caller struct {
	auth *Auth
	p    authz.Principal
	mu   sync.Mutex
	memo map[string][]string // repository → granted actions
	// public is what the chart records say of each repository's visibility, so the
	// policy need not ask the database again.
	public map[string]bool
}

// caller authenticates r. With no credentials it is the anonymous principal.
func (a *Auth) caller(w http.ResponseWriter, r *http.Request) (*caller, error) {
	c := &caller{auth: a, memo: map[string][]string{}, public: map[string]bool{}}
	if a == nil {
		return c, nil
	}
	p, err := a.Principal(w, r)
	if err != nil {
		return nil, err
	}
	if p != nil {
		c.p = *p
		reqlog.From(r.Context()).User = p.Name()
	}
	return c, nil
}

// anonymous reports a caller without credentials.
func (c *caller) anonymous() bool { return c.auth != nil && c.p.User == nil }

// may reports whether the caller may do action on repository.
func (c *caller) may(ctx context.Context, repository, action string) (bool, error) {
	if c.auth == nil {
		return true, nil
	}
	acts, err := c.grant(ctx, repository)
	if err != nil {
		return false, err
	}
	sc := scope.Scope{Type: scope.TypeRepository, Name: repository, Actions: acts}
	return sc.Allows(action), nil
}

// grant asks the policy for every action on repository.
func (c *caller) grant(ctx context.Context, repository string) ([]string, error) {
	c.mu.Lock()
	acts, ok := c.memo[repository]
	c.mu.Unlock()
	if ok {
		return acts, nil
	}
	pol := c.auth.Policy
	if pub, known := c.public[repository]; known {
		pol = &authz.Policy{Store: visibilityHint{Store: pol.Store, repository: repository, public: pub}}
	}
	g, err := pol.Grant(ctx, c.p, scope.Scope{Type: scope.TypeRepository, Name: repository,
		Actions: []string{scope.Pull, scope.Push, scope.Delete}})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.memo[repository] = g.Actions
	c.mu.Unlock()
	return g.Actions, nil
}

// hiddenRepos returns the repositories of ix the caller may not pull, in name order.
// The policy decides each as Grant does, from what is in memory: the visibility read
// with the index, and the caller's role on the whole namespace (one lookup), which
// every repository of the namespace inherits. Only a caller without a role on the
// namespace, whose grants name single private repositories, costs a lookup per such
// repository.
func (c *caller) hiddenRepos(ctx context.Context, ns string, ix *nsIndex) ([]string, error) {
	if c.auth == nil {
		return nil, nil
	}
	role, err := c.auth.Policy.RoleOn(ctx, c.p.User, ns+"/")
	if err != nil {
		return nil, err
	}
	pol := &authz.Policy{Store: indexHint{Store: c.auth.Policy.Store, ns: ns, role: role, public: ix.public}}
	var hidden []string
	for _, repo := range ix.repos {
		g, err := pol.Grant(ctx, c.p, scope.Scope{Type: scope.TypeRepository, Name: repo, Actions: []string{scope.Pull}})
		if err != nil {
			return nil, err
		}
		if !g.Allows(scope.Pull) {
			hidden = append(hidden, repo)
		}
	}
	return hidden, nil
}

// indexHint answers the policy's questions about the repositories of one namespace's
// index from what the request already knows: their visibility, and the user's role on
// the whole namespace when it allows pulls (a team's role on every repository of an
// organisation; a grant on one repository may add to it, but only pull is asked).
type indexHint struct {
	accounts.Store
	ns     string
	role   accounts.Role
	public map[string]bool
}

func (x indexHint) RoleOf(ctx context.Context, user, repository string) (accounts.Role, error) {
	if x.role.Rank() >= accounts.RoleRead.Rank() && namespaceOf(repository) == x.ns {
		return x.role, nil
	}
	return x.Store.RoleOf(ctx, user, repository)
}

func (x indexHint) RepositoryVisibility(ctx context.Context, repository string) (accounts.Visibility, bool, error) {
	pub, ok := x.public[repository]
	if !ok {
		return x.Store.RepositoryVisibility(ctx, repository)
	}
	if pub {
		return accounts.Public, true, nil
	}
	return accounts.Private, true, nil
}

// hasRole reports whether the caller holds role on the whole namespace ns (its own
// namespace, an organisation team's role on every repository, a site admin).
func (c *caller) hasRole(ctx context.Context, ns string, role accounts.Role) (bool, error) {
	if c.auth == nil {
		return true, nil
	}
	if c.p.User == nil {
		return false, nil
	}
	// "ns/" is no repository's name, so a grant on one repository of ns does not
	// count as a role on the namespace.
	r, err := c.auth.Policy.RoleOn(ctx, c.p.User, ns+"/")
	if err != nil {
		return false, err
	}
	return r.Rank() >= role.Rank(), nil
}

// registryToken is a registry token for the caller holding what the policy grants of
// actions on repository; "" without auth.
func (c *caller) registryToken(ctx context.Context, repository string, actions ...string) (string, error) {
	if c.auth == nil {
		return "", nil
	}
	g, err := c.auth.Policy.Grant(ctx, c.p, scope.Scope{Type: scope.TypeRepository, Name: repository, Actions: actions})
	if err != nil {
		return "", err
	}
	h := token.Hub{}
	if c.p.User != nil {
		h.UserID, h.Epoch = c.p.User.ID, c.p.User.SessionEpoch
	}
	if c.p.Token != nil {
		h.TokenID = c.p.Token.ID
	}
	if c.p.Session != nil {
		h.SessionID = c.p.Session.ID
	}
	tok, err := c.auth.Issuer.Issue(c.p.Name(), h, []scope.Access{g.Access()})
	if err != nil {
		return "", err
	}
	return tok.Raw, nil
}

// visibilityHint answers the policy's visibility question for one repository from
// what the caller already read, and passes everything else to the accounts store.
type visibilityHint struct {
	accounts.Store
	repository string
	public     bool
}

func (v visibilityHint) RepositoryVisibility(ctx context.Context, repository string) (accounts.Visibility, bool, error) {
	if repository != v.repository {
		return v.Store.RepositoryVisibility(ctx, repository)
	}
	if v.public {
		return accounts.Public, true, nil
	}
	return accounts.Private, true, nil
}

// challenge is the answer to a request that must sign in: 401 with a Basic challenge,
// which helm, curl and browsers understand.
func challenge(w http.ResponseWriter, format string, args ...any) error {
	w.Header().Set("WWW-Authenticate", `Basic realm="hubctl"`)
	return errcode.New(errcode.Unauthorized, format, args...)
}
