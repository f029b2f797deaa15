-- Helm charts pushed to the registry (issue 15). A chart is an OCI artifact (a manifest
-- whose config is helm's Chart.yaml-as-JSON); chart_versions records, per chart
-- manifest, what the classic repository index, listings and search need, so they are
-- queries rather than walks over storage. The row hangs on its manifest: deleting the
-- manifest (by the registry API, the ChartMuseum API, GC or a repository delete)
-- removes it in the same statement. A version is listed only while its tag (the version
-- with '+' written '_') points at the manifest; the query checks that.
CREATE TABLE chart_versions (
	repo_id      INTEGER NOT NULL,
	digest       TEXT NOT NULL,              -- the manifest
	namespace    TEXT NOT NULL,              -- first component of the repository name
	name         TEXT NOT NULL,              -- Chart.yaml name = last component
	version      TEXT NOT NULL,
	tag          TEXT NOT NULL,              -- version with '+' as '_'
	app_version  TEXT NOT NULL DEFAULT '',
	description  TEXT NOT NULL DEFAULT '',
	icon         TEXT NOT NULL DEFAULT '',
	keywords     TEXT NOT NULL DEFAULT '[]', -- JSON array of strings
	maintainers  TEXT NOT NULL DEFAULT '[]', -- JSON array of {name, email, url}
	dependencies TEXT NOT NULL DEFAULT '[]', -- JSON array of Chart.yaml dependencies
	deprecated   INTEGER NOT NULL DEFAULT 0 CHECK (deprecated IN (0, 1)),
	metadata     TEXT NOT NULL,              -- the whole Chart.yaml as JSON (the config blob)
	chart_digest TEXT NOT NULL,              -- the .tgz layer: the index's digest
	chart_size   INTEGER NOT NULL,
	prov_digest  TEXT,                       -- the .prov layer, NULL without one
	prov_size    INTEGER,
	created_at   INTEGER NOT NULL,
	PRIMARY KEY (repo_id, digest),
	FOREIGN KEY (repo_id, digest) REFERENCES manifests (repo_id, digest) ON DELETE CASCADE
);
-- The index of a namespace and the lookup of one version (NAME-VERSION.tgz).
CREATE INDEX chart_versions_namespace ON chart_versions (namespace, name, version);

-- Per-namespace chart settings; a namespace without a row has the defaults.
CREATE TABLE chart_settings (
	namespace       TEXT PRIMARY KEY,
	-- allow_overwrite lets a push replace an existing chart version with other content
	-- (ChartMuseum's --allow-overwrite); off, such a push is refused.
	allow_overwrite INTEGER NOT NULL DEFAULT 0 CHECK (allow_overwrite IN (0, 1)),
	updated_at      INTEGER NOT NULL
);
