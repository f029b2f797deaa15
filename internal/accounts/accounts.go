// Package accounts defines who may do what on the hub: users, organisations, teams and
// their roles, repository visibility, access tokens and the audit log. Package
// metadata/sqlstore implements Store in the same database as the registry's metadata,
// on SQLite or PostgreSQL; metadata/storetest/accountstest is the suite it must pass.
// This package imports no store: the arrows point from the store to it.
//
// Secrets never enter this package in clear: passwords arrive hashed (package
// auth/password) and access tokens as the sha256 of their secret.
package accounts

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Sentinel errors.
var (
	ErrNotFound = errors.New("not found")
	// ErrExists is returned when a name (user, organisation, team, token) is taken.
	ErrExists = errors.New("already exists")
	// ErrInvalid is returned for a value the store refuses to record (a malformed name,
	// an unknown role or visibility, a robot with a password), so an API can answer 400.
	ErrInvalid = errors.New("invalid")
	// ErrNotEmpty is returned when deleting a user or organisation whose namespace still
	// holds repositories, without asking for them to be purged; the wrapping message
	// says how many. Creating a user or organisation whose name still holds repositories
	// left behind is refused with ErrExists.
	ErrNotEmpty = errors.New("namespace still holds repositories")
)

// nameRe is the rule of a repository-name path component in the distribution spec,
// applied to user, organisation and team names so every namespace can appear in a
// repository name.
var nameRe = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)

// CheckName returns nil when name may be a user, organisation or team name (a
// repository-name component: lower-case letters and digits, separated by '.', '_',
// '__' or dashes, at most MaxNameLength bytes), else an error wrapping ErrInvalid.
func CheckName(name string) error {
	if len(name) > MaxNameLength {
		return fmt.Errorf("name %.16q…: longer than %d bytes: %w", name, MaxNameLength, ErrInvalid)
	}
	if !nameRe.MatchString(name) {
		return fmt.Errorf("name %q: must be lower-case letters and digits separated by '.', '_' or '-': %w", name, ErrInvalid)
	}
	return nil
}

// Role is a level of access to repositories; each includes the ones before it.
type Role string

// Roles.
const (
	RoleNone  Role = ""
	RoleRead  Role = "read"  // pull
	RoleWrite Role = "write" // pull, push
	RoleAdmin Role = "admin" // pull, push, delete, settings
)

