package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/events"
)

// recordChange writes, in q's transaction, what a change of accounts, organisations,
// teams, tokens, sessions or quotas leaves behind: the audit entry ctx carries
// (accounts.WithAudit), and the hub-wide event e unless e.Type is "" (a change no
// event is raised for). So an entry and an event exist if and only if the change
// committed.
func (s *Store) recordChange(ctx context.Context, q querier, e events.Event) error {
	if a, ok := accounts.AuditFrom(ctx); ok {
		if a.Time.IsZero() {
			a.Time = time.Now()
		}
		if a.Actor == "" || a.Action == "" {
			return fmt.Errorf("audit %q by %q: actor and action are required: %w", a.Action, a.Actor, accounts.ErrInvalid)
		}
		if err := auditIn(ctx, q, a); err != nil {
			return fmt.Errorf("audit %s: %w", a.Action, err)
		}
		if e.Time.IsZero() {
			e.Time = a.Time.UTC()
		}
	}
	if e.Type == "" {
		return nil
	}
	return s.appendEvent(ctx, q, e)
}

// withPurged puts "purged N repositories" before the detail of the audit entry ctx
// carries, when a deletion purged: only the transaction knows N.
func withPurged(ctx context.Context, purge bool, n int) context.Context {
	a, ok := accounts.AuditFrom(ctx)
	if !ok || !purge {
		return ctx
	}
	a.Detail = strings.TrimSpace(fmt.Sprintf("purged %d repositories", n) + " " + a.Detail)
	return accounts.WithAudit(ctx, a)
}
