-- The classic chart index's change check and chart version claims (issue 15).
--
-- chart_generations holds one number per namespace that changes, in the same
-- transaction, with anything that changes what the namespace's index lists: a chart
-- record written or deleted (a manifest delete, GC and a repository delete cascade to
-- chart_versions), a tag of a recorded chart created, moved or deleted, and a
-- repository with charts made public or private. A hub keeps each namespace's index in
-- memory and asks only for this number on a request: replicas share the database, so
-- a change made through one is seen by the next request to any. Triggers keep it, so
-- every path that writes those tables (the registry, GC, the accounts API) bumps it
-- without knowing about charts.
-- Each version's classic index entries, rendered when it is recorded (the chart
-- repository's renderer, in YAML and JSON; opaque to the store) and entry_format, the
-- renderer's version: a cold index reads them rather than rendering 10,000 entries, and
-- renders again only those of another format (records made before, or by an older
-- renderer, have 0).
ALTER TABLE chart_versions ADD COLUMN entry_format INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chart_versions ADD COLUMN entry_yaml TEXT;
ALTER TABLE chart_versions ADD COLUMN entry_json TEXT;

CREATE TABLE chart_generations (
	namespace  TEXT PRIMARY KEY,
	generation INTEGER NOT NULL
) WITHOUT ROWID;

-- The triggers on tags look up the record of a tag.
CREATE INDEX chart_versions_tag ON chart_versions (repo_id, tag);

CREATE TRIGGER chart_versions_inserted AFTER INSERT ON chart_versions BEGIN
	INSERT INTO chart_generations (namespace, generation) VALUES (NEW.namespace, 1)
		ON CONFLICT (namespace) DO UPDATE SET generation = generation + 1;
END;

CREATE TRIGGER chart_versions_updated AFTER UPDATE ON chart_versions BEGIN
	INSERT INTO chart_generations (namespace, generation) VALUES (NEW.namespace, 1)
		ON CONFLICT (namespace) DO UPDATE SET generation = generation + 1;
	INSERT INTO chart_generations (namespace, generation) SELECT OLD.namespace, 1 WHERE OLD.namespace <> NEW.namespace
		ON CONFLICT (namespace) DO UPDATE SET generation = generation + 1;
END;

CREATE TRIGGER chart_versions_deleted AFTER DELETE ON chart_versions BEGIN
	INSERT INTO chart_generations (namespace, generation) VALUES (OLD.namespace, 1)
		ON CONFLICT (namespace) DO UPDATE SET generation = generation + 1;
END;

CREATE TRIGGER chart_tags_inserted AFTER INSERT ON tags
	WHEN EXISTS (SELECT 1 FROM chart_versions WHERE repo_id = NEW.repo_id AND tag = NEW.name)
BEGIN
	INSERT INTO chart_generations (namespace, generation)
		SELECT namespace, 1 FROM chart_versions WHERE repo_id = NEW.repo_id AND tag = NEW.name LIMIT 1
		ON CONFLICT (namespace) DO UPDATE SET generation = generation + 1;
END;

CREATE TRIGGER chart_tags_updated AFTER UPDATE ON tags
	WHEN NEW.digest <> OLD.digest AND (
		EXISTS (SELECT 1 FROM chart_versions WHERE repo_id = NEW.repo_id AND tag = NEW.name) OR
		EXISTS (SELECT 1 FROM chart_versions WHERE repo_id = OLD.repo_id AND tag = OLD.name))
BEGIN
	INSERT INTO chart_generations (namespace, generation)
		SELECT namespace, 1 FROM chart_versions
		WHERE (repo_id = NEW.repo_id AND tag = NEW.name) OR (repo_id = OLD.repo_id AND tag = OLD.name) LIMIT 1
		ON CONFLICT (namespace) DO UPDATE SET generation = generation + 1;
END;

CREATE TRIGGER chart_tags_deleted AFTER DELETE ON tags
	WHEN EXISTS (SELECT 1 FROM chart_versions WHERE repo_id = OLD.repo_id AND tag = OLD.name)
BEGIN
	INSERT INTO chart_generations (namespace, generation)
		SELECT namespace, 1 FROM chart_versions WHERE repo_id = OLD.repo_id AND tag = OLD.name LIMIT 1
		ON CONFLICT (namespace) DO UPDATE SET generation = generation + 1;
END;

CREATE TRIGGER chart_repositories_updated AFTER UPDATE OF visibility, name ON repositories
	WHEN (NEW.visibility <> OLD.visibility OR NEW.name <> OLD.name)
		AND EXISTS (SELECT 1 FROM chart_versions WHERE repo_id = NEW.id)
BEGIN
	INSERT INTO chart_generations (namespace, generation)
		SELECT namespace, 1 FROM chart_versions WHERE repo_id = NEW.id LIMIT 1
		ON CONFLICT (namespace) DO UPDATE SET generation = generation + 1;
END;

-- A claim on a chart version (a repository's tag) by the chart archive being pushed
-- under it, taken in one transaction with the check that the version is free, before
-- the manifest is stored. Two first pushes of one version with different archives
-- cannot both pass: the second finds the first's claim (or, once the first is stored,
-- its tag) and is refused as a sequential overwrite is. The record of the version
-- removes the claim; a claim whose push failed expires.
CREATE TABLE chart_claims (
	repository   TEXT NOT NULL,
	tag          TEXT NOT NULL,
	chart_digest TEXT NOT NULL,
	expires_at   INTEGER NOT NULL,
	PRIMARY KEY (repository, tag)
) WITHOUT ROWID;
