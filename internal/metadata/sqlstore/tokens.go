package sqlstore

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/events"
)

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
	err = s.write(ctx, func(q querier) error {
		var one int
		if err := q.QueryRow(ctx, "SELECT 1 FROM users WHERE name = $1", t.User).Scan(&one); err != nil {
			return fmt.Errorf("user %s: %w", t.User, notFound(err))
		}
		err := q.QueryRow(ctx, `INSERT INTO access_tokens
			(username, name, hash, scopes, expires_at, last_used_at, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			t.User, t.Name, t.Hash, string(scopes), nullNanos(t.ExpiresAt), nullNanos(t.LastUsedAt), created).Scan(&t.ID)
		if err != nil {
			return s.uniqueAs(err, accounts.ErrExists)
		}
		// The name and scopes, never the secret or its hash.
		detail := map[string]any{"account": t.User, "token": t.Name, "scopes": t.Scopes}
		if !t.ExpiresAt.IsZero() {
			detail["expiresAt"] = t.ExpiresAt.UTC()
		}
		return s.recordChange(ctx, q, events.Event{Type: events.TokenCreated, Detail: detail})
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
	return accounts.CheckTokenName(name)
}

const tokenColumns = "id, username, name, scopes, expires_at, last_used_at, created_at, revoked_at"

func scanToken(sc row, extra ...any) (accounts.AccessToken, error) {
	var t accounts.AccessToken
	var scopes string
	var expires, used, revoked *int64
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
	var t accounts.AccessToken
	err := s.do(ctx, func(q querier) error {
		var err error
		t, err = scanToken(q.QueryRow(ctx, "SELECT "+tokenColumns+", hash FROM access_tokens WHERE hash = $1", hash), &h)
		return err
	})
	if err != nil {
		return accounts.AccessToken{}, fmt.Errorf("token: %w", notFound(err))
	}
	t.Hash = h
	return t, nil
}

// TokenByID returns the token with this ID, without its hash, revoked or expired
// ones included, or accounts.ErrNotFound.
func (s *Store) TokenByID(ctx context.Context, id int64) (accounts.AccessToken, error) {
	var t accounts.AccessToken
	err := s.do(ctx, func(q querier) error {
		var err error
		t, err = scanToken(q.QueryRow(ctx, "SELECT "+tokenColumns+" FROM access_tokens WHERE id = $1", id))
		return err
	})
	if err != nil {
		return accounts.AccessToken{}, fmt.Errorf("token %d: %w", id, notFound(err))
	}
	return t, nil
}

// ListTokens returns all of a user's tokens, revoked ones included, newest first,
// without their hashes; accounts.ErrNotFound when the user does not exist.
func (s *Store) ListTokens(ctx context.Context, user string) ([]accounts.AccessToken, error) {
	var out []accounts.AccessToken
	err := s.read(ctx, func(q querier) error {
		var one int
		if err := q.QueryRow(ctx, "SELECT 1 FROM users WHERE name = $1", user).Scan(&one); err != nil {
			return fmt.Errorf("user %s: %w", user, notFound(err))
		}
		var err error
		out, err = collect(func(r row) (accounts.AccessToken, error) { return scanToken(r) })(q.Query(ctx,
			"SELECT "+tokenColumns+" FROM access_tokens WHERE username = $1 ORDER BY created_at DESC, id DESC", user))
		return err
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
	err := s.write(ctx, func(q querier) error {
		if err := mustAffect(q.Exec(ctx, `UPDATE access_tokens SET revoked_at = $1
			WHERE username = $2 AND name = $3 AND revoked_at IS NULL`, nanos(time.Time{}), user, name)); err != nil {
			return err
		}
		return s.recordChange(ctx, q, events.Event{Type: events.TokenRevoked, Detail: map[string]any{"account": user, "token": name}})
	})
	if err != nil {
		return fmt.Errorf("revoke token %s of %s: %w", name, user, err)
	}
	return nil
}

// TouchToken records a use at at. The time only moves forward, so replicas recording
// uses out of order keep the latest; accounts.ErrNotFound for an unknown id.
func (s *Store) TouchToken(ctx context.Context, id int64, at time.Time) error {
	err := s.write(ctx, func(q querier) error {
		return mustAffect(q.Exec(ctx, `UPDATE access_tokens
			SET last_used_at = `+s.d.greatest+`(COALESCE(last_used_at, $1), $1) WHERE id = $2`, nanos(at), id))
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
	// Entries carry what clients sent (a failed login's user name): stored escaped and
	// bounded, never raw.
	e = e.Clean()
	err := s.write(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO audit_log (time, actor, action, target, remote, detail)
			VALUES ($1, $2, $3, $4, $5, $6)`, nanos(e.Time), e.Actor, e.Action, e.Target, e.Remote, e.Detail)
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
		args = append(args, f.Actor)
		where = append(where, fmt.Sprintf("actor = $%d", len(args)))
	}
	if f.Action != "" {
		args = append(args, f.Action)
		where = append(where, fmt.Sprintf("action = $%d", len(args)))
	}
	if !f.Since.IsZero() {
		args = append(args, boundNanos(f.Since))
		where = append(where, fmt.Sprintf("time >= $%d", len(args)))
	}
	if !f.Until.IsZero() {
		// Both bounds are in the query, so a page is Limit entries of the range, not a
		// page of everything since Since cut afterwards.
		args = append(args, boundNanos(f.Until))
		where = append(where, fmt.Sprintf("time <= $%d", len(args)))
	}
	if f.Before > 0 {
		args = append(args, f.Before)
		where = append(where, fmt.Sprintf("id < $%d", len(args)))
	}
	n := f.Limit
	if n <= 0 {
		n = auditPage
	}
	n = min(n, auditMaxPage)
	query := "SELECT id, time, actor, action, target, remote, detail FROM audit_log"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, n)
	query += fmt.Sprintf(" ORDER BY id DESC LIMIT $%d", len(args))
	var out []accounts.AuditEntry
	err := s.do(ctx, func(q querier) error {
		var err error
		out, err = collect(scanAudit)(q.Query(ctx, query, args...))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	return out, nil
}

// boundNanos is t in unix nanoseconds for a bound of a query, clamped to what int64
// holds (years 1678 to 2262): UnixNano of a time beyond is undefined, and a bound in
// the year 2999 must still mean "later than everything".
func boundNanos(t time.Time) int64 {
	switch {
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	}
	return t.UnixNano()
}

func scanAudit(row row) (accounts.AuditEntry, error) {
	var e accounts.AuditEntry
	var at int64
	if err := row.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Remote, &e.Detail); err != nil {
		return accounts.AuditEntry{}, err
	}
	e.Time = fromNanos(at)
	return e, nil
}
