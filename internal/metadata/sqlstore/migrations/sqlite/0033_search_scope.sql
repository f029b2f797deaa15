-- Search scope (issue 21, docs/design/web.md slice 2): the full-text index also holds
-- who may find each repository, so a search asks the index for "matches the terms
-- AND (public OR under one of the caller's namespaces)" and reads only rows the
-- caller may see, instead of reading matches newest first and dropping the ones it
-- may not (a common word for a caller who sees a tenth of the hub read thousands).
--
-- scope is '/NAMESPACE/ /+/' for a public repository and '/NAMESPACE/ /-/' for a
-- private one, NAMESPACE being the name's first segment. A namespace name never
-- holds '/' or '+', so with the trigram tokenizer the phrase "/ns7/" matches the
-- namespace ns7 and no other, and "/+/" the public repositories. It only narrows
-- the rows read: Search still applies visibleSQL, Catalog's exact selection, to every
-- row, so a stale scope could hide a repository but never show one. The triggers
-- below keep it in step with the repository's name and visibility in the statement
-- that changes them, so in the same transaction.
DROP TRIGGER repository_search_created;
DROP TRIGGER repository_search_deleted;
DROP TRIGGER repository_search_renamed;
DROP TRIGGER repository_search_updated;
DROP TABLE repository_fts;

CREATE VIRTUAL TABLE repository_fts USING fts5(name, description, labels, scope, tokenize = 'trigram');
-- Merge segments once two of a level are there (FTS5's default waits for four): a
-- query reads every segment a term is in, and pushes rewrite rows (SetSearchDoc), so
-- the index otherwise lies in many segments full of superseded entries. Measured
-- with BenchmarkSearchScale: search CPU p95 30.7 ms with the default, 15.9 ms with 2.
INSERT INTO repository_fts (repository_fts, rank) VALUES ('automerge', 2);

INSERT INTO repository_fts (rowid, name, description, labels, scope)
SELECT r.id, r.name, s.description, s.labels,
	'/' || (CASE WHEN instr(r.name, '/') > 0 THEN substr(r.name, 1, instr(r.name, '/') - 1) ELSE r.name END) || '/ /'
		|| (CASE r.visibility WHEN 'public' THEN '+' ELSE '-' END) || '/'
FROM repositories r JOIN repository_search s ON s.repo_id = r.id;

CREATE TRIGGER repository_search_created AFTER INSERT ON repositories BEGIN
	INSERT INTO repository_search (repo_id) VALUES (NEW.id);
	INSERT INTO repository_fts (rowid, name, description, labels, scope) VALUES (NEW.id, NEW.name, '', '',
		'/' || (CASE WHEN instr(NEW.name, '/') > 0 THEN substr(NEW.name, 1, instr(NEW.name, '/') - 1) ELSE NEW.name END) || '/ /'
			|| (CASE NEW.visibility WHEN 'public' THEN '+' ELSE '-' END) || '/');
END;
CREATE TRIGGER repository_search_deleted AFTER DELETE ON repositories BEGIN
	DELETE FROM repository_fts WHERE rowid = OLD.id;
END;
CREATE TRIGGER repository_search_renamed AFTER UPDATE OF name, visibility ON repositories BEGIN
	UPDATE repository_fts SET name = NEW.name,
		scope = '/' || (CASE WHEN instr(NEW.name, '/') > 0 THEN substr(NEW.name, 1, instr(NEW.name, '/') - 1) ELSE NEW.name END) || '/ /'
			|| (CASE NEW.visibility WHEN 'public' THEN '+' ELSE '-' END) || '/'
	WHERE rowid = NEW.id;
END;
CREATE TRIGGER repository_search_updated AFTER UPDATE OF description, labels ON repository_search BEGIN
	UPDATE repository_fts SET description = NEW.description, labels = NEW.labels WHERE rowid = NEW.repo_id;
END;
