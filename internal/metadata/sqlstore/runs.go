package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/events"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

// This file holds workflow runs, job runs, steps and logs (migration 0023,
// docs/design/workflows.md "The store"): the trigger dispatcher, the claim of job runs
// under a lease, and the state machine, every transition an UPDATE … WHERE state =
// <expected> so that one that lost a race changes nothing.

// terminalStates are the job-run states that end it, as an SQL list.
const terminalStates = `('succeeded', 'failed', 'cancelled', 'skipped', 'timed_out')`

// DispatchWorkflows reads the next events of the feed after workflow_cursor (the rule
// of DispatchWebhooks: the cursor row locked, read below the xid horizon) and, for each
// enabled workflow of the event's namespace that plan accepts, inserts a run with its
// job runs and steps, in the transaction that moves the cursor. The unique (workflow,
// event) makes a second dispatch of one event a no-op.
func (s *Store) DispatchWorkflows(ctx context.Context, limit int, plan wfengine.Planner) (int, error) {
	read, err := s.consumeFeed(ctx, workflowCursor, limit, func(q querier, evs []events.Event) error {
		var err error
		byNS := map[string][]wfengine.Workflow{}
		for _, e := range evs {
			ns := wfengine.EventNamespace(e)
			if ns == "" {
				continue
			}
			wfs, ok := byNS[ns]
			if !ok {
				if wfs, err = collect(scanWorkflow)(q.Query(ctx, `SELECT `+workflowColumns+` FROM workflows w
					WHERE w.namespace = $1 AND w.enabled ORDER BY w.id`, ns)); err != nil {
					return err
				}
				byNS[ns] = wfs
			}
			for _, w := range wfs {
				if e.Time.Before(w.CreatedAt) {
					continue
				}
				pr, err := plan(w, e)
				if err != nil {
					return err
				}
				if pr != nil {
					if err := s.insertPlanned(ctx, q, w, pr); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("dispatch workflows: %w", err)
	}
	return read, nil
}

// CreateWorkflowRun inserts the run pr of the workflow id (a manual run) and returns
// its id. A run for the same EventID already there is wfengine.ErrInvalid.
func (s *Store) CreateWorkflowRun(ctx context.Context, workflowID int64, pr *wfengine.PlannedRun) (int64, error) {
	var id int64
	err := s.write(ctx, func(q querier) error {
		w, err := scanWorkflow(q.QueryRow(ctx, `SELECT `+workflowColumns+` FROM workflows w WHERE w.id = $1`, workflowID))
		if isNoRows(err) {
			return wfengine.ErrNotFound
		}
		if err != nil {
			return err
		}
		var ok bool
		if id, ok, err = s.insertRun(ctx, q, w, pr); err == nil && !ok {
			err = fmt.Errorf("%w: a run for event %s exists", wfengine.ErrInvalid, pr.EventID)
		}
		if err != nil {
			return err
		}
		return s.auditRun(ctx, q, id)
	})
	if err != nil {
		return 0, fmt.Errorf("create workflow run: %w", err)
	}
	return id, nil
}

// insertRun writes run pr of w in q's transaction; ok is false when w already has a
// run for pr's event.
func (s *Store) insertRun(ctx context.Context, q querier, w wfengine.Workflow, pr *wfengine.PlannedRun) (id int64, ok bool, err error) {
	// The workflow's row numbers its runs (and orders their insertion). A run skipped
	// below as already there leaves a gap: runs are numbered, not counted.
	var n int64
	if err := q.QueryRow(ctx, `UPDATE workflows SET last_run = last_run + 1 WHERE id = $1 RETURNING last_run`, w.ID).Scan(&n); err != nil {
		return 0, false, err
	}
	err = q.QueryRow(ctx, `INSERT INTO workflow_runs (workflow_id, workflow_digest, source, number, trigger, event_id, event, inputs,
		state, queued_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', `+s.d.now+`)
		ON CONFLICT (workflow_id, event_id) DO NOTHING RETURNING id`,
		w.ID, w.Digest, string(w.Source), n, pr.Trigger, pr.EventID, jsonObject(pr.Event), jsonObject(pr.Inputs)).Scan(&id)
	if isNoRows(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	byName := map[string][]int64{}
	ids := make([]int64, len(pr.Jobs))
	for i, j := range pr.Jobs {
		state := wfengine.StateQueued
		if len(j.Needs) > 0 {
			state = wfengine.StatePending
		}
		if err := q.QueryRow(ctx, `INSERT INTO workflow_jobs (run_id, job_name, matrix_key, display, matrix, state)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, id, j.Job, j.Key, j.Display, jsonObject(j.Matrix), state).Scan(&ids[i]); err != nil {
			return 0, false, err
		}
		byName[j.Job] = append(byName[j.Job], ids[i])
		for k, name := range j.Steps {
			if _, err := q.Exec(ctx, `INSERT INTO workflow_steps (job_id, idx, name, state) VALUES ($1, $2, $3, 'pending')`,
				ids[i], k, name); err != nil {
				return 0, false, err
			}
		}
	}
	for i, j := range pr.Jobs {
		for _, need := range j.Needs {
			if len(byName[need]) == 0 {
				return 0, false, fmt.Errorf("%w: job %s needs %s, which the run has not", wfengine.ErrInvalid, j.Job, need)
			}
			for _, nid := range byName[need] {
				if _, err := q.Exec(ctx, `INSERT INTO workflow_job_needs (job_id, need_id) VALUES ($1, $2)`, ids[i], nid); err != nil {
					return 0, false, err
				}
			}
		}
	}
	if err := s.joinGroups(ctx, q, id, pr, ids); err != nil {
		return 0, false, err
	}
	return id, true, nil
}

const runColumns = `r.id, r.workflow_id, w.namespace, w.name, r.workflow_digest, r.source, r.number, r.trigger, r.event_id,
	r.event, r.inputs, r.state, r.result, r.attempt, r.cancel_requested, r.queued_at, r.started_at, r.finished_at, w.applied_by`

func scanRun(r row) (wfengine.Run, error) {
	var run wfengine.Run
	var src, ev, in string
	var queued, started, finished int64
	if err := r.Scan(&run.ID, &run.WorkflowID, &run.Namespace, &run.Workflow, &run.Digest, &src, &run.Number, &run.Trigger,
		&run.EventID, &ev, &in, &run.State, &run.Result, &run.Attempt, &run.CancelRequested, &queued, &started, &finished, &run.AppliedBy); err != nil {
		return wfengine.Run{}, err
	}
	run.Source = []byte(src)
	if err := json.Unmarshal([]byte(ev), &run.Event); err != nil {
		return wfengine.Run{}, fmt.Errorf("run %d event: %w", run.ID, err)
	}
	if err := json.Unmarshal([]byte(in), &run.Inputs); err != nil {
		return wfengine.Run{}, fmt.Errorf("run %d inputs: %w", run.ID, err)
	}
	run.QueuedAt, run.StartedAt, run.FinishedAt = fromNanos(queued), optNanos(started), optNanos(finished)
	return run, nil
}

// optNanos reads a time stored as 0 for "not yet".
func optNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return fromNanos(n)
}

const jobColumns = `j.id, j.run_id, j.job_name, j.matrix_key, j.display, j.matrix, j.state, j.attempt, j.tries, j.owner, j.outputs,
	j.error, j.started_at, j.finished_at`

func scanJob(r row) (wfengine.Job, error) {
	var j wfengine.Job
	var matrix, outputs string
	var started, finished int64
	if err := r.Scan(&j.ID, &j.RunID, &j.Job, &j.Key, &j.Display, &matrix, &j.State, &j.Attempt, &j.Tries, &j.Owner, &outputs,
		&j.Error, &started, &finished); err != nil {
		return wfengine.Job{}, err
	}
	if err := json.Unmarshal([]byte(matrix), &j.Matrix); err != nil {
		return wfengine.Job{}, fmt.Errorf("job %d matrix: %w", j.ID, err)
	}
	if err := json.Unmarshal([]byte(outputs), &j.Outputs); err != nil {
		return wfengine.Job{}, fmt.Errorf("job %d outputs: %w", j.ID, err)
	}
	j.StartedAt, j.FinishedAt = optNanos(started), optNanos(finished)
	return j, nil
}

type stepRow struct {
	job  int64
	step wfengine.Step
}

func scanStep(r row) (stepRow, error) {
	var sr stepRow
	var started, finished int64
	st := &sr.step
	if err := r.Scan(&sr.job, &st.Index, &st.Name, &st.State, &st.ExitCode, &st.Starts, &st.LogBytes, &started, &finished); err != nil {
		return stepRow{}, err
	}
	st.StartedAt, st.FinishedAt = optNanos(started), optNanos(finished)
	return sr, nil
}

// jobsWith reads the job runs cond selects (args its arguments) with their steps and needs.
func jobsWith(ctx context.Context, q querier, cond string, args ...any) ([]wfengine.Job, error) {
	jobs, err := collect(scanJob)(q.Query(ctx, `SELECT `+jobColumns+` FROM workflow_jobs j WHERE `+cond+` ORDER BY j.id`, args...))
	if err != nil || len(jobs) == 0 {
		return jobs, err
	}
	at := map[int64]int{}
	for i, j := range jobs {
		at[j.ID] = i
	}
	steps, err := collect(scanStep)(q.Query(ctx, `SELECT s.job_id, s.idx, s.name, s.state, s.exit_code, s.starts, s.log_bytes,
		s.started_at, s.finished_at FROM workflow_steps s WHERE s.job_id IN (SELECT j.id FROM workflow_jobs j WHERE `+cond+`)
		ORDER BY s.job_id, s.idx`, args...))
	if err != nil {
		return nil, err
	}
	for _, sr := range steps {
		jobs[at[sr.job]].Steps = append(jobs[at[sr.job]].Steps, sr.step)
	}
	needs, err := collect(func(r row) ([2]int64, error) {
		var v [2]int64
		return v, r.Scan(&v[0], &v[1])
	})(q.Query(ctx, `SELECT n.job_id, n.need_id FROM workflow_job_needs n WHERE n.job_id IN (SELECT j.id FROM workflow_jobs j WHERE `+
		cond+`) ORDER BY n.job_id, n.need_id`, args...))
	if err != nil {
		return nil, err
	}
	for _, n := range needs {
		jobs[at[n[0]]].Needs = append(jobs[at[n[0]]].Needs, n[1])
	}
	return jobs, nil
}

// GetWorkflowRun returns run id with its job runs and their steps.
func (s *Store) GetWorkflowRun(ctx context.Context, id int64) (wfengine.Run, error) {
	var run wfengine.Run
	err := s.read(ctx, func(q querier) error {
		var err error
		if run, err = scanRun(q.QueryRow(ctx, `SELECT `+runColumns+` FROM workflow_runs r JOIN workflows w ON w.id = r.workflow_id
			WHERE r.id = $1`, id)); err != nil {
			return err
		}
		run.Jobs, err = jobsWith(ctx, q, "j.run_id = $1", id)
		return err
	})
	if isNoRows(err) {
		return wfengine.Run{}, fmt.Errorf("workflow run %d: %w", id, wfengine.ErrNotFound)
	}
	if err != nil {
		return wfengine.Run{}, fmt.Errorf("workflow run %d: %w", id, err)
	}
	return run, nil
}

// ListWorkflowRuns returns the newest runs of the workflow id, without their jobs.
func (s *Store) ListWorkflowRuns(ctx context.Context, workflowID int64, limit int) ([]wfengine.Run, error) {
	var out []wfengine.Run
	err := s.do(ctx, func(q querier) error {
		var err error
		out, err = collect(scanRun)(q.Query(ctx, `SELECT `+runColumns+` FROM workflow_runs r JOIN workflows w ON w.id = r.workflow_id
			WHERE r.workflow_id = $1 ORDER BY r.number DESC LIMIT $2`, workflowID, s.d.limit(limit)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list workflow runs: %w", err)
	}
	return out, nil
}

// ClaimWorkflowJobs takes up to n job runs for owner: queued ones, and running ones
// whose owner's lease ran out (Reattach: the executor may know their steps). On
// PostgreSQL the rows are picked FOR UPDATE SKIP LOCKED, so engines claiming at once
// take different ones; the lease, judged by the database clock, then keeps them.
//
// pin (at most one) is the claimer's executor: claimed job runs record it, and a
// running job run is re-claimed only by a claimer with the same pin (a Docker job's
// containers are known to its own Docker engine only).
func (s *Store) ClaimWorkflowJobs(ctx context.Context, owner string, n int, lease time.Duration, pin ...wfengine.Pin) ([]wfengine.Claim, error) {
	if n <= 0 || owner == "" {
		return nil, nil
	}
	if len(pin) > 1 {
		return nil, fmt.Errorf("claim workflow jobs: %w: more than one pin", wfengine.ErrInvalid)
	}
	var p wfengine.Pin
	if len(pin) == 1 {
		p = pin[0]
	}
	if err := s.promoteWaitingRuns(ctx); err != nil {
		return nil, fmt.Errorf("claim workflow jobs: %w", err)
	}
	if err := s.settleJobGroups(ctx); err != nil {
		return nil, fmt.Errorf("claim workflow jobs: %w", err)
	}
	// due selects the runnable job runs.
	due := func(arg func(any) string) string {
		return `((j.state = 'queued' AND ` + jobGroupFree + `) OR (j.state = 'running' AND j.lease_until < ` + s.d.now +
			` AND j.executor = ` + arg(p.Executor) + ` AND j.executor_ref = ` + arg(p.Ref) + `))`
	}
	return s.claimJobs(ctx, owner, n, lease, p, due)
}

// ReclaimWorkflowJobs takes back, at once, up to n job runs still running under
// owner itself with pin p, whatever their lease: an engine restarted under the owner
// name its previous process used (a hub's engine, named by its data directory, which
// one process at a time holds) re-attaches to its own jobs instead of waiting for
// their leases to run out. An engine must call it only before it starts any job run
// of its own (at start): it re-claims every job run it owns. Claims are Reattach.
func (s *Store) ReclaimWorkflowJobs(ctx context.Context, owner string, n int, lease time.Duration, p wfengine.Pin) ([]wfengine.Claim, error) {
	if n <= 0 || owner == "" {
		return nil, nil
	}
	due := func(arg func(any) string) string {
		return `(j.state = 'running' AND j.owner = ` + arg(owner) + ` AND j.executor = ` + arg(p.Executor) +
			` AND j.executor_ref = ` + arg(p.Ref) + `)`
	}
	return s.claimJobs(ctx, owner, n, lease, p, due)
}

// claimJobs claims up to n of the job runs due selects for owner, pinned to p. due
// writes its condition with arg, which binds a value to the next placeholder.
func (s *Store) claimJobs(ctx context.Context, owner string, n int, lease time.Duration, p wfengine.Pin,
	due func(arg func(any) string) string) ([]wfengine.Claim, error) {
	cond := func(args *[]any) string {
		return due(func(v any) string {
			*args = append(*args, v)
			return "$" + strconv.Itoa(len(*args))
		})
	}
	var probe []any
	if ok, err := s.any(ctx, `SELECT 1 FROM workflow_jobs j WHERE `+cond(&probe), probe...); err != nil || !ok {
		return nil, err
	}
	var out []wfengine.Claim
	err := s.write(ctx, func(q querier) error {
		out = nil
		type pick struct {
			id    int64
			state string
			group string
		}
		picks, err := collect(func(r row) (pick, error) {
			var p pick
			return p, r.Scan(&p.id, &p.state, &p.group)
		})(func() (rows, error) {
			args := []any{n}
			c := cond(&args)
			return q.Query(ctx, `SELECT j.id, j.state, j.concurrency_group FROM workflow_jobs j WHERE `+c+` ORDER BY j.id LIMIT $1`+s.d.skipLocked, args...)
		}())
		if err != nil || len(picks) == 0 {
			return err
		}
		ids := make([]string, 0, len(picks))
		reattach := map[int64]bool{}
		for _, pk := range picks {
			if pk.group != "" && pk.state == wfengine.StateQueued {
				if ok, err := s.claimableInGroup(ctx, q, pk.id, pk.group); err != nil {
					return err
				} else if !ok {
					continue
				}
			}
			if _, err := q.Exec(ctx, `UPDATE workflow_jobs SET state = 'running', owner = $1, lease_until = `+s.d.now+` + $2,
				executor = $5, executor_ref = $6,
				started_at = CASE WHEN started_at = 0 THEN `+s.d.now+` ELSE started_at END WHERE id = $3 AND state = $4`,
				owner, int64(lease), pk.id, pk.state, p.Executor, p.Ref); err != nil {
				return err
			}
			ids = append(ids, strconv.FormatInt(pk.id, 10))
			reattach[pk.id] = pk.state == wfengine.StateRunning
		}
		if len(ids) == 0 {
			return nil
		}
		in := "(" + strings.Join(ids, ", ") + ")" // integers from the database, not input
		if _, err := q.Exec(ctx, `UPDATE workflow_runs SET state = 'running', started_at = `+s.d.now+`
			WHERE state = 'queued' AND id IN (SELECT run_id FROM workflow_jobs WHERE id IN `+in+`)`); err != nil {
			return err
		}
		jobs, err := jobsWith(ctx, q, "j.id IN "+in)
		if err != nil {
			return err
		}
		runs := map[int64]wfengine.Run{}
		for _, j := range jobs {
			run, ok := runs[j.RunID]
			if !ok {
				if run, err = scanRun(q.QueryRow(ctx, `SELECT `+runColumns+` FROM workflow_runs r JOIN workflows w ON w.id = r.workflow_id
					WHERE r.id = $1`, j.RunID)); err != nil {
					return err
				}
				runs[j.RunID] = run
			}
			out = append(out, wfengine.Claim{Run: run, Job: j, Reattach: reattach[j.ID]})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim workflow jobs: %w", err)
	}
	return out, nil
}

// owned is the condition that job $1 is running under owner $2.
const owned = `EXISTS (SELECT 1 FROM workflow_jobs o WHERE o.id = $1 AND o.owner = $2 AND o.state = 'running')`

// lost maps a transition that matched no row to wfengine.ErrLost.
func lost(n int64, err error) error {
	if err == nil && n == 0 {
		return wfengine.ErrLost
	}
	return err
}

// RenewWorkflowJob extends owner's lease of job jobID and reports whether its run was
// asked to stop; wfengine.ErrLost when the job is no longer owner's.
func (s *Store) RenewWorkflowJob(ctx context.Context, jobID int64, owner string, lease time.Duration) (bool, error) {
	var cancel bool
	err := s.write(ctx, func(q querier) error {
		if err := lost(q.Exec(ctx, `UPDATE workflow_jobs SET lease_until = `+s.d.now+` + $3 WHERE id = $1 AND owner = $2
			AND state = 'running'`, jobID, owner, int64(lease))); err != nil {
			return err
		}
		return q.QueryRow(ctx, `SELECT r.cancel_requested OR j.cancel_requested FROM workflow_runs r JOIN workflow_jobs j ON j.run_id = r.id
			WHERE j.id = $1`, jobID).Scan(&cancel)
	})
	if err != nil {
		return false, fmt.Errorf("renew workflow job %d: %w", jobID, err)
	}
	return cancel, nil
}

// StartWorkflowStep marks step of job jobID running and counts the start, only while
// owner holds an unexpired lease on the job: an engine that lost its job never starts
// one of its steps.
func (s *Store) StartWorkflowStep(ctx context.Context, jobID int64, owner string, step int) error {
	err := s.write(ctx, func(q querier) error {
		return lost(q.Exec(ctx, `UPDATE workflow_steps SET state = 'running', starts = starts + 1, exit_code = 0,
			started_at = `+s.d.now+`, finished_at = 0 WHERE job_id = $1 AND idx = $3 AND state = 'pending'
			AND EXISTS (SELECT 1 FROM workflow_jobs o WHERE o.id = $1 AND o.owner = $2 AND o.state = 'running'
				AND o.lease_until > `+s.d.now+`)`, jobID, owner, step))
	})
	if err != nil {
		return fmt.Errorf("start step %d of workflow job %d: %w", step, jobID, err)
	}
	return nil
}

// FinishWorkflowStep records the end of a running step: succeeded, failed, cancelled,
// skipped, or timed_out (stopped at its own timeout or its job's).
func (s *Store) FinishWorkflowStep(ctx context.Context, jobID int64, owner string, step int, state string, exitCode int) error {
	if !wfengine.Terminal(state) {
		return fmt.Errorf("finish step %d of workflow job %d: %w: state %q", step, jobID, wfengine.ErrInvalid, state)
	}
	err := s.write(ctx, func(q querier) error {
		return lost(q.Exec(ctx, `UPDATE workflow_steps SET state = $4, exit_code = $5, finished_at = `+s.d.now+`
			WHERE job_id = $1 AND idx = $3 AND state = 'running' AND `+owned, jobID, owner, step, state, exitCode))
	})
	if err != nil {
		return fmt.Errorf("finish step %d of workflow job %d: %w", step, jobID, err)
	}
	return nil
}

// logTruncated is the last chunk of a log that reached wfengine.MaxJobLog.
const logTruncated = "\n[hubctl: log truncated: the job's log reached its limit]\n"

// AppendWorkflowLog appends data, read from step's output, to the log of job jobID in
// chunks of at most wfengine.MaxLogChunk. The step's stored offset grows by consumed (the
// bytes of the step's output data stands for, secrets masked) even when the job's log is
// full, so a re-attached engine resumes where this one stopped.
func (s *Store) AppendWorkflowLog(ctx context.Context, jobID int64, owner string, step int, data []byte, consumed int64) error {
	if len(data) == 0 && consumed == 0 {
		return nil
	}
	err := s.write(ctx, func(q querier) error {
		var size int64
		var attempt int
		err := q.QueryRow(ctx, `SELECT log_bytes, attempt FROM workflow_jobs WHERE id = $1 AND owner = $2 AND state = 'running'`+
			s.d.forUpdate, jobID, owner).Scan(&size, &attempt)
		if isNoRows(err) {
			return wfengine.ErrLost
		}
		if err != nil {
			return err
		}
		if _, err := q.Exec(ctx, `UPDATE workflow_steps SET log_bytes = log_bytes + $3 WHERE job_id = $1 AND idx = $2`,
			jobID, step, consumed); err != nil {
			return err
		}
		if size >= wfengine.MaxJobLog {
			return nil
		}
		keep, truncated := data, false
		if size+int64(len(keep)) >= wfengine.MaxJobLog {
			keep, truncated = keep[:wfengine.MaxJobLog-size], true
		}
		var parts [][]byte
		for len(keep) > 0 {
			n := min(len(keep), wfengine.MaxLogChunk)
			parts = append(parts, keep[:n])
			keep = keep[n:]
		}
		if truncated {
			parts = append(parts, []byte(logTruncated))
		}
		var seq int64
		if err := q.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM workflow_logs WHERE job_id = $1`, jobID).Scan(&seq); err != nil {
			return err
		}
		for _, p := range parts {
			seq++
			if _, err := q.Exec(ctx, `INSERT INTO workflow_logs (job_id, seq, step, attempt, chunk, at) VALUES ($1, $2, $3, $4, $5, `+
				s.d.now+`)`, jobID, seq, step, attempt, p); err != nil {
				return err
			}
		}
		added := int64(len(data))
		if truncated {
			added = wfengine.MaxJobLog - size // the log is full: nothing more is stored
		}
		_, err = q.Exec(ctx, `UPDATE workflow_jobs SET log_bytes = log_bytes + $2 WHERE id = $1`, jobID, added)
		return err
	})
	if err != nil {
		return fmt.Errorf("append log of workflow job %d: %w", jobID, err)
	}
	return nil
}

// ReadWorkflowLogs returns up to limit chunks of job jobID's log after seq after.
func (s *Store) ReadWorkflowLogs(ctx context.Context, jobID, after int64, limit int) ([]wfengine.LogChunk, error) {
	var out []wfengine.LogChunk
	err := s.do(ctx, func(q querier) error {
		var err error
		out, err = collect(func(r row) (wfengine.LogChunk, error) {
			var c wfengine.LogChunk
			var at int64
			err := r.Scan(&c.Seq, &c.Step, &c.Attempt, &c.Data, &at)
			c.At = fromNanos(at)
			return c, err
		})(q.Query(ctx, `SELECT seq, step, attempt, chunk, at FROM workflow_logs WHERE job_id = $1 AND seq > $2
			ORDER BY seq LIMIT $3`, jobID, after, s.d.limit(limit)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read log of workflow job %d: %w", jobID, err)
	}
	return out, nil
}

// FinishWorkflowJob ends owner's job run jobID as f says, or, when f.State is
// StateQueued, puts it back in the queue for its next attempt with its steps pending
// again. Then, in the same transaction, the run's pending job runs whose needs have all
// ended are queued (the engine decides there whether they run or are skipped) and a
// run whose job runs have all ended gets its result.
func (s *Store) FinishWorkflowJob(ctx context.Context, jobID int64, owner string, f wfengine.Finish) error {
	if f.State != wfengine.StateQueued && !wfengine.Terminal(f.State) {
		return fmt.Errorf("finish workflow job %d: %w: state %q", jobID, wfengine.ErrInvalid, f.State)
	}
	outputs := jsonObject(f.Outputs)
	if len(outputs) > 1<<20 {
		return fmt.Errorf("finish workflow job %d: %w: outputs exceed 1 MiB", jobID, wfengine.ErrInvalid)
	}
	err := s.write(ctx, func(q querier) error {
		// The run's row is locked first: job runs of one run finishing at once take
		// turns, so the last one sees every other's end and queues what needs them all
		// (at READ COMMITTED each would otherwise miss the other's).
		var runID int64
		err := q.QueryRow(ctx, `SELECT r.id FROM workflow_runs r WHERE r.id = (SELECT run_id FROM workflow_jobs WHERE id = $1)`+
			s.d.forUpdate, jobID).Scan(&runID)
		if isNoRows(err) {
			return wfengine.ErrLost
		}
		if err != nil {
			return err
		}
		if err := lost(q.Exec(ctx, `UPDATE workflow_jobs SET lease_until = lease_until WHERE id = $1 AND owner = $2
			AND state = 'running'`, jobID, owner)); err != nil {
			return err
		}
		if f.State == wfengine.StateQueued {
			if _, err := q.Exec(ctx, `UPDATE workflow_jobs SET state = 'queued', owner = '', lease_until = 0, attempt = attempt + 1,
				tries = tries + 1, error = $2 WHERE id = $1`, jobID, f.Error); err != nil {
				return err
			}
			// The next attempt's steps start with new logs: their offsets restart at 0.
			_, err := q.Exec(ctx, `UPDATE workflow_steps SET state = 'pending', exit_code = 0, log_bytes = 0, started_at = 0,
				finished_at = 0 WHERE job_id = $1`, jobID)
			return err
		}
		if _, err := q.Exec(ctx, `UPDATE workflow_jobs SET state = $2, outputs = $3, error = $4, lease_until = 0,
			finished_at = `+s.d.now+` WHERE id = $1`, jobID, f.State, outputs, f.Error); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, `UPDATE workflow_steps SET state = CASE WHEN state = 'running' THEN 'cancelled' ELSE 'skipped' END,
			finished_at = `+s.d.now+` WHERE job_id = $1 AND state IN ('pending', 'running')`, jobID); err != nil {
			return err
		}
		return s.advanceRun(ctx, q, runID)
	})
	if err != nil {
		return fmt.Errorf("finish workflow job %d: %w", jobID, err)
	}
	return nil
}

// advanceRun queues the pending job runs of run whose needs have all ended and, when
// every job run has ended, finishes the run: failed if one failed or timed out,
// cancelled if it was cancelled, else succeeded.
func (s *Store) advanceRun(ctx context.Context, q querier, runID int64) error {
	if _, err := q.Exec(ctx, `UPDATE workflow_jobs SET state = 'queued' WHERE run_id = $1 AND state = 'pending'
		AND NOT EXISTS (SELECT 1 FROM workflow_runs w WHERE w.id = $1 AND w.state = 'waiting')
		AND NOT EXISTS (SELECT 1 FROM workflow_job_needs n JOIN workflow_jobs d ON d.id = n.need_id
			WHERE n.job_id = workflow_jobs.id AND d.state NOT IN `+terminalStates+`)`, runID); err != nil {
		return err
	}
	states, err := collect(scanString)(q.Query(ctx, `SELECT state FROM workflow_jobs WHERE run_id = $1`, runID))
	if err != nil {
		return err
	}
	failed, cancelled := false, false
	for _, st := range states {
		switch st {
		case wfengine.StateFailed, wfengine.StateTimedOut:
			failed = true
		case wfengine.StateCancelled:
			cancelled = true
		case wfengine.StateSucceeded, wfengine.StateSkipped:
		default:
			return nil // still going
		}
	}
	var cancel bool
	if err := q.QueryRow(ctx, `SELECT cancel_requested FROM workflow_runs WHERE id = $1`, runID).Scan(&cancel); err != nil {
		return err
	}
	state, result := wfengine.StateSucceeded, "success"
	switch {
	case failed:
		state, result = wfengine.StateFailed, "failure"
	case cancelled || cancel:
		state, result = wfengine.StateCancelled, "cancelled"
	}
	n, err := q.Exec(ctx, `UPDATE workflow_runs SET state = $2, result = $3, finished_at = `+s.d.now+`,
		started_at = CASE WHEN started_at = 0 THEN `+s.d.now+` ELSE started_at END
		WHERE id = $1 AND state IN ('queued', 'waiting', 'running')`, runID, state, result)
	if err != nil || n == 0 {
		return err
	}
	return s.runFinished(ctx, q, runID)
}

// CancelWorkflowRun asks run id to stop: its job runs not yet running are cancelled at
// once; running ones learn it when their engine renews its lease. Cancelling a run
// that has ended changes nothing.
func (s *Store) CancelWorkflowRun(ctx context.Context, id int64) error {
	err := s.write(ctx, func(q querier) error {
		if err := s.cancelRun(ctx, q, id); err != nil {
			return err
		}
		return s.auditRun(ctx, q, id)
	})
	if err != nil {
		return fmt.Errorf("cancel workflow run %d: %w", id, err)
	}
	return nil
}

// cancelRun is CancelWorkflowRun in q's transaction, without its audit entry.
func (s *Store) cancelRun(ctx context.Context, q querier, id int64) error {
	n, err := q.Exec(ctx, `UPDATE workflow_runs SET cancel_requested = TRUE WHERE id = $1
		AND state IN ('queued', 'waiting', 'running')`, id)
	if err != nil {
		return err
	}
	if n == 0 {
		var x int64
		return notFoundAs(q.QueryRow(ctx, `SELECT id FROM workflow_runs WHERE id = $1`, id).Scan(&x), wfengine.ErrNotFound)
	}
	if _, err := q.Exec(ctx, `UPDATE workflow_jobs SET state = 'cancelled', finished_at = `+s.d.now+`
		WHERE run_id = $1 AND state IN ('pending', 'queued', 'waiting_approval')`, id); err != nil {
		return err
	}
	if _, err := q.Exec(ctx, `UPDATE workflow_steps SET state = 'skipped' WHERE state = 'pending'
		AND job_id IN (SELECT id FROM workflow_jobs WHERE run_id = $1 AND state = 'cancelled')`, id); err != nil {
		return err
	}
	return s.advanceRun(ctx, q, id)
}

// RerunWorkflowRun starts a finished run again: every job run, or with failedOnly
// those that did not succeed (failed, timed out, cancelled, skipped), go back to
// pending with their steps, and the run's attempt grows. Job runs that succeeded keep
// their outputs for the jobs that need them. A run still going is engine.ErrInvalid.
func (s *Store) RerunWorkflowRun(ctx context.Context, id int64, failedOnly bool) error {
	err := s.write(ctx, func(q querier) error {
		var state string
		err := q.QueryRow(ctx, `SELECT state FROM workflow_runs WHERE id = $1`+s.d.forUpdate, id).Scan(&state)
		if isNoRows(err) {
			return wfengine.ErrNotFound
		}
		if err != nil {
			return err
		}
		if !wfengine.Terminal(state) {
			return fmt.Errorf("%w: run %d is %s: only a finished run is run again", wfengine.ErrInvalid, id, state)
		}
		which := `run_id = $1`
		if failedOnly {
			which += ` AND state <> 'succeeded'`
		}
		if _, err := q.Exec(ctx, `UPDATE workflow_steps SET state = 'pending', exit_code = 0, log_bytes = 0, started_at = 0,
			finished_at = 0 WHERE job_id IN (SELECT id FROM workflow_jobs WHERE `+which+`)`, id); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, `UPDATE workflow_jobs SET state = 'pending', attempt = attempt + 1, tries = 1, owner = '',
			lease_until = 0, outputs = '{}', error = '', started_at = 0, finished_at = 0 WHERE `+which, id); err != nil {
			return err
		}
		if err := resetApprovals(ctx, q, which, id); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, `UPDATE workflow_runs SET state = 'queued', result = '', attempt = attempt + 1,
			cancel_requested = FALSE, finished_at = 0 WHERE id = $1`, id); err != nil {
			return err
		}
		if err := s.rejoinGroup(ctx, q, id); err != nil {
			return err
		}
		if err := s.auditRun(ctx, q, id); err != nil {
			return err
		}
		return s.advanceRun(ctx, q, id)
	})
	if err != nil {
		return fmt.Errorf("rerun workflow run %d: %w", id, err)
	}
	return nil
}

// PurgeWorkflowRuns deletes the runs that finished before before, with their job
// runs, steps and logs (ON DELETE CASCADE), batch runs per transaction (1000 when
// batch <= 0), and returns how many went: workflows.retention.
func (s *Store) PurgeWorkflowRuns(ctx context.Context, before time.Time, batch int) (int, error) {
	return s.purgeInBatches(ctx, "workflow runs", `DELETE FROM workflow_runs WHERE id IN
		(SELECT id FROM workflow_runs WHERE finished_at > 0 AND finished_at < $1 ORDER BY finished_at LIMIT $2)`, before, batch)
}

// notFoundAs maps "no rows" to sentinel and passes other errors through.
func notFoundAs(err, sentinel error) error {
	if isNoRows(err) {
		return sentinel
	}
	return err
}
