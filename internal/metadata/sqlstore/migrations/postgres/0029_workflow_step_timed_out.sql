-- A step stopped at its timeout (or its job's) is stored as timed_out, not failed
-- (issue 19): workflow_steps' state CHECK (named by PostgreSQL's default,
-- workflow_steps_state_check) gains it.
ALTER TABLE workflow_steps DROP CONSTRAINT workflow_steps_state_check;
ALTER TABLE workflow_steps ADD CONSTRAINT workflow_steps_state_check CHECK (state IN ('pending', 'running', 'succeeded',
	'failed', 'cancelled', 'skipped', 'timed_out'));
