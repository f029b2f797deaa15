package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/hubctl/hubctl/internal/accounts"
)

// maxTokenName bounds a token name: it is shown in tables and audit lines.
const maxTokenName = 100

// CreateToken stores a token for an existing user and returns it with its ID and
// creation time. Its name must be free among the user's tokens not revoked
// (accounts.ErrExists); a new token is never revoked, whatever t.RevokedAt says.
func (s *Store) CreateToken(ctx context.Context, t accounts.AccessToken) (accounts.AccessToken, error) {
	if err := checkTokenName(t.Name); err != nil {
		return accounts.AccessToken{}, fmt.Errorf("create token for %s: %w", t.User, err)
	}
	if len(t.Hash) != sha256.Size {
		return accounts.AccessToken{}, fmt.Errorf("create token %s for %s: hash is %d bytes, want a sha256: %w",
			t.Name, t.User, len(t.Hash), accounts.ErrInvalid)
	}
	if t.Scopes == nil {
		t.Scopes = []string{}
	}
	scopes, err := json.Marshal(t.Scopes)
	if err != nil {
		return accounts.AccessToken{}, fmt.Errorf("create token %s for %s: %w", t.Name, t.User, err)
	}
	created := nanos(t.CreatedAt)
	t.RevokedAt = time.Time{}
	err = s.write(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, "SELECT 1 FROM users WHERE name = ?", t.User).Scan(&one); err != nil {
			return fmt.Errorf("user %s: %w", t.User, notFound(err))
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO access_tokens
			(username, name, hash, scopes, expires_at, last_used_at, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			t.User, t.Name, t.Hash, string(scopes), nullNanos(t.ExpiresAt), nullNanos(t.LastUsedAt), created).Scan(&t.ID)
		return uniqueAs(err, accounts.ErrExists)
	})
	if err != nil {
		return accounts.AccessToken{}, fmt.Errorf("create token %s for %s: %w", t.Name, t.User, err)
	}
	// Return the times as a read would, so callers may compare them.
	t.CreatedAt = fromNanos(created)
	t.ExpiresAt = fromNullNanos(nullNanos(t.ExpiresAt))
	t.LastUsedAt = fromNullNanos(nullNanos(t.LastUsedAt))
	return t, nil
}

func checkTokenName(name string) error {
	if name == "" || len(name) > maxTokenName || strings.ContainsFunc(name, unicode.IsControl) {
		return fmt.Errorf("token name %q: want 1 to %d printable characters: %w", name, maxTokenName, accounts.ErrInvalid)
	}
	return nil
}

const tokenColumns = "id, username, name, scopes, expires_at, last_used_at, created_at, revoked_at"

func scanToken(sc interface{ Scan(...any) error }, extra ...any) (accounts.AccessToken, error) {
	var t accounts.AccessToken
	var scopes string
	var expires, used, revoked sql.NullInt64
	var created int64
	dest := append([]any{&t.ID, &t.User, &t.Name, &scopes, &expires, &used, &created, &revoked}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return accounts.AccessToken{}, err
	}
	if err := json.Unmarshal([]byte(scopes), &t.Scopes); err != nil {
		return accounts.AccessToken{}, fmt.Errorf("token %d: scopes: %w", t.ID, err)
	}
	t.ExpiresAt = fromNullNanos(expires)
	t.LastUsedAt = fromNullNanos(used)
	t.CreatedAt = fromNanos(created)
	t.RevokedAt = fromNullNanos(revoked)
	return t, nil
}

// TokenByHash returns the token whose secret has this sha256, revoked or expired ones
// included (the caller checks Active), or accounts.ErrNotFound. The hash is the
// unique index's key, so the lookup is by equality in the index, not a scan.
func (s *Store) TokenByHash(ctx context.Context, hash []byte) (accounts.AccessToken, error) {
	var h []byte
	t, err := scanToken(s.r.QueryRowContext(ctx, "SELECT "+tokenColumns+", hash FROM access_tokens WHERE hash = ?", hash), &h)
	if err != nil {
		return accounts.AccessToken{}, fmt.Errorf("token: %w", notFound(err))
	}
	t.Hash = h
	return t, nil
}

