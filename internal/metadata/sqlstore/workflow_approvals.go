package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/events"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

// This file holds the approvals of job runs (migration 0027, docs/design/workflows.md
// "Approvals"): a job run whose environment names approvers waits in
// waiting_approval; decisions are rows of workflow_approvals, one per account, each
// written with its audit entry in one transaction.

// AwaitWorkflowApproval moves owner's running job run jobID into waiting_approval
// (required approvals before deadline) and returns true, unless its approvals are
// complete (false: it runs now) or its run was asked to stop (false: the engine
// learns it at its first renewal). The run's row is locked first, as a cancel locks
// it, so a cancel never misses a job run entering the wait.
func (s *Store) AwaitWorkflowApproval(ctx context.Context, jobID int64, owner string, required int, deadline time.Time) (bool, error) {
	var waiting bool
	err := s.write(ctx, func(q querier) error {
		waiting = false
		var cancel bool
		err := q.QueryRow(ctx, `SELECT r.cancel_requested FROM workflow_runs r WHERE r.id = (SELECT run_id FROM workflow_jobs
			WHERE id = $1)`+s.d.forUpdate, jobID).Scan(&cancel)
		if isNoRows(err) {
			return wfengine.ErrLost
		}
		if err != nil {
			return err
		}
		var approval string
		err = q.QueryRow(ctx, `SELECT approval FROM workflow_jobs WHERE id = $1 AND owner = $2 AND state = 'running'`,
			jobID, owner).Scan(&approval)
		if isNoRows(err) {
			return wfengine.ErrLost
		}
		if err != nil || approval == "approved" || cancel {
			return err
		}
		waiting = true
		return lost(q.Exec(ctx, `UPDATE workflow_jobs SET state = 'waiting_approval', owner = '', lease_until = 0, started_at = 0,
			approvals_required = $3, approval_deadline = $4 WHERE id = $1 AND owner = $2 AND state = 'running'`,
			jobID, owner, required, nanos(deadline)))
	})
	if err != nil {
		return false, fmt.Errorf("wait for approval of workflow job %d: %w", jobID, err)
	}
	return waiting, nil
}

