package sqlstore

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/events"
)

// This file holds sessions and "sign out everywhere"; tokens.go the access tokens.

// CreateSession stores a session for an existing account and returns it with its ID.
func (s *Store) CreateSession(ctx context.Context, sess accounts.Session) (accounts.Session, error) {
	if len(sess.Hash) != sha256.Size {
		return accounts.Session{}, fmt.Errorf("create session: hash is %d bytes, want a sha256: %w", len(sess.Hash), accounts.ErrInvalid)
	}
	if sess.Kind == "" || sess.ExpiresAt.IsZero() {
		return accounts.Session{}, fmt.Errorf("create session: kind and expiry are required: %w", accounts.ErrInvalid)
	}
	sess.Remote, sess.Client = truncate(sess.Remote, 200), truncate(sess.Client, 200)
	created := nanos(sess.CreatedAt)
	err := s.write(ctx, func(q querier) error {
		if err := q.QueryRow(ctx, "SELECT name FROM users WHERE id = $1"+s.d.forKeyShare, sess.UserID).Scan(&sess.User); err != nil {
			return fmt.Errorf("user %d: %w", sess.UserID, notFound(err))
		}
		return q.QueryRow(ctx, `INSERT INTO sessions (user_id, kind, hash, created_at, expires_at, remote, client)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			sess.UserID, sess.Kind, sess.Hash, created, nanos(sess.ExpiresAt), sess.Remote, sess.Client).Scan(&sess.ID)
	})
	if err != nil {
		return accounts.Session{}, fmt.Errorf("create session: %w", err)
	}
	sess.CreatedAt = fromNanos(created)
	sess.ExpiresAt = fromNanos(nanos(sess.ExpiresAt))
	sess.LastUsedAt, sess.RevokedAt = time.Time{}, time.Time{}
	return sess, nil
}

// truncate cuts s to at most n bytes, at a rune boundary: client-supplied strings are
// recorded for people to read, not trusted to be short.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

const sessionColumns = "se.id, se.user_id, u.name, se.kind, se.created_at, se.last_used_at, se.expires_at, se.revoked_at, se.remote, se.client"

func scanSession(r row, extra ...any) (accounts.Session, error) {
	var (
		sess             accounts.Session
		created, expires int64
		used, revoked    *int64
	)
	dest := append([]any{&sess.ID, &sess.UserID, &sess.User, &sess.Kind, &created, &used, &expires, &revoked, &sess.Remote, &sess.Client}, extra...)
	if err := r.Scan(dest...); err != nil {
		return accounts.Session{}, err
	}
	sess.CreatedAt, sess.ExpiresAt = fromNanos(created), fromNanos(expires)
	sess.LastUsedAt, sess.RevokedAt = fromNullNanos(used), fromNullNanos(revoked)
	return sess, nil
}

// SessionByHash returns the session whose secret has this sha256, or
// accounts.ErrNotFound.
func (s *Store) SessionByHash(ctx context.Context, hash []byte) (accounts.Session, error) {
	var (
		sess accounts.Session
		h    []byte
	)
	err := s.do(ctx, func(q querier) error {
		var err error
		sess, err = scanSession(q.QueryRow(ctx, "SELECT "+sessionColumns+", se.hash FROM sessions se JOIN users u ON u.id = se.user_id WHERE se.hash = $1", hash), &h)
		return err
	})
	if err != nil {
		return accounts.Session{}, fmt.Errorf("session: %w", notFound(err))
	}
	sess.Hash = h
	return sess, nil
}

// SessionByID returns the session with this ID, without its hash, or
// accounts.ErrNotFound.
func (s *Store) SessionByID(ctx context.Context, id int64) (accounts.Session, error) {
	var sess accounts.Session
	err := s.do(ctx, func(q querier) error {
		var err error
		sess, err = scanSession(q.QueryRow(ctx, "SELECT "+sessionColumns+" FROM sessions se JOIN users u ON u.id = se.user_id WHERE se.id = $1", id))
		return err
	})
	if err != nil {
		return accounts.Session{}, fmt.Errorf("session %d: %w", id, notFound(err))
	}
	return sess, nil
}

// ListSessions returns the user's sessions, newest first; accounts.ErrNotFound when the
// user does not exist.
func (s *Store) ListSessions(ctx context.Context, user string) ([]accounts.Session, error) {
	var out []accounts.Session
	err := s.read(ctx, func(q querier) error {
		var id int64
		if err := q.QueryRow(ctx, "SELECT id FROM users WHERE name = $1", user).Scan(&id); err != nil {
			return fmt.Errorf("user %s: %w", user, notFound(err))
		}
		var err error
		out, err = collect(func(r row) (accounts.Session, error) { return scanSession(r) })(q.Query(ctx,
			"SELECT "+sessionColumns+" FROM sessions se JOIN users u ON u.id = se.user_id WHERE se.user_id = $1 ORDER BY se.created_at DESC, se.id DESC", id))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list sessions of %s: %w", user, err)
	}
	return out, nil
}

// RevokeSession ends one of user's sessions now.
func (s *Store) RevokeSession(ctx context.Context, user string, id int64) error {
	err := s.write(ctx, func(q querier) error {
		if err := mustAffect(q.Exec(ctx, `UPDATE sessions SET revoked_at = $1
			WHERE id = $2 AND revoked_at IS NULL AND user_id = (SELECT id FROM users WHERE name = $3)`,
			nanos(time.Time{}), id, user)); err != nil {
			return err
		}
		// Audited; a user's own sessions raise no event.
		return s.recordChange(ctx, q, events.Event{})
	})
	if err != nil {
		return fmt.Errorf("revoke session %d of %s: %w", id, user, err)
	}
	return nil
}

// TouchSession records a use at at; the time only moves forward.
func (s *Store) TouchSession(ctx context.Context, id int64, at time.Time) error {
	err := s.write(ctx, func(q querier) error {
		return mustAffect(q.Exec(ctx, `UPDATE sessions
			SET last_used_at = `+s.d.greatest+`(COALESCE(last_used_at, $1), $1) WHERE id = $2`, nanos(at), id))
	})
	if err != nil {
		return fmt.Errorf("touch session %d: %w", id, err)
	}
	return nil
}

// EndSessions ends every session of user and raises their session epoch.
func (s *Store) EndSessions(ctx context.Context, user string) error {
	err := s.write(ctx, func(q querier) error {
		var id int64
		if err := q.QueryRow(ctx, "SELECT id FROM users WHERE name = $1", user).Scan(&id); err != nil {
			return notFound(err)
		}
		if err := endSessions(ctx, q, id); err != nil {
			return err
		}
		return s.recordChange(ctx, q, events.Event{})
	})
	if err != nil {
		return fmt.Errorf("end sessions of %s: %w", user, err)
	}
	return nil
}

// endSessions is EndSessions for the user with id, inside q's transaction.
func endSessions(ctx context.Context, q querier, id int64) error {
	if _, err := q.Exec(ctx, "UPDATE users SET session_epoch = session_epoch + 1 WHERE id = $1", id); err != nil {
		return err
	}
	_, err := q.Exec(ctx, "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL", nanos(time.Time{}), id)
	return err
}
