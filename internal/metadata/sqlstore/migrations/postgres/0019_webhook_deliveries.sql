-- Webhook delivery (issue 18, docs/webhooks.md). The dispatcher reads the event feed
-- after webhook_cursor (with the feed's xid horizon) and, in the same transaction as it
-- moves the cursor, writes one webhook_deliveries row per matching hook and event, so
-- fan-out happens once. Workers claim due rows (FOR UPDATE SKIP LOCKED); each try is a
-- webhook_attempts row. payload is the event as it was fanned out: deliveries outlive
-- the events' retention.
CREATE TABLE webhook_cursor (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	xid BIGINT NOT NULL,
	seq BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
	id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	hook_id       TEXT COLLATE "C" NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
	event_id      TEXT COLLATE "C" NOT NULL,
	event_type    TEXT COLLATE "C" NOT NULL,
	repository    TEXT COLLATE "C" NOT NULL DEFAULT '',
	payload       TEXT NOT NULL,
	state         TEXT COLLATE "C" NOT NULL CHECK (state IN ('pending', 'delivered', 'failed', 'skipped')),
	attempts      INTEGER NOT NULL DEFAULT 0,
	next_at       BIGINT NOT NULL,
	claimed_until BIGINT NOT NULL DEFAULT 0,
	last_status   INTEGER NOT NULL DEFAULT 0,
	last_error    TEXT NOT NULL DEFAULT '',
	created_at    BIGINT NOT NULL,
	updated_at    BIGINT NOT NULL
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (hook_id, id);
-- The purge of finished deliveries (events.retention) reads only what it deletes.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (updated_at) WHERE state <> 'pending';

CREATE TABLE webhook_attempts (
	id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	delivery_id      BIGINT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
	started_at       BIGINT NOT NULL,
	duration_ms      BIGINT NOT NULL,
	status           INTEGER NOT NULL DEFAULT 0,
	error            TEXT NOT NULL DEFAULT '',
	request_headers  TEXT NOT NULL DEFAULT '{}',
	response_headers TEXT NOT NULL DEFAULT '{}',
	response_body    TEXT NOT NULL DEFAULT ''
);

CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);
