package sqlstore

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/hubctl/hubctl/internal/metadata/migrate"
)

// A dialect is what differs, in statement text and error codes, between the two
// databases. Everything else — every query, every transaction — is written once.
// Each field says why its two values differ.
type dialect struct {
	name string // "sqlite" or "postgres": the migrations folder

	// Row locks taken by a SELECT, held until commit. SQLite has none: its write
	// transactions begin IMMEDIATE and so run one at a time, which orders them more
	// strictly than any row lock. PostgreSQL runs writers concurrently at READ
	// COMMITTED and needs them where a decision must hold until commit.
	forUpdate      string // the row will be changed or deleted
	forNoKeyUpdate string // the row orders writers but its key stays (repositories)
	forKeyShare    string // the row must not be deleted before commit (a blob being linked)
	// skipLocked claims rows another transaction has not locked: webhook workers on
	// several replicas each take different due deliveries instead of queueing behind
	// one another. SQLite's single writer already serialises claims.
	skipLocked string

	// lockName is a statement taking a transaction-scoped lock on the name given as $1,
	// so that two transactions claiming one user or organisation name run one after the
	// other. SQLite needs none (one writer); PostgreSQL takes an advisory lock on the
	// name's hash under a fixed class ("hubc"; any value unlikely to be used by someone
	// else's advisory locks will do).
	lockName string

	// lockRepo is a statement taking a transaction-scoped lock on the repository named
	// $1, taken first by every transaction that writes an event for it. SQLite needs
	// none (one writer). PostgreSQL takes an advisory lock (class "hubr"), which, unlike
	// a row lock, assigns no transaction id: the id, which orders the event feed, is
	// then assigned while the lock is held, so one repository's events are in commit
	// order (docs/design/events.md).
	lockRepo string

	// xidHorizon is the event feed's horizon: every transaction with an id below it
	// has finished. PostgreSQL takes a sequence value before commit, so readers return
	// only rows below the xmin of their snapshot; SQLite commits in seq order and has
	// none ("").
	xidHorizon string

	// greatest is the scalar maximum of its arguments: SQLite's max(a, b) is
	// PostgreSQL's GREATEST(a, b) (PostgreSQL's max is only an aggregate).
	greatest string

	// now is the database's clock in unix nanoseconds. Leases are judged by it, so
	// replicas whose clocks disagree still agree on expiry. SQLite's processes share one
	// host, whose clock it reads (millisecond precision); PostgreSQL's server clock has
	// microseconds.
	now string

	// noLimit is the LIMIT argument meaning "all rows": SQLite takes -1, PostgreSQL
	// NULL (it refuses a negative limit).
	noLimit any

	// list returns a FROM item of one column, value, holding the elements of list
	// parameter p whose elements have SQL type typ ("text" or "bigint"); listArg makes
	// the argument for it. PostgreSQL has arrays (unnest of a text[] or bigint[] sent in
	// binary); SQLite has none, so the list travels as a JSON array for json_each.
	list    func(p, typ string) string
	listArg func(v any) any

	// searchFrom is the FROM clause of a search for terms (lower case; each must
	// occur in repository r's name or in its repository_search row s's description or
	// labels) among the rows sc narrows to, the conditions that match them (arg binds
	// their parameters), and the column results are ordered by, newest repository
	// first (keyset paging). SQLite asks its FTS5 trigram index (repository_fts) in
	// one MATCH for the terms of three characters or more, each in the name,
	// description and labels columns, and for sc's markers in the scope column, and
	// reads the index in rowid (repository id) order, so a common term stops at the
	// page's limit instead of sorting every match; shorter terms would be compared
	// with LIKE (a trigram index has nothing to offer), but ParseSearch refuses them
	// (metadata.MinSearchTerm): row by row they cost too much. PostgreSQL matches s.document with
	// ILIKE and s.scope with array overlap/containment, which one GIN index (pg_trgm
	// and array ops) serves together. Both are substring matches, case-insensitive,
	// so the stores find the same repositories; sc only narrows (visibleSQL decides).
	searchFrom func(terms []string, sc searchScope, arg func(any) string) (from, idCol string, conds []string)

	// isUniqueViolation reports a unique or primary-key violation: SQLite's extended
	// result codes, PostgreSQL's SQLSTATE 23505.
	isUniqueViolation func(error) bool

	// migrate is what the migration runner needs: PostgreSQL replicas starting together
	// take an advisory lock; SQLite's IMMEDIATE transaction already serialises them.
	migrate migrate.Dialect
}

