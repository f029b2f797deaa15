-- Accounts (issue 3): users, namespaces, organisation teams and their grants, access
-- tokens, the audit log, and repository visibility. Times are UTC unix nanoseconds like
-- in 0001; a NULL time means "never" (a token that does not expire, was never used, is
-- not revoked). Booleans are INTEGER 0/1.
--
-- People are referenced by name rather than id (names never change: UpdateUser cannot
-- rename), which keeps the queries of the policy layer join-free. The column is
-- "username", not "user": USER is reserved in PostgreSQL, which will run this schema too.

CREATE TABLE users (
	id            INTEGER PRIMARY KEY,
	name          TEXT NOT NULL UNIQUE,
	email         TEXT NOT NULL DEFAULT '',
	password_hash TEXT NOT NULL DEFAULT '',  -- PHC string; '' for robots
	admin         INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),
	robot         INTEGER NOT NULL DEFAULT 0 CHECK (robot IN (0, 1)),
	owner         TEXT NOT NULL DEFAULT '',  -- robots: their organisation; '' otherwise
	disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
	created_at    INTEGER NOT NULL
);
-- DeleteOrg removes the organisation's robots.
CREATE INDEX users_owner ON users (owner) WHERE robot = 1;

-- Users and organisations share one name space: every user has a row here too, so a
-- name can never be both a person and an organisation.
CREATE TABLE namespaces (
	name               TEXT PRIMARY KEY,
	org                INTEGER NOT NULL DEFAULT 0 CHECK (org IN (0, 1)),
	default_visibility TEXT NOT NULL DEFAULT 'private' CHECK (default_visibility IN ('private', 'public')),
	created_at         INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE teams (
	org         TEXT NOT NULL REFERENCES namespaces (name) ON DELETE CASCADE,
	name        TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,
	PRIMARY KEY (org, name)
) WITHOUT ROWID;

CREATE TABLE team_members (
	org      TEXT NOT NULL,
	team     TEXT NOT NULL,
	username TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	PRIMARY KEY (org, team, username),
	FOREIGN KEY (org, team) REFERENCES teams (org, name) ON DELETE CASCADE
) WITHOUT ROWID;
-- RoleOf starts from the user; the cascade from users needs it too.
CREATE INDEX team_members_username ON team_members (username, org);

-- repository is the full repository name, or '' for every repository of the org. No
-- foreign key to repositories: a grant may be given before the first push.
CREATE TABLE team_grants (
	org        TEXT NOT NULL,
	team       TEXT NOT NULL,
	repository TEXT NOT NULL DEFAULT '',
	role       TEXT NOT NULL CHECK (role IN ('read', 'write', 'admin')),
	PRIMARY KEY (org, team, repository),
	FOREIGN KEY (org, team) REFERENCES teams (org, name) ON DELETE CASCADE
) WITHOUT ROWID;

-- Revocation keeps the row (ListTokens shows revoked tokens, TokenByHash says why a
-- token is refused), so a name is unique only among the tokens not revoked: a revoked
-- name may be reused.
CREATE TABLE access_tokens (
	id           INTEGER PRIMARY KEY,
	username     TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	name         TEXT NOT NULL,
	hash         BLOB NOT NULL UNIQUE,       -- sha256 of the secret
	scopes       TEXT NOT NULL DEFAULT '[]', -- JSON array of scope strings
	expires_at   INTEGER,
	last_used_at INTEGER,
	created_at   INTEGER NOT NULL,
	revoked_at   INTEGER
);
CREATE UNIQUE INDEX access_tokens_active_name ON access_tokens (username, name) WHERE revoked_at IS NULL;
CREATE INDEX access_tokens_username ON access_tokens (username, created_at);

-- Append-only. AUTOINCREMENT so an id is never reused: pagination is by id.
CREATE TABLE audit_log (
	id     INTEGER PRIMARY KEY AUTOINCREMENT,
	time   INTEGER NOT NULL,
	actor  TEXT NOT NULL,
	action TEXT NOT NULL,
	target TEXT NOT NULL DEFAULT '',
	remote TEXT NOT NULL DEFAULT '',
	detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_time ON audit_log (time);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_action ON audit_log (action, id);

-- Existing repositories become private: nothing was public before accounts existed.
ALTER TABLE repositories ADD COLUMN visibility TEXT NOT NULL DEFAULT 'private'
	CHECK (visibility IN ('private', 'public'));
