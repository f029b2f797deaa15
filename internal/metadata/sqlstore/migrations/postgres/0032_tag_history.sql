-- Tag history (issue 21 slice 4, docs/design/web.md): one row for every tag move the
-- store makes. A push or a restore that points a tag somewhere new records the digest
-- it left (old_digest, '' for a new tag) and the one it points at now (new_digest); a
-- tag deletion, alone or with its manifest, records new_digest ''. actor is the name
-- the change's events carry ('' when none was given). moved_at is unix nanoseconds.
-- A manifest a tag moved away from is kept from garbage collection and retention for
-- a while after the move (Store.SetTagHistoryHold), so "restore this tag here" has
-- something to restore. Rows go with their repository; each tag keeps its newest
-- moves only (sqlstore/taghistory.go).
CREATE TABLE tag_history (
	id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	repo_id    BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
	tag        TEXT COLLATE "C" NOT NULL,
	old_digest TEXT COLLATE "C" NOT NULL DEFAULT '',
	new_digest TEXT COLLATE "C" NOT NULL DEFAULT '',
	actor      TEXT COLLATE "C" NOT NULL DEFAULT '',
	moved_at   BIGINT NOT NULL
);
-- A tag's history, newest first.
CREATE INDEX tag_history_tag ON tag_history (repo_id, tag, id);
-- "Did a tag move away from this manifest lately?" (GC phase 1, retention).
CREATE INDEX tag_history_old ON tag_history (repo_id, old_digest, moved_at);
