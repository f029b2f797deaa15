// Package machinetoken mints the hub's short-lived machine tokens: registry tokens
// that automation acts with on behalf of the account that set it up — a Dragonfly
// preheat pulling the pushed image (subject webhook:ID), a workflow job pushing what
// it built ($HUBCTL_TOKEN, subject workflow-run:ID).
//
// It is one mechanism for all of them: the token grants the intersection of what was
// asked with what the creator account may do now, decided by authz.Policy.Grant, the
// very code the token service asks for a signed-in user; a deleted or disabled creator
// gets nothing. Every token is audited (action token.machine), never its text.
//
// It is a package of its own rather than a type beside token.Issuer because it needs
// authz, which already imports token: the issuer signs, the policy decides, and this
// package joins the two.
package machinetoken

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/auth/token"
)

// DefaultTTL is a machine token's lifetime when a request names none; MaxTTL bounds
// what a request may ask.
const (
	DefaultTTL = 15 * time.Minute
	MaxTTL     = time.Hour
)

// AuditAction is the audit log's action for every machine token minted.
const AuditAction = "token.machine"

// ErrRefused is wrapped when no token is minted because of the creator: gone,
// disabled, or allowed none of the access asked for. Callers report it as the
// reason their work cannot proceed (a preheat not made, a job failed).
var ErrRefused = errors.New("machine token refused")

// Store is what the minter reads and writes: the creator account by id, the audit log.
type Store interface {
	UserByID(ctx context.Context, id int64) (accounts.User, error)
	Audit(ctx context.Context, e accounts.AuditEntry) error
}

// Minter mints machine tokens with the token service's keys, so the registry verifies
// them as any registry token: by signature and access claim alone.
type Minter struct {
	// Keys, Issuer and Service are the token service's (token.Issuer).
	Keys    *token.KeySet
	Issuer  string
	Service string
	Store   Store
	// Policy decides what the creator may do: the token service's policy.
	Policy *authz.Policy
	// Now reads the clock; nil means time.Now. Tests set it.
	Now func() time.Time
}

// Request is one machine token asked for.
type Request struct {
	// Creator is the id of the account the token acts for (a hook's creator, a
	// workflow's applier).
	Creator int64
	// Subject is the token's sub: KIND:ID ("webhook:abc", "workflow-run:42"). It holds
	// a colon, which account names cannot, so it never names an account: the hub API
	// sees an anonymous caller in a machine token.
	Subject string
	// Access is what is asked: repositories by name, repository patterns
	// (NAMESPACE/*: pull and push only, see authz.GrantPattern; the registry matches
	// them for machine tokens alone), or registry:catalog.
	Access []scope.Access
	// TTL is the lifetime; 0 means DefaultTTL, more than MaxTTL is refused.
	TTL time.Duration
	// Deploys are NAMESPACE/SERVICE-PATTERN entries (scope.CheckDeployPattern) the
	// token may deploy through the hub API (hub:deploys:write on those services): each
	// is kept only while Creator has the write role on the whole namespace, and the
	// hub API checks that again at each call. Only job tokens (subject workflow-run:ID)
	// carry them.
	Deploys []string
	// Purpose is a short note for the audit entry ("Dragonfly preheat", "job 7 of
	// run 3 of acme/release"); never a secret.
	Purpose string
}

// Token is a minted machine token.
type Token struct {
	// Raw is the bearer token. It must never reach a log, the audit or a stored row.
	Raw string
	// ID is its jti, which the audit entry names.
	ID string
	// Access is what it grants: the part of the request the creator may do.
	Access    []scope.Access
	ExpiresAt time.Time
}

// String hides the token, so a Token formatted by mistake shows no credential.
func (t Token) String() string { return "machinetoken.Token{ID:" + t.ID + "}" }

// GoString hides the token from %#v as well.
func (t Token) GoString() string { return t.String() }

