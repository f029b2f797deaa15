-- Workflows (issue 19, docs/design/workflows.md "The store"). A workflow is stored as
-- the YAML applied (source) and its sha256 (digest); it is parsed again when used. A
-- run keeps the source it started with, so re-applying a workflow never changes a run
-- in flight. last_run numbers the runs (never reused, even after old runs are
-- purged). All times are unix nanoseconds; leases are judged by the database clock.
CREATE TABLE workflows (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	namespace  TEXT NOT NULL,
	name       TEXT NOT NULL,
	source     TEXT NOT NULL,
	digest     TEXT NOT NULL,
	applied_by INTEGER NOT NULL,
	last_run   INTEGER NOT NULL DEFAULT 0,
	enabled    INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	UNIQUE (namespace, name)
);

-- The trigger dispatcher's place in the event feed, as webhook_cursor.
CREATE TABLE workflow_cursor (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	xid INTEGER NOT NULL,
	seq INTEGER NOT NULL
);

-- event_id is unique per workflow: an event starts a workflow at most once, whichever
-- replica dispatches it (manual runs get an id of their own).
CREATE TABLE workflow_runs (
	id                INTEGER PRIMARY KEY AUTOINCREMENT,
	workflow_id       INTEGER NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
	workflow_digest   TEXT NOT NULL,
	source            TEXT NOT NULL,
	number            INTEGER NOT NULL,
	trigger           TEXT NOT NULL,
	event_id          TEXT NOT NULL,
	event             TEXT NOT NULL DEFAULT '{}',
	inputs            TEXT NOT NULL DEFAULT '{}',
	state             TEXT NOT NULL CHECK (state IN ('queued', 'waiting', 'running', 'succeeded', 'failed', 'cancelled')),
	result            TEXT NOT NULL DEFAULT '',
	concurrency_group TEXT NOT NULL DEFAULT '',
	attempt           INTEGER NOT NULL DEFAULT 1,
	cancel_requested  INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
	queued_at         INTEGER NOT NULL,
	started_at        INTEGER NOT NULL DEFAULT 0,
	finished_at       INTEGER NOT NULL DEFAULT 0,
	UNIQUE (workflow_id, event_id),
	UNIQUE (workflow_id, number)
);

CREATE INDEX workflow_runs_state ON workflow_runs (state);

-- One row per JobRun of the expansion (a matrix job has one per combination), made
-- with the run. attempt counts every try of the job run (its log chunks carry it);
-- tries counts those since the run was last started or rerun, against retries:.
CREATE TABLE workflow_jobs (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	run_id       INTEGER NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
	job_name     TEXT NOT NULL,
	matrix_key   TEXT NOT NULL DEFAULT '',
	display      TEXT NOT NULL,
	matrix       TEXT NOT NULL DEFAULT '{}',
	state        TEXT NOT NULL CHECK (state IN ('pending', 'waiting_approval', 'queued', 'running', 'succeeded', 'failed',
		'cancelled', 'skipped', 'timed_out')),
	attempt      INTEGER NOT NULL DEFAULT 1,
	tries        INTEGER NOT NULL DEFAULT 1,
	owner        TEXT NOT NULL DEFAULT '',
	lease_until  INTEGER NOT NULL DEFAULT 0,
	executor     TEXT NOT NULL DEFAULT '',
	executor_ref TEXT NOT NULL DEFAULT '',
	outputs      TEXT NOT NULL DEFAULT '{}',
	error        TEXT NOT NULL DEFAULT '',
	log_bytes    INTEGER NOT NULL DEFAULT 0,
	started_at   INTEGER NOT NULL DEFAULT 0,
	finished_at  INTEGER NOT NULL DEFAULT 0,
	UNIQUE (run_id, job_name, matrix_key)
);

CREATE INDEX workflow_jobs_claim ON workflow_jobs (state, lease_until);

CREATE TABLE workflow_job_needs (
	job_id  INTEGER NOT NULL REFERENCES workflow_jobs (id) ON DELETE CASCADE,
	need_id INTEGER NOT NULL REFERENCES workflow_jobs (id) ON DELETE CASCADE,
	PRIMARY KEY (job_id, need_id)
);

-- starts counts how often the step was started: the proof that none ran twice.
CREATE TABLE workflow_steps (
	job_id      INTEGER NOT NULL REFERENCES workflow_jobs (id) ON DELETE CASCADE,
	idx         INTEGER NOT NULL,
	name        TEXT NOT NULL,
	state       TEXT NOT NULL CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'cancelled', 'skipped')),
	exit_code   INTEGER NOT NULL DEFAULT 0,
	starts      INTEGER NOT NULL DEFAULT 0,
	log_bytes   INTEGER NOT NULL DEFAULT 0,
	started_at  INTEGER NOT NULL DEFAULT 0,
	finished_at INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (job_id, idx)
);

-- Log chunks of a job's steps, appended by the replica owning the job, in seq order.
CREATE TABLE workflow_logs (
	job_id  INTEGER NOT NULL REFERENCES workflow_jobs (id) ON DELETE CASCADE,
	seq     INTEGER NOT NULL,
	step    INTEGER NOT NULL,
	attempt INTEGER NOT NULL,
	chunk   BLOB NOT NULL,
	at      INTEGER NOT NULL,
	PRIMARY KEY (job_id, seq)
);
