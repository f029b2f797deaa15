-- The durable event outbox (issue 18, docs/design/events.md): one row per change worth
-- knowing, written in the change's own transaction. seq is AUTOINCREMENT so a number is
-- never reused, not even after the newest rows are purged: cursors stay valid. xid is
-- PostgreSQL's writing transaction; SQLite's single writer commits in seq order, so it
-- is 0. No foreign key to repositories: a deleted repository keeps its events.
CREATE TABLE events (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	xid        INTEGER NOT NULL DEFAULT 0,
	id         TEXT NOT NULL UNIQUE,
	type       TEXT NOT NULL,
	repo_id    INTEGER,
	repository TEXT NOT NULL DEFAULT '',
	namespace  TEXT NOT NULL DEFAULT '',
	actor      TEXT NOT NULL DEFAULT '',
	payload    TEXT NOT NULL,
	created_at INTEGER NOT NULL
);

-- Every index is paid for on every push: the feed, one repository's feed (--repo, and
-- consumers of one repository), and the retention purge. Type and namespace filters
-- read the feed.
CREATE INDEX events_feed ON events (xid, seq);
CREATE INDEX events_repository ON events (repository, xid, seq);
CREATE INDEX events_created ON events (created_at);
