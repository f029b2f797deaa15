package server

import (
	"context"
	"log/slog"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/policy"
)

// auditActions maps registry events to audit-log actions: pushes and deletes are what
// an audit needs; mounts and tag moves are part of a push.
var auditActions = map[events.Type]string{
	events.ManifestPushed:  "push",
	events.ManifestDeleted: "delete",
	events.TagDeleted:      "delete",
	events.BlobDeleted:     "delete",
}

// runAudit writes the registry's pushes and deletes to the audit log until ctx ends or
// the subscription closes. It runs beside the requests, so a slow database delays the
// log, never a push.
func runAudit(ctx context.Context, log *slog.Logger, store accounts.Store, ch <-chan events.Event) {
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-ch:
			if !ok {
				return
			}
			action, ok := auditActions[e.Type]
			// Retention audits its deletions itself, as it makes them.
			if !ok || e.Actor == policy.Actor {
				continue
			}
			target := e.Repository
			switch {
			case e.Tag != "":
				target += ":" + e.Tag
			case e.Digest != "":
				target += "@" + e.Digest
			}
			actor := e.Actor
			if actor == "" {
				actor = "anonymous"
			}
			entry := accounts.AuditEntry{Time: e.Time, Actor: actor, Action: action, Target: target, Remote: e.Remote, Detail: string(e.Type)}
			if err := store.Audit(ctx, entry); err != nil && ctx.Err() == nil {
				log.Warn("audit", "action", action, "target", target, "error", err)
			}
		}
	}
}
