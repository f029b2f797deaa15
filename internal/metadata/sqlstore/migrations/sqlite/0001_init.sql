-- Initial schema of the registry metadata. Times are UTC unix nanoseconds (INTEGER), so
-- they sort and compare as numbers. Digests and names are TEXT compared with the BINARY
-- collation, which is the byte order the distribution spec asks for in listings.

CREATE TABLE repositories (
	id         INTEGER PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	created_at INTEGER NOT NULL
);

CREATE TABLE blobs (
	digest     TEXT PRIMARY KEY,
	size       INTEGER NOT NULL,
	created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE repository_blobs (
	repo_id    INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
	digest     TEXT NOT NULL REFERENCES blobs (digest),
	created_at INTEGER NOT NULL,
	PRIMARY KEY (repo_id, digest)
) WITHOUT ROWID;
-- GC asks "is this blob linked anywhere"; the foreign key to blobs needs it too.
CREATE INDEX repository_blobs_digest ON repository_blobs (digest);

-- A rowid table (not WITHOUT ROWID): payloads are up to megabytes, far over the size
-- WITHOUT ROWID handles well.
CREATE TABLE manifests (
	repo_id       INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
	digest        TEXT NOT NULL,
	media_type    TEXT NOT NULL,
	artifact_type TEXT NOT NULL DEFAULT '',
	size          INTEGER NOT NULL,
	payload       BLOB NOT NULL,
	subject       TEXT,            -- NULL when the manifest has no subject
	annotations   TEXT,            -- JSON object, NULL when there are none
	created_at    INTEGER NOT NULL,
	PRIMARY KEY (repo_id, digest)
);
-- The referrers API: manifests of a repository with a given subject, by digest.
CREATE INDEX manifests_subject ON manifests (repo_id, subject, digest) WHERE subject IS NOT NULL;

-- What each manifest points at (config, layers, index children), for garbage collection
-- and integrity checks. No foreign key on ref_digest: an
-- unlinked blob or deleted child is a GC concern, not a constraint violation.
CREATE TABLE manifest_refs (
	repo_id         INTEGER NOT NULL,
	manifest_digest TEXT NOT NULL,
	ref_digest      TEXT NOT NULL,
	kind            TEXT NOT NULL CHECK (kind IN ('blob', 'manifest')),
	PRIMARY KEY (repo_id, manifest_digest, kind, ref_digest),
	FOREIGN KEY (repo_id, manifest_digest) REFERENCES manifests (repo_id, digest) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX manifest_refs_ref ON manifest_refs (ref_digest, kind);

CREATE TABLE tags (
	repo_id    INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
	name       TEXT NOT NULL,
	digest     TEXT NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (repo_id, name),
	FOREIGN KEY (repo_id, digest) REFERENCES manifests (repo_id, digest) ON DELETE CASCADE
) WITHOUT ROWID;
-- Tags of a manifest: deleting a manifest drops them, and the UI lists them.
CREATE INDEX tags_digest ON tags (repo_id, digest);

-- Upload sessions live here rather than in a replica's memory so a chunked upload may
-- continue on another replica and survives a restart.
CREATE TABLE uploads (
	id            TEXT PRIMARY KEY,
	repository    TEXT NOT NULL,
	upload_offset INTEGER NOT NULL,
	hash_state    BLOB,
	backend_state BLOB,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
);
CREATE INDEX uploads_updated_at ON uploads (updated_at);
