package registry

import (
	"strings"

	"github.com/hubctl/hubctl/internal/auth/scope"
)

// MachinePatterns splits a verified token's access claim into the entries that name a
// resource and the repository pattern grants (NAMESPACE/*) the registry honours. Only
// a machine token (subject KIND:ID, which no account name can be: the hub's minter
// made it, see internal/auth/machinetoken) may hold patterns; in any other token an
// entry with '*' in its name grants nothing. A pattern keeps only pull and push: it
// never deletes, whatever its claim says.
func MachinePatterns(subject string, access []scope.Access) (named, patterns []scope.Access) {
	machine := strings.Contains(subject, ":")
	for _, a := range access {
		if !strings.Contains(a.Name, "*") {
			named = append(named, a)
			continue
		}
		if !machine || a.Type != scope.TypeRepository || a.Class != "" || !validPattern(a.Name) {
			continue
		}
		var acts []string
		for _, act := range a.Actions {
			if act == scope.Pull || act == scope.Push {
				acts = append(acts, act)
			}
		}
		if len(acts) > 0 {
			patterns = append(patterns, scope.Access{Type: a.Type, Name: a.Name, Actions: acts})
		}
	}
	return named, patterns
}

// validPattern accepts PREFIX/* with no other '*' and a non-empty prefix: never `*`
// alone, which would reach every namespace.
func validPattern(name string) bool {
	prefix, ok := strings.CutSuffix(name, "/*")
	return ok && prefix != "" && !strings.Contains(prefix, "*") && !strings.HasPrefix(prefix, "/")
}

// patternAllows reports whether a pattern grant covers action on sc's repository:
// the repository lies below the pattern's prefix (scope.Match: any depth, never the
// prefix itself, never a sibling namespace sharing its first letters).
func patternAllows(patterns []scope.Access, sc scope.Scope, action string) bool {
	if sc.Type != scope.TypeRepository || sc.Class != "" {
		return false
	}
	for _, p := range patterns {
		if (action == scope.Pull || action == scope.Push) && p.Type == sc.Type && p.Class == "" &&
			scope.Match(p.Scope(), sc.Name) && p.Scope().Allows(action) {
			return true
		}
	}
	return false
}
