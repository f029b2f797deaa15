package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/webhook"
)

// DispatchWebhooks fans the next events of the feed out to the hooks that want them.
// The cursor row is locked for the whole transaction, so replicas dispatching at once
// take turns and each event is fanned out once. On PostgreSQL the feed is read below
// the transaction-id horizon (docs/design/events.md): an event of a transaction still
// running sorts after everything read here, so moving the cursor never skips it.
func (s *Store) DispatchWebhooks(ctx context.Context, limit int, now time.Time) (int, error) {
	read, err := s.consumeFeed(ctx, webhookCursor, limit, func(q querier, evs []events.Event) error {
		hooks, err := collect(scanWebhook)(q.Query(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE enabled`))
		if err != nil {
			return err
		}
		for _, e := range evs {
			for _, h := range hooks {
				if !h.Wants(e.Time) || !h.Matches(e) {
					continue
				}
				payload, err := json.Marshal(e)
				if err != nil {
					return err
				}
				if _, err := q.Exec(ctx, `INSERT INTO webhook_deliveries (hook_id, event_id, event_type, repository, payload, state,
					next_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6, $6)`,
					h.ID, e.ID, string(e.Type), e.Repository, string(payload), nanos(now)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("dispatch webhooks: %w", err)
	}
	return read, nil
}

const deliveryColumns = `d.id, d.hook_id, d.event_id, d.event_type, d.repository, d.payload, d.state, d.attempts, d.next_at,
	d.last_status, d.last_error, d.created_at, d.updated_at, d.job`

func scanDelivery(r row) (webhook.Delivery, error) {
	var d webhook.Delivery
	var typ string
	var next, created, updated int64
	if err := r.Scan(&d.ID, &d.HookID, &d.EventID, &typ, &d.Repository, &d.Payload, &d.State, &d.Attempts, &next,
		&d.LastStatus, &d.LastError, &created, &updated, &d.Job); err != nil {
		return webhook.Delivery{}, err
	}
	d.EventType = events.Type(typ)
	d.NextAt, d.CreatedAt, d.UpdatedAt = fromNanos(next), fromNanos(created), fromNanos(updated)
	return d, nil
}

// ClaimWebhookDeliveries takes due deliveries for one worker. On PostgreSQL the rows
// are picked FOR UPDATE SKIP LOCKED, so concurrent workers take different ones; the
// lease (claimed_until) then keeps them from other workers until the attempt is
// recorded, or, if the worker dies, until it runs out.
func (s *Store) ClaimWebhookDeliveries(ctx context.Context, n int, now time.Time, lease time.Duration) ([]webhook.Claim, error) {
	if ok, err := s.any(ctx, `SELECT 1 FROM webhook_deliveries WHERE state = 'pending' AND next_at <= $1 AND claimed_until <= $1`,
		nanos(now)); err != nil || !ok {
		return nil, err
	}
	var out []webhook.Claim
	err := s.write(ctx, func(q querier) error {
		out = nil
		ids, err := collect(func(r row) (int64, error) {
			var id int64
			return id, r.Scan(&id)
		})(q.Query(ctx, `SELECT d.id FROM webhook_deliveries d
			WHERE d.state = 'pending' AND d.next_at <= $1 AND d.claimed_until <= $1
				AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = d.hook_id AND w.enabled)
			ORDER BY d.next_at, d.id LIMIT $2`+s.d.skipLocked, nanos(now), n))
		if err != nil || len(ids) == 0 {
			return err
		}
		strs := make([]string, len(ids))
		for i, id := range ids {
			strs[i] = strconv.FormatInt(id, 10)
		}
		in := "(" + strings.Join(strs, ", ") + ")" // integers from the database, not input
		if _, err := q.Exec(ctx, `UPDATE webhook_deliveries SET claimed_until = $1, attempts = attempts + 1 WHERE id IN `+in,
			nanos(now.Add(lease))); err != nil {
			return err
		}
		ds, err := collect(scanDelivery)(q.Query(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries d WHERE d.id IN `+in+` ORDER BY d.next_at, d.id`))
		if err != nil {
			return err
		}
		hooks := map[string]webhook.Hook{}
		for _, d := range ds {
			h, ok := hooks[d.HookID]
			if !ok {
				if h, err = scanWebhook(q.QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = $1`, d.HookID)); err != nil {
					return err
				}
				if err := s.dropExpiredPrevious(ctx, q, &h, now); err != nil {
					return err
				}
				hooks[d.HookID] = h
			}
			out = append(out, webhook.Claim{Delivery: d, Hook: h})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim webhook deliveries: %w", err)
	}
	return out, nil
}

// FinishWebhookDelivery records an attempt and moves the delivery and its hook on.
func (s *Store) FinishWebhookDelivery(ctx context.Context, id int64, o webhook.Outcome, maxFailures int, now time.Time) error {
	err := s.write(ctx, func(q querier) error {
		var hookID string
		if err := q.QueryRow(ctx, `SELECT hook_id FROM webhook_deliveries WHERE id = $1`+s.d.forUpdate, id).Scan(&hookID); err != nil {
			return notFound(err)
		}
		if !o.Skip {
			a := o.Attempt
			reqH, _ := json.Marshal(nonNil(a.RequestHeaders))
			respH, _ := json.Marshal(nonNil(a.ResponseHeaders))
			if _, err := q.Exec(ctx, `INSERT INTO webhook_attempts (delivery_id, started_at, duration_ms, status, error,
				request_headers, response_headers, response_body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				id, nanos(a.Started), a.Duration.Milliseconds(), a.Status, a.Error, string(reqH), string(respH), a.ResponseBody); err != nil {
				return err
			}
		}
		if _, err := q.Exec(ctx, `UPDATE webhook_deliveries SET state = $1, next_at = $2, claimed_until = 0, last_status = $3,
			last_error = $4, updated_at = $5 WHERE id = $6`,
			o.State, nanos(o.NextAt), o.Attempt.Status, o.Error, nanos(now), id); err != nil {
			return err
		}
		if err := finishPreheat(ctx, q, id, o); err != nil {
			return err
		}
		switch {
		case o.Disable != "":
			_, err := q.Exec(ctx, `UPDATE webhooks SET enabled = FALSE, disabled_reason = $1, failures = failures + 1, updated_at = $2
				WHERE id = $3`, o.Disable, nanos(now), hookID)
			return err
		case o.Failed:
			var failures int
			if err := q.QueryRow(ctx, `UPDATE webhooks SET failures = failures + 1, updated_at = $1 WHERE id = $2 RETURNING failures`,
				nanos(now), hookID).Scan(&failures); err != nil {
				return err
			}
			if maxFailures > 0 && failures >= maxFailures {
				_, err := q.Exec(ctx, `UPDATE webhooks SET enabled = FALSE, disabled_reason = $1 WHERE id = $2 AND enabled`,
					fmt.Sprintf("paused after %d failed deliveries in a row", failures), hookID)
				return err
			}
		case o.State == webhook.StateDelivered:
			_, err := q.Exec(ctx, `UPDATE webhooks SET failures = 0 WHERE id = $1 AND failures <> 0`, hookID)
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("webhook delivery %d: %w", id, err)
	}
	return nil
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// ListWebhookDeliveries returns the hook's newest deliveries with their attempts.
func (s *Store) ListWebhookDeliveries(ctx context.Context, hookID string, limit int) ([]webhook.Delivery, error) {
	if limit <= 0 || limit > 1000 {
		limit = 50
	}
	var out []webhook.Delivery
	err := s.read(ctx, func(q querier) error {
		var err error
		out, err = collect(scanDelivery)(q.Query(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries d WHERE d.hook_id = $1
			ORDER BY d.id DESC LIMIT $2`, hookID, limit))
		if err != nil {
			return err
		}
		for i := range out {
			out[i].Log, err = collect(scanAttempt)(q.Query(ctx, `SELECT started_at, duration_ms, status, error, request_headers,
				response_headers, response_body FROM webhook_attempts WHERE delivery_id = $1 ORDER BY id`, out[i].ID))
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("webhook %s deliveries: %w", hookID, err)
	}
	return out, nil
}

func scanAttempt(r row) (webhook.Attempt, error) {
	var a webhook.Attempt
	var started, ms int64
	var reqH, respH string
	if err := r.Scan(&started, &ms, &a.Status, &a.Error, &reqH, &respH, &a.ResponseBody); err != nil {
		return a, err
	}
	a.Started, a.Duration = fromNanos(started), time.Duration(ms)*time.Millisecond
	_ = json.Unmarshal([]byte(reqH), &a.RequestHeaders)
	_ = json.Unmarshal([]byte(respH), &a.ResponseHeaders)
	return a, nil
}

// RedeliverWebhook queues a delivery's event again for its hook and audits it.
func (s *Store) RedeliverWebhook(ctx context.Context, hookID string, deliveryID int64, actor string, now time.Time) (webhook.Delivery, error) {
	a := events.ActorFrom(ctx)
	var d webhook.Delivery
	err := s.write(ctx, func(q querier) error {
		old, err := scanDelivery(q.QueryRow(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries d WHERE d.id = $1 AND d.hook_id = $2`,
			deliveryID, hookID))
		if isNoRows(err) {
			return fmt.Errorf("delivery %d of webhook %s: %w", deliveryID, hookID, webhook.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if err := q.QueryRow(ctx, `INSERT INTO webhook_deliveries (hook_id, event_id, event_type, repository, payload, state,
			next_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6, $6) RETURNING id`,
			hookID, old.EventID, string(old.EventType), old.Repository, old.Payload, nanos(now)).Scan(&d.ID); err != nil {
			return err
		}
		d = webhook.Delivery{ID: d.ID, HookID: hookID, EventID: old.EventID, EventType: old.EventType, Repository: old.Repository,
			Payload: old.Payload, State: webhook.StatePending, NextAt: now, CreatedAt: now, UpdatedAt: now}
		return auditIn(ctx, q, accounts.AuditEntry{Time: now, Actor: actor, Action: "webhook.redeliver", Target: hookID, Remote: a.Remote,
			Detail: fmt.Sprintf("event %s (delivery %d → %d)", old.EventID, deliveryID, d.ID)})
	})
	if err != nil {
		return webhook.Delivery{}, fmt.Errorf("redeliver: %w", err)
	}
	return d, nil
}

// RecordWebhookTest stores a finished test delivery with its attempt and audits it.
func (s *Store) RecordWebhookTest(ctx context.Context, d webhook.Delivery, actor string) (int64, error) {
	if len(d.Log) != 1 {
		return 0, fmt.Errorf("record webhook test: want one attempt, have %d", len(d.Log))
	}
	a := events.ActorFrom(ctx)
	var id int64
	err := s.write(ctx, func(q querier) error {
		var one int
		if err := q.QueryRow(ctx, `SELECT 1 FROM webhooks WHERE id = $1`+s.d.forKeyShare, d.HookID).Scan(&one); isNoRows(err) {
			return fmt.Errorf("webhook %s: %w", d.HookID, webhook.ErrNotFound)
		} else if err != nil {
			return err
		}
		if err := q.QueryRow(ctx, `INSERT INTO webhook_deliveries (hook_id, event_id, event_type, repository, payload, state,
			attempts, next_at, last_status, last_error, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
			RETURNING id`, d.HookID, d.EventID, string(d.EventType), d.Repository, d.Payload, d.State, d.Attempts, nanos(d.NextAt),
			d.LastStatus, d.LastError, nanos(d.CreatedAt)).Scan(&id); err != nil {
			return err
		}
		at := d.Log[0]
		reqH, _ := json.Marshal(nonNil(at.RequestHeaders))
		respH, _ := json.Marshal(nonNil(at.ResponseHeaders))
		if _, err := q.Exec(ctx, `INSERT INTO webhook_attempts (delivery_id, started_at, duration_ms, status, error,
			request_headers, response_headers, response_body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			id, nanos(at.Started), at.Duration.Milliseconds(), at.Status, at.Error, string(reqH), string(respH), at.ResponseBody); err != nil {
			return err
		}
		result := d.LastError
		if at.Status != 0 {
			result = strconv.Itoa(at.Status)
		}
		return auditIn(ctx, q, accounts.AuditEntry{Time: d.CreatedAt, Actor: actor, Action: "webhook.test", Target: d.HookID,
			Remote: a.Remote, Detail: fmt.Sprintf("event %s (delivery %d): %s", d.EventID, id, result)})
	})
	if err != nil {
		return 0, fmt.Errorf("record webhook test: %w", err)
	}
	return id, nil
}

// any reports whether query selects a row.
func (s *Store) any(ctx context.Context, query string, args ...any) (bool, error) {
	var n int
	err := s.do(ctx, func(q querier) error {
		return q.QueryRow(ctx, `SELECT count(*) FROM (`+query+` LIMIT 1) x`, args...).Scan(&n)
	})
	return n > 0, err
}

// PurgeWebhookDeliveries deletes finished deliveries last updated before before, in
// batches (their attempts go with them: ON DELETE CASCADE), so the delivery log is
// kept as long as the events are (events.retention) and no longer.
func (s *Store) PurgeWebhookDeliveries(ctx context.Context, before time.Time, batch int) (int, error) {
	return s.purgeInBatches(ctx, "webhook deliveries", `DELETE FROM webhook_deliveries WHERE id IN
		(SELECT id FROM webhook_deliveries WHERE state <> 'pending' AND updated_at < $1 ORDER BY updated_at LIMIT $2)`, before, batch)
}

// finishPreheat records what a Dragonfly preheat delivery learnt (docs/webhooks.md,
// "Dragonfly preheat"): the job it created or polled, and, for a poll that was not
// the job's last, takes the claim back out of the attempts.
func finishPreheat(ctx context.Context, q querier, id int64, o webhook.Outcome) error {
	if o.Job != "" {
		if _, err := q.Exec(ctx, `UPDATE webhook_deliveries SET job = $1 WHERE id = $2`, o.Job, id); err != nil {
			return err
		}
	}
	if o.Uncounted {
		if _, err := q.Exec(ctx, `UPDATE webhook_deliveries SET attempts = attempts - 1 WHERE id = $1 AND attempts > 0`, id); err != nil {
			return err
		}
	}
	return nil
}
