// Package scope parses and formats Docker registry token scopes
// (`repository:team/app:pull,push`, `repository(plugin):x:pull`, `registry:catalog:*`),
// converts them to and from the JWT `access` claim, and computes what part of an asked
// scope a set of allowed actions or access-token patterns grants.
package scope

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hubctl/hubctl/internal/reference"
)

// Resource types of the Docker token spec that the registry acts on.
const (
	TypeRepository = "repository"
	TypeRegistry   = "registry"
)

// Actions the registry grants. All ("*") is an action of its own in the spec: on
// `registry:catalog:*` it is the only one, and in an allowed set it stands for every action.
const (
	Pull   = "pull"
	Push   = "push"
	Delete = "delete"
	All    = "*"
)

// ErrInvalid is wrapped by every parse error, so a token endpoint can answer
// invalid_request without matching on message text.
var ErrInvalid = errors.New("invalid scope")

// Scope is one resource scope of the Docker token spec: what a client asks for in a
// `scope` parameter and, once granted, one entry of the JWT `access` claim.
type Scope struct {
	// Type is the resource type, `repository` or `registry` for the scopes we grant.
	Type string
	// Class is the optional resource class in parentheses, e.g. "plugin" in
	// `repository(plugin):x:pull`; empty for ordinary images.
	Class string
	// Name is the resource name: a repository name, `catalog`, or for patterns
	// (see ParsePattern) `prefix/*` or `*`.
	Name string
	// Actions are sorted and free of duplicates in parsed scopes.
	Actions []string
}

// Parse parses one scope. The type is everything before the first ':', the actions
// everything after the last ':' and the name what lies between, as the Docker spec
// reads it. Repository names must be valid distribution names; unknown types parse
// (the spec lets clients send them) and are reported by Known.
func Parse(s string) (Scope, error) {
	return parse(s, false)
}

// ParsePattern parses a scope of an access token, whose repository name may also be
// `*` (every repository) or end in `/*` (every repository under a prefix, at any depth).
func ParsePattern(s string) (Scope, error) {
	return parse(s, true)
}

// ParseAll parses the `scope` query parameters of a token request. docker sends
// several scopes space-separated in one parameter, other clients repeat the
// parameter; both forms are accepted and scopes on the same resource are merged.
func ParseAll(params []string) ([]Scope, error) {
	var out []Scope
	for _, p := range params {
		for _, f := range strings.Fields(p) {
			sc, err := Parse(f)
			if err != nil {
				return nil, err
			}
			out = merge(out, sc)
		}
	}
	return out, nil
}

// merge adds sc to list, folding it into an entry for the same resource so the
// granted access carries one entry per resource, as docker expects.
func merge(list []Scope, sc Scope) []Scope {
	for i := range list {
		if list[i].Type == sc.Type && list[i].Class == sc.Class && list[i].Name == sc.Name {
			list[i].Actions = normalize(append(list[i].Actions, sc.Actions...))
			return list
		}
	}
	return append(list, sc)
}

func parse(s string, pattern bool) (Scope, error) {
	first := strings.IndexByte(s, ':')
	last := strings.LastIndexByte(s, ':')
	if first < 0 || first == last {
		return Scope{}, fmt.Errorf("%w %q: want type:name:actions", ErrInvalid, s)
	}
	var sc Scope
	typ := s[:first]
	if open := strings.IndexByte(typ, '('); open >= 0 {
		if !strings.HasSuffix(typ, ")") {
			return Scope{}, fmt.Errorf("%w %q: unclosed resource class", ErrInvalid, s)
		}
		sc.Class = typ[open+1 : len(typ)-1]
		typ = typ[:open]
		if !isLowerAlnum(sc.Class) {
			return Scope{}, fmt.Errorf("%w %q: resource class must match [a-z0-9]+", ErrInvalid, s)
		}
	}
	if !isLowerAlnum(typ) {
		return Scope{}, fmt.Errorf("%w %q: resource type must match [a-z0-9]+", ErrInvalid, s)
	}
	sc.Type = typ
	sc.Name = s[first+1 : last]
	if err := validateName(sc.Type, sc.Name, pattern); err != nil {
		return Scope{}, fmt.Errorf("%w %q: %v", ErrInvalid, s, err)
	}
	acts := s[last+1:]
	if acts == "" {
		return Scope{}, fmt.Errorf("%w %q: no actions", ErrInvalid, s)
	}
	for _, a := range strings.Split(acts, ",") {
		// The spec's grammar is /[a-z]*/; we also take '*' and refuse empty elements
		// ("pull,,push") because they only come from broken clients.
		if a != All && !isLower(a) {
			return Scope{}, fmt.Errorf("%w %q: action %q must match [a-z]+ or be *", ErrInvalid, s, a)
		}
		sc.Actions = append(sc.Actions, a)
	}
	sc.Actions = normalize(sc.Actions)
	return sc, nil
}

