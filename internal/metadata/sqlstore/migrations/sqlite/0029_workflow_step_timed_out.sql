-- A step stopped at its timeout (or its job's) is stored as timed_out, not failed
-- (issue 19): workflow_steps' state CHECK gains it. SQLite cannot change a CHECK in
-- place, so the table is rebuilt, rows kept (nothing references workflow_steps).
CREATE TABLE workflow_steps_new (
	job_id      INTEGER NOT NULL REFERENCES workflow_jobs (id) ON DELETE CASCADE,
	idx         INTEGER NOT NULL,
	name        TEXT NOT NULL,
	state       TEXT NOT NULL CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'cancelled', 'skipped',
		'timed_out')),
	exit_code   INTEGER NOT NULL DEFAULT 0,
	starts      INTEGER NOT NULL DEFAULT 0,
	log_bytes   INTEGER NOT NULL DEFAULT 0,
	started_at  INTEGER NOT NULL DEFAULT 0,
	finished_at INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (job_id, idx)
);
INSERT INTO workflow_steps_new (job_id, idx, name, state, exit_code, starts, log_bytes, started_at, finished_at)
	SELECT job_id, idx, name, state, exit_code, starts, log_bytes, started_at, finished_at FROM workflow_steps;
DROP TABLE workflow_steps;
ALTER TABLE workflow_steps_new RENAME TO workflow_steps;
