package machinetoken

import (
	"fmt"
	"strings"

	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/scope"
)

// IsPattern reports whether a repository name in a request is a pattern (it holds
// '*'), which authz.GrantPattern decides rather than authz.Grant.
func IsPattern(name string) bool { return strings.Contains(name, "*") }

// askedScope checks one entry of a request: a repository by name or registry:catalog
// as the token service parses them, or a repository pattern NAMESPACE/* asking pull
// and/or push only. `*` alone, `**` and any other pattern are refused, as is delete
// or "*" on a pattern: a pattern grant reaches repositories made later, so it carries
// no more than a job needs to pull and push.
func askedScope(a scope.Access) (scope.Scope, error) {
	if a.Type == scope.TypeRepository && IsPattern(a.Name) {
		sc, err := scope.ParsePattern(a.Scope().String())
		if err != nil || sc.Class != "" || len(sc.Actions) == 0 {
			return scope.Scope{}, fmt.Errorf("cannot grant %q: a repository pattern is NAMESPACE/* with pull and/or push", a.Scope().String())
		}
		if err := authz.CheckPattern(sc.Name); err != nil {
			return scope.Scope{}, err
		}
		for _, act := range sc.Actions {
			if act != scope.Pull && act != scope.Push {
				return scope.Scope{}, fmt.Errorf("cannot grant %q: a repository pattern grants pull and push only", sc.String())
			}
		}
		return sc, nil
	}
	// Parsing the canonical form again checks the name as the token service does.
	sc, err := scope.Parse(a.Scope().String())
	if err != nil || !sc.Known() || len(sc.Actions) == 0 {
		return scope.Scope{}, fmt.Errorf("cannot grant %q: a repository by name or pattern (NAMESPACE/*), or registry:catalog, with actions",
			a.Scope().String())
	}
	return sc, nil
}
