-- Deploy history and locks (issue 20, docs/design/deploy.md "State, history and
-- locks"). A deploy is recorded when it begins (outcome running) and finished with
-- its outcome; number counts a service's deploys from 1. spec is the deploy file as
-- deployed (secret values never appear in one: only their names), digests a JSON
-- object (what: pinned reference), hosts a JSON array. by_id is the deploying
-- account (by_name its name then, for display after the account is gone).
-- rollback_of is the number of the deploy a rollback re-deployed, 0 otherwise. Times
-- are unix nanoseconds of the database's clock; finished is 0 while running.
CREATE TABLE deploys (
	id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	namespace   TEXT COLLATE "C" NOT NULL,
	service     TEXT COLLATE "C" NOT NULL,
	number      BIGINT NOT NULL,
	spec        TEXT NOT NULL,
	digests     TEXT NOT NULL DEFAULT '{}',
	target      TEXT COLLATE "C" NOT NULL,
	hosts       TEXT NOT NULL DEFAULT '[]',
	by_id       BIGINT NOT NULL,
	by_name     TEXT COLLATE "C" NOT NULL,
	started     BIGINT NOT NULL,
	finished    BIGINT NOT NULL DEFAULT 0,
	outcome     TEXT COLLATE "C" NOT NULL CHECK (outcome IN ('running', 'succeeded', 'failed', 'rolled_back')),
	error       TEXT NOT NULL DEFAULT '',
	rollback_of BIGINT NOT NULL DEFAULT 0,
	UNIQUE (namespace, service, number)
);

-- One row per service while a deploy holds its lock: taken by an insert, or by an
-- update of a row whose expires has passed (a killed deploy's lock goes stale);
-- renewed by its holder (number), deleted when it finishes or is broken.
CREATE TABLE deploy_locks (
	namespace TEXT COLLATE "C" NOT NULL,
	service   TEXT COLLATE "C" NOT NULL,
	number    BIGINT NOT NULL,
	by_id     BIGINT NOT NULL,
	by_name   TEXT COLLATE "C" NOT NULL,
	host      TEXT COLLATE "C" NOT NULL,
	pid       BIGINT NOT NULL,
	acquired  BIGINT NOT NULL,
	expires   BIGINT NOT NULL,
	PRIMARY KEY (namespace, service)
);
