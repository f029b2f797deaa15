package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/events"
)

// This file holds users, namespaces and repository visibility; teams.go the teams and
// their grants; tokens.go the access tokens and the audit log.

// lockName serialises, until the transaction ends, the transactions claiming name: a
// robot has no namespace row, so no unique index alone stops a robot and an
// organisation of the same name being created at once on two replicas.
func (s *Store) lockName(ctx context.Context, q querier, name string) error {
	if s.d.lockName == "" {
		return nil
	}
	_, err := q.Exec(ctx, s.d.lockName, name)
	return err
}

// CreateUser creates a user and, for a person, their personal namespace (private by
// default) in one transaction. A robot gets no namespace of its own: it acts only for
// its organisation. The name must be free among users and namespaces alike.
func (s *Store) CreateUser(ctx context.Context, u accounts.User) (accounts.User, error) {
	if err := accounts.CheckNamespaceName(u.Name); err != nil {
		return accounts.User{}, fmt.Errorf("create user: %w", err)
	}
	if err := accounts.CheckEmail(u.Email); err != nil {
		return accounts.User{}, fmt.Errorf("create user %s: %w", u.Name, err)
	}
	switch {
	case u.Robot && u.PasswordHash != "":
		return accounts.User{}, fmt.Errorf("create user %s: a robot has no password: %w", u.Name, accounts.ErrInvalid)
	case u.Robot && u.Owner == "":
		return accounts.User{}, fmt.Errorf("create user %s: a robot needs an owning organisation: %w", u.Name, accounts.ErrInvalid)
	case !u.Robot && u.Owner != "":
		return accounts.User{}, fmt.Errorf("create user %s: only robots have an owner: %w", u.Name, accounts.ErrInvalid)
	}
	var out accounts.User
	err := s.write(ctx, func(q querier) error {
		var err error
		if out, err = s.createUser(ctx, q, u); err != nil {
			return err
		}
		detail := map[string]any{"account": out.Name}
		if out.Robot {
			detail["robot"], detail["owner"] = true, out.Owner
		}
		if out.Admin {
			detail["admin"] = true
		}
		return s.recordChange(ctx, q, events.Event{Type: events.AccountCreated, Detail: detail})
	})
	if err != nil {
		return accounts.User{}, fmt.Errorf("create user %s: %w", u.Name, err)
	}
	return out, nil
}

