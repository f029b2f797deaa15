package authz

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/reference"
)

// ErrBadPattern is wrapped when a repository pattern cannot be granted at all: `*`
// (every namespace), or anything but PREFIX/* with PREFIX a repository name.
var ErrBadPattern = errors.New("repository pattern cannot be granted")

// PatternActions are the only actions a pattern grant carries: never delete, never
// "*", whatever the principal may do on the repositories it covers.
var PatternActions = []string{scope.Pull, scope.Push}

// CheckPattern accepts PREFIX/* where PREFIX is a repository name (so at least a
// namespace): the pattern covers the repositories below PREFIX, at any depth, as
// scope.Match reads it, and never another namespace. `*` alone, `**`, `..` and the
// like are refused.
func CheckPattern(name string) error {
	prefix, ok := strings.CutSuffix(name, "/*")
	if !ok || prefix == "" {
		return fmt.Errorf("%w: %q is not NAMESPACE/* (or NAMESPACE/PATH/*); `*` would cover every namespace", ErrBadPattern, name)
	}
	if err := reference.ValidateRepository(prefix); err != nil {
		return fmt.Errorf("%w: %q: %v", ErrBadPattern, name, err)
	}
	return nil
}

// GrantPattern returns the part of asked (a repository scope whose name is a pattern,
// see CheckPattern) that p may do on every repository the pattern covers, now and
// later: the role p holds on the whole of PREFIX's namespace, never a role on one
// repository (a team grant on acme/api does not cover acme/*) and never public
// visibility (a public repository is one repository, not the pattern). It answers
// without enumerating repositories: RoleOn of the pattern itself is that role,
// because no grant names a repository containing '*' (team grants name the whole
// organisation or one valid repository name). Only pull and push are ever granted.
func (pol *Policy) GrantPattern(ctx context.Context, p Principal, asked scope.Scope) (scope.Scope, error) {
	none := asked
	none.Actions = nil
	if asked.Type != scope.TypeRepository || asked.Class != "" {
		return none, nil
	}
	if err := CheckPattern(asked.Name); err != nil {
		return none, err
	}
	if p.User == nil || p.User.Disabled || p.Token != nil {
		// Anonymous callers have no namespace; access tokens are not a creator.
		return none, nil
	}
	role, err := pol.RoleOn(ctx, p.User, asked.Name)
	if err != nil {
		return none, err
	}
	allowed := scope.Intersect(scope.Scope{Actions: PatternActions}, actionsOf(role)).Actions
	return scope.Intersect(asked, allowed), nil
}
