-- Webhooks (issue 18, docs/webhooks.md). secret and headers are envelopes of
-- internal/secrets sealed for this row ("webhooks/ID/secret", "webhooks/ID/headers");
-- event_types, repositories, tags and header_names are JSON arrays, read whole.
CREATE TABLE webhooks (
	id              TEXT COLLATE "C" PRIMARY KEY,
	scope           TEXT COLLATE "C" NOT NULL CHECK (scope IN ('site', 'namespace', 'repository')),
	target          TEXT COLLATE "C" NOT NULL DEFAULT '',
	namespace       TEXT COLLATE "C" NOT NULL DEFAULT '',
	url             TEXT NOT NULL,
	event_types     TEXT NOT NULL DEFAULT '[]',
	repositories    TEXT NOT NULL DEFAULT '[]',
	tags            TEXT NOT NULL DEFAULT '[]',
	format          TEXT COLLATE "C" NOT NULL,
	secret          TEXT NOT NULL,
	headers         TEXT NOT NULL DEFAULT '',
	header_names    TEXT NOT NULL DEFAULT '[]',
	enabled         BOOLEAN NOT NULL DEFAULT TRUE,
	disabled_reason TEXT NOT NULL DEFAULT '',
	failures        INTEGER NOT NULL DEFAULT 0,
	created_by      BIGINT NOT NULL,
	created_at      BIGINT NOT NULL,
	updated_at      BIGINT NOT NULL
);

CREATE INDEX webhooks_namespace ON webhooks (namespace);