func validateName(typ, name string, pattern bool) error {
	if typ == TypeRepository {
		if pattern {
			if name == All {
				return nil
			}
			if prefix, ok := strings.CutSuffix(name, "/*"); ok {
				return reference.ValidateRepository(prefix)
			}
		}
		return reference.ValidateRepository(name)
	}
	if name == "" {
		return errors.New("resource name is empty")
	}
	// Other types have no name grammar we rely on; refusing spaces and control
	// characters keeps String's output parseable by ParseAll, which splits on spaces.
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("resource name %q has a space or a non-printable character", name)
		}
	}
	return nil
}

func isLowerAlnum(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func isLower(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// normalize sorts and deduplicates actions so equal grants compare and print equal.
func normalize(actions []string) []string {
	slices.Sort(actions)
	return slices.Compact(actions)
}

// Known reports whether the scope's type is one the registry acts on. Scopes of
// other types are legal to ask for; they are simply never granted.
func (s Scope) Known() bool {
	return s.Type == TypeRepository || s.Type == TypeRegistry
}

// String formats the scope canonically (actions sorted and deduplicated), in the
// form a WWW-Authenticate challenge and a token request carry.
func (s Scope) String() string {
	var b strings.Builder
	b.WriteString(s.Type)
	if s.Class != "" {
		b.WriteByte('(')
		b.WriteString(s.Class)
		b.WriteByte(')')
	}
	b.WriteByte(':')
	b.WriteString(s.Name)
	b.WriteByte(':')
	b.WriteString(strings.Join(normalize(slices.Clone(s.Actions)), ","))
	return b.String()
}

// Allows reports whether the scope grants action, with "*" granting every action.
func (s Scope) Allows(action string) bool {
	return slices.Contains(s.Actions, action) || slices.Contains(s.Actions, All)
}

// Access is one entry of the JWT `access` claim of the Docker token spec.
type Access struct {
	Type    string   `json:"type"`
	Class   string   `json:"class,omitempty"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
	// Denied lists actions that were asked for and refused (an extension: clients
	// ignore it). It lets a registry answer 403 to an authenticated user who asked
	// and may not, instead of a 401 that only makes the client ask again.
	Denied []string `json:"denied,omitempty"`
}

// Access converts a granted scope to its claim entry. Actions is never nil, because
// the spec's claim always carries the array, even when nothing was granted.
func (s Scope) Access() Access {
	acts := normalize(slices.Clone(s.Actions))
	if acts == nil {
		acts = []string{}
	}
	return Access{Type: s.Type, Class: s.Class, Name: s.Name, Actions: acts}
}

// Scope converts a claim entry back to a scope, normalizing its actions.
func (a Access) Scope() Scope {
	return Scope{Type: a.Type, Class: a.Class, Name: a.Name, Actions: normalize(slices.Clone(a.Actions))}
}

// Match reports whether a repository name falls under the name of an access-token
// pattern: an exact name, `prefix/*` (anything below prefix, at any depth, but not
// prefix itself) or `*` (everything). Types and actions are not compared here.
func Match(pattern Scope, name string) bool {
	switch {
	case pattern.Name == All:
		return true
	case strings.HasSuffix(pattern.Name, "/*"):
		prefix := pattern.Name[:len(pattern.Name)-1] // keeps the '/'
		return len(name) > len(prefix) && strings.HasPrefix(name, prefix)
	}
	return pattern.Name == name
}

// Intersect returns asked with only the actions that allowed permits: the grant is
// the intersection of what was asked and what is allowed, never an error for asking
// too much. A "*" in allowed permits every action (pull, push, delete and "*" itself);
// asking for "*" is granted only by an allowed "*". Unknown actions are never granted.
func Intersect(asked Scope, allowed []string) Scope {
	all := slices.Contains(allowed, All)
	var acts []string
	for _, a := range asked.Actions {
		if !knownAction(a) {
			continue
		}
		if all || slices.Contains(allowed, a) {
			acts = append(acts, a)
		}
	}
	asked.Actions = normalize(acts)
	return asked
}

func knownAction(a string) bool {
	return a == Pull || a == Push || a == Delete || a == All
}

// Restrict returns the part of asked that the patterns of an access token permit:
// the union of the actions of every pattern whose type and class equal asked's and
// whose name matches asked.Name (see Match), intersected with asked's actions.
func Restrict(asked Scope, patterns []Scope) Scope {
	var allowed []string
	for _, p := range patterns {
		if p.Type == asked.Type && p.Class == asked.Class && Match(p, asked.Name) {
			allowed = append(allowed, p.Actions...)
		}
	}
	return Intersect(asked, allowed)
}

// TypeHub is the resource type of access-token scopes on the hub API itself:
// `hub:AREA:ACTIONS`, e.g. `hub:audit:read`. They are never asked for at /token nor
// granted in a registry token; the hub API checks them on the access token it looked
// up. AREA is one of HubAreas or `*` (every area); ACTIONS are HubRead and, reserved
// for areas whose changes a token may one day make, HubWrite.
const TypeHub = "hub"

// Actions of hub scopes.
const (
	HubRead  = "read"
	HubWrite = "write"
	// HubRun starts, approves, cancels and reruns workflow runs (HubRunnable), as far
	// as the token's owner may, without changing the workflows.
	HubRun = "run"
)

// Areas of the hub API an access token may be given, each named for what it reads.
// Later APIs (webhooks, workflows, deploy) add their own area here, with the same
// read/write actions, so existing tokens keep their meaning.
const (
	HubAccounts  = "accounts"  // other users: GET /users, /users/NAME (emails, flags)
	HubOrgs      = "orgs"      // GET /orgs, /orgs/NAME, /orgs/NAME/robots
	HubTeams     = "teams"     // teams, their members and grants
	HubAudit     = "audit"     // GET /audit
	HubQuotas    = "quotas"    // namespace usage and quotas
	HubEvents    = "events"    // GET /events (only of repositories the token may pull)
	HubWebhooks  = "webhooks"  // webhooks and their deliveries (read); create, delete, redeliver (write)
	HubWorkflows = "workflows" // workflows, runs and logs (read); apply, delete, run, cancel, rerun (write); run, approve, cancel, rerun (run)
	HubDeploys   = "deploys"   // deploy history (read); begin, finish, break the lock, pull tokens, secrets (write)
)

// HubWritable lists the areas whose changes an access token may make with a
// hub:AREA:write scope, within what its owner may do with a password.
var HubWritable = []string{HubWebhooks, HubWorkflows, HubDeploys}

// HubRunnable lists the areas with the HubRun action.
var HubRunnable = []string{HubWorkflows}

// HubAreas lists the areas in the order help texts show them.
var HubAreas = []string{HubAccounts, HubOrgs, HubTeams, HubAudit, HubQuotas, HubEvents, HubWebhooks, HubWorkflows, HubDeploys}

// CheckHubScope reports whether sc (of type TypeHub) is one an access token may hold
// today: a known area or `*`, and the read action, or write on an area of HubWritable
// (not `*`). Other writes are refused rather than stored without effect: changing
// accounts, organisations, teams, grants and quotas needs a password session.
func CheckHubScope(sc Scope) error {
	if sc.Class != "" {
		return fmt.Errorf("%w %q: hub scopes have no resource class", ErrInvalid, sc.String())
	}
	if sc.Name != All && !slices.Contains(HubAreas, sc.Name) {
		return fmt.Errorf("%w %q: hub area %q is unknown (want one of %s, or *)", ErrInvalid, sc.String(), sc.Name, strings.Join(HubAreas, ", "))
	}
	for _, a := range sc.Actions {
		if a == HubWrite && sc.Name != All && slices.Contains(HubWritable, sc.Name) {
			continue
		}
		if a == HubRun && sc.Name != All && slices.Contains(HubRunnable, sc.Name) {
			continue
		}
		if a != HubRead {
			return fmt.Errorf("%w %q: hub scopes grant read only; changes to accounts, organisations, teams, grants and quotas need a password session", ErrInvalid, sc.String())
		}
	}
	return nil
}

// HubAllows reports whether the patterns of an access token grant action on the hub
// API area.
func HubAllows(patterns []Scope, area, action string) bool {
	for _, p := range patterns {
		if p.Type == TypeHub && p.Class == "" && (p.Name == All || p.Name == area) && p.Allows(action) {
			return true
		}
	}
	return false
}

// CheckDeployPattern checks a service pattern a workflow's permissions.deploy may
// name: a service name, a PREFIX* of one (lower-case letters, digits, '.', '_' and
// '-'), or `*` for every service of the workflow's namespace.
func CheckDeployPattern(p string) error {
	name, prefix := strings.CutSuffix(p, "*")
	if p == All {
		return nil
	}
	ok := len(p) <= 64 && name != "" && !strings.Contains(name, "*")
	for i, c := range name {
		alnum := (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		if !alnum && (i == 0 || (c != '.' && c != '_' && c != '-')) {
			ok = false
		}
	}
	if ok && !prefix {
		last := name[len(name)-1]
		ok = (last >= 'a' && last <= 'z') || (last >= '0' && last <= '9')
	}
	if !ok {
		return fmt.Errorf("%w: deploy pattern %q: want a service name, PREFIX* or *", ErrInvalid, p)
	}
	return nil
}

// MatchDeploy reports whether one of grants (NAMESPACE/PATTERN entries, as a job
// token carries them) covers service of namespace: the namespace exactly, the
// service by name, by PREFIX* or by `*`.
func MatchDeploy(grants []string, namespace, service string) bool {
	for _, g := range grants {
		ns, p, ok := strings.Cut(g, "/")
		if !ok || ns != namespace || CheckDeployPattern(p) != nil {
			continue
		}
		if prefix, isPrefix := strings.CutSuffix(p, "*"); (isPrefix && strings.HasPrefix(service, prefix)) || p == service {
			return true
		}
	}
	return false
}