// Mint issues a token for r: the intersection of r.Access with what r.Creator may do
// now. It refuses (ErrRefused) a creator that is gone or disabled and a request of
// which nothing is granted (a job's token that asks for nothing is the exception: it
// carries only its creator, for its run's job endpoints); a request partly granted gets a token for that part (a
// creator who lost push gets pull). The token is audited before it is returned: no
// audit, no token.
func (m *Minter) Mint(ctx context.Context, r Request) (Token, error) {
	if m.Keys == nil || m.Store == nil || m.Policy == nil {
		return Token{}, errors.New("machine token: the minter needs Keys, Store and Policy")
	}
	if err := checkSubject(r.Subject); err != nil {
		return Token{}, err
	}
	ttl := r.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < time.Second || ttl > MaxTTL {
		return Token{}, fmt.Errorf("machine token for %s: lifetime %v is not between 1s and %v", r.Subject, r.TTL, MaxTTL)
	}
	// A job's token may ask for nothing: it then reaches only its own run's job
	// endpoints (artifacts and caches moved by hubctl workflow-agent), which the hub
	// API opens by its subject and creator, and nothing of the registry.
	job := strings.HasPrefix(r.Subject, JobSubjectPrefix)
	if len(r.Access) == 0 && len(r.Deploys) == 0 && !job {
		return Token{}, fmt.Errorf("machine token for %s: no access asked for", r.Subject)
	}
	asked := make([]scope.Scope, 0, len(r.Access))
	for _, a := range r.Access {
		sc, err := askedScope(a)
		if err != nil {
			return Token{}, fmt.Errorf("machine token for %s: %w", r.Subject, err)
		}
		asked = append(asked, sc)
	}

	u, err := m.Store.UserByID(ctx, r.Creator)
	if errors.Is(err, accounts.ErrNotFound) {
		return Token{}, fmt.Errorf("%w: the account %d that %s acts for is gone", ErrRefused, r.Creator, r.Subject)
	}
	if err != nil {
		return Token{}, fmt.Errorf("machine token for %s: %w", r.Subject, err)
	}
	if u.Disabled {
		return Token{}, fmt.Errorf("%w: %s, whom %s acts for, is disabled", ErrRefused, u.Name, r.Subject)
	}
	p := authz.Principal{User: &u}
	var granted []scope.Access
	var names []string
	for _, sc := range asked {
		grant := m.Policy.Grant
		if IsPattern(sc.Name) {
			grant = m.Policy.GrantPattern
		}
		g, err := grant(ctx, p, sc)
		if err != nil {
			return Token{}, fmt.Errorf("machine token for %s: %w", r.Subject, err)
		}
		if len(g.Actions) == 0 {
			continue
		}
		granted = append(granted, g.Access())
		names = append(names, g.String())
	}
	deploys, err := m.deployGrants(ctx, &u, r)
	if err != nil {
		return Token{}, err
	}
	for _, d := range deploys {
		names = append(names, scope.TypeHub+":"+scope.HubDeploys+":"+scope.HubWrite+"@"+d)
	}
	if len(granted) == 0 && len(deploys) == 0 && (len(asked) > 0 || len(r.Deploys) > 0 || !job) {
		var want []string
		for _, sc := range asked {
			want = append(want, sc.String())
		}
		return Token{}, fmt.Errorf("%w: %s may do none of %s now", ErrRefused, u.Name, strings.Join(want, " "))
	}

	iss := &token.Issuer{Keys: m.Keys, Issuer: m.Issuer, Service: m.Service, TTL: ttl, Now: m.Now}
	var hub token.Hub
	if job {
		// A job's token names whom it acts for: the hub API re-checks that account
		// when the token moves its run's artifacts or deploys.
		hub = token.Hub{Creator: u.ID, Deploy: strings.Join(deploys, " ")}
	}
	t, err := iss.Issue(r.Subject, hub, granted)
	if err != nil {
		return Token{}, fmt.Errorf("machine token for %s: %w", r.Subject, err)
	}
	exp := t.IssuedAt.Add(time.Duration(t.ExpiresIn) * time.Second)
	detail := fmt.Sprintf("for %s (account %d): jti %s until %s", u.Name, u.ID, t.ID, exp.UTC().Format(time.RFC3339))
	if r.Purpose != "" {
		detail += "; " + r.Purpose
	}
	if err := m.Store.Audit(ctx, accounts.AuditEntry{Time: t.IssuedAt, Actor: r.Subject, Action: AuditAction,
		Target: strings.Join(names, " "), Detail: detail}); err != nil {
		return Token{}, fmt.Errorf("machine token for %s: audit: %w", r.Subject, err)
	}
	return Token{Raw: t.Raw, ID: t.ID, Access: granted, ExpiresAt: exp}, nil
}

// deployGrants are the entries of r.Deploys that u may deploy now: write on the whole
// namespace. A malformed entry, or one on a token that is not a job's, is an error.
func (m *Minter) deployGrants(ctx context.Context, u *accounts.User, r Request) ([]string, error) {
	if len(r.Deploys) == 0 {
		return nil, nil
	}
	if !strings.HasPrefix(r.Subject, JobSubjectPrefix) {
		return nil, fmt.Errorf("machine token for %s: only a workflow job's token may deploy", r.Subject)
	}
	var out []string
	for _, d := range r.Deploys {
		ns, p, ok := strings.Cut(d, "/")
		if !ok || accounts.CheckName(ns) != nil || scope.CheckDeployPattern(p) != nil {
			return nil, fmt.Errorf("machine token for %s: deploy %q is not NAMESPACE/SERVICE, NAMESPACE/PREFIX* or NAMESPACE/*", r.Subject, d)
		}
		// "ns/" is a name no repository has: only grants on the whole namespace match it.
		role, err := m.Policy.RoleOn(ctx, u, ns+"/")
		if err != nil {
			return nil, fmt.Errorf("machine token for %s: %w", r.Subject, err)
		}
		if role.Rank() >= accounts.RoleWrite.Rank() && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out, nil
}

// JobSubjectPrefix starts the subject of a workflow job's token (as
// tokenserver.JobSubjectPrefix, which this package cannot import).
const JobSubjectPrefix = "workflow-run:"

// checkSubject accepts KIND:ID, KIND lower-case letters and '-', ID letters, digits,
// '.', '_' and '-', at most 128 bytes in all.
func checkSubject(s string) error {
	kind, id, ok := strings.Cut(s, ":")
	bad := !ok || kind == "" || id == "" || len(s) > 128
	for _, c := range kind {
		if (c < 'a' || c > 'z') && c != '-' {
			bad = true
		}
	}
	for _, c := range id {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '.' && c != '_' && c != '-' {
			bad = true
		}
	}
	if bad {
		return fmt.Errorf("machine token: subject %q is not KIND:ID (e.g. webhook:abc, workflow-run:42)", s)
	}
	return nil
}