var sqliteDialect = &dialect{
	name:     "sqlite",
	greatest: "max",
	now:      "CAST(unixepoch('subsec') * 1000 AS INTEGER) * 1000000",
	noLimit:  -1,
	list: func(p, _ string) string {
		return "json_each(" + p + ")"
	},
	listArg: func(v any) any {
		b, err := json.Marshal(v)
		if err != nil {
			// Only slices of strings and integers are passed: they always marshal.
			panic(fmt.Sprintf("sqlstore: list argument %T: %v", v, err))
		}
		return string(b)
	},
	searchFrom: func(terms []string, sc searchScope, arg func(any) string) (string, string, []string) {
		var match, conds []string
		for _, t := range terms {
			if utf8.RuneCountInString(t) >= 3 {
				match = append(match, "{name description labels} : "+ftsPhrase(t))
				continue
			}
			p := arg("%" + escapeLike(t) + "%")
			conds = append(conds, "(r.name LIKE "+p+` ESCAPE '\' OR s.description LIKE `+p+` ESCAPE '\' OR s.labels LIKE `+p+` ESCAPE '\')`)
		}
		if sc.narrow {
			var or []string
			for _, m := range sc.anyOf {
				or = append(or, "{scope} : "+ftsPhrase(scopeMarker(m)))
			}
			match = append(match, "("+strings.Join(or, " OR ")+")")
		}
		for _, m := range sc.allOf {
			match = append(match, "{scope} : "+ftsPhrase(scopeMarker(m)))
		}
		if len(match) == 0 {
			return "repositories r JOIN repository_search s ON s.repo_id = r.id", "r.id", conds
		}
		conds = append(conds, "repository_fts MATCH "+arg(strings.Join(match, " AND ")))
		return "repository_fts JOIN repositories r ON r.id = repository_fts.rowid JOIN repository_search s ON s.repo_id = r.id", "repository_fts.rowid", conds
	},
	isUniqueViolation: func(err error) bool {
		var se *sqlite.Error
		if errors.As(err, &se) {
			switch se.Code() {
			case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
				return true
			}
		}
		return false
	},
	migrate: migrate.SQLite,
}

var postgresDialect = &dialect{
	name:           "postgres",
	forUpdate:      " FOR UPDATE",
	forNoKeyUpdate: " FOR NO KEY UPDATE",
	forKeyShare:    " FOR KEY SHARE",
	skipLocked:     " FOR UPDATE SKIP LOCKED",
	lockName:       "SELECT pg_advisory_xact_lock(1752523363, hashtext($1))",
	lockRepo:       "SELECT pg_advisory_xact_lock(1752523378, hashtext($1))",
	xidHorizon:     "CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS TEXT) AS BIGINT)",
	greatest:       "GREATEST",
	now:            "((EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::bigint * 1000)",
	noLimit:        nil,
	list: func(p, typ string) string {
		return "unnest(" + p + "::" + typ + "[]) AS list(value)"
	},
	listArg: func(v any) any { return v },
	searchFrom: func(terms []string, sc searchScope, arg func(any) string) (string, string, []string) {
		var conds []string
		for _, t := range terms {
			conds = append(conds, "s.document ILIKE "+arg("%"+escapeLike(t)+"%")+` ESCAPE '\'`)
		}
		if sc.narrow {
			conds = append(conds, "s.scope && "+arg(sc.anyOf)+"::text[]")
		}
		if len(sc.allOf) > 0 {
			conds = append(conds, "s.scope @> "+arg(sc.allOf)+"::text[]")
		}
		return "repositories r JOIN repository_search s ON s.repo_id = r.id", "r.id", conds
	},
	isUniqueViolation: func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && pe.Code == "23505"
	},
	migrate: migrate.PostgreSQL,
}

// limit maps the interfaces' "n <= 0 means no limit" onto the dialect's LIMIT value.
func (d *dialect) limit(n int) any {
	if n <= 0 {
		return d.noLimit
	}
	return n
}

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFS embed.FS

// Migrations returns the schema migrations of one database ("sqlite" or "postgres"), in
// version order. The two folders mirror each other version for version.
func Migrations(database string) ([]migrate.Migration, error) {
	return migrate.Load(migrationFS, "migrations/"+database)
}

// escapeLike makes s match itself in a LIKE pattern whose escape is a backslash.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(s)
}
