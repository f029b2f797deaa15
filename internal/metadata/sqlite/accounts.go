package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/hubctl/hubctl/internal/accounts"
)

// This file holds users, namespaces and repository visibility; teams.go the teams and
// their grants; tokens.go the access tokens and the audit log.

// CreateUser creates a user and, for a person, their personal namespace (private by
// default) in one transaction. A robot gets no namespace of its own: it acts only for
// its organisation. The name must be free among users and namespaces alike.
func (s *Store) CreateUser(ctx context.Context, u accounts.User) (accounts.User, error) {
	if err := accounts.CheckName(u.Name); err != nil {
		return accounts.User{}, fmt.Errorf("create user: %w", err)
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
	err := s.write(ctx, func(tx *sql.Tx) error {
		if u.Robot {
			if err := checkOrg(ctx, tx, u.Owner); err != nil {
				return err
			}
		}
		if err := checkNameFree(ctx, tx, u.Name); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO users
			(name, email, password_hash, admin, robot, owner, disabled, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			u.Name, u.Email, u.PasswordHash, u.Admin, u.Robot, u.Owner, u.Disabled, created).Scan(&u.ID)
		if err != nil {
			return uniqueAs(err, accounts.ErrExists)
		}
		if u.Robot {
			return nil
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO namespaces (name, org, default_visibility, created_at)
			VALUES (?, 0, 'private', ?)`, u.Name, created)
		return uniqueAs(err, accounts.ErrExists)
	})
	if err != nil {
		return accounts.User{}, fmt.Errorf("create user %s: %w", u.Name, err)
	}
	u.CreatedAt = fromNanos(created)
	return u, nil
}

const userColumns = "id, name, email, password_hash, admin, robot, owner, disabled, created_at"

func scanUser(sc interface{ Scan(...any) error }) (accounts.User, error) {
	var u accounts.User
	var created int64
	if err := sc.Scan(&u.ID, &u.Name, &u.Email, &u.PasswordHash, &u.Admin, &u.Robot, &u.Owner, &u.Disabled, &created); err != nil {
		return accounts.User{}, err
	}
	u.CreatedAt = fromNanos(created)
	return u, nil
}

// GetUser returns a user by name, or accounts.ErrNotFound.
func (s *Store) GetUser(ctx context.Context, name string) (accounts.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, "SELECT "+userColumns+" FROM users WHERE name = ?", name))
	if err != nil {
		return accounts.User{}, fmt.Errorf("user %s: %w", name, notFound(err))
	}
	return u, nil
}

// ListUsers returns every user, robots included, sorted by name.
func (s *Store) ListUsers(ctx context.Context) ([]accounts.User, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+userColumns+" FROM users ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	out := []accounts.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// UpdateUser changes the email, password hash, admin and disabled flags of the user
// named u.Name; the name, robot flag and owner are fixed at creation.
func (s *Store) UpdateUser(ctx context.Context, u accounts.User) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		var robot bool
		if err := tx.QueryRowContext(ctx, "SELECT robot FROM users WHERE name = ?", u.Name).Scan(&robot); err != nil {
			return notFound(err)
		}
		if robot && u.PasswordHash != "" {
			return fmt.Errorf("a robot has no password: %w", accounts.ErrInvalid)
		}
		_, err := tx.ExecContext(ctx, `UPDATE users SET email = ?, password_hash = ?, admin = ?, disabled = ?
			WHERE name = ?`, u.Email, u.PasswordHash, u.Admin, u.Disabled, u.Name)
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
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := mustAffect(tx.ExecContext(ctx, "DELETE FROM users WHERE name = ?", name)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "DELETE FROM namespaces WHERE name = ? AND org = 0", name)
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
	err := s.write(ctx, func(tx *sql.Tx) error {
		var robot bool
		if err := tx.QueryRowContext(ctx, "SELECT robot FROM users WHERE name = ?", owner).Scan(&robot); err != nil {
			return fmt.Errorf("owner %s: %w", owner, notFound(err))
		}
		if robot {
			return fmt.Errorf("owner %s is a robot: %w", owner, accounts.ErrInvalid)
		}
		if err := checkNameFree(ctx, tx, name); err != nil {
			return err
		}
		for _, st := range []struct {
			query string
			args  []any
		}{
			{"INSERT INTO namespaces (name, org, default_visibility, created_at) VALUES (?, 1, 'private', ?)",
				[]any{name, created}},
			{"INSERT INTO teams (org, name, description, created_at) VALUES (?, ?, 'Owners of the organisation', ?)",
				[]any{name, accounts.OwnersTeam, created}},
			{"INSERT INTO team_grants (org, team, repository, role) VALUES (?, ?, '', 'admin')",
				[]any{name, accounts.OwnersTeam}},
			{"INSERT INTO team_members (org, team, username) VALUES (?, ?, ?)",
				[]any{name, accounts.OwnersTeam, owner}},
		} {
			if _, err := tx.ExecContext(ctx, st.query, st.args...); err != nil {
				return uniqueAs(err, accounts.ErrExists)
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

func scanNamespace(sc interface{ Scan(...any) error }) (accounts.Namespace, error) {
	var n accounts.Namespace
	var created int64
	if err := sc.Scan(&n.Name, &n.Org, &n.DefaultVisibility, &created); err != nil {
		return accounts.Namespace{}, err
	}
	n.CreatedAt = fromNanos(created)
	return n, nil
}

// GetNamespace returns a user's or organisation's namespace, or accounts.ErrNotFound.
func (s *Store) GetNamespace(ctx context.Context, name string) (accounts.Namespace, error) {
	n, err := scanNamespace(s.r.QueryRowContext(ctx, "SELECT "+namespaceColumns+" FROM namespaces WHERE name = ?", name))
	if err != nil {
		return accounts.Namespace{}, fmt.Errorf("namespace %s: %w", name, notFound(err))
	}
	return n, nil
}

// ListNamespaces returns every namespace, personal and organisations, sorted by name.
func (s *Store) ListNamespaces(ctx context.Context) ([]accounts.Namespace, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+namespaceColumns+" FROM namespaces ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	defer rows.Close()
	out := []accounts.Namespace{}
	for rows.Next() {
		n, err := scanNamespace(rows)
		if err != nil {
			return nil, fmt.Errorf("list namespaces: %w", err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
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
	err := s.write(ctx, func(tx *sql.Tx) error {
		return mustAffect(tx.ExecContext(ctx, "UPDATE namespaces SET default_visibility = ? WHERE name = ?", v, namespace))
	})
	if err != nil {
		return fmt.Errorf("set default visibility of %s: %w", namespace, err)
	}
	return nil
}

// DeleteOrg removes an organisation with its teams, grants and robots (and so the
// robots' tokens). Its repositories stay, like a deleted user's.
func (s *Store) DeleteOrg(ctx context.Context, name string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := mustAffect(tx.ExecContext(ctx, "DELETE FROM namespaces WHERE name = ? AND org = 1", name)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "DELETE FROM users WHERE robot = 1 AND owner = ?", name)
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
	err := s.r.QueryRowContext(ctx, `SELECT
		COALESCE((SELECT visibility FROM repositories WHERE name = ?),
			(SELECT default_visibility FROM namespaces WHERE name = ?), 'private'),
		EXISTS (SELECT 1 FROM repositories WHERE name = ?)`,
		repository, namespaceOf(repository), repository).Scan(&v, &exists)
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
	err := s.write(ctx, func(tx *sql.Tx) error {
		return mustAffect(tx.ExecContext(ctx, "UPDATE repositories SET visibility = ? WHERE name = ?", v, repository))
	})
	if err != nil {
		return fmt.Errorf("set visibility of %s: %w", repository, err)
	}
	return nil
}

// namespaceOf returns the first path component of a repository name: the user or
// organisation it belongs to.
func namespaceOf(repository string) string {
	ns, _, _ := strings.Cut(repository, "/")
	return ns
}

func checkVisibility(v accounts.Visibility) error {
	if v != accounts.Private && v != accounts.Public {
		return fmt.Errorf("visibility %q: want %q or %q: %w", v, accounts.Private, accounts.Public, accounts.ErrInvalid)
	}
	return nil
}

// checkOrg returns nil when name is an organisation, else an error wrapping
// accounts.ErrNotFound (a personal namespace is not an organisation).
func checkOrg(ctx context.Context, tx *sql.Tx, name string) error {
	var org bool
	err := tx.QueryRowContext(ctx, "SELECT org FROM namespaces WHERE name = ?", name).Scan(&org)
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
func checkNameFree(ctx context.Context, tx *sql.Tx, name string) error {
	var taken bool
	err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE name = ?)
		OR EXISTS (SELECT 1 FROM namespaces WHERE name = ?)`, name, name).Scan(&taken)
	if err != nil {
		return err
	}
	if taken {
		return fmt.Errorf("name %s is taken: %w", name, accounts.ErrExists)
	}
	return nil
}

// notFound maps sql.ErrNoRows to accounts.ErrNotFound and passes other errors through.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return accounts.ErrNotFound
	}
	return err
}

// mustAffect turns the result of an UPDATE or DELETE that matched no row into
// accounts.ErrNotFound.
func mustAffect(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return accounts.ErrNotFound
	}
	return nil
}

// uniqueAs maps a unique or primary-key violation to sentinel and passes other errors
// through. Where a name is checked first this is only a safety net; for token names
// and hashes the unique indexes are the check.
func uniqueAs(err error, sentinel error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %v", sentinel, err)
		}
	}
	return err
}

// nullNanos stores a zero time as NULL: "never" for expiry, last use and revocation.
func nullNanos(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UTC().UnixNano(), Valid: true}
}

func fromNullNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromNanos(n.Int64)
}
