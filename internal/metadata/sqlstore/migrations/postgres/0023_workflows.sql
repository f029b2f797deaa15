-- Workflows (issue 19, docs/design/workflows.md "The store"). A workflow is stored as
-- the YAML applied (source) and its sha256 (digest); it is parsed again when used. A
-- run keeps the source it started with, so re-applying a workflow never changes a run
-- in flight. last_run numbers the runs (never reused, even after old runs are
-- purged). All times are unix nanoseconds; leases are judged by the database clock.
CREATE TABLE workflows (
	id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	namespace  TEXT COLLATE "C" NOT NULL,
	name       TEXT COLLATE "C" NOT NULL,
	source     TEXT NOT NULL,
	digest     TEXT COLLATE "C" NOT NULL,
	applied_by BIGINT NOT NULL,
	last_run   BIGINT NOT NULL DEFAULT 0,
	enabled    BOOLEAN NOT NULL DEFAULT TRUE,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	UNIQUE (namespace, name)
);

-- The trigger dispatcher's place in the event feed, as webhook_cursor.
CREATE TABLE workflow_cursor (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	xid BIGINT NOT NULL,
	seq BIGINT NOT NULL
);

-- event_id is unique per workflow: an event starts a workflow at most once, whichever
-- replica dispatches it (manual runs get an id of their own).
CREATE TABLE workflow_runs (
	id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	workflow_id       BIGINT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
	workflow_digest   TEXT COLLATE "C" NOT NULL,
	source            TEXT NOT NULL,
	number            BIGINT NOT NULL,
	trigger           TEXT COLLATE "C" NOT NULL,
	event_id          TEXT COLLATE "C" NOT NULL,
	event             TEXT NOT NULL DEFAULT '{}',
	inputs            TEXT NOT NULL DEFAULT '{}',
	state             TEXT COLLATE "C" NOT NULL CHECK (state IN ('queued', 'waiting', 'running', 'succeeded', 'failed', 'cancelled')),
	result            TEXT NOT NULL DEFAULT '',
	concurrency_group TEXT NOT NULL DEFAULT '',
	attempt           INTEGER NOT NULL DEFAULT 1,
	cancel_requested  BOOLEAN NOT NULL DEFAULT FALSE,
	queued_at         BIGINT NOT NULL,
	started_at        BIGINT NOT NULL DEFAULT 0,
	finished_at       BIGINT NOT NULL DEFAULT 0,
	UNIQUE (workflow_id, event_id),
	UNIQUE (workflow_id, number)
);

CREATE INDEX workflow_runs_state ON workflow_runs (state);

-- One row per JobRun of the expansion (a matrix job has one per combination), made
-- with the run. attempt counts every try of the job run (its log chunks carry it);
-- tries counts those since the run was last started or rerun, against retries:.
CREATE TABLE workflow_jobs (
	id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	run_id       BIGINT NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
	job_name     TEXT COLLATE "C" NOT NULL,
	matrix_key   TEXT COLLATE "C" NOT NULL DEFAULT '',
	display      TEXT NOT NULL,
	matrix       TEXT NOT NULL DEFAULT '{}',
	state        TEXT COLLATE "C" NOT NULL CHECK (state IN ('pending', 'waiting_approval', 'queued', 'running', 'succeeded', 'failed',
		'cancelled', 'skipped', 'timed_out')),
	attempt      INTEGER NOT NULL DEFAULT 1,
	tries        INTEGER NOT NULL DEFAULT 1,
	owner        TEXT COLLATE "C" NOT NULL DEFAULT '',
	lease_until  BIGINT NOT NULL DEFAULT 0,
	executor     TEXT COLLATE "C" NOT NULL DEFAULT '',
	executor_ref TEXT NOT NULL DEFAULT '',
	outputs      TEXT NOT NULL DEFAULT '{}',
	error        TEXT NOT NULL DEFAULT '',
	log_bytes    BIGINT NOT NULL DEFAULT 0,
	started_at   BIGINT NOT NULL DEFAULT 0,
	finished_at  BIGINT NOT NULL DEFAULT 0,
	UNIQUE (run_id, job_name, matrix_key)
);

CREATE INDEX workflow_jobs_claim ON workflow_jobs (state, lease_until);

CREATE TABLE workflow_job_needs (
	job_id  BIGINT NOT NULL REFERENCES workflow_jobs (id) ON DELETE CASCADE,
	need_id BIGINT NOT NULL REFERENCES workflow_jobs (id) ON DELETE CASCADE,
	PRIMARY KEY (job_id, need_id)
);

-- starts counts how often the step was started: the proof that none ran twice.
CREATE TABLE workflow_steps (
	job_id      BIGINT NOT NULL REFERENCES workflow_jobs (id) ON DELETE CASCADE,
	idx         INTEGER NOT NULL,
	name        TEXT COLLATE "C" NOT NULL,
	state       TEXT COLLATE "C" NOT NULL CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'cancelled', 'skipped')),
	exit_code   INTEGER NOT NULL DEFAULT 0,
	starts      INTEGER NOT NULL DEFAULT 0,
	log_bytes   BIGINT NOT NULL DEFAULT 0,
	started_at  BIGINT NOT NULL DEFAULT 0,
	finished_at BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (job_id, idx)
);

-- Log chunks of a job's steps, appended by the replica owning the job, in seq order.
CREATE TABLE workflow_logs (
	job_id  BIGINT NOT NULL REFERENCES workflow_jobs (id) ON DELETE CASCADE,
	seq     BIGINT NOT NULL,
	step    INTEGER NOT NULL,
	attempt INTEGER NOT NULL,
	chunk   BYTEA NOT NULL,
	at      BIGINT NOT NULL,
	PRIMARY KEY (job_id, seq)
);
