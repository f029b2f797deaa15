package sqlstore

import (
	"context"
	"fmt"

	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

// This file holds the concurrency groups of runs and job runs (migration 0027,
// docs/design/workflows.md "Concurrency"). A run with a group is inserted waiting
// (its job runs pending) and promoted to queued when no run of its group is queued or
// running; a job run with a group stays queued, unclaimed, while another job run of
// its group runs. Each decision is taken under a transaction lock on the group's
// name (dialect lockName), so engines on several replicas never start two members of
// one group, and a newcomer's queue and cancel-in-progress are applied under it too.

// Lock names of groups: runs' and job runs' groups are apart.
const (
	runGroupLock = "workflow-run-group:"
	jobGroupLock = "workflow-job-group:"
)

// maxGroupsPerRound bounds the groups one claim settles.
const maxGroupsPerRound = 100

// joinGroups records, in the transaction inserting run runID of pr (job run ids
// jobIDs, in pr.Jobs' order), who triggered it and its concurrency groups: a run with
// a group waits, a cancel-in-progress newcomer cancels the group's queued and running
// runs, and the queue keeps at most its length waiting (the oldest superseded).
func (s *Store) joinGroups(ctx context.Context, q querier, runID int64, pr *wfengine.PlannedRun, jobIDs []int64) error {
	by := pr.TriggeredBy
	if actor, _ := pr.Event["actor"].(string); by == 0 && actor != "" {
		// A push names its actor: the account of that name now (none for a job's token).
		if err := q.QueryRow(ctx, `SELECT id FROM users WHERE name = $1`, actor).Scan(&by); err != nil && !isNoRows(err) {
			return err
		}
	}
	if by != 0 {
		if _, err := q.Exec(ctx, `UPDATE workflow_runs SET triggered_by = $2 WHERE id = $1`, runID, by); err != nil {
			return err
		}
	}
	for i, pj := range pr.Jobs {
		if g := pj.Concurrency; g != nil {
			if _, err := q.Exec(ctx, `UPDATE workflow_jobs SET concurrency_group = $2, concurrency_queue = $3, concurrency_cancel = $4
				WHERE id = $1`, jobIDs[i], g.Name, g.Queue, g.CancelInProgress); err != nil {
				return err
			}
		}
	}
	g := pr.Concurrency
	if g == nil {
		return nil
	}
	if err := s.lockName(ctx, q, runGroupLock+g.Name); err != nil {
		return err
	}
	if _, err := q.Exec(ctx, `UPDATE workflow_runs SET state = 'waiting', concurrency_group = $2, concurrency_queue = $3,
		concurrency_cancel = $4 WHERE id = $1`, runID, g.Name, g.Queue, g.CancelInProgress); err != nil {
		return err
	}
	if _, err := q.Exec(ctx, `UPDATE workflow_jobs SET state = 'pending' WHERE run_id = $1 AND state = 'queued'`, runID); err != nil {
		return err
	}
	if g.CancelInProgress {
		active, err := collect(scanInt64)(q.Query(ctx, `SELECT id FROM workflow_runs WHERE concurrency_group = $1
			AND state IN ('queued', 'running') AND id <> $2 ORDER BY id`, g.Name, runID))
		if err != nil {
			return err
		}
		for _, id := range active {
			if err := s.cancelRun(ctx, q, id); err != nil {
				return err
			}
		}
	}
	return s.trimRunQueue(ctx, q, g.Name)
}

func scanInt64(r row) (int64, error) {
	var v int64
	err := r.Scan(&v)
	return v, err
}

// trimRunQueue cancels, as superseded, the oldest runs waiting in group beyond the
// queue length of its newest: the one that starts next when the group is idle does
// not count as waiting. The group's lock is held.
func (s *Store) trimRunQueue(ctx context.Context, q querier, group string) error {
	type waiter struct {
		id    int64
		queue int
	}
	waiting, err := collect(func(r row) (waiter, error) {
		var w waiter
		return w, r.Scan(&w.id, &w.queue)
	})(q.Query(ctx, `SELECT id, concurrency_queue FROM workflow_runs WHERE concurrency_group = $1 AND state = 'waiting'
		ORDER BY id`, group))
	if err != nil || len(waiting) == 0 {
		return err
	}
	queue := waiting[len(waiting)-1].queue
	busy, err := groupBusy(ctx, q, `SELECT 1 FROM workflow_runs WHERE concurrency_group = $1 AND state IN ('queued', 'running')`, group)
	if err != nil {
		return err
	}
	if !busy {
		waiting = waiting[1:]
	}
	for len(waiting) > queue {
		id := waiting[0].id
		waiting = waiting[1:]
		if err := s.cancelRun(ctx, q, id); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, `UPDATE workflow_jobs SET error = $2 WHERE run_id = $1 AND state = 'cancelled' AND error = ''`,
			id, "superseded: a newer run of its concurrency group is waiting"); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, `UPDATE workflow_runs SET result = $2 WHERE id = $1 AND state = 'cancelled'`,
			id, wfengine.ResultSuperseded); err != nil {
			return err
		}
	}
	return nil
}

