-- The classic chart index's change check and chart version claims (issue 15): the
-- PostgreSQL twin of SQLite's 0013_chart_index.sql (see there for what and why). The
-- triggers call one function that bumps a namespace's generation.
ALTER TABLE chart_versions ADD COLUMN entry_format INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chart_versions ADD COLUMN entry_yaml TEXT;
ALTER TABLE chart_versions ADD COLUMN entry_json TEXT;

CREATE TABLE chart_generations (
	namespace  TEXT COLLATE "C" PRIMARY KEY,
	generation BIGINT NOT NULL
);

CREATE INDEX chart_versions_tag ON chart_versions (repo_id, tag);

CREATE FUNCTION chart_bump(ns TEXT) RETURNS void LANGUAGE sql AS $$
	INSERT INTO chart_generations (namespace, generation) VALUES (ns, 1)
		ON CONFLICT (namespace) DO UPDATE SET generation = chart_generations.generation + 1;
$$;

CREATE FUNCTION chart_versions_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP <> 'DELETE' THEN
		PERFORM chart_bump(NEW.namespace);
	END IF;
	IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.namespace <> NEW.namespace) THEN
		PERFORM chart_bump(OLD.namespace);
	END IF;
	RETURN NULL;
END;
$$;
CREATE TRIGGER chart_versions_changed AFTER INSERT OR UPDATE OR DELETE ON chart_versions
	FOR EACH ROW EXECUTE FUNCTION chart_versions_changed();

CREATE FUNCTION chart_tags_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	ns TEXT;
BEGIN
	IF TG_OP = 'UPDATE' AND NEW.digest = OLD.digest THEN
		RETURN NULL;
	END IF;
	IF TG_OP <> 'DELETE' THEN
		SELECT namespace INTO ns FROM chart_versions WHERE repo_id = NEW.repo_id AND tag = NEW.name LIMIT 1;
	END IF;
	IF ns IS NULL AND TG_OP <> 'INSERT' THEN
		SELECT namespace INTO ns FROM chart_versions WHERE repo_id = OLD.repo_id AND tag = OLD.name LIMIT 1;
	END IF;
	IF ns IS NOT NULL THEN
		PERFORM chart_bump(ns);
	END IF;
	RETURN NULL;
END;
$$;
CREATE TRIGGER chart_tags_changed AFTER INSERT OR UPDATE OR DELETE ON tags
	FOR EACH ROW EXECUTE FUNCTION chart_tags_changed();

CREATE FUNCTION chart_repositories_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	ns TEXT;
BEGIN
	IF NEW.visibility IS DISTINCT FROM OLD.visibility OR NEW.name <> OLD.name THEN
		SELECT namespace INTO ns FROM chart_versions WHERE repo_id = NEW.id LIMIT 1;
		IF ns IS NOT NULL THEN
			PERFORM chart_bump(ns);
		END IF;
	END IF;
	RETURN NULL;
END;
$$;
CREATE TRIGGER chart_repositories_changed AFTER UPDATE OF visibility, name ON repositories
	FOR EACH ROW EXECUTE FUNCTION chart_repositories_changed();

CREATE TABLE chart_claims (
	repository   TEXT COLLATE "C" NOT NULL,
	tag          TEXT COLLATE "C" NOT NULL,
	chart_digest TEXT COLLATE "C" NOT NULL,
	expires_at   BIGINT NOT NULL,
	PRIMARY KEY (repository, tag)
);