// ListTokens returns all of a user's tokens, revoked ones included, newest first,
// without their hashes; accounts.ErrNotFound when the user does not exist.
func (s *Store) ListTokens(ctx context.Context, user string) ([]accounts.AccessToken, error) {
	var out []accounts.AccessToken
	err := s.read(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, "SELECT 1 FROM users WHERE name = ?", user).Scan(&one); err != nil {
			return fmt.Errorf("user %s: %w", user, notFound(err))
		}
		rows, err := tx.QueryContext(ctx, "SELECT "+tokenColumns+` FROM access_tokens
			WHERE username = ? ORDER BY created_at DESC, id DESC`, user)
		if err != nil {
			return err
		}
		defer rows.Close()
		out = []accounts.AccessToken{}
		for rows.Next() {
			t, err := scanToken(rows)
			if err != nil {
				return err
			}
			out = append(out, t)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list tokens of %s: %w", user, err)
	}
	return out, nil
}

// RevokeToken marks the user's active token of that name revoked now; the row stays
// for ListTokens and TokenByHash. accounts.ErrNotFound when there is no such active
// token.
func (s *Store) RevokeToken(ctx context.Context, user, name string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		return mustAffect(tx.ExecContext(ctx, `UPDATE access_tokens SET revoked_at = ?
			WHERE username = ? AND name = ? AND revoked_at IS NULL`, nanos(time.Time{}), user, name))
	})
	if err != nil {
		return fmt.Errorf("revoke token %s of %s: %w", name, user, err)
	}
	return nil
}

// TouchToken records a use at at. The time only moves forward, so replicas recording
// uses out of order keep the latest; accounts.ErrNotFound for an unknown id.
func (s *Store) TouchToken(ctx context.Context, id int64, at time.Time) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		return mustAffect(tx.ExecContext(ctx, `UPDATE access_tokens
			SET last_used_at = MAX(COALESCE(last_used_at, 0), ?) WHERE id = ?`, nanos(at), id))
	})
	if err != nil {
		return fmt.Errorf("touch token %d: %w", id, err)
	}
	return nil
}

// Audit default and maximum page sizes.
const (
	auditPage    = 100
	auditMaxPage = 1000
)

// Audit appends an entry; a zero Time means now. Actor and Action are required: an
// entry that says neither who nor what is useless to an investigation.
func (s *Store) Audit(ctx context.Context, e accounts.AuditEntry) error {
	if e.Actor == "" || e.Action == "" {
		return fmt.Errorf("audit %q by %q: actor and action are required: %w", e.Action, e.Actor, accounts.ErrInvalid)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO audit_log (time, actor, action, target, remote, detail)
			VALUES (?, ?, ?, ?, ?, ?)`, nanos(e.Time), e.Actor, e.Action, e.Target, e.Remote, e.Detail)
		return err
	})
	if err != nil {
		return fmt.Errorf("audit %s by %s: %w", e.Action, e.Actor, err)
	}
	return nil
}

// ListAudit returns the entries matching f, newest (highest ID) first: f.Limit of
// them, 100 when it is 0 or less, at most 1000. The next page is f.Before = the
// smallest ID returned.
func (s *Store) ListAudit(ctx context.Context, f accounts.AuditFilter) ([]accounts.AuditEntry, error) {
	var where []string
	var args []any
	if f.Actor != "" {
		where, args = append(where, "actor = ?"), append(args, f.Actor)
	}
	if f.Action != "" {
		where, args = append(where, "action = ?"), append(args, f.Action)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "time >= ?"), append(args, f.Since.UTC().UnixNano())
	}
	if f.Before > 0 {
		where, args = append(where, "id < ?"), append(args, f.Before)
	}
	n := f.Limit
	if n <= 0 {
		n = auditPage
	}
	n = min(n, auditMaxPage)
	q := "SELECT id, time, actor, action, target, remote, detail FROM audit_log"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	rows, err := s.r.QueryContext(ctx, q, append(args, n)...)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	out := []accounts.AuditEntry{}
	for rows.Next() {
		var e accounts.AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Remote, &e.Detail); err != nil {
			return nil, fmt.Errorf("list audit: %w", err)
		}
		e.Time = fromNanos(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	return out, nil
}