// createUser is CreateUser, validated, inside q's transaction.
func (s *Store) createUser(ctx context.Context, q querier, u accounts.User) (accounts.User, error) {
	created := nanos(u.CreatedAt)
	if u.Robot {
		if err := s.checkOrg(ctx, q, u.Owner, true); err != nil {
			return u, err
		}
	}
	if err := s.claimName(ctx, q, u.Name, !u.Robot); err != nil {
		return u, err
	}
	err := q.QueryRow(ctx, `INSERT INTO users
		(name, email, password_hash, admin, robot, owner, disabled, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
		u.Name, u.Email, u.PasswordHash, u.Admin, u.Robot, u.Owner, u.Disabled, created).Scan(&u.ID)
	if err != nil {
		return u, s.uniqueAs(err, accounts.ErrExists)
	}
	u.CreatedAt = fromNanos(created)
	if u.Robot {
		return u, nil
	}
	_, err = q.Exec(ctx, `INSERT INTO namespaces (name, org, default_visibility, created_at)
		VALUES ($1, FALSE, 'private', $2)`, u.Name, created)
	return u, s.uniqueAs(err, accounts.ErrExists)
}

// claimName takes the lock on name and checks nobody has it: no user, no namespace
// and, for a name that becomes a namespace, no repositories left filed under it (a
// deleted account's, or pushed where no account was): the new owner of a name starts
// with nothing.
func (s *Store) claimName(ctx context.Context, q querier, name string, namespace bool) error {
	if err := s.lockName(ctx, q, name); err != nil {
		return err
	}
	if err := checkNameFree(ctx, q, name); err != nil {
		return err
	}
	if !namespace {
		return nil
	}
	n, err := countRepositories(ctx, q, name)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("name %s still holds %d repositories; an administrator must delete them before the name can be used: %w",
			name, n, accounts.ErrExists)
	}
	return nil
}

const userColumns = "id, name, email, password_hash, admin, robot, owner, disabled, created_at, session_epoch"

func scanUser(row row) (accounts.User, error) {
	var u accounts.User
	var created int64
	if err := row.Scan(&u.ID, &u.Name, &u.Email, &u.PasswordHash, &u.Admin, &u.Robot, &u.Owner, &u.Disabled, &created, &u.SessionEpoch); err != nil {
		return accounts.User{}, err
	}
	u.CreatedAt = fromNanos(created)
	return u, nil
}

// GetUser returns a user by name, or accounts.ErrNotFound.
func (s *Store) GetUser(ctx context.Context, name string) (accounts.User, error) {
	var u accounts.User
	err := s.do(ctx, func(q querier) error {
		var err error
		u, err = scanUser(q.QueryRow(ctx, "SELECT "+userColumns+" FROM users WHERE name = $1", name))
		return err
	})
	if err != nil {
		return accounts.User{}, fmt.Errorf("user %s: %w", name, notFound(err))
	}
	return u, nil
}

// ListUsers returns every user, robots included, sorted by name.
func (s *Store) ListUsers(ctx context.Context) ([]accounts.User, error) {
	var out []accounts.User
	err := s.do(ctx, func(q querier) error {
		var err error
		out, err = collect(scanUser)(q.Query(ctx, "SELECT "+userColumns+" FROM users ORDER BY name"))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// UpdateUser changes the email, password hash, admin and disabled flags of the user
// named u.Name; the name, robot flag and owner are fixed at creation. A new password
// hash, or disabling the user, ends every session of theirs in the same transaction.
func (s *Store) UpdateUser(ctx context.Context, u accounts.User) error {
	if err := accounts.CheckEmail(u.Email); err != nil {
		return fmt.Errorf("update user %s: %w", u.Name, err)
	}
	err := s.write(ctx, func(q querier) error {
		var (
			id                    int64
			robot, wasOff, wasAdm bool
			oldHash, oldEmail     string
		)
		if err := q.QueryRow(ctx, "SELECT id, robot, password_hash, disabled, admin, email FROM users WHERE name = $1"+s.d.forUpdate,
			u.Name).Scan(&id, &robot, &oldHash, &wasOff, &wasAdm, &oldEmail); err != nil {
			return notFound(err)
		}
		if robot && u.PasswordHash != "" {
			return fmt.Errorf("a robot has no password: %w", accounts.ErrInvalid)
		}
		if _, err := q.Exec(ctx, `UPDATE users SET email = $1, password_hash = $2, admin = $3, disabled = $4
			WHERE id = $5`, u.Email, u.PasswordHash, u.Admin, u.Disabled, id); err != nil {
			return err
		}
		if u.PasswordHash != oldHash || (u.Disabled && !wasOff) {
			if err := endSessions(ctx, q, id); err != nil {
				return err
			}
		}
		changed := []string{}
		for _, c := range []struct {
			name string
			diff bool
		}{{"email", u.Email != oldEmail}, {"password", u.PasswordHash != oldHash}, {"admin", u.Admin != wasAdm},
			{"disabled", u.Disabled != wasOff}} {
			if c.diff {
				changed = append(changed, c.name)
			}
		}
		return s.recordChange(ctx, q, events.Event{Type: events.AccountUpdated, Detail: map[string]any{
			"account": u.Name, "changed": changed, "admin": u.Admin, "disabled": u.Disabled}})
	})
	if err != nil {
		return fmt.Errorf("update user %s: %w", u.Name, err)
	}
	return nil
}

// DeleteUser removes a user; the foreign keys remove their team memberships, access
// tokens and sessions. Their personal namespace goes too, and with it, when purge, the
// repositories in it; without purge a namespace holding repositories is refused
// (accounts.ErrNotEmpty), so no repository is left for the next owner of the name.
func (s *Store) DeleteUser(ctx context.Context, name string, purge bool) (int, error) {
	var purged int
	err := s.write(ctx, func(q querier) error {
		purged = 0
		var robot bool
		if err := q.QueryRow(ctx, "SELECT robot FROM users WHERE name = $1"+s.d.forUpdate, name).Scan(&robot); err != nil {
			return notFound(err)
		}
		if !robot {
			var err error
			if purged, err = s.emptyNamespace(ctx, q, name, purge); err != nil {
				return err
			}
		}
		if _, err := q.Exec(ctx, "DELETE FROM users WHERE name = $1", name); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, "DELETE FROM namespaces WHERE name = $1 AND NOT org", name); err != nil {
			return err
		}
		// A namespace made again under this name must not inherit its secrets.
		if _, err := q.Exec(ctx, "DELETE FROM workflow_secrets WHERE namespace = $1", name); err != nil {
			return err
		}
		if err := forgetDeploys(ctx, q, name); err != nil {
			return err
		}
		detail := map[string]any{"account": name}
		if robot {
			detail["robot"] = true
		}
		if purge {
			detail["purgedRepositories"] = purged
		}
		return s.recordChange(withPurged(ctx, purge, purged), q, events.Event{Type: events.AccountDeleted, Detail: detail})
	})
	if err != nil {
		return 0, fmt.Errorf("delete user %s: %w", name, err)
	}
	return purged, nil
}

// emptyNamespace makes sure no repository is left in namespace ns, inside q's
// transaction: with purge it deletes them (their tags, manifests and blob links go by
// cascade; the blobs are left to garbage collection, upload sessions to the stale
// purge) and returns how many, else it refuses when there are any.
func (s *Store) emptyNamespace(ctx context.Context, q querier, ns string, purge bool) (int, error) {
	if purge {
		type gone struct {
			id   int64
			name string
		}
		deleted, err := collect(func(r row) (gone, error) {
			var g gone
			err := r.Scan(&g.id, &g.name)
			return g, err
		})(q.Query(ctx, "DELETE FROM repositories WHERE id IN ("+nsRepos+") RETURNING id, name", nsArgs(ns)...))
		if err != nil {
			return 0, err
		}
		for _, g := range deleted {
			if err := s.appendEvent(ctx, q, events.Event{Type: events.RepositoryDeleted, RepositoryID: g.id, Repository: g.name,
				Detail: map[string]any{"purgedWith": ns}}); err != nil {
				return 0, err
			}
		}
		return len(deleted), nil
	}
	n, err := countRepositories(ctx, q, ns)
	if err != nil {
		return 0, err
	}
	if n > 0 {
		return 0, fmt.Errorf("namespace %s holds %d repositories: delete them, or purge them with the account: %w",
			ns, n, accounts.ErrNotEmpty)
	}
	return 0, nil
}

// countRepositories counts the repositories filed under namespace ns.
func countRepositories(ctx context.Context, q querier, ns string) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, "SELECT count(*) FROM repositories WHERE id IN ("+nsRepos+")", nsArgs(ns)...).Scan(&n)
	return n, err
}

// CreateOrg creates an organisation namespace (private by default) with a team
// "owners" holding the admin role on the whole organisation and owner as its member,
// in one transaction. owner must be an existing person (not a robot).
func (s *Store) CreateOrg(ctx context.Context, name, owner string) (accounts.Namespace, error) {
	if err := accounts.CheckNamespaceName(name); err != nil {
		return accounts.Namespace{}, fmt.Errorf("create organisation: %w", err)
	}
	created := nanos(time.Time{})
	err := s.write(ctx, func(q querier) error {
		var robot bool
		// KEY SHARE: the owner cannot be deleted before the membership below commits.
		if err := q.QueryRow(ctx, "SELECT robot FROM users WHERE name = $1"+s.d.forKeyShare, owner).Scan(&robot); err != nil {
			return fmt.Errorf("owner %s: %w", owner, notFound(err))
		}
		if robot {
			return fmt.Errorf("owner %s is a robot: %w", owner, accounts.ErrInvalid)
		}
		if err := s.claimName(ctx, q, name, true); err != nil {
			return err
		}
		for _, st := range []struct {
			query string
			args  []any
		}{
			{"INSERT INTO namespaces (name, org, default_visibility, created_at) VALUES ($1, TRUE, 'private', $2)",
				[]any{name, created}},
			{"INSERT INTO teams (org, name, description, created_at) VALUES ($1, $2, 'Owners of the organisation', $3)",
				[]any{name, accounts.OwnersTeam, created}},
			{"INSERT INTO team_grants (org, team, repository, role) VALUES ($1, $2, '', 'admin')",
				[]any{name, accounts.OwnersTeam}},
			{"INSERT INTO team_members (org, team, username) VALUES ($1, $2, $3)",
				[]any{name, accounts.OwnersTeam, owner}},
		} {
			if _, err := q.Exec(ctx, st.query, st.args...); err != nil {
				return s.uniqueAs(err, accounts.ErrExists)
			}
		}
		return s.recordChange(ctx, q, events.Event{Type: events.OrganizationCreated,
			Detail: map[string]any{"organization": name, "owner": owner}})
	})
	if err != nil {
		return accounts.Namespace{}, fmt.Errorf("create organisation %s: %w", name, err)
	}
	return accounts.Namespace{Name: name, Org: true, DefaultVisibility: accounts.Private, CreatedAt: fromNanos(created)}, nil
}

const namespaceColumns = "name, org, default_visibility, created_at"

func scanNamespace(row row) (accounts.Namespace, error) {
	var n accounts.Namespace
	var created int64
	if err := row.Scan(&n.Name, &n.Org, &n.DefaultVisibility, &created); err != nil {
		return accounts.Namespace{}, err
	}
	n.CreatedAt = fromNanos(created)
	return n, nil
}

// GetNamespace returns a user's or organisation's namespace, or accounts.ErrNotFound.
func (s *Store) GetNamespace(ctx context.Context, name string) (accounts.Namespace, error) {
	var n accounts.Namespace
	err := s.do(ctx, func(q querier) error {
		var err error
		n, err = scanNamespace(q.QueryRow(ctx, "SELECT "+namespaceColumns+" FROM namespaces WHERE name = $1", name))
		return err
	})
	if err != nil {
		return accounts.Namespace{}, fmt.Errorf("namespace %s: %w", name, notFound(err))
	}
	return n, nil
}

// ListNamespaces returns every namespace, personal and organisations, sorted by name.
func (s *Store) ListNamespaces(ctx context.Context) ([]accounts.Namespace, error) {
	var out []accounts.Namespace
	err := s.do(ctx, func(q querier) error {
		var err error
		out, err = collect(scanNamespace)(q.Query(ctx, "SELECT "+namespaceColumns+" FROM namespaces ORDER BY name"))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	return out, nil
}

// SetDefaultVisibility sets the visibility of repositories created later in the
// namespace; existing repositories keep theirs.
func (s *Store) SetDefaultVisibility(ctx context.Context, namespace string, v accounts.Visibility) error {
	if err := checkVisibility(v); err != nil {
		return fmt.Errorf("set default visibility of %s: %w", namespace, err)
	}
	err := s.write(ctx, func(q querier) error {
		if err := mustAffect(q.Exec(ctx, "UPDATE namespaces SET default_visibility = $1 WHERE name = $2", v, namespace)); err != nil {
			return err
		}
		// Audited, no event: it changes no repository that exists.
		return s.recordChange(ctx, q, events.Event{})
	})
	if err != nil {
		return fmt.Errorf("set default visibility of %s: %w", namespace, err)
	}
	return nil
}

// DeleteOrg removes an organisation with its teams, grants and robots (and so the
// robots' tokens and sessions). Its repositories are refused or purged as DeleteUser
// does.
func (s *Store) DeleteOrg(ctx context.Context, name string, purge bool) (int, error) {
	var purged int
	err := s.write(ctx, func(q querier) error {
		purged = 0
		// Deleting the namespace row waits for a robot creation holding KEY SHARE on it
		// (checkOrg); the robot DELETE that follows, a new snapshot at READ COMMITTED,
		// then sees that robot too.
		var org bool
		if err := q.QueryRow(ctx, "SELECT org FROM namespaces WHERE name = $1"+s.d.forUpdate, name).Scan(&org); err != nil || !org {
			return accounts.ErrNotFound
		}
		var err error
		if purged, err = s.emptyNamespace(ctx, q, name, purge); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, "DELETE FROM namespaces WHERE name = $1 AND org", name); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, "DELETE FROM workflow_secrets WHERE namespace = $1", name); err != nil {
			return err
		}
		if err := forgetDeploys(ctx, q, name); err != nil {
			return err
		}
		if _, err = q.Exec(ctx, "DELETE FROM users WHERE robot AND owner = $1", name); err != nil {
			return err
		}
		detail := map[string]any{"organization": name}
		if purge {
			detail["purgedRepositories"] = purged
		}
		return s.recordChange(withPurged(ctx, purge, purged), q, events.Event{Type: events.OrganizationDeleted, Detail: detail})
	})
	if err != nil {
		return 0, fmt.Errorf("delete organisation %s: %w", name, err)
	}
	return purged, nil
}

// bootstrapKey is the hub_state row saying the bootstrap admin was made.
const bootstrapKey = "bootstrap.admin"

// BootstrapAdmin creates u as a site administrator unless a bootstrap account was
// made on this database before, and records that one was, in one transaction.
func (s *Store) BootstrapAdmin(ctx context.Context, u accounts.User) (accounts.User, bool, error) {
	u.Admin = true
	var (
		created bool
		out     accounts.User
	)
	err := s.write(ctx, func(q querier) error {
		created = false
		n, err := q.Exec(ctx, `INSERT INTO hub_state (key, value, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (key) DO NOTHING`, bootstrapKey, "made "+u.Name, nanos(time.Time{}))
		if err != nil || n == 0 {
			return err
		}
		out, err = s.createUser(ctx, q, u)
		created = err == nil
		return err
	})
	if err != nil {
		return accounts.User{}, false, fmt.Errorf("bootstrap admin %s: %w", u.Name, err)
	}
	return out, created, nil
}

// RepositoryVisibility returns the visibility of an existing repository, else the
// default of its namespace, else private, in one statement so the answer comes from
// one snapshot.
func (s *Store) RepositoryVisibility(ctx context.Context, repository string) (accounts.Visibility, bool, error) {
	var v accounts.Visibility
	var exists bool
	err := s.do(ctx, func(q querier) error {
		return q.QueryRow(ctx, `SELECT
			COALESCE((SELECT visibility FROM repositories WHERE name = $1),
				(SELECT default_visibility FROM namespaces WHERE name = $2), 'private'),
			EXISTS (SELECT 1 FROM repositories WHERE name = $1)`,
			repository, namespaceOf(repository)).Scan(&v, &exists)
	})
	if err != nil {
		return "", false, fmt.Errorf("visibility of %s: %w", repository, err)
	}
	return v, exists, nil
}

// SetRepositoryVisibility changes the visibility of an existing repository, or returns
// accounts.ErrNotFound.
func (s *Store) SetRepositoryVisibility(ctx context.Context, repository string, v accounts.Visibility) error {
	if err := checkVisibility(v); err != nil {
		return fmt.Errorf("set visibility of %s: %w", repository, err)
	}
	err := s.write(ctx, func(q querier) error {
		if err := s.lockRepo(ctx, q, repository); err != nil {
			return err
		}
		var (
			id  int64
			old accounts.Visibility
		)
		err := q.QueryRow(ctx, "SELECT id, visibility FROM repositories WHERE name = $1"+s.d.forNoKeyUpdate, repository).Scan(&id, &old)
		if err != nil {
			return notFound(err)
		}
		if old == v {
			return nil
		}
		if _, err := q.Exec(ctx, "UPDATE repositories SET visibility = $1 WHERE id = $2", v, id); err != nil {
			return err
		}
		return s.appendEvent(ctx, q, events.Event{Type: events.RepositoryVisibilityChanged, RepositoryID: id,
			Repository: repository, Visibility: string(v), Detail: map[string]any{"previous": string(old)}})
	})
	if err != nil {
		return fmt.Errorf("set visibility of %s: %w", repository, err)
	}
	return nil
}

func checkVisibility(v accounts.Visibility) error {
	if v != accounts.Private && v != accounts.Public {
		return fmt.Errorf("visibility %q: want %q or %q: %w", v, accounts.Private, accounts.Public, accounts.ErrInvalid)
	}
	return nil
}

// checkOrg returns nil when name is an organisation, else an error wrapping
// accounts.ErrNotFound (a personal namespace is not an organisation). In a write
// transaction it holds KEY SHARE on the row until the transaction ends, so the
// organisation cannot be deleted under what the transaction adds to it; a read-only
// transaction may not lock.
func (s *Store) checkOrg(ctx context.Context, q querier, name string, write bool) error {
	query := "SELECT org FROM namespaces WHERE name = $1"
	if write {
		query += s.d.forKeyShare
	}
	var org bool
	err := q.QueryRow(ctx, query, name).Scan(&org)
	if err == nil && !org {
		err = sql.ErrNoRows
	}
	if err != nil {
		return fmt.Errorf("organisation %s: %w", name, notFound(err))
	}
	return nil
}

// checkNameFree returns accounts.ErrExists when a user or a namespace has the name:
// users and organisations share one name space, and robots have no namespace row.
func checkNameFree(ctx context.Context, q querier, name string) error {
	var taken bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE name = $1)
		OR EXISTS (SELECT 1 FROM namespaces WHERE name = $1)`, name).Scan(&taken)
	if err != nil {
		return err
	}
	if taken {
		return fmt.Errorf("name %s is taken: %w", name, accounts.ErrExists)
	}
	return nil
}
