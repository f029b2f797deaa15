-- Search (issue 21, docs/design/web.md slice 2). repository_search is what a
-- repository is found by besides its name: its kind and the description and labels
-- (a JSON object) of the image config last pushed under a tag (digest). updated_at 0
-- means never indexed: the hub's backfill reads those repositories' configs at start.
-- Every repository has a row (the trigger below makes it with the repository).
CREATE TABLE repository_search (
	repo_id     INTEGER PRIMARY KEY REFERENCES repositories (id) ON DELETE CASCADE,
	kind        TEXT NOT NULL DEFAULT '' CHECK (kind IN ('', 'image', 'chart', 'artifact')),
	description TEXT NOT NULL DEFAULT '',
	labels      TEXT NOT NULL DEFAULT '{}',
	digest      TEXT NOT NULL DEFAULT '',
	updated_at  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX repository_search_pending ON repository_search (repo_id) WHERE updated_at = 0;

-- The full-text index: FTS5 with the trigram tokenizer, so a term matches anywhere
-- in a name, description or label (as PostgreSQL's pg_trgm does), case-insensitively.
-- rowid is the repository's id. Triggers keep it in step with the two tables.
CREATE VIRTUAL TABLE repository_fts USING fts5(name, description, labels, tokenize = 'trigram');

INSERT INTO repository_search (repo_id) SELECT id FROM repositories;
INSERT INTO repository_fts (rowid, name, description, labels) SELECT id, name, '', '' FROM repositories;

CREATE TRIGGER repository_search_created AFTER INSERT ON repositories BEGIN
	INSERT INTO repository_search (repo_id) VALUES (NEW.id);
	INSERT INTO repository_fts (rowid, name, description, labels) VALUES (NEW.id, NEW.name, '', '');
END;
CREATE TRIGGER repository_search_deleted AFTER DELETE ON repositories BEGIN
	DELETE FROM repository_fts WHERE rowid = OLD.id;
END;
CREATE TRIGGER repository_search_renamed AFTER UPDATE OF name ON repositories BEGIN
	UPDATE repository_fts SET name = NEW.name WHERE rowid = NEW.id;
END;
CREATE TRIGGER repository_search_updated AFTER UPDATE OF description, labels ON repository_search BEGIN
	UPDATE repository_fts SET description = NEW.description, labels = NEW.labels WHERE rowid = NEW.repo_id;
END;

-- Digest-prefix search reads manifests by digest across repositories.
CREATE INDEX manifests_digest ON manifests (digest);
-- The repository page's tag table sorted by push time, read a page at a time.
CREATE INDEX tags_pushed ON tags (repo_id, updated_at, name);
