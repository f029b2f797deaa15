// Package migrate applies versioned SQL migrations to a metadata database. It is shared
// by the SQLite and PostgreSQL stores: each keeps its scripts in an embed.FS and names
// what differs between the two databases in a Dialect.
package migrate

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Migration is one schema change: an SQL script applied once, in Version order.
type Migration struct {
	Version int
	Name    string // from the file name, recorded for people reading schema_migrations
	SQL     string
}

// Dialect holds what the migration runner needs to know about a database.
type Dialect struct {
	// Placeholder returns the bind parameter for the n-th argument (1-based): "?" for
	// SQLite, "$n" for PostgreSQL.
	Placeholder func(n int) string
	// Lock, when not empty, runs first in the migration transaction so that replicas
	// starting together apply migrations one at a time (PostgreSQL:
	// "SELECT pg_advisory_xact_lock(…)"). SQLite needs none when the transaction begins
	// IMMEDIATE, which takes the database's write lock up front.
	Lock string
	// ForeignKeysOff and ForeignKeysOn, when not empty, run on the migrating connection
	// before its transaction begins and after it ends, and ForeignKeyCheck (a query that
	// must return no rows) runs before the commit. SQLite needs them to rebuild a table
	// (its only way to change a column's definition): with foreign keys on, dropping the
	// old table would cascade into every table referring to it, and the switch is a
	// no-op inside a transaction. PostgreSQL alters tables in place.
	ForeignKeysOff, ForeignKeysOn, ForeignKeyCheck string
}

// SQLite is the dialect of SQLite; the caller's *sql.DB should begin transactions
// IMMEDIATE (modernc.org/sqlite: _txlock=immediate) so concurrent openers serialize.
var SQLite = Dialect{
	Placeholder:     func(int) string { return "?" },
	ForeignKeysOff:  "PRAGMA foreign_keys = OFF",
	ForeignKeysOn:   "PRAGMA foreign_keys = ON",
	ForeignKeyCheck: "PRAGMA foreign_key_check",
}

// PostgreSQL is the dialect of PostgreSQL; the advisory lock key is arbitrary but fixed
// so that every hubctl replica contends for the same lock.
var PostgreSQL = Dialect{
	Placeholder: func(n int) string { return "$" + strconv.Itoa(n) },
	Lock:        "SELECT pg_advisory_xact_lock(7305846212845121633)",
}

// fileRe is the shape of a migration file name: 0001_init.sql.
var fileRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([0-9]+)_([a-z0-9_]+)\.sql$`) })

// Load reads the migrations in dir of fsys, one per file named NNNN_name.sql, sorted by
// version. Files not ending in .sql are ignored, so a README may sit beside them.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations %s: %w", dir, err)
	}
	var ms []Migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		m := fileRe().FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration %s: name must look like 0001_name.sql", e.Name())
		}
		v, err := strconv.Atoi(m[1])
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: version must be a positive number", e.Name())
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		ms = append(ms, Migration{Version: v, Name: m[2], SQL: string(b)})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i := 1; i < len(ms); i++ {
		if ms[i].Version == ms[i-1].Version {
			return nil, fmt.Errorf("migrations %s and %s share version %d", ms[i-1].Name, ms[i].Name, ms[i].Version)
		}
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("no migrations in %s", dir)
	}
	return ms, nil
}

// ErrSchemaTooNew is returned by Apply when the database records a version this binary
// does not know: a newer hubctl migrated it, and running older code on it is unsafe.
var ErrSchemaTooNew = errors.New("database schema is newer than this hubctl")

// Apply runs the migrations not yet recorded in schema_migrations, in version order, in
// one transaction, and returns the versions it applied. Either every pending migration
// is applied or none is, so a failed start leaves the schema as it was.
func Apply(ctx context.Context, db *sql.DB, d Dialect, ms []Migration) (applied []int, err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: connect: %w", err)
	}
	defer conn.Close()
	if d.ForeignKeysOff != "" {
		if _, err := conn.ExecContext(ctx, d.ForeignKeysOff); err != nil {
			return nil, fmt.Errorf("migrate: %s: %w", d.ForeignKeysOff, err)
		}
		defer func() {
			if _, ferr := conn.ExecContext(context.WithoutCancel(ctx), d.ForeignKeysOn); ferr != nil {
				err = errors.Join(err, fmt.Errorf("migrate: %s: %w", d.ForeignKeysOn, ferr))
				_ = conn.Raw(func(any) error { return driver.ErrBadConn }) // never reuse it without foreign keys
			}
		}()
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("migrate: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if d.Lock != "" {
		if _, err := tx.ExecContext(ctx, d.Lock); err != nil {
			return nil, fmt.Errorf("migrate: lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at BIGINT NOT NULL
)`); err != nil {
		return nil, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	done, err := versions(ctx, tx)
	if err != nil {
		return nil, err
	}
	known := make(map[int]bool, len(ms))
	for _, m := range ms {
		known[m.Version] = true
	}
	for _, v := range done {
		if !known[v] {
			// A rolling upgrade must not let old code write into a new schema: say what
			// to do rather than only what is wrong.
			return nil, fmt.Errorf("migrate: the database is at schema version %d, this hubctl knows versions up to %d: "+
				"a newer hubctl has migrated it; upgrade this hubctl to that release or later before starting it on this database: %w",
				slices.Max(done), ms[len(ms)-1].Version, ErrSchemaTooNew)
		}
	}
	insert := fmt.Sprintf("INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
		d.Placeholder(1), d.Placeholder(2), d.Placeholder(3))
	for _, m := range ms {
		if slices.Contains(done, m.Version) {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return nil, fmt.Errorf("migrate: apply %04d_%s: %w", m.Version, m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, insert, m.Version, m.Name, time.Now().UTC().UnixNano()); err != nil {
			return nil, fmt.Errorf("migrate: record %04d_%s: %w", m.Version, m.Name, err)
		}
		applied = append(applied, m.Version)
	}
	if d.ForeignKeyCheck != "" && len(applied) > 0 {
		if err := checkForeignKeys(ctx, tx, d.ForeignKeyCheck); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("migrate: commit: %w", err)
	}
	return applied, nil
}

// checkForeignKeys runs query, which lists rows that break a foreign key, and fails when
// it finds any: a migration that ran with foreign keys off must leave none broken.
func checkForeignKeys(ctx context.Context, tx *sql.Tx, query string) error {
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		return fmt.Errorf("migrate: check foreign keys: %w", err)
	}
	defer rows.Close()
	if rows.Next() {
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		for i := range vals {
			vals[i] = new(any)
		}
		_ = rows.Scan(vals...)
		var found []string
		for _, v := range vals {
			found = append(found, fmt.Sprint(*v.(*any)))
		}
		return fmt.Errorf("migrate: a migration broke a foreign key: %s", strings.Join(found, " "))
	}
	return rows.Err()
}

// Applied returns the versions recorded in schema_migrations, ascending.
func Applied(ctx context.Context, db *sql.DB) ([]int, error) {
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback()
	return versions(ctx, tx)
}

func versions(ctx context.Context, tx *sql.Tx) ([]int, error) {
	rows, err := tx.QueryContext(ctx, "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		return nil, fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("migrate: read schema_migrations: %w", err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	return vs, nil
}
