-- Workflow triggers (issue 19, docs/design/workflows.md "Dispatch"): one row per cron
-- entry of a workflow's on.schedule, rewritten by every apply (next_at recomputed) and
-- gone with the workflow. next_at is the unix nanoseconds of the next tick; the
-- dispatcher claims due rows, starts their run and moves next_at in one transaction.
CREATE TABLE workflow_schedules (
	workflow_id INTEGER NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
	entry       INTEGER NOT NULL,
	spec        TEXT NOT NULL,
	timezone    TEXT NOT NULL DEFAULT '',
	next_at     INTEGER NOT NULL,
	PRIMARY KEY (workflow_id, entry)
);
CREATE INDEX workflow_schedules_next_at ON workflow_schedules (next_at);

-- The signing secret of a workflow's on.webhook when the YAML names no hub secret:
-- made at the first apply, sealed with secrets.RowAD('workflow_hooks', id, 'secret')
-- and listed in sealedColumns, so `hubctl admin secrets rotate` reseals it. id is text
-- (random hex) as the resealer pages by it.
CREATE TABLE workflow_hooks (
	id          TEXT PRIMARY KEY,
	workflow_id INTEGER NOT NULL UNIQUE REFERENCES workflows (id) ON DELETE CASCADE,
	secret      TEXT NOT NULL,
	created_at  INTEGER NOT NULL
);
