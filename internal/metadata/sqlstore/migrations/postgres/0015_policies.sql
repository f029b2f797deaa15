-- Tag and retention policies (issue 17): one row per namespace ("team") or repository
-- ("team/app"), the policy as JSON. And the last pull of each manifest, written in
-- batches by the servers (not one write per pull) and gone with the manifest.
CREATE TABLE tag_policies (
	scope      TEXT COLLATE "C" PRIMARY KEY,
	policy     JSONB NOT NULL,
	updated_at BIGINT NOT NULL,
	updated_by TEXT NOT NULL
);

CREATE TABLE manifest_pulls (
	repo_id   BIGINT NOT NULL,
	digest    TEXT COLLATE "C" NOT NULL,
	pulled_at BIGINT NOT NULL,
	PRIMARY KEY (repo_id, digest),
	FOREIGN KEY (repo_id, digest) REFERENCES manifests (repo_id, digest) ON DELETE CASCADE
);
