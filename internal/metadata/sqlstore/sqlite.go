package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// The SQLite engine keeps two pools on the same file: a single write connection whose
// transactions begin IMMEDIATE (they take the write lock up front, so two writers never
// both hold a read snapshot and then deadlock upgrading it), and a pool of query-only
// connections that, thanks to WAL, read a committed snapshot without waiting for the
// writer. Writers inside this process queue in database/sql for the one connection;
// writers in other processes wait in busy_timeout.

// busyTimeout bounds how long a statement waits for another process's lock before
// failing with SQLITE_BUSY. It only matters across processes; in-process writers queue
// for the single write connection instead.
const busyTimeout = 10 * time.Second

// maxCachedStatements bounds the read pool's prepared statements. The store's queries
// are a fixed set of texts, far fewer than this; the bound only guards against a text
// built from data.
const maxCachedStatements = 256

// OpenSQLite opens (creating if needed, mode 0600) the SQLite database at path, applies
// pending migrations and returns the store. It uses the pure-Go modernc.org/sqlite
// driver, so hubctl builds with CGO_ENABLED=0.
func OpenSQLite(ctx context.Context, path string) (*Store, error) {
	// Create the file ourselves so its mode is 0600 rather than SQLite's 0644: it holds
	// every repository's metadata. SQLite gives the -wal and -shm files the same mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open metadata database %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("open metadata database %s: %w", path, err)
	}

	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
	q.Set("_foreign_keys", "on")
	// WAL lets readers run alongside the writer. With WAL, synchronous=NORMAL cannot
	// corrupt the database: a commit is appended to the WAL without an fsync and the WAL
	// is fsynced at checkpoints. A process crash loses nothing; only an OS crash or
	// power cut can roll back the last commits, which a client sees as a push to retry.
	// That removes an fsync from every blob link, manifest put and upload PATCH.
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL")
	q.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open metadata database %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	e := &sqliteEngine{w: w}

	// The write connection goes first: it switches the file to WAL, which the read
	// connections then inherit, and it runs the migrations before anyone reads.
	s, err := open(ctx, e, sqliteDialect)
	if err == nil {
		err = e.openReaders(path)
	}
	if err != nil {
		_ = e.close()
		return nil, fmt.Errorf("open metadata database %s: %w", path, err)
	}
	return s, nil
}

type sqliteEngine struct {
	w *sql.DB // exactly one connection: all writes
	r *sql.DB // query-only pool: all reads outside a write transaction

	// stmts caches statements prepared on the read pool, by text: the lookups of every
	// pull run here, and preparing costs more than running them.
	mu    sync.RWMutex
	stmts map[string]*sql.Stmt
}

func (e *sqliteEngine) openReaders(path string) error {
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
	q.Set("_foreign_keys", "on")
	// A reader must never write; query_only turns a mistake into an error instead of a
	// second writer contending with the first.
	q.Set("_query_only", "on")
	r, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return err
	}
	n := max(4, 2*runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	r.SetConnMaxIdleTime(5 * time.Minute)
	e.r = r
	e.stmts = map[string]*sql.Stmt{}
	return nil
}

func (e *sqliteEngine) begin(ctx context.Context, readOnly bool) (txn, error) {
	db := e.w
	if readOnly {
		db = e.r
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return sqlTx{tx}, nil
}

func (e *sqliteEngine) pool() querier { return sqlitePool{e} }

// classify: SQLite has no transient failures worth a retry. A lock held by another
// process past busy_timeout is reported, not waited for again.
func (e *sqliteEngine) classify(error) failure { return permanent }

func (e *sqliteEngine) lost() {}

// ping checks both pools answer a query: readiness means reads and writes can proceed.
func (e *sqliteEngine) ping(ctx context.Context) error {
	var one int
	if err := e.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if err := e.w.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

func (e *sqliteEngine) sqlDB() (*sql.DB, func()) { return e.w, func() {} }

// close closes both pools; statements in flight finish first.
func (e *sqliteEngine) close() error {
	var errs []error
	e.mu.Lock()
	for _, st := range e.stmts {
		errs = append(errs, st.Close())
	}
	e.stmts = nil
	e.mu.Unlock()
	if e.r != nil {
		errs = append(errs, e.r.Close())
	}
	errs = append(errs, e.w.Close())
	return errors.Join(errs...)
}

// stmt returns the read pool's prepared statement for query, preparing it on first
// use, or nil when the cache is full (the caller then runs the text unprepared).
func (e *sqliteEngine) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	e.mu.RLock()
	st, n := e.stmts[query], len(e.stmts)
	e.mu.RUnlock()
	if st != nil || n >= maxCachedStatements {
		return st, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if st := e.stmts[query]; st != nil || len(e.stmts) >= maxCachedStatements {
		return st, nil
	}
	st, err := e.r.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	e.stmts[query] = st
	return st, nil
}

// sqlitePool runs single reads on the read pool through prepared statements.
type sqlitePool struct{ e *sqliteEngine }

func (p sqlitePool) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return 0, errors.New("sqlstore: a write outside a transaction")
}

func (p sqlitePool) Query(ctx context.Context, query string, args ...any) (rows, error) {
	st, err := p.e.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	var rs *sql.Rows
	if st != nil {
		rs, err = st.QueryContext(ctx, args...)
	} else {
		rs, err = p.e.r.QueryContext(ctx, query, args...)
	}
	if err != nil {
		return nil, err
	}
	return sqlRows{rs}, nil
}

func (p sqlitePool) QueryRow(ctx context.Context, query string, args ...any) row {
	st, err := p.e.stmt(ctx, query)
	switch {
	case err != nil:
		return errRow{err}
	case st == nil:
		return p.e.r.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// sqlTx is a database/sql transaction.
type sqlTx struct{ tx *sql.Tx }

func (t sqlTx) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := t.tx.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (t sqlTx) Query(ctx context.Context, query string, args ...any) (rows, error) {
	rs, err := t.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rs}, nil
}

func (t sqlTx) QueryRow(ctx context.Context, query string, args ...any) row {
	return t.tx.QueryRowContext(ctx, query, args...)
}

func (t sqlTx) commit(context.Context) error { return t.tx.Commit() }
func (t sqlTx) rollback(context.Context)     { _ = t.tx.Rollback() }

// sqlRows adapts *sql.Rows, whose Close returns an error that Err reports anyway.
type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }

// errRow is a row whose statement could not be prepared.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
