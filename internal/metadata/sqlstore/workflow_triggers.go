package sqlstore

import (
	"context"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

// This file holds the store's side of the workflow trigger (docs/design/workflows.md,
// "Dispatch"): the workflow.finished event written in the transaction that finishes a
// run, and the record of a run a too deep chain did not start.

// runFinished appends the workflow.finished event of run runID, just finished, in q's
// transaction.
func (s *Store) runFinished(ctx context.Context, q querier, runID int64) error {
	run, err := scanRun(q.QueryRow(ctx, `SELECT `+runColumns+` FROM workflow_runs r JOIN workflows w ON w.id = r.workflow_id
		WHERE r.id = $1`, runID))
	if err != nil {
		return err
	}
	return s.appendEvent(ctx, q, wfengine.NewFinishedEvent(&run))
}

// insertPlanned inserts the run pr of w in q's transaction, or, when pr was refused
// (a chain of workflow triggers too deep), records why in the audit log instead.
func (s *Store) insertPlanned(ctx context.Context, q querier, w wfengine.Workflow, pr *wfengine.PlannedRun) error {
	if pr.Refused == "" {
		_, _, err := s.insertRun(ctx, q, w, pr)
		return err
	}
	return auditIn(ctx, q, accounts.AuditEntry{Time: time.Now(), Actor: "system", Action: "workflow.chain_stopped",
		Target: w.Namespace + "/" + w.Name, Detail: pr.Refused}.Clean())
}
