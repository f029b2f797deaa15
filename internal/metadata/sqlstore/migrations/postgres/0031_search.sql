-- Search (issue 21, docs/design/web.md slice 2), the PostgreSQL twin of the SQLite
-- 0031_search.sql. repository_search is what a repository is found by besides its
-- name: its kind and the description and labels (a JSON object) of the image config
-- last pushed under a tag (digest). updated_at 0 means never indexed: the hub's
-- backfill reads those repositories' configs at start. Every repository has a row
-- (the trigger below makes it with the repository).
--
-- document is name, description and labels in one text, searched with ILIKE
-- '%term%' through a pg_trgm GIN index: substring matching, like SQLite's FTS5
-- trigram tokenizer, so both stores answer a search alike. pg_trgm ships with
-- PostgreSQL (contrib) and is a trusted extension (13+): a database owner may create
-- it. Where it cannot be created, search still works, by a scan of this table.
CREATE TABLE repository_search (
	repo_id     BIGINT PRIMARY KEY REFERENCES repositories (id) ON DELETE CASCADE,
	name        TEXT COLLATE "C" NOT NULL,
	kind        TEXT COLLATE "C" NOT NULL DEFAULT '' CHECK (kind IN ('', 'image', 'chart', 'artifact')),
	description TEXT NOT NULL DEFAULT '',
	labels      TEXT NOT NULL DEFAULT '{}',
	digest      TEXT COLLATE "C" NOT NULL DEFAULT '',
	updated_at  BIGINT NOT NULL DEFAULT 0,
	document    TEXT GENERATED ALWAYS AS ((name COLLATE "default") || ' ' || description || ' ' || labels) STORED
);
CREATE INDEX repository_search_pending ON repository_search (repo_id) WHERE updated_at = 0;

INSERT INTO repository_search (repo_id, name) SELECT id, name FROM repositories;

CREATE FUNCTION repository_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		INSERT INTO repository_search (repo_id, name) VALUES (NEW.id, NEW.name);
	ELSIF NEW.name <> OLD.name THEN
		UPDATE repository_search SET name = NEW.name WHERE repo_id = NEW.id;
	END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER repository_search_sync AFTER INSERT OR UPDATE OF name ON repositories
	FOR EACH ROW EXECUTE FUNCTION repository_search_sync();

DO $$
BEGIN
	BEGIN
		CREATE EXTENSION IF NOT EXISTS pg_trgm;
	EXCEPTION WHEN OTHERS THEN
		RAISE NOTICE 'pg_trgm is not available (%): search scans repository_search', SQLERRM;
	END;
	IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
		EXECUTE 'CREATE INDEX repository_search_document ON repository_search USING gin (document gin_trgm_ops)';
	END IF;
END $$;

-- Digest-prefix search reads manifests by digest across repositories.
CREATE INDEX manifests_digest ON manifests (digest);
-- The repository page's tag table sorted by push time, read a page at a time.
CREATE INDEX tags_pushed ON tags (repo_id, updated_at, name);
