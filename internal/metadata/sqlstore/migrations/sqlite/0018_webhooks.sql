-- Webhooks (issue 18, docs/webhooks.md). secret and headers are envelopes of
-- internal/secrets sealed for this row ("webhooks/ID/secret", "webhooks/ID/headers");
-- event_types, repositories, tags and header_names are JSON arrays, read whole.
CREATE TABLE webhooks (
	id              TEXT PRIMARY KEY,
	scope           TEXT NOT NULL CHECK (scope IN ('site', 'namespace', 'repository')),
	target          TEXT NOT NULL DEFAULT '',
	namespace       TEXT NOT NULL DEFAULT '',
	url             TEXT NOT NULL,
	event_types     TEXT NOT NULL DEFAULT '[]',
	repositories    TEXT NOT NULL DEFAULT '[]',
	tags            TEXT NOT NULL DEFAULT '[]',
	format          TEXT NOT NULL,
	secret          TEXT NOT NULL,
	headers         TEXT NOT NULL DEFAULT '',
	header_names    TEXT NOT NULL DEFAULT '[]',
	enabled         INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
	disabled_reason TEXT NOT NULL DEFAULT '',
	failures        INTEGER NOT NULL DEFAULT 0,
	created_by      INTEGER NOT NULL,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL
);

CREATE INDEX webhooks_namespace ON webhooks (namespace);
