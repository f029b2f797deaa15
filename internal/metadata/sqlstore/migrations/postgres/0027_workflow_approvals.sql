-- Approvals and concurrency groups of workflow runs (issue 19, docs/design/workflows.md
-- "Approvals", "Concurrency").
--
-- triggered_by is the account that started a run (the manual runner, the pusher): it
-- may not approve its own run's jobs when others are named. 0: none known.
ALTER TABLE workflow_runs ADD COLUMN triggered_by BIGINT NOT NULL DEFAULT 0;
-- A run's concurrency group (namespace/group, evaluated at dispatch) is in
-- concurrency_group (0023); queue and cancel-in-progress come with it.
ALTER TABLE workflow_runs ADD COLUMN concurrency_queue INTEGER NOT NULL DEFAULT 1;
ALTER TABLE workflow_runs ADD COLUMN concurrency_cancel BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX workflow_runs_group ON workflow_runs (concurrency_group, state);

-- A job run's own group: it stays queued, and is not claimed, while another job run
-- of its group runs. cancel_requested stops one job run (cancel-in-progress of a
-- newer one), as the run's flag stops them all.
ALTER TABLE workflow_jobs ADD COLUMN concurrency_group TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE workflow_jobs ADD COLUMN concurrency_queue INTEGER NOT NULL DEFAULT 1;
ALTER TABLE workflow_jobs ADD COLUMN concurrency_cancel BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE workflow_jobs ADD COLUMN cancel_requested BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX workflow_jobs_group ON workflow_jobs (concurrency_group, state);

-- approval is '' until the job run's approvals are complete ('approved'); while it
-- waits (state waiting_approval) approvals_required of its environment's approvers
-- must approve before approval_deadline (unix nanoseconds of the engine's clock).
ALTER TABLE workflow_jobs ADD COLUMN approval TEXT COLLATE "C" NOT NULL DEFAULT '' CHECK (approval IN ('', 'approved'));
ALTER TABLE workflow_jobs ADD COLUMN approvals_required INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workflow_jobs ADD COLUMN approval_deadline BIGINT NOT NULL DEFAULT 0;
CREATE INDEX workflow_jobs_approval ON workflow_jobs (state, approval_deadline);

-- One decision per account and job run: a second approval by the same account is not
-- counted again. account_name is for display only; account_id carries the decision.
CREATE TABLE workflow_approvals (
	job_id       BIGINT NOT NULL REFERENCES workflow_jobs (id) ON DELETE CASCADE,
	account_id   BIGINT NOT NULL,
	account_name TEXT NOT NULL,
	decision     TEXT COLLATE "C" NOT NULL CHECK (decision IN ('approve', 'reject')),
	comment      TEXT NOT NULL DEFAULT '',
	at           BIGINT NOT NULL,
	PRIMARY KEY (job_id, account_id)
);
