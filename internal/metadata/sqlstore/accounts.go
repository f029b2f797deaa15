package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
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
	if err := accounts.CheckName(u.Name); err != nil {
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
	created := nanos(u.CreatedAt)
	err := s.write(ctx, func(q querier) error {
		if u.Robot {
			if err := s.checkOrg(ctx, q, u.Owner, true); err != nil {
				return err
			}
		}
		if err := s.lockName(ctx, q, u.Name); err != nil {
			return err
		}
		if err := checkNameFree(ctx, q, u.Name); err != nil {
			return err
		}
		err := q.QueryRow(ctx, `INSERT INTO users
			(name, email, password_hash, admin, robot, owner, disabled, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
			u.Name, u.Email, u.PasswordHash, u.Admin, u.Robot, u.Owner, u.Disabled, created).Scan(&u.ID)
		if err != nil {
			return s.uniqueAs(err, accounts.ErrExists)
		}
		if u.Robot {
			return nil
		}
		_, err = q.Exec(ctx, `INSERT INTO namespaces (name, org, default_visibility, created_at)
			VALUES ($1, FALSE, 'private', $2)`, u.Name, created)
		return s.uniqueAs(err, accounts.ErrExists)
	})
	if err != nil {
		return accounts.User{}, fmt.Errorf("create user %s: %w", u.Name, err)
	}
	u.CreatedAt = fromNanos(created)
	return u, nil
}

const userColumns = "id, name, email, password_hash, admin, robot, owner, disabled, created_at"

func scanUser(row row) (accounts.User, error) {
	var u accounts.User
	var created int64
	if err := row.Scan(&u.ID, &u.Name, &u.Email, &u.PasswordHash, &u.Admin, &u.Robot, &u.Owner, &u.Disabled, &created); err != nil {
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
// named u.Name; the name, robot flag and owner are fixed at creation.
func (s *Store) UpdateUser(ctx context.Context, u accounts.User) error {
	if err := accounts.CheckEmail(u.Email); err != nil {
		return fmt.Errorf("update user %s: %w", u.Name, err)
	}
	err := s.write(ctx, func(q querier) error {
		var robot bool
		if err := q.QueryRow(ctx, "SELECT robot FROM users WHERE name = $1", u.Name).Scan(&robot); err != nil {
			return notFound(err)
		}
		if robot && u.PasswordHash != "" {
			return fmt.Errorf("a robot has no password: %w", accounts.ErrInvalid)
		}
		_, err := q.Exec(ctx, `UPDATE users SET email = $1, password_hash = $2, admin = $3, disabled = $4
			WHERE name = $5`, u.Email, u.PasswordHash, u.Admin, u.Disabled, u.Name)
		return err
	})
	if err != nil {
		return fmt.Errorf("update user %s: %w", u.Name, err)
	}
	return nil
}

// DeleteUser removes a user; the foreign keys remove their team memberships and access
// tokens. Their personal namespace goes too (it only holds a default visibility), but
// their repositories stay: deleting images is a separate, deliberate act.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	err := s.write(ctx, func(q querier) error {
		if err := mustAffect(q.Exec(ctx, "DELETE FROM users WHERE name = $1", name)); err != nil {
			return err
		}
		_, err := q.Exec(ctx, "DELETE FROM namespaces WHERE name = $1 AND NOT org", name)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete user %s: %w", name, err)
	}
	return nil
}

// CreateOrg creates an organisation namespace (private by default) with a team
// "owners" holding the admin role on the whole organisation and owner as its member,
// in one transaction. owner must be an existing person (not a robot).
func (s *Store) CreateOrg(ctx context.Context, name, owner string) (accounts.Namespace, error) {
	if err := accounts.CheckName(name); err != nil {
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
		if err := s.lockName(ctx, q, name); err != nil {
			return err
		}
		if err := checkNameFree(ctx, q, name); err != nil {
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
		return nil
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
		return mustAffect(q.Exec(ctx, "UPDATE namespaces SET default_visibility = $1 WHERE name = $2", v, namespace))
	})
	if err != nil {
		return fmt.Errorf("set default visibility of %s: %w", namespace, err)
	}
	return nil
}

// DeleteOrg removes an organisation with its teams, grants and robots (and so the
// robots' tokens). Its repositories stay, like a deleted user's.
func (s *Store) DeleteOrg(ctx context.Context, name string) error {
	err := s.write(ctx, func(q querier) error {
		// Deleting the namespace row waits for a robot creation holding KEY SHARE on it
		// (checkOrg); the robot DELETE that follows, a new snapshot at READ COMMITTED,
		// then sees that robot too.
		if err := mustAffect(q.Exec(ctx, "DELETE FROM namespaces WHERE name = $1 AND org", name)); err != nil {
			return err
		}
		_, err := q.Exec(ctx, "DELETE FROM users WHERE robot AND owner = $1", name)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete organisation %s: %w", name, err)
	}
	return nil
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
		return mustAffect(q.Exec(ctx, "UPDATE repositories SET visibility = $1 WHERE name = $2", v, repository))
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
