-- Sessions, immutable account ids and the bootstrap record (issue 12).
--
-- Registry tokens and sessions name accounts and access tokens by id, so an id must
-- never be handed out twice: SQLite's plain INTEGER PRIMARY KEY reuses the largest id
-- after that row is deleted, AUTOINCREMENT never does (PostgreSQL's identities never
-- do). users and access_tokens are rebuilt with it (SQLite cannot change a column in
-- place; the migration runner turns foreign keys off around this and checks them
-- before committing), ids kept.
CREATE TABLE users_new (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	name          TEXT NOT NULL UNIQUE,
	email         TEXT NOT NULL DEFAULT '',
	password_hash TEXT NOT NULL DEFAULT '',  -- PHC string; '' for robots
	admin         INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),
	robot         INTEGER NOT NULL DEFAULT 0 CHECK (robot IN (0, 1)),
	owner         TEXT NOT NULL DEFAULT '',  -- robots: their organisation; '' otherwise
	disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
	created_at    INTEGER NOT NULL,
	-- session_epoch counts the times every session of the user was ended at once
	-- (password change or reset, disabling, sign out everywhere); registry tokens
	-- carry it.
	session_epoch INTEGER NOT NULL DEFAULT 0
);
INSERT INTO users_new (id, name, email, password_hash, admin, robot, owner, disabled, created_at)
	SELECT id, name, email, password_hash, admin, robot, owner, disabled, created_at FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
CREATE INDEX users_owner ON users (owner) WHERE robot = 1;

CREATE TABLE access_tokens_new (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	username     TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	name         TEXT NOT NULL,
	hash         BLOB NOT NULL UNIQUE,       -- sha256 of the secret
	scopes       TEXT NOT NULL DEFAULT '[]', -- JSON array of scope strings
	expires_at   INTEGER,
	last_used_at INTEGER,
	created_at   INTEGER NOT NULL,
	revoked_at   INTEGER
);
INSERT INTO access_tokens_new SELECT id, username, name, hash, scopes, expires_at, last_used_at, created_at, revoked_at FROM access_tokens;
DROP TABLE access_tokens;
ALTER TABLE access_tokens_new RENAME TO access_tokens;
CREATE UNIQUE INDEX access_tokens_active_name ON access_tokens (username, name) WHERE revoked_at IS NULL;
CREATE INDEX access_tokens_username ON access_tokens (username, created_at);
--
-- A session is what a sign-in leaves behind besides short-lived registry tokens: for
-- now the refresh session `docker login` keeps as its identity token ('refresh'; the web
-- UI's sessions will be another kind). Only the sha256 of its secret is kept. It hangs
-- on the account's immutable id, so deleting the account ends it and a new account of
-- the same name inherits nothing. Revocation keeps the row for listing.
CREATE TABLE sessions (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	kind         TEXT NOT NULL,
	hash         BLOB NOT NULL UNIQUE,
	created_at   INTEGER NOT NULL,
	last_used_at INTEGER,
	expires_at   INTEGER NOT NULL,
	revoked_at   INTEGER,
	remote       TEXT NOT NULL DEFAULT '',
	client       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id, created_at);

-- Hub-wide facts, one row each. 'bootstrap.admin' says the bootstrap admin account was
-- made: it is made once per database, never again. A database that already has users
-- was bootstrapped by an earlier hubctl.
CREATE TABLE hub_state (
	key        TEXT PRIMARY KEY,
	value      TEXT NOT NULL,
	updated_at INTEGER NOT NULL
);
INSERT INTO hub_state (key, value, updated_at)
	SELECT 'bootstrap.admin', 'before migration 0008', 0 WHERE EXISTS (SELECT 1 FROM users);
