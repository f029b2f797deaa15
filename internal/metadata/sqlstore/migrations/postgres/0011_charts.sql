-- Helm charts pushed to the registry (issue 15): the PostgreSQL twin of SQLite's
-- 0011_charts.sql (see there). JSON columns are JSONB.
CREATE TABLE chart_versions (
	repo_id      BIGINT NOT NULL,
	digest       TEXT COLLATE "C" NOT NULL,
	namespace    TEXT COLLATE "C" NOT NULL,
	name         TEXT COLLATE "C" NOT NULL,
	version      TEXT COLLATE "C" NOT NULL,
	tag          TEXT COLLATE "C" NOT NULL,
	app_version  TEXT NOT NULL DEFAULT '',
	description  TEXT NOT NULL DEFAULT '',
	icon         TEXT NOT NULL DEFAULT '',
	keywords     JSONB NOT NULL DEFAULT '[]',
	maintainers  JSONB NOT NULL DEFAULT '[]',
	dependencies JSONB NOT NULL DEFAULT '[]',
	deprecated   BOOLEAN NOT NULL DEFAULT FALSE,
	metadata     JSONB NOT NULL,
	chart_digest TEXT COLLATE "C" NOT NULL,
	chart_size   BIGINT NOT NULL,
	prov_digest  TEXT COLLATE "C",
	prov_size    BIGINT,
	created_at   BIGINT NOT NULL,
	PRIMARY KEY (repo_id, digest),
	FOREIGN KEY (repo_id, digest) REFERENCES manifests (repo_id, digest) ON DELETE CASCADE
);
CREATE INDEX chart_versions_namespace ON chart_versions (namespace, name, version);

CREATE TABLE chart_settings (
	namespace       TEXT COLLATE "C" PRIMARY KEY,
	allow_overwrite BOOLEAN NOT NULL DEFAULT FALSE,
	updated_at      BIGINT NOT NULL
);
