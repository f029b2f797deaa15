-- Deploy history and locks (issue 20, docs/design/deploy.md "State, history and
-- locks"). A deploy is recorded when it begins (outcome running) and finished with
-- its outcome; number counts a service's deploys from 1. spec is the deploy file as
-- deployed (secret values never appear in one: only their names), digests a JSON
-- object (what: pinned reference), hosts a JSON array. by_id is the deploying
-- account (by_name its name then, for display after the account is gone).
-- rollback_of is the number of the deploy a rollback re-deployed, 0 otherwise. Times
-- are unix nanoseconds of the database's clock; finished is 0 while running.
CREATE TABLE deploys (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	namespace   TEXT NOT NULL,
	service     TEXT NOT NULL,
	number      INTEGER NOT NULL,
	spec        TEXT NOT NULL,
	digests     TEXT NOT NULL DEFAULT '{}',
	target      TEXT NOT NULL,
	hosts       TEXT NOT NULL DEFAULT '[]',
	by_id       INTEGER NOT NULL,
	by_name     TEXT NOT NULL,
	started     INTEGER NOT NULL,
	finished    INTEGER NOT NULL DEFAULT 0,
	outcome     TEXT NOT NULL CHECK (outcome IN ('running', 'succeeded', 'failed', 'rolled_back')),
	error       TEXT NOT NULL DEFAULT '',
	rollback_of INTEGER NOT NULL DEFAULT 0,
	UNIQUE (namespace, service, number)
);

-- One row per service while a deploy holds its lock: taken by an insert, or by an
-- update of a row whose expires has passed (a killed deploy's lock goes stale);
-- renewed by its holder (number), deleted when it finishes or is broken.
CREATE TABLE deploy_locks (
	namespace TEXT NOT NULL,
	service   TEXT NOT NULL,
	number    INTEGER NOT NULL,
	by_id     INTEGER NOT NULL,
	by_name   TEXT NOT NULL,
	host      TEXT NOT NULL,
	pid       INTEGER NOT NULL,
	acquired  INTEGER NOT NULL,
	expires   INTEGER NOT NULL,
	PRIMARY KEY (namespace, service)
);
