package sqlstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/hubctl/hubctl/internal/secrets"
	"github.com/hubctl/hubctl/internal/webhook"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

// This file holds the signing secrets of workflows' incoming webhooks (migration 0026):
// made by the hub when a workflow's on.webhook names no secret of its own, sealed at
// rest, shown once.

// HookTable is the table of workflows' webhook secrets; its secret column is sealed
// with secrets.RowAD(HookTable, id, "secret").
const HookTable = "workflow_hooks"

func init() {
	sealedColumns = append(sealedColumns, sealedColumn{table: HookTable, id: "id", column: "secret"})
}

// EnsureWorkflowHookSecret gives the workflow id a webhook signing secret
// ("whsec_" and the base64 of 32 random bytes) sealed with ring, when it has none or
// rotate is set, and returns it; "" when it already had one (never shown again).
func (s *Store) EnsureWorkflowHookSecret(ctx context.Context, ring *secrets.Keyring, workflowID int64, rotate bool) (string, error) {
	if ring == nil {
		return "", fmt.Errorf("workflow webhook secret: %w", errNoKeyring)
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	fresh := hex.EncodeToString(b)
	var secret string
	err := s.write(ctx, func(q querier) error {
		secret = ""
		var x int64
		if err := q.QueryRow(ctx, `SELECT id FROM workflows WHERE id = $1`+s.d.forUpdate, workflowID).Scan(&x); err != nil {
			return notFoundAs(err, wfengine.ErrNotFound)
		}
		// The row exists first, so the secret is sealed for its id.
		if _, err := q.Exec(ctx, `INSERT INTO workflow_hooks (id, workflow_id, secret, created_at) VALUES ($1, $2, '', `+s.d.now+`)
			ON CONFLICT (workflow_id) DO NOTHING`, fresh, workflowID); err != nil {
			return err
		}
		var id, env string
		if err := q.QueryRow(ctx, `SELECT id, secret FROM workflow_hooks WHERE workflow_id = $1`+s.d.forUpdate, workflowID).Scan(&id, &env); err != nil {
			return err
		}
		if env != "" && !rotate {
			return nil
		}
		sec, err := webhook.NewSecret()
		if err != nil {
			return err
		}
		sealed, err := ring.Seal([]byte(sec), secrets.RowAD(HookTable, id, "secret"))
		if err != nil {
			return err
		}
		if _, err := q.Exec(ctx, `UPDATE workflow_hooks SET secret = $2, created_at = `+s.d.now+` WHERE id = $1`, id, sealed); err != nil {
			return err
		}
		secret = sec
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("workflow %d webhook secret: %w", workflowID, err)
	}
	return secret, nil
}

// WorkflowHookSecret opens the webhook signing secret the hub made for the workflow
// id; wfengine.ErrNotFound when it has none.
func (s *Store) WorkflowHookSecret(ctx context.Context, ring *secrets.Keyring, workflowID int64) (string, error) {
	var id, env string
	err := s.do(ctx, func(q querier) error {
		return q.QueryRow(ctx, `SELECT id, secret FROM workflow_hooks WHERE workflow_id = $1`, workflowID).Scan(&id, &env)
	})
	if isNoRows(err) || (err == nil && env == "") {
		return "", fmt.Errorf("workflow %d webhook secret: %w", workflowID, wfengine.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("workflow %d webhook secret: %w", workflowID, err)
	}
	if ring == nil {
		return "", fmt.Errorf("workflow %d webhook secret: %w", workflowID, errNoKeyring)
	}
	v, err := ring.Open(env, secrets.RowAD(HookTable, id, "secret"))
	if err != nil {
		return "", fmt.Errorf("workflow %d webhook secret: %w", workflowID, err)
	}
	return string(v), nil
}
