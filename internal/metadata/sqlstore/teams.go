package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/events"
)

// CreateTeam creates a team in an existing organisation; accounts.ErrExists when the
// organisation already has a team of that name.
func (s *Store) CreateTeam(ctx context.Context, t accounts.Team) error {
	if err := accounts.CheckName(t.Name); err != nil {
		return fmt.Errorf("create team %s/%s: %w", t.Org, t.Name, err)
	}
	if err := accounts.CheckDescription(t.Description); err != nil {
		return fmt.Errorf("create team %s/%s: %w", t.Org, t.Name, err)
	}
	err := s.write(ctx, func(q querier) error {
		if err := s.checkOrg(ctx, q, t.Org, true); err != nil {
			return err
		}
		_, err := q.Exec(ctx, "INSERT INTO teams (org, name, description, created_at) VALUES ($1, $2, $3, $4)",
			t.Org, t.Name, t.Description, nanos(t.CreatedAt))
		if err != nil {
			return s.uniqueAs(err, accounts.ErrExists)
		}
		// Audited, no event: a new team grants nothing until it is given grants.
		return s.recordChange(ctx, q, events.Event{})
	})
	if err != nil {
		return fmt.Errorf("create team %s/%s: %w", t.Org, t.Name, err)
	}
	return nil
}

