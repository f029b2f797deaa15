-- Workflow artifacts and caches (issue 19, docs/design/workflows.md "The store"). The
-- content is a gzipped tar in the blob store, digest-addressed like a layer: digest
-- references blobs, so GC keeps a blob while a row names it (gcUnlinked) and reclaims
-- it after the row goes (the run purged, the cache evicted). path is where the
-- artifact lies in the workspace, so the jobs that need it get it at the same place.
-- An artifact is one per job run and name (a rerun replaces it); a cache one per
-- workflow and key, never replaced (immutable per key), last_used orders eviction.
CREATE TABLE workflow_artifacts (
	id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	run_id     BIGINT NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
	job_id     BIGINT NOT NULL REFERENCES workflow_jobs (id) ON DELETE CASCADE,
	name       TEXT COLLATE "C" NOT NULL,
	path       TEXT COLLATE "C" NOT NULL,
	digest     TEXT COLLATE "C" NOT NULL REFERENCES blobs (digest),
	size       BIGINT NOT NULL,
	created_at BIGINT NOT NULL,
	UNIQUE (job_id, name)
);

CREATE INDEX workflow_artifacts_run ON workflow_artifacts (run_id);
CREATE INDEX workflow_artifacts_digest ON workflow_artifacts (digest);

CREATE TABLE workflow_caches (
	id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	workflow_id BIGINT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
	key         TEXT COLLATE "C" NOT NULL,
	digest      TEXT COLLATE "C" NOT NULL REFERENCES blobs (digest),
	size        BIGINT NOT NULL,
	created_at  BIGINT NOT NULL,
	last_used   BIGINT NOT NULL,
	UNIQUE (workflow_id, key)
);

CREATE INDEX workflow_caches_digest ON workflow_caches (digest);
CREATE INDEX workflow_caches_lru ON workflow_caches (workflow_id, last_used);
