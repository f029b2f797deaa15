-- Search scope (issue 21, docs/design/web.md slice 2), the PostgreSQL twin of the
-- SQLite 0033_search_scope.sql: repository_search.scope says who may find each
-- repository, as two words: 'ns:NAMESPACE' (the name's first segment) and
-- 'v:public' or 'v:private'. It sits in one GIN index beside the trigram document,
-- so a search's "matches the terms AND (public OR under one of the caller's
-- namespaces)" is one bitmap of the rows the caller may see, instead of a walk of
-- the matches dropping the rows the caller may not see (an anonymous label search
-- read the whole table). It only narrows the rows read: Search still applies
-- visibleSQL, Catalog's exact selection, to every row. The trigger keeps it in step
-- with the repository's name and visibility in the statement that changes them, so
-- in the same transaction.
ALTER TABLE repository_search ADD COLUMN scope TEXT[] NOT NULL DEFAULT '{}';

UPDATE repository_search s SET scope = ARRAY['ns:' || split_part(r.name, '/', 1), 'v:' || r.visibility]
FROM repositories r WHERE r.id = s.repo_id;

CREATE OR REPLACE FUNCTION repository_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		INSERT INTO repository_search (repo_id, name, scope)
		VALUES (NEW.id, NEW.name, ARRAY['ns:' || split_part(NEW.name, '/', 1), 'v:' || NEW.visibility]);
	ELSIF NEW.name <> OLD.name OR NEW.visibility <> OLD.visibility THEN
		UPDATE repository_search SET name = NEW.name,
			scope = ARRAY['ns:' || split_part(NEW.name, '/', 1), 'v:' || NEW.visibility]
		WHERE repo_id = NEW.id;
	END IF;
	RETURN NULL;
END $$;
DROP TRIGGER repository_search_sync ON repositories;
CREATE TRIGGER repository_search_sync AFTER INSERT OR UPDATE OF name, visibility ON repositories
	FOR EACH ROW EXECUTE FUNCTION repository_search_sync();

-- One GIN index over the document's trigrams and the scope's words, so the two
-- conditions meet inside the index; without pg_trgm, the scope alone.
DROP INDEX IF EXISTS repository_search_document;
DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
		EXECUTE 'CREATE INDEX repository_search_document ON repository_search USING gin (document gin_trgm_ops, scope)';
	ELSE
		EXECUTE 'CREATE INDEX repository_search_scope ON repository_search USING gin (scope)';
	END IF;
END $$;
