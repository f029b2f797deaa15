-- The durable event outbox (issue 18, docs/design/events.md): one row per change worth
-- knowing, written in the change's own transaction. A sequence value is taken before
-- commit, so seq alone is not commit order here: xid, the writing transaction's id
-- (64-bit, never wraps), lets readers return only rows of finished transactions and
-- order the feed by (xid, seq). No foreign key to repositories: a deleted repository
-- keeps its events.
CREATE TABLE events (
	seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	xid        BIGINT NOT NULL DEFAULT CAST(CAST(pg_current_xact_id() AS TEXT) AS BIGINT),
	id         TEXT COLLATE "C" NOT NULL UNIQUE,
	type       TEXT COLLATE "C" NOT NULL,
	repo_id    BIGINT,
	repository TEXT COLLATE "C" NOT NULL DEFAULT '',
	namespace  TEXT COLLATE "C" NOT NULL DEFAULT '',
	actor      TEXT COLLATE "C" NOT NULL DEFAULT '',
	payload    JSONB NOT NULL,
	created_at BIGINT NOT NULL
);

-- Every index is paid for on every push: the feed, one repository's feed (--repo, and
-- consumers of one repository), and the retention purge. Type and namespace filters
-- read the feed.
CREATE INDEX events_feed ON events (xid, seq);
CREATE INDEX events_repository ON events (repository, xid, seq);
CREATE INDEX events_created ON events (created_at);
