package sqlstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/workflow"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

// This file holds the workflows as applied (migration 0023, docs/design/workflows.md):
// the YAML source and its digest per namespace and name. runs.go holds their runs.

var _ wfengine.Store = (*Store)(nil)

const workflowColumns = `w.id, w.namespace, w.name, w.source, w.digest, w.applied_by, w.enabled, w.created_at, w.updated_at`

func scanWorkflow(r row) (wfengine.Workflow, error) {
	var w wfengine.Workflow
	var src string
	var created, updated int64
	if err := r.Scan(&w.ID, &w.Namespace, &w.Name, &src, &w.Digest, &w.AppliedBy, &w.Enabled, &created, &updated); err != nil {
		return wfengine.Workflow{}, err
	}
	w.Source = []byte(src)
	w.CreatedAt, w.UpdatedAt = fromNanos(created), fromNanos(updated)
	return w, nil
}

// WorkflowDigest is the digest stored with a workflow's source.
func WorkflowDigest(source []byte) string {
	sum := sha256.Sum256(source)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ApplyWorkflow stores source as the workflow namespace/name, creating it or replacing
// its source, applied by the account appliedBy, with the audit entry workflow.apply
// (actor, the remote and token of ctx) in the same transaction. The source must parse:
// the store never holds a workflow that cannot run.
func (s *Store) ApplyWorkflow(ctx context.Context, namespace, name string, source []byte, appliedBy int64, actor string) (wfengine.Workflow, error) {
	if namespace == "" || name == "" {
		return wfengine.Workflow{}, fmt.Errorf("apply workflow: %w: namespace and name are required", wfengine.ErrInvalid)
	}
	wf, err := workflow.Parse(source)
	if err != nil {
		return wfengine.Workflow{}, fmt.Errorf("apply workflow %s/%s: %w", namespace, name, err)
	}
	a := events.ActorFrom(ctx)
	digest := WorkflowDigest(source)
	var w wfengine.Workflow
	err = s.write(ctx, func(q querier) error {
		now := time.Now()
		var id int64
		if err := q.QueryRow(ctx, `INSERT INTO workflows (namespace, name, source, digest, applied_by, enabled, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, TRUE, $6, $6)
			ON CONFLICT (namespace, name) DO UPDATE SET source = excluded.source, digest = excluded.digest,
				applied_by = excluded.applied_by, updated_at = excluded.updated_at
			RETURNING id`, namespace, name, string(source), digest, appliedBy, nanos(now)).Scan(&id); err != nil {
			return err
		}
		var err error
		if w, err = scanWorkflow(q.QueryRow(ctx, `SELECT `+workflowColumns+` FROM workflows w WHERE w.id = $1`, id)); err != nil {
			return err
		}
		if err := s.syncSchedules(ctx, q, w, wf, now); err != nil {
			return err
		}
		detail := digest
		if a.Token != "" {
			detail += " (token " + a.Token + ")"
		}
		return auditIn(ctx, q, accounts.AuditEntry{Time: now, Actor: actor, Action: "workflow.apply",
			Target: namespace + "/" + name, Remote: a.Remote, Detail: detail})
	})
	if err != nil {
		return wfengine.Workflow{}, fmt.Errorf("apply workflow %s/%s: %w", namespace, name, err)
	}
	return w, nil
}

// GetWorkflow returns the workflow namespace/name, or an error wrapping
// wfengine.ErrNotFound.
func (s *Store) GetWorkflow(ctx context.Context, namespace, name string) (wfengine.Workflow, error) {
	var w wfengine.Workflow
	err := s.do(ctx, func(q querier) error {
		var err error
		w, err = scanWorkflow(q.QueryRow(ctx, `SELECT `+workflowColumns+` FROM workflows w WHERE w.namespace = $1 AND w.name = $2`,
			namespace, name))
		return err
	})
	if isNoRows(err) {
		return wfengine.Workflow{}, fmt.Errorf("workflow %s/%s: %w", namespace, name, wfengine.ErrNotFound)
	}
	if err != nil {
		return wfengine.Workflow{}, fmt.Errorf("workflow %s/%s: %w", namespace, name, err)
	}
	return w, nil
}

// ListWorkflows returns the workflows of namespace ("" for all), by namespace and name.
func (s *Store) ListWorkflows(ctx context.Context, namespace string) ([]wfengine.Workflow, error) {
	var out []wfengine.Workflow
	err := s.do(ctx, func(q querier) error {
		var err error
		out, err = collect(scanWorkflow)(q.Query(ctx, `SELECT `+workflowColumns+` FROM workflows w
			WHERE $1 = '' OR w.namespace = $1 ORDER BY w.namespace, w.name`, namespace))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list workflows: %w", err)
	}
	return out, nil
}

// DeleteWorkflow deletes the workflow namespace/name with its runs and their logs,
// audited as workflow.delete in the same transaction.
func (s *Store) DeleteWorkflow(ctx context.Context, namespace, name, actor string) error {
	a := events.ActorFrom(ctx)
	err := s.write(ctx, func(q querier) error {
		n, err := q.Exec(ctx, `DELETE FROM workflows WHERE namespace = $1 AND name = $2`, namespace, name)
		if err != nil {
			return err
		}
		if n == 0 {
			return wfengine.ErrNotFound
		}
		detail := ""
		if a.Token != "" {
			detail = "token " + a.Token
		}
		return auditIn(ctx, q, accounts.AuditEntry{Time: time.Now(), Actor: actor, Action: "workflow.delete",
			Target: namespace + "/" + name, Remote: a.Remote, Detail: detail})
	})
	if err != nil {
		return fmt.Errorf("delete workflow %s/%s: %w", namespace, name, err)
	}
	return nil
}

// jsonObject is v as a JSON object ("{}" for nil).
func jsonObject[V any](v map[string]V) string {
	if len(v) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(v)
	return string(b)
}
