package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/webhook"
)

func init() {
	sealedColumns = append(sealedColumns,
		sealedColumn{table: webhook.Table, id: "id", column: "secret"},
		sealedColumn{table: webhook.Table, id: "id", column: "headers"},
		sealedColumn{table: webhook.Table, id: "id", column: "previous_secret"},
		sealedColumn{table: webhook.Table, id: "id", column: "dragonfly_token"})
}

const webhookColumns = `id, scope, target, url, event_types, repositories, tags, format, secret, headers, header_names,
	enabled, disabled_reason, failures, created_by, created_at, updated_at, previous_secret, previous_secret_expires,
	kind, dragonfly, dragonfly_token, enabled_at`

func jsonArray[T any](v []T) string {
	if len(v) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func scanWebhook(r row) (webhook.Hook, error) {
	var h webhook.Hook
	var types, repos, tags, names, dragonfly string
	var created, updated, prevExpires, enabledAt int64
	if err := r.Scan(&h.ID, &h.Scope, &h.Target, &h.URL, &types, &repos, &tags, &h.Format, &h.Secret, &h.Headers, &names,
		&h.Enabled, &h.DisabledReason, &h.Failures, &h.CreatedBy, &created, &updated, &h.PreviousSecret, &prevExpires,
		&h.Kind, &dragonfly, &h.DragonflyToken, &enabledAt); err != nil {
		return webhook.Hook{}, err
	}
	if dragonfly != "" {
		if err := json.Unmarshal([]byte(dragonfly), &h.Dragonfly); err != nil {
			return webhook.Hook{}, fmt.Errorf("webhook %s: %w", h.ID, err)
		}
	}
	for _, x := range []struct {
		s string
		v any
	}{{types, &h.Events}, {repos, &h.Repositories}, {tags, &h.Tags}, {names, &h.HeaderNames}} {
		if err := json.Unmarshal([]byte(x.s), x.v); err != nil {
			return webhook.Hook{}, fmt.Errorf("webhook %s: %w", h.ID, err)
		}
	}
	h.CreatedAt, h.UpdatedAt = fromNanos(created), fromNanos(updated)
	if enabledAt != 0 {
		h.EnabledAt = fromNanos(enabledAt)
	}
	if h.PreviousSecret != "" {
		h.PreviousExpires = fromNanos(prevExpires)
	}
	return h, nil
}

// auditIn writes an audit entry in the transaction of the change it records.
func auditIn(ctx context.Context, q querier, e accounts.AuditEntry) error {
	e = e.Clean()
	_, err := q.Exec(ctx, `INSERT INTO audit_log (time, actor, action, target, remote, detail)
		VALUES ($1, $2, $3, $4, $5, $6)`, nanos(e.Time), e.Actor, e.Action, e.Target, e.Remote, e.Detail)
	return err
}

// CreateWebhook stores h and its audit entry in one transaction.
func (s *Store) CreateWebhook(ctx context.Context, h webhook.Hook, actor string) error {
	a := events.ActorFrom(ctx)
	err := s.write(ctx, func(q querier) error {
		kind, dragonfly := h.Kind, ""
		if kind == "" {
			kind = webhook.KindWebhook
		}
		if h.Dragonfly != nil {
			b, err := json.Marshal(h.Dragonfly)
			if err != nil {
				return err
			}
			dragonfly = string(b)
		}
		_, err := q.Exec(ctx, `INSERT INTO webhooks (`+webhookColumns+`, namespace)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)`,
			h.ID, h.Scope, h.Target, h.URL, jsonArray(h.Events), jsonArray(h.Repositories), jsonArray(h.Tags), h.Format,
			h.Secret, h.Headers, jsonArray(h.HeaderNames), h.Enabled, h.DisabledReason, h.Failures, h.CreatedBy,
			nanos(h.CreatedAt), nanos(h.UpdatedAt), h.PreviousSecret, previousExpires(h), kind, dragonfly, h.DragonflyToken,
			nanos(h.CreatedAt), h.Namespace())
		if err != nil {
			return err
		}
		return auditIn(ctx, q, accounts.AuditEntry{Time: h.CreatedAt, Actor: actor, Action: "webhook.create", Target: h.ID,
			Remote: a.Remote, Detail: auditDetail(h, a)})
	})
	if err != nil {
		return fmt.Errorf("create webhook: %w", s.uniqueAs(err, accounts.ErrExists))
	}
	return nil
}

// previousExpires is the stored expiry of h's previous secret: 0 when it has none.
func previousExpires(h webhook.Hook) int64 {
	if h.PreviousSecret == "" {
		return 0
	}
	return nanos(h.PreviousExpires)
}

// UpdateWebhook reads the hook id locked, lets change edit it, and writes it back with
// its audit entry, in one transaction. What identifies the hook (id, scope, target,
// creator, creation) cannot change. A previous secret that has expired is dropped.
func (s *Store) UpdateWebhook(ctx context.Context, id, actor string, change func(h *webhook.Hook) (action, detail string, err error)) (webhook.Hook, error) {
	a := events.ActorFrom(ctx)
	var h webhook.Hook
	err := s.write(ctx, func(q querier) error {
		old, err := scanWebhook(q.QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = $1`+s.d.forUpdate, id))
		if isNoRows(err) {
			return fmt.Errorf("webhook %s: %w", id, webhook.ErrNotFound)
		}
		if err != nil {
			return err
		}
		h = old
		h.Events, h.Repositories, h.Tags, h.HeaderNames = slices.Clone(old.Events), slices.Clone(old.Repositories),
			slices.Clone(old.Tags), slices.Clone(old.HeaderNames)
		action, detail, err := change(&h)
		if err != nil {
			return err
		}
		if h.ID != old.ID || h.Scope != old.Scope || h.Target != old.Target || h.CreatedBy != old.CreatedBy ||
			!h.CreatedAt.Equal(old.CreatedAt) || h.Kind != old.Kind {
			return fmt.Errorf("%w: a webhook's scope, target, kind and creator cannot change", webhook.ErrInvalid)
		}
		now := time.Now()
		if !h.HasPrevious(now) {
			h.PreviousSecret, h.PreviousExpires = "", time.Time{}
		}
		h.UpdatedAt = now.UTC()
		if h.Enabled && !old.Enabled {
			h.EnabledAt = h.UpdatedAt
		}
		if _, err := q.Exec(ctx, `UPDATE webhooks SET url = $1, event_types = $2, repositories = $3, tags = $4, format = $5,
			secret = $6, headers = $7, header_names = $8, enabled = $9, disabled_reason = $10, failures = $11,
			previous_secret = $12, previous_secret_expires = $13, updated_at = $14, enabled_at = $15 WHERE id = $16`,
			h.URL, jsonArray(h.Events), jsonArray(h.Repositories), jsonArray(h.Tags), h.Format, h.Secret, h.Headers,
			jsonArray(h.HeaderNames), h.Enabled, h.DisabledReason, h.Failures, h.PreviousSecret, previousExpires(h),
			nanos(h.UpdatedAt), nanos(h.EnabledAt), id); err != nil {
			return err
		}
		if a.Token != "" {
			detail += " (token " + a.Token + ")"
		}
		return auditIn(ctx, q, accounts.AuditEntry{Time: now, Actor: actor, Action: action, Target: id, Remote: a.Remote,
			Detail: detail})
	})
	if err != nil {
		return webhook.Hook{}, fmt.Errorf("update webhook: %w", err)
	}
	return h, nil
}

// dropExpiredPrevious clears the previous secret of h, read in q's transaction, when it
// has expired at now, so that an expired secret does not stay at rest.
func (s *Store) dropExpiredPrevious(ctx context.Context, q querier, h *webhook.Hook, now time.Time) error {
	if h.PreviousSecret == "" || h.HasPrevious(now) {
		return nil
	}
	h.PreviousSecret, h.PreviousExpires = "", time.Time{}
	_, err := q.Exec(ctx, `UPDATE webhooks SET previous_secret = '', previous_secret_expires = 0
		WHERE id = $1 AND previous_secret <> '' AND previous_secret_expires <= $2`, h.ID, nanos(now))
	return err
}

func auditDetail(h webhook.Hook, a events.Actor) string {
	d := h.Scope
	if h.Kind == webhook.KindDragonfly {
		d = "dragonfly preheat, " + d
	}
	if h.Target != "" {
		d += " " + h.Target
	}
	d += " → " + h.URL
	if a.Token != "" {
		d += " (token " + a.Token + ")"
	}
	return d
}

// GetWebhook returns the hook id, or an error wrapping webhook.ErrNotFound.
func (s *Store) GetWebhook(ctx context.Context, id string) (webhook.Hook, error) {
	var h webhook.Hook
	err := s.do(ctx, func(q querier) error {
		var err error
		h, err = scanWebhook(q.QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = $1`, id))
		return err
	})
	if isNoRows(err) {
		return webhook.Hook{}, fmt.Errorf("webhook %s: %w", id, webhook.ErrNotFound)
	}
	if err != nil {
		return webhook.Hook{}, fmt.Errorf("webhook %s: %w", id, err)
	}
	return h, nil
}