// DecideWorkflowApproval records d on the job run d.JobID of run d.RunID, waiting for
// approval, with the audit entry ctx carries (accounts.WithAudit) in the same
// transaction: a rejection fails the job run (its dependents are then skipped), the
// approval that completes the required number queues it. The rule of who decides
// (wfengine.MayDecide) is applied to the run's triggering account inside the
// transaction; a refused decision records nothing. A second decision by one account
// is wfengine.ErrInvalid. It returns the job run's state after the decision.
func (s *Store) DecideWorkflowApproval(ctx context.Context, d wfengine.Decision) (string, error) {
	if err := wfengine.CheckDecision(d); err != nil {
		return "", err
	}
	var state string
	err := s.write(ctx, func(q querier) error {
		var runID, triggeredBy int64
		err := q.QueryRow(ctx, `SELECT r.id, r.triggered_by FROM workflow_runs r WHERE r.id = (SELECT run_id FROM workflow_jobs
			WHERE id = $1)`+s.d.forUpdate, d.JobID).Scan(&runID, &triggeredBy)
		if isNoRows(err) || err == nil && runID != d.RunID {
			return fmt.Errorf("job run %d of run %d: %w", d.JobID, d.RunID, wfengine.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if err := wfengine.MayDecide(d.AccountID, d.Approvers, triggeredBy); err != nil {
			return err
		}
		var required int
		var display string
		if err := q.QueryRow(ctx, `SELECT state, approvals_required, display FROM workflow_jobs WHERE id = $1`, d.JobID).Scan(
			&state, &required, &display); err != nil {
			return err
		}
		if state != wfengine.StateWaitingApproval {
			return fmt.Errorf("%w: job %s is %s: it is not waiting for approval", wfengine.ErrInvalid, display, state)
		}
		var prior string
		err = q.QueryRow(ctx, `SELECT decision FROM workflow_approvals WHERE job_id = $1 AND account_id = $2`, d.JobID,
			d.AccountID).Scan(&prior)
		if err == nil {
			return fmt.Errorf("%w: %s already decided on job %s (%s)", wfengine.ErrInvalid, d.Account, display, prior)
		}
		if !isNoRows(err) {
			return err
		}
		if _, err := q.Exec(ctx, `INSERT INTO workflow_approvals (job_id, account_id, account_name, decision, comment, at)
			VALUES ($1, $2, $3, $4, $5, `+s.d.now+`)`, d.JobID, d.AccountID, d.Account, d.Decision, d.Comment); err != nil {
			return err
		}
		if err := s.recordChange(ctx, q, events.Event{}); err != nil {
			return err
		}
		if d.Decision == wfengine.DecisionReject {
			msg := "rejected by " + d.Account
			if c := strings.TrimSpace(d.Comment); c != "" {
				msg += ": " + c
			}
			state = wfengine.StateFailed
			return s.failWaitingJob(ctx, q, runID, d.JobID, msg)
		}
		var approvals int
		if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM workflow_approvals WHERE job_id = $1 AND decision = 'approve'`,
			d.JobID).Scan(&approvals); err != nil {
			return err
		}
		if approvals < required {
			return nil
		}
		state = wfengine.StateQueued
		_, err = q.Exec(ctx, `UPDATE workflow_jobs SET state = 'queued', approval = 'approved', error = '' WHERE id = $1
			AND state = 'waiting_approval'`, d.JobID)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("decide on workflow job %d: %w", d.JobID, err)
	}
	return state, nil
}

// failWaitingJob ends job jobID of run runID (whose row q's transaction has locked),
// waiting for approval, as failed with msg, and moves the run on.
func (s *Store) failWaitingJob(ctx context.Context, q querier, runID, jobID int64, msg string) error {
	n, err := q.Exec(ctx, `UPDATE workflow_jobs SET state = 'failed', error = $2, finished_at = `+s.d.now+`
		WHERE id = $1 AND state = 'waiting_approval'`, jobID, msg)
	if err != nil || n == 0 {
		return err
	}
	if _, err := q.Exec(ctx, `UPDATE workflow_steps SET state = 'skipped', finished_at = `+s.d.now+`
		WHERE job_id = $1 AND state = 'pending'`, jobID); err != nil {
		return err
	}
	return s.advanceRun(ctx, q, runID)
}

// ExpireWorkflowApprovals fails the job runs waiting for approval whose deadline is
// before now (the engine's clock) and returns how many it failed.
func (s *Store) ExpireWorkflowApprovals(ctx context.Context, now time.Time) (int, error) {
	due := `state = 'waiting_approval' AND approval_deadline < $1`
	if ok, err := s.any(ctx, `SELECT 1 FROM workflow_jobs WHERE `+due, nanos(now)); err != nil || !ok {
		return 0, err
	}
	var n int
	err := s.write(ctx, func(q querier) error {
		n = 0
		type job struct {
			id, run        int64
			required, have int
		}
		jobs, err := collect(func(r row) (job, error) {
			var j job
			return j, r.Scan(&j.id, &j.run, &j.required, &j.have)
		})(q.Query(ctx, `SELECT j.id, j.run_id, j.approvals_required, (SELECT COUNT(*) FROM workflow_approvals a
			WHERE a.job_id = j.id AND a.decision = 'approve') FROM workflow_jobs j
			WHERE j.state = 'waiting_approval' AND j.approval_deadline < $1 ORDER BY j.run_id, j.id LIMIT 100`, nanos(now)))
		if err != nil {
			return err
		}
		for _, j := range jobs {
			var x int64
			if err := q.QueryRow(ctx, `SELECT id FROM workflow_runs WHERE id = $1`+s.d.forUpdate, j.run).Scan(&x); err != nil {
				return err
			}
			msg := fmt.Sprintf("timed out waiting for approval (%d of %d approvals)", j.have, j.required)
			if err := s.failWaitingJob(ctx, q, j.run, j.id, msg); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("expire workflow approvals: %w", err)
	}
	return n, nil
}

// WorkflowApprovals returns the approval state of run runID's job runs that waited
// for approval, by job run id.
func (s *Store) WorkflowApprovals(ctx context.Context, runID int64) (map[int64]*wfengine.ApprovalState, error) {
	out := map[int64]*wfengine.ApprovalState{}
	err := s.read(ctx, func(q querier) error {
		clear(out)
		type job struct {
			id       int64
			required int
			deadline int64
			approval string
		}
		jobs, err := collect(func(r row) (job, error) {
			var j job
			return j, r.Scan(&j.id, &j.required, &j.deadline, &j.approval)
		})(q.Query(ctx, `SELECT id, approvals_required, approval_deadline, approval FROM workflow_jobs
			WHERE run_id = $1 AND approvals_required > 0 ORDER BY id`, runID))
		if err != nil {
			return err
		}
		for _, j := range jobs {
			out[j.id] = &wfengine.ApprovalState{Required: j.required, Deadline: optNanos(j.deadline), Approved: j.approval == "approved"}
		}
		decisions, err := collect(func(r row) (wfengine.Approval, error) {
			var a wfengine.Approval
			var at int64
			err := r.Scan(&a.JobID, &a.AccountID, &a.Account, &a.Decision, &a.Comment, &at)
			a.At = fromNanos(at)
			return a, err
		})(q.Query(ctx, `SELECT a.job_id, a.account_id, a.account_name, a.decision, a.comment, a.at FROM workflow_approvals a
			JOIN workflow_jobs j ON j.id = a.job_id WHERE j.run_id = $1 ORDER BY a.at, a.account_id`, runID))
		if err != nil {
			return err
		}
		for _, a := range decisions {
			if st := out[a.JobID]; st != nil {
				st.Decisions = append(st.Decisions, a)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("approvals of workflow run %d: %w", runID, err)
	}
	return out, nil
}

// resetApprovals forgets the approvals of the job runs of run runID that which
// selects (a rerun asks for them again).
func resetApprovals(ctx context.Context, q querier, which string, runID int64) error {
	if _, err := q.Exec(ctx, `DELETE FROM workflow_approvals WHERE job_id IN (SELECT id FROM workflow_jobs WHERE `+which+`)`,
		runID); err != nil {
		return err
	}
	_, err := q.Exec(ctx, `UPDATE workflow_jobs SET approval = '', approvals_required = 0, approval_deadline = 0,
		cancel_requested = FALSE WHERE `+which, runID)
	return err
}

// auditRun writes the audit entry ctx carries (accounts.WithAudit: workflow.run,
// workflow.cancel, workflow.rerun), if any, in q's transaction, its detail starting
// with the run's id and number, known only here for a new run.
func (s *Store) auditRun(ctx context.Context, q querier, id int64) error {
	a, ok := accounts.AuditFrom(ctx)
	if !ok {
		return nil
	}
	var number int64
	if err := q.QueryRow(ctx, `SELECT number FROM workflow_runs WHERE id = $1`, id).Scan(&number); err != nil {
		return notFoundAs(err, wfengine.ErrNotFound)
	}
	a.Detail = strings.TrimSpace(fmt.Sprintf("run %d (#%d) %s", id, number, a.Detail))
	return s.recordChange(accounts.WithAudit(ctx, a), q, events.Event{})
}