func groupBusy(ctx context.Context, q querier, query string, args ...any) (bool, error) {
	var one int
	err := q.QueryRow(ctx, query+` LIMIT 1`, args...).Scan(&one)
	if isNoRows(err) {
		return false, nil
	}
	return err == nil, err
}

// promoteWaitingRuns queues, for each group with runs waiting and none queued or
// running, its oldest waiting run, under the group's lock.
func (s *Store) promoteWaitingRuns(ctx context.Context) error {
	if ok, err := s.any(ctx, `SELECT 1 FROM workflow_runs WHERE state = 'waiting'`); err != nil || !ok {
		return err
	}
	err := s.write(ctx, func(q querier) error {
		groups, err := collect(scanString)(q.Query(ctx, `SELECT DISTINCT concurrency_group FROM workflow_runs WHERE state = 'waiting'
			ORDER BY concurrency_group LIMIT $1`, maxGroupsPerRound))
		if err != nil {
			return err
		}
		for _, g := range groups {
			if err := s.lockName(ctx, q, runGroupLock+g); err != nil {
				return err
			}
			busy, err := groupBusy(ctx, q, `SELECT 1 FROM workflow_runs WHERE concurrency_group = $1 AND state IN ('queued', 'running')`, g)
			if err != nil {
				return err
			}
			if busy {
				continue
			}
			var id int64
			err = q.QueryRow(ctx, `SELECT id FROM workflow_runs WHERE concurrency_group = $1 AND state = 'waiting' ORDER BY id LIMIT 1`,
				g).Scan(&id)
			if isNoRows(err) {
				continue
			}
			if err != nil {
				return err
			}
			if _, err := q.Exec(ctx, `UPDATE workflow_runs SET state = 'queued' WHERE id = $1 AND state = 'waiting'`, id); err != nil {
				return err
			}
			if err := s.advanceRun(ctx, q, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("promote waiting workflow runs: %w", err)
	}
	return nil
}

// jobGroupFree is the claim's condition that job run j, if in a group, is the oldest
// queued member of a group with no member running.
const jobGroupFree = `(j.concurrency_group = '' OR (NOT EXISTS (SELECT 1 FROM workflow_jobs g
	WHERE g.concurrency_group = j.concurrency_group AND g.state = 'running' AND g.id <> j.id)
	AND NOT EXISTS (SELECT 1 FROM workflow_jobs g WHERE g.concurrency_group = j.concurrency_group AND g.state = 'queued'
	AND g.id < j.id)))`

// settleJobGroups applies, before the claim's transaction, the queue and
// cancel-in-progress of the job-run groups that have a member running and others
// queued: a cancel-in-progress newcomer asks the running ones to stop (they learn it
// at their next renewal), and at most the queue length of the newest stay queued (the
// oldest are cancelled as superseded). Rows another claim holds are skipped, never
// waited for, so claims and this never wait on each other in a cycle.
func (s *Store) settleJobGroups(ctx context.Context) error {
	held := `FROM workflow_jobs j WHERE j.state = 'queued' AND j.concurrency_group <> '' AND EXISTS (SELECT 1 FROM workflow_jobs g
		WHERE g.concurrency_group = j.concurrency_group AND g.state = 'running')`
	if ok, err := s.any(ctx, `SELECT 1 `+held); err != nil || !ok {
		return err
	}
	err := s.write(ctx, func(q querier) error {
		groups, err := collect(scanString)(q.Query(ctx, `SELECT DISTINCT j.concurrency_group `+held+`
			ORDER BY j.concurrency_group LIMIT $1`, maxGroupsPerRound))
		if err != nil {
			return err
		}
		return s.settleGroups(ctx, q, groups)
	})
	if err != nil {
		return fmt.Errorf("settle workflow job groups: %w", err)
	}
	return nil
}

// settleGroups is settleJobGroups for groups, in q's transaction.
func (s *Store) settleGroups(ctx context.Context, q querier, groups []string) error {
	for _, g := range groups {
		if err := s.lockName(ctx, q, jobGroupLock+g); err != nil {
			return err
		}
		type member struct {
			id, run int64
			queue   int
			cancel  bool
		}
		queued, err := collect(func(r row) (member, error) {
			var m member
			return m, r.Scan(&m.id, &m.run, &m.queue, &m.cancel)
		})(q.Query(ctx, `SELECT id, run_id, concurrency_queue, concurrency_cancel FROM workflow_jobs
			WHERE concurrency_group = $1 AND state = 'queued' ORDER BY id`+s.d.skipLocked, g))
		if err != nil || len(queued) == 0 {
			return err
		}
		newest := queued[len(queued)-1]
		if newest.cancel {
			running, err := collect(scanInt64)(q.Query(ctx, `SELECT id FROM workflow_jobs WHERE concurrency_group = $1
				AND state = 'running' AND NOT cancel_requested ORDER BY id`+s.d.skipLocked, g))
			if err != nil {
				return err
			}
			for _, id := range running {
				if _, err := q.Exec(ctx, `UPDATE workflow_jobs SET cancel_requested = TRUE WHERE id = $1`, id); err != nil {
					return err
				}
			}
		}
		for len(queued) > newest.queue {
			m := queued[0]
			queued = queued[1:]
			var x int64
			if err := q.QueryRow(ctx, `SELECT id FROM workflow_runs WHERE id = $1`+s.d.forUpdate, m.run).Scan(&x); err != nil {
				return err
			}
			n, err := q.Exec(ctx, `UPDATE workflow_jobs SET state = 'cancelled', error = $2, finished_at = `+s.d.now+`
				WHERE id = $1 AND state = 'queued'`, m.id, "superseded: a newer job run of its concurrency group is waiting")
			if err != nil {
				return err
			}
			if n == 0 {
				continue
			}
			if _, err := q.Exec(ctx, `UPDATE workflow_steps SET state = 'skipped', finished_at = `+s.d.now+`
				WHERE job_id = $1 AND state = 'pending'`, m.id); err != nil {
				return err
			}
			if err := s.advanceRun(ctx, q, m.run); err != nil {
				return err
			}
		}
	}
	return nil
}

// claimableInGroup re-checks, under the group's lock, that queued job run id of group
// may start: no other member runs (one claimed by a concurrent claim that committed,
// or earlier in this one).
func (s *Store) claimableInGroup(ctx context.Context, q querier, id int64, group string) (bool, error) {
	if err := s.lockName(ctx, q, jobGroupLock+group); err != nil {
		return false, err
	}
	busy, err := groupBusy(ctx, q, `SELECT 1 FROM workflow_jobs WHERE concurrency_group = $1 AND state = 'running' AND id <> $2`,
		group, id)
	return !busy && err == nil, err
}

// rejoinGroup puts run id, queued again by a rerun, back in its group's queue, if it
// has a group: it waits like a new run (its job runs still pending).
func (s *Store) rejoinGroup(ctx context.Context, q querier, id int64) error {
	var group string
	if err := q.QueryRow(ctx, `SELECT concurrency_group FROM workflow_runs WHERE id = $1`, id).Scan(&group); err != nil || group == "" {
		return err
	}
	if err := s.lockName(ctx, q, runGroupLock+group); err != nil {
		return err
	}
	if _, err := q.Exec(ctx, `UPDATE workflow_runs SET state = 'waiting' WHERE id = $1 AND state = 'queued'`, id); err != nil {
		return err
	}
	if _, err := q.Exec(ctx, `UPDATE workflow_jobs SET state = 'pending' WHERE run_id = $1 AND state = 'queued'`, id); err != nil {
		return err
	}
	return s.trimRunQueue(ctx, q, group)
}