// Rank orders roles so the stronger of two can be taken.
func (r Role) Rank() int {
	switch r {
	case RoleRead:
		return 1
	case RoleWrite:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Valid reports whether r is one of the named roles.
func (r Role) Valid() bool { return r.Rank() > 0 }

// Visibility of a repository.
type Visibility string

// Visibilities.
const (
	Private Visibility = "private"
	Public  Visibility = "public"
)

// User is an account. A robot account belongs to an organisation, has no password and
// signs in only with its access tokens.
type User struct {
	ID           int64
	Name         string
	Email        string
	PasswordHash string // PHC string from package auth/password; empty for robots
	Admin        bool   // site administrator: every right everywhere
	Robot        bool
	Owner        string // for robots: the organisation they belong to
	Disabled     bool
	CreatedAt    time.Time
	// SessionEpoch counts the times every session of the user was ended at once (a
	// password change or reset, disabling, "sign out everywhere"). Registry tokens carry
	// it, and the hub API refuses one with an older epoch.
	SessionEpoch int64
}

// Namespace is the first path component of repository names: a user's own name or an
// organisation.
type Namespace struct {
	Name string
	// Org is true for organisations, false for a user's personal namespace.
	Org bool
	// DefaultVisibility applies to repositories created by a push into the namespace.
	DefaultVisibility Visibility
	CreatedAt         time.Time
}

// OwnersTeam is the team CreateOrg makes in every organisation: admin of all of it,
// with the organisation's creator as its first member.
const OwnersTeam = "owners"

// Team is a group of users inside an organisation.
type Team struct {
	Org         string
	Name        string
	Description string
	CreatedAt   time.Time
}

// TeamGrant gives a team a role on its whole organisation (Repository empty) or on
// one repository of it.
type TeamGrant struct {
	Org        string
	Team       string
	Repository string // full repository name, or "" for every repository of Org
	Role       Role
}

// AccessToken is a personal or robot token. Only the sha256 of its secret is stored;
// the secret is shown once when created.
type AccessToken struct {
	ID         int64
	User       string // owner (a user or a robot)
	Name       string
	Hash       []byte   // sha256 of the secret
	Scopes     []string // e.g. "repository:team/app:pull,push", "repository:team/*:pull", "registry:catalog:*"
	ExpiresAt  time.Time
	LastUsedAt time.Time
	CreatedAt  time.Time
	RevokedAt  time.Time
}

// Active reports whether the token may be used at now.
func (t AccessToken) Active(now time.Time) bool {
	return t.RevokedAt.IsZero() && (t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt))
}

// SessionRefresh is the kind of session `docker login` keeps as its identity token: a
// long-lived secret that the token service exchanges for registry tokens.
const SessionRefresh = "refresh"

// Session is what a sign-in leaves behind besides short-lived registry tokens. Only
// the sha256 of its secret is stored. It belongs to the account's immutable ID, so it
// ends with the account and never passes to a new account of the same name.
type Session struct {
	ID         int64
	UserID     int64
	User       string // the account's name when read; ignored when created
	Kind       string // SessionRefresh
	Hash       []byte // sha256 of the secret
	CreatedAt  time.Time
	LastUsedAt time.Time
	ExpiresAt  time.Time
	RevokedAt  time.Time
	Remote     string // client address at sign-in
	Client     string // user agent at sign-in
}

// Active reports whether the session may be used at now.
func (s Session) Active(now time.Time) bool {
	return s.RevokedAt.IsZero() && now.Before(s.ExpiresAt)
}

// AuditEntry records one security-relevant action.
type AuditEntry struct {
	ID     int64
	Time   time.Time
	Actor  string // user name, "anonymous", or "system"
	Action string // e.g. "login", "login.failed", "token.create", "token.revoke", "push", "delete", "permission.change"
	Target string // what it acted on: a repository, token name, user, team
	Remote string // client address
	Detail string // short free text, never a secret
}

// AuditFilter selects audit entries; zero fields match everything.
type AuditFilter struct {
	Actor  string
	Action string
	Since  time.Time // entries at or after Since; zero means no bound
	Until  time.Time // entries at or before Until; zero means no bound
	Before int64     // entries with ID < Before (pagination); 0 means no bound
	Limit  int       // 0 means a default page
}

// Store keeps accounts. Implementations are safe for concurrent use.
//
// Audit in the change's transaction: CreateUser, UpdateUser, DeleteUser, CreateOrg,
// SetDefaultVisibility, DeleteOrg, SetQuota, CreateTeam, DeleteTeam, AddTeamMember,
// RemoveTeamMember, SetTeamGrant, CreateToken, RevokeToken, RevokeSession and
// EndSessions write the audit entry their context carries (WithAudit) in the
// transaction of the change; DeleteUser and DeleteOrg with purge put "purged N
// repositories" before its detail.
//
// Errors: a missing user, organisation, team or token wraps ErrNotFound; a taken name
// wraps ErrExists; a malformed name or value wraps ErrInvalid. Lists are sorted by
// name unless said otherwise and are empty, never nil, when there is nothing.
type Store interface {
	// CreateUser creates a user and their personal namespace (private by default). A
	// name is free only when no user and no namespace has it (ErrExists). A robot needs
	// Owner (an existing organisation) and no password, and gets no namespace.
	CreateUser(ctx context.Context, u User) (User, error)
	GetUser(ctx context.Context, name string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	// UpdateUser changes email, password hash, admin and disabled flags of the user
	// named u.Name. A new password hash, or disabling the user, ends every session of
	// theirs in the same transaction, as EndSessions does.
	UpdateUser(ctx context.Context, u User) error
	// DeleteUser removes a user, their memberships, tokens, sessions and personal
	// namespace. When repositories remain in the namespace it refuses (ErrNotEmpty)
	// unless purge, which deletes them (tags, manifests, links; the blobs are left to
	// garbage collection) in the same transaction; it returns how many it purged.
	DeleteUser(ctx context.Context, name string, purge bool) (int, error)
	// BootstrapAdmin creates u, a site administrator, if no bootstrap account was ever
	// made on this database, and records that one was: it happens once, never again,
	// even after the account is deleted. created reports whether it happened now.
	BootstrapAdmin(ctx context.Context, u User) (user User, created bool, err error)

	// CreateOrg creates an organisation namespace whose first owner is owner (made
	// admin of the organisation through its "owners" team).
	CreateOrg(ctx context.Context, name, owner string) (Namespace, error)
	GetNamespace(ctx context.Context, name string) (Namespace, error)
	ListNamespaces(ctx context.Context) ([]Namespace, error)
	SetDefaultVisibility(ctx context.Context, namespace string, v Visibility) error
	// DeleteOrg removes an organisation, its teams, grants and robots; ErrNotFound for
	// a personal namespace. Repositories are handled as DeleteUser does.
	DeleteOrg(ctx context.Context, name string, purge bool) (int, error)

	// SetQuota limits the bytes a namespace's repositories may hold (each distinct
	// blob counted once); bytes <= 0 removes the limit. ErrNotFound for an unknown
	// namespace.
	SetQuota(ctx context.Context, namespace string, bytes int64) error
	// Usage returns the bytes of the distinct blobs linked to the namespace's
	// repositories and its quota (0 when unlimited); ErrNotFound for an unknown
	// namespace.
	Usage(ctx context.Context, namespace string) (used, quota int64, err error)

	CreateTeam(ctx context.Context, t Team) error
	ListTeams(ctx context.Context, org string) ([]Team, error)
	DeleteTeam(ctx context.Context, org, team string) error
	// AddTeamMember is idempotent; a robot may join only its own organisation's teams.
	AddTeamMember(ctx context.Context, org, team, user string) error
	RemoveTeamMember(ctx context.Context, org, team, user string) error
	ListTeamMembers(ctx context.Context, org, team string) ([]string, error)
	// SetTeamGrant sets (or with RoleNone removes) a team's role on its org or a repo;
	// the repository must be inside the team's organisation.
	SetTeamGrant(ctx context.Context, g TeamGrant) error
	ListTeamGrants(ctx context.Context, org, team string) ([]TeamGrant, error)
	// RoleOf returns the strongest role user has on repository through team grants
	// (org-wide or on the repository); RoleNone when none.
	RoleOf(ctx context.Context, user, repository string) (Role, error)

	// RepositoryVisibility returns the visibility of an existing repository, or, for a
	// repository that does not exist yet, the default of its namespace (Private when
	// the namespace does not exist either); exists tells which.
	RepositoryVisibility(ctx context.Context, repository string) (v Visibility, exists bool, err error)
	SetRepositoryVisibility(ctx context.Context, repository string, v Visibility) error

	// CreateToken stores a token (Hash set by the caller) and returns it with its ID.
	CreateToken(ctx context.Context, t AccessToken) (AccessToken, error)
	// TokenByHash finds a token by the sha256 of its secret (revoked ones included, so
	// the caller can say why it is refused).
	TokenByHash(ctx context.Context, hash []byte) (AccessToken, error)
	// ListTokens returns all of a user's tokens, revoked ones included, newest first,
	// without their hashes.
	ListTokens(ctx context.Context, user string) ([]AccessToken, error)
	// RevokeToken sets RevokedAt on the user's active token of that name (ErrNotFound
	// when there is none); the row stays, and the name may be used again.
	RevokeToken(ctx context.Context, user, name string) error
	// TokenByID finds a token by its ID (revoked ones included).
	TokenByID(ctx context.Context, id int64) (AccessToken, error)
	// TouchToken records a use; callers may skip it when the last one was recent.
	TouchToken(ctx context.Context, id int64, at time.Time) error

	// CreateSession stores a session (Hash, UserID, Kind, ExpiresAt set by the caller)
	// and returns it with its ID.
	CreateSession(ctx context.Context, s Session) (Session, error)
	// SessionByHash finds a session by the sha256 of its secret, and SessionByID by its
	// ID, revoked and expired ones included (the caller checks Active).
	SessionByHash(ctx context.Context, hash []byte) (Session, error)
	SessionByID(ctx context.Context, id int64) (Session, error)
	// ListSessions returns the user's sessions, ended ones included, newest first,
	// without their hashes.
	ListSessions(ctx context.Context, user string) ([]Session, error)
	// RevokeSession ends one of user's sessions (ErrNotFound when it is not theirs or
	// already ended).
	RevokeSession(ctx context.Context, user string, id int64) error
	// TouchSession records a use.
	TouchSession(ctx context.Context, id int64, at time.Time) error
	// EndSessions ends every session of the user and raises their SessionEpoch, so
	// registry tokens issued before stop working in the hub API ("sign out
	// everywhere").
	EndSessions(ctx context.Context, user string) error

	// Audit appends an entry (a zero Time means now); Actor and Action are required.
	Audit(ctx context.Context, e AuditEntry) error
	// ListAudit returns matching entries newest (highest ID) first, Limit of them
	// (default 100, at most 1000); the next page has Before = the last ID returned.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
}

type auditKey struct{}

// WithAudit returns ctx carrying e, the audit entry of the change the next Store call
// made with ctx makes: the store writes it in the change's own transaction, so a change
// that commits always has its entry and one that fails has none. Only the mutations
// that say so read it (Store's doc lists them); pass the returned context to that one
// call, not on to others, or each would write the entry.
func WithAudit(ctx context.Context, e AuditEntry) context.Context {
	return context.WithValue(ctx, auditKey{}, e)
}

// AuditFrom returns the entry WithAudit set, and whether there was one.
func AuditFrom(ctx context.Context) (AuditEntry, bool) {
	e, ok := ctx.Value(auditKey{}).(AuditEntry)
	return e, ok
}
