package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/hubctl/hubctl/internal/workflow"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

// This file holds the schedule trigger's rows (migration 0026): one per cron entry of
// a workflow, rewritten by every apply and deleted with the workflow (ON DELETE
// CASCADE).

var _ wfengine.ScheduleStore = (*Store)(nil)

// syncSchedules rewrites the schedule rows of w, in q's transaction, from its source:
// every entry's next tick is computed again from now.
func (s *Store) syncSchedules(ctx context.Context, q querier, w wfengine.Workflow, wf *workflow.Workflow, now time.Time) error {
	if _, err := q.Exec(ctx, `DELETE FROM workflow_schedules WHERE workflow_id = $1`, w.ID); err != nil {
		return err
	}
	for i, sch := range wf.On.Schedule {
		next := wfengine.NextTick(sch, now)
		if next.IsZero() {
			continue
		}
		if _, err := q.Exec(ctx, `INSERT INTO workflow_schedules (workflow_id, entry, spec, timezone, next_at)
			VALUES ($1, $2, $3, $4, $5)`, w.ID, i, sch.Cron, sch.Timezone, nanos(next)); err != nil {
			return err
		}
	}
	return nil
}

// DispatchWorkflowSchedules claims up to limit schedule rows of enabled workflows due
// at now — FOR UPDATE SKIP LOCKED on PostgreSQL, so replicas take different rows;
// SQLite's single writer serialises them — and for each inserts the run plan makes
// (its event id, ScheduleEventID, is unique per workflow: a tick whose run exists
// starts none) and moves the row to the next tick plan gives, in one transaction.
func (s *Store) DispatchWorkflowSchedules(ctx context.Context, now time.Time, limit int, plan wfengine.SchedulePlanner) (int, error) {
	if limit <= 0 {
		limit = 100
	}
	due := `s.next_at <= $1 AND EXISTS (SELECT 1 FROM workflows w WHERE w.id = s.workflow_id AND w.enabled)`
	if ok, err := s.any(ctx, `SELECT 1 FROM workflow_schedules s WHERE `+due, nanos(now)); err != nil || !ok {
		if err != nil {
			return 0, fmt.Errorf("dispatch workflow schedules: %w", err)
		}
		return 0, nil
	}
	claimed := 0
	err := s.write(ctx, func(q querier) error {
		claimed = 0
		type tick struct {
			workflowID int64
			entry      int
			spec, tz   string
			next       int64
		}
		rows, err := collect(func(r row) (tick, error) {
			var x tick
			return x, r.Scan(&x.workflowID, &x.entry, &x.spec, &x.tz, &x.next)
		})(q.Query(ctx, `SELECT s.workflow_id, s.entry, s.spec, s.timezone, s.next_at FROM workflow_schedules s WHERE `+due+`
			ORDER BY s.next_at, s.workflow_id, s.entry LIMIT $2`+s.d.skipLocked, nanos(now), limit))
		if err != nil {
			return err
		}
		claimed = len(rows)
		for _, x := range rows {
			w, err := scanWorkflow(q.QueryRow(ctx, `SELECT `+workflowColumns+` FROM workflows w WHERE w.id = $1`, x.workflowID))
			if err != nil {
				return err
			}
			pr, next, err := plan(wfengine.DueSchedule{Workflow: w, Entry: x.entry, Cron: x.spec, Timezone: x.tz, Due: fromNanos(x.next)})
			if err != nil {
				return err
			}
			if pr != nil {
				if _, _, err := s.insertRun(ctx, q, w, pr); err != nil {
					return err
				}
			}
			if next.IsZero() {
				_, err = q.Exec(ctx, `DELETE FROM workflow_schedules WHERE workflow_id = $1 AND entry = $2 AND next_at = $3`,
					x.workflowID, x.entry, x.next)
			} else {
				_, err = q.Exec(ctx, `UPDATE workflow_schedules SET next_at = $4 WHERE workflow_id = $1 AND entry = $2 AND next_at = $3`,
					x.workflowID, x.entry, x.next, nanos(next))
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("dispatch workflow schedules: %w", err)
	}
	return claimed, nil
}

// WorkflowSchedule is one schedule row, for tests and `hubctl workflow show`.
type WorkflowSchedule struct {
	Entry    int
	Cron     string
	Timezone string
	Next     time.Time
}

// ListWorkflowSchedules returns the schedule rows of the workflow id by entry.
func (s *Store) ListWorkflowSchedules(ctx context.Context, workflowID int64) ([]WorkflowSchedule, error) {
	var out []WorkflowSchedule
	err := s.do(ctx, func(q querier) error {
		var err error
		out, err = collect(func(r row) (WorkflowSchedule, error) {
			var x WorkflowSchedule
			var next int64
			err := r.Scan(&x.Entry, &x.Cron, &x.Timezone, &next)
			x.Next = fromNanos(next)
			return x, err
		})(q.Query(ctx, `SELECT entry, spec, timezone, next_at FROM workflow_schedules WHERE workflow_id = $1 ORDER BY entry`, workflowID))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list workflow schedules: %w", err)
	}
	return out, nil
}