// ListTeams returns the teams of an organisation sorted by name, or
// accounts.ErrNotFound when org is not an organisation.
func (s *Store) ListTeams(ctx context.Context, org string) ([]accounts.Team, error) {
	var out []accounts.Team
	err := s.read(ctx, func(q querier) error {
		if err := s.checkOrg(ctx, q, org, false); err != nil {
			return err
		}
		rows, err := q.Query(ctx, "SELECT org, name, description, created_at FROM teams WHERE org = $1 ORDER BY name", org)
		if err != nil {
			return err
		}
		defer rows.Close()
		out = []accounts.Team{}
		for rows.Next() {
			var t accounts.Team
			var created int64
			if err := rows.Scan(&t.Org, &t.Name, &t.Description, &created); err != nil {
				return err
			}
			t.CreatedAt = fromNanos(created)
			out = append(out, t)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list teams of %s: %w", org, err)
	}
	return out, nil
}

// DeleteTeam removes a team with its members and grants (by cascade).
func (s *Store) DeleteTeam(ctx context.Context, org, team string) error {
	err := s.write(ctx, func(q querier) error {
		if err := mustAffect(q.Exec(ctx, "DELETE FROM teams WHERE org = $1 AND name = $2", org, team)); err != nil {
			return err
		}
		return s.recordChange(ctx, q, events.Event{Type: events.TeamDeleted, Detail: map[string]any{"organization": org, "team": team}})
	})
	if err != nil {
		return fmt.Errorf("delete team %s/%s: %w", org, team, err)
	}
	return nil
}

// AddTeamMember makes user a member of the team; adding a member again is not an
// error. A robot may join only the teams of its own organisation.
func (s *Store) AddTeamMember(ctx context.Context, org, team, user string) error {
	err := s.write(ctx, func(q querier) error {
		if err := checkTeam(ctx, q, org, team); err != nil {
			return err
		}
		var robot bool
		var owner string
		if err := q.QueryRow(ctx, "SELECT robot, owner FROM users WHERE name = $1", user).Scan(&robot, &owner); err != nil {
			return fmt.Errorf("user %s: %w", user, notFound(err))
		}
		if robot && owner != org {
			return fmt.Errorf("robot %s belongs to %s: %w", user, owner, accounts.ErrInvalid)
		}
		if _, err := q.Exec(ctx, `INSERT INTO team_members (org, team, username) VALUES ($1, $2, $3)
			ON CONFLICT DO NOTHING`, org, team, user); err != nil {
			return err
		}
		return s.recordChange(ctx, q, events.Event{Type: events.TeamMemberAdded,
			Detail: map[string]any{"organization": org, "team": team, "member": user}})
	})
	if err != nil {
		return fmt.Errorf("add %s to team %s/%s: %w", user, org, team, err)
	}
	return nil
}

// RemoveTeamMember removes user from the team, or returns accounts.ErrNotFound when
// they are not a member.
func (s *Store) RemoveTeamMember(ctx context.Context, org, team, user string) error {
	err := s.write(ctx, func(q querier) error {
		if err := mustAffect(q.Exec(ctx, "DELETE FROM team_members WHERE org = $1 AND team = $2 AND username = $3",
			org, team, user)); err != nil {
			return err
		}
		return s.recordChange(ctx, q, events.Event{Type: events.TeamMemberRemoved,
			Detail: map[string]any{"organization": org, "team": team, "member": user}})
	})
	if err != nil {
		return fmt.Errorf("remove %s from team %s/%s: %w", user, org, team, err)
	}
	return nil
}

// ListTeamMembers returns the names of the team's members, sorted, or
// accounts.ErrNotFound when the team does not exist.
func (s *Store) ListTeamMembers(ctx context.Context, org, team string) ([]string, error) {
	var out []string
	err := s.read(ctx, func(q querier) error {
		if err := checkTeam(ctx, q, org, team); err != nil {
			return err
		}
		var err error
		out, err = collect(scanString)(q.Query(ctx, "SELECT username FROM team_members WHERE org = $1 AND team = $2 ORDER BY username",
			org, team))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list members of team %s/%s: %w", org, team, err)
	}
	return out, nil
}

// SetTeamGrant sets the team's role on its organisation (g.Repository empty) or on one
// repository of it; RoleNone removes the grant, and removing a missing grant is not an
// error. A repository outside the team's organisation is refused.
func (s *Store) SetTeamGrant(ctx context.Context, g accounts.TeamGrant) error {
	if g.Role != accounts.RoleNone && !g.Role.Valid() {
		return fmt.Errorf("grant on %s to team %s/%s: role %q: %w", g.Repository, g.Org, g.Team, g.Role, accounts.ErrInvalid)
	}
	if err := checkRepositoryInOrg(g.Org, g.Repository); err != nil {
		return fmt.Errorf("grant to team %s/%s: %w", g.Org, g.Team, err)
	}
	err := s.write(ctx, func(q querier) error {
		if err := checkTeam(ctx, q, g.Org, g.Team); err != nil {
			return err
		}
		var err error
		if g.Role == accounts.RoleNone {
			_, err = q.Exec(ctx, "DELETE FROM team_grants WHERE org = $1 AND team = $2 AND repository = $3",
				g.Org, g.Team, g.Repository)
		} else {
			_, err = q.Exec(ctx, `INSERT INTO team_grants (org, team, repository, role) VALUES ($1, $2, $3, $4)
				ON CONFLICT (org, team, repository) DO UPDATE SET role = excluded.role`,
				g.Org, g.Team, g.Repository, g.Role)
		}
		if err != nil {
			return err
		}
		role := string(g.Role)
		if g.Role == accounts.RoleNone {
			role = "none"
		}
		return s.recordChange(ctx, q, events.Event{Type: events.TeamGrantChanged, Detail: map[string]any{
			"organization": g.Org, "team": g.Team, "repository": g.Repository, "role": role}})
	})
	if err != nil {
		return fmt.Errorf("grant on %q to team %s/%s: %w", g.Repository, g.Org, g.Team, err)
	}
	return nil
}

// ListTeamGrants returns the team's grants, the org-wide one (Repository "") first and
// then by repository, or accounts.ErrNotFound when the team does not exist.
func (s *Store) ListTeamGrants(ctx context.Context, org, team string) ([]accounts.TeamGrant, error) {
	var out []accounts.TeamGrant
	err := s.read(ctx, func(q querier) error {
		if err := checkTeam(ctx, q, org, team); err != nil {
			return err
		}
		var err error
		out, err = collect(func(r row) (accounts.TeamGrant, error) {
			var g accounts.TeamGrant
			err := r.Scan(&g.Org, &g.Team, &g.Repository, &g.Role)
			return g, err
		})(q.Query(ctx, `SELECT org, team, repository, role FROM team_grants
			WHERE org = $1 AND team = $2 ORDER BY repository`, org, team))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list grants of team %s/%s: %w", org, team, err)
	}
	return out, nil
}

// RoleOf returns the strongest role user holds on repository through the grants of
// their teams in the repository's organisation: org-wide grants and grants on that
// exact repository. Personal namespaces and site admins are the policy's business.
func (s *Store) RoleOf(ctx context.Context, user, repository string) (accounts.Role, error) {
	var roles []string
	err := s.do(ctx, func(q querier) error {
		var err error
		roles, err = collect(scanString)(q.Query(ctx, `SELECT g.role
			FROM team_members m
			JOIN team_grants g ON g.org = m.org AND g.team = m.team
			WHERE m.username = $1 AND m.org = $2 AND g.repository IN ('', $3)`,
			user, namespaceOf(repository), repository))
		return err
	})
	if err != nil {
		return accounts.RoleNone, fmt.Errorf("role of %s on %s: %w", user, repository, err)
	}
	best := accounts.RoleNone
	for _, r := range roles {
		if r := accounts.Role(r); r.Rank() > best.Rank() {
			best = r
		}
	}
	return best, nil
}

// checkTeam returns nil when the team exists, else an error wrapping
// accounts.ErrNotFound.
func checkTeam(ctx context.Context, q querier, org, team string) error {
	var one int
	err := q.QueryRow(ctx, "SELECT 1 FROM teams WHERE org = $1 AND name = $2", org, team).Scan(&one)
	if err != nil {
		return fmt.Errorf("team %s/%s: %w", org, team, notFound(err))
	}
	return nil
}

// checkRepositoryInOrg accepts "" (the whole organisation) or a repository name of org:
// "org/…" whose every component follows the name rule. RoleOf only reads grants of the
// repository's own organisation, so a grant elsewhere would silently do nothing.
func checkRepositoryInOrg(org, repository string) error {
	if repository == "" {
		return nil
	}
	parts := strings.Split(repository, "/")
	if len(parts) < 2 || parts[0] != org {
		return fmt.Errorf("repository %q is not in organisation %s: %w", repository, org, accounts.ErrInvalid)
	}
	for _, p := range parts {
		if err := accounts.CheckName(p); err != nil {
			return fmt.Errorf("repository %q: %w", repository, err)
		}
	}
	return nil
}
