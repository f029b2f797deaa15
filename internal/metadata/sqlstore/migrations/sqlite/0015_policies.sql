-- Tag and retention policies (issue 17): one row per namespace ("team") or repository
-- ("team/app"), the policy as JSON. And the last pull of each manifest, written in
-- batches by the servers (not one write per pull) and gone with the manifest.
CREATE TABLE tag_policies (
	scope      TEXT PRIMARY KEY,
	policy     TEXT NOT NULL,
	updated_at INTEGER NOT NULL,
	updated_by TEXT NOT NULL
);

CREATE TABLE manifest_pulls (
	repo_id   INTEGER NOT NULL,
	digest    TEXT NOT NULL,
	pulled_at INTEGER NOT NULL,
	PRIMARY KEY (repo_id, digest),
	FOREIGN KEY (repo_id, digest) REFERENCES manifests (repo_id, digest) ON DELETE CASCADE
) WITHOUT ROWID;