// ListWebhooks returns the hooks f selects, oldest first.
func (s *Store) ListWebhooks(ctx context.Context, f webhook.Filter) ([]webhook.Hook, error) {
	var where []string
	var args []any
	if !f.All {
		if f.Site {
			where = append(where, "scope = 'site'")
		}
		if len(f.Namespaces) > 0 {
			args = append(args, s.d.listArg(f.Namespaces))
			where = append(where, "namespace IN (SELECT value FROM "+s.d.list("$1", "text")+")")
		}
		if len(where) == 0 {
			return nil, nil
		}
	}
	query := `SELECT ` + webhookColumns + ` FROM webhooks`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " OR ")
	}
	query += " ORDER BY created_at, id"
	var out []webhook.Hook
	err := s.read(ctx, func(q querier) error {
		var err error
		out, err = collect(scanWebhook)(q.Query(ctx, query, args...))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return out, nil
}

// DeleteWebhook deletes the hook id and audits it, in one transaction.
func (s *Store) DeleteWebhook(ctx context.Context, id, actor string) error {
	a := events.ActorFrom(ctx)
	err := s.write(ctx, func(q querier) error {
		h, err := scanWebhook(q.QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = $1`+s.d.forUpdate, id))
		if isNoRows(err) {
			return fmt.Errorf("webhook %s: %w", id, webhook.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if err := s.deleteWebhookRows(ctx, q, id); err != nil {
			return err
		}
		return auditIn(ctx, q, accounts.AuditEntry{Time: time.Now(), Actor: actor, Action: "webhook.delete", Target: id,
			Remote: a.Remote, Detail: auditDetail(h, a)})
	})
	if err != nil {
		return fmt.Errorf("delete webhook: %w", err)
	}
	return nil
}

// deleteWebhookRows deletes a hook and what hangs off it.
func (s *Store) deleteWebhookRows(ctx context.Context, q querier, id string) error {
	// Explicit rather than left to ON DELETE CASCADE, which SQLite applies only with
	// foreign keys switched on for the connection.
	if _, err := q.Exec(ctx, `DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM webhook_deliveries WHERE hook_id = $1)`, id); err != nil {
		return err
	}
	if _, err := q.Exec(ctx, `DELETE FROM webhook_deliveries WHERE hook_id = $1`, id); err != nil {
		return err
	}
	_, err := q.Exec(ctx, `DELETE FROM webhooks WHERE id = $1`, id)
	return err
}

// UserByID returns the account of id, or an error wrapping accounts.ErrNotFound: a
// hook's creator is named by id, so a name deleted and taken again is another owner.
func (s *Store) UserByID(ctx context.Context, id int64) (accounts.User, error) {
	var u accounts.User
	err := s.do(ctx, func(q querier) error {
		var err error
		u, err = scanUser(q.QueryRow(ctx, "SELECT "+userColumns+" FROM users WHERE id = $1", id))
		return err
	})
	if err != nil {
		return accounts.User{}, fmt.Errorf("user #%d: %w", id, notFound(err))
	}
	return u, nil
}

// SetWebhookEnabled turns a hook on or off and audits it, in one transaction.
func (s *Store) SetWebhookEnabled(ctx context.Context, id string, enabled bool, actor string) error {
	a := events.ActorFrom(ctx)
	now := time.Now()
	err := s.write(ctx, func(q querier) error {
		// Turning a hook on starts its time again: events raised while it was off are
		// not sent (Hook.Wants).
		n, err := q.Exec(ctx, `UPDATE webhooks SET enabled = $1, disabled_reason = '', failures = 0, updated_at = $2,
			enabled_at = CASE WHEN $1 AND NOT enabled THEN $2 ELSE enabled_at END WHERE id = $3`,
			enabled, nanos(now), id)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("webhook %s: %w", id, webhook.ErrNotFound)
		}
		action := "webhook.disable"
		if enabled {
			action = "webhook.enable"
		}
		return auditIn(ctx, q, accounts.AuditEntry{Time: now, Actor: actor, Action: action, Target: id, Remote: a.Remote})
	})
	if err != nil {
		return fmt.Errorf("set webhook enabled: %w", err)
	}
	return nil
}
