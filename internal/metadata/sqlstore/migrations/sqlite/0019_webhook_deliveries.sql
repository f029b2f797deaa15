-- Webhook delivery (issue 18, docs/webhooks.md). The dispatcher reads the event feed
-- after webhook_cursor and, in the same transaction as it moves the cursor, writes one
-- webhook_deliveries row per matching hook and event, so fan-out happens once. Workers
-- claim due rows; each try is a webhook_attempts row. payload is the event as it was
-- fanned out: deliveries outlive the events' retention.
CREATE TABLE webhook_cursor (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	xid INTEGER NOT NULL,
	seq INTEGER NOT NULL
);

CREATE TABLE webhook_deliveries (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	hook_id       TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
	event_id      TEXT NOT NULL,
	event_type    TEXT NOT NULL,
	repository    TEXT NOT NULL DEFAULT '',
	payload       TEXT NOT NULL,
	state         TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed', 'skipped')),
	attempts      INTEGER NOT NULL DEFAULT 0,
	next_at       INTEGER NOT NULL,
	claimed_until INTEGER NOT NULL DEFAULT 0,
	last_status   INTEGER NOT NULL DEFAULT 0,
	last_error    TEXT NOT NULL DEFAULT '',
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (hook_id, id);
-- The purge of finished deliveries (events.retention) reads only what it deletes.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (updated_at) WHERE state <> 'pending';

CREATE TABLE webhook_attempts (
	id               INTEGER PRIMARY KEY AUTOINCREMENT,
	delivery_id      INTEGER NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
	started_at       INTEGER NOT NULL,
	duration_ms      INTEGER NOT NULL,
	status           INTEGER NOT NULL DEFAULT 0,
	error            TEXT NOT NULL DEFAULT '',
	request_headers  TEXT NOT NULL DEFAULT '{}',
	response_headers TEXT NOT NULL DEFAULT '{}',
	response_body    TEXT NOT NULL DEFAULT ''
);

CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);
