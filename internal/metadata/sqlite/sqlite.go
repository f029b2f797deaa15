// Package sqlite implements metadata.Store and accounts.Store on an SQLite file with the pure-Go
// modernc.org/sqlite driver, so hubctl builds with CGO_ENABLED=0.
//
// SQLite allows one writer at a time. The store keeps two pools on the same file: a
// single write connection whose transactions begin IMMEDIATE (they take the write lock
// up front, so two writers never both hold a read snapshot and then deadlock upgrading
// it), and a pool of query-only connections that, thanks to WAL, read a committed
// snapshot without waiting for the writer. Writers inside this process queue in
// database/sql for the one connection; writers in other processes wait in busy_timeout.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/metadata/migrate"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations returns the schema migrations of the SQLite store, in version order.
func Migrations() ([]migrate.Migration, error) {
	return migrate.Load(migrationFS, "migrations")
}

// busyTimeout bounds how long a statement waits for another process's lock before
// failing with SQLITE_BUSY. It only matters across processes; in-process writers queue
// for the single write connection instead.
const busyTimeout = 10 * time.Second

// Store is the SQLite metadata store. It is safe for concurrent use.
type Store struct {
	w *sql.DB // exactly one connection: all writes
	r *sql.DB // query-only pool: all reads outside a write transaction

	// Prepared once on the read pool: these run on every pull.
	getManifest      *sql.Stmt
	getManifestByTag *sql.Stmt
	resolveTag       *sql.Stmt
	repositoryBlob   *sql.Stmt
	getBlob          *sql.Stmt
}

var (
	_ metadata.Store = (*Store)(nil)
	_ accounts.Store = (*Store)(nil)
)

// Open opens (creating if needed, mode 0600) the database at path, applies pending
// migrations and returns the store.
func Open(ctx context.Context, path string) (*Store, error) {
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

	s := &Store{w: w}
	if err := s.open(ctx, path); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("open metadata database %s: %w", path, err)
	}
	return s, nil
}

func (s *Store) open(ctx context.Context, path string) error {
	// The write connection goes first: it switches the file to WAL, which the read
	// connections then inherit, and it runs the migrations before anyone reads.
	ms, err := Migrations()
	if err != nil {
		return err
	}
	if _, err := migrate.Apply(ctx, s.w, migrate.SQLite, ms); err != nil {
		return err
	}

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
	s.r = r
	n := max(4, 2*runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	r.SetConnMaxIdleTime(5 * time.Minute)

	for _, p := range []struct {
		stmt  **sql.Stmt
		query string
	}{
		{&s.getManifest, `SELECT m.media_type, m.artifact_type, m.size, m.payload, m.subject, m.annotations, m.created_at
			FROM manifests m JOIN repositories r ON r.id = m.repo_id
			WHERE r.name = ? AND m.digest = ?`},
		{&s.getManifestByTag, `SELECT m.digest, m.media_type, m.artifact_type, m.size, m.payload, m.subject, m.annotations, m.created_at
			FROM tags t
			JOIN repositories r ON r.id = t.repo_id
			JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest
			WHERE r.name = ? AND t.name = ?`},
		{&s.resolveTag, `SELECT t.digest FROM tags t JOIN repositories r ON r.id = t.repo_id
			WHERE r.name = ? AND t.name = ?`},
		{&s.repositoryBlob, `SELECT b.size, b.location, b.created_at
			FROM repository_blobs rb
			JOIN repositories r ON r.id = rb.repo_id
			JOIN blobs b ON b.digest = rb.digest
			WHERE r.name = ? AND rb.digest = ? AND b.size >= 0`},
		{&s.getBlob, `SELECT size, location, created_at FROM blobs WHERE digest = ? AND size >= 0`},
	} {
		if *p.stmt, err = r.PrepareContext(ctx, p.query); err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
	}
	return nil
}

// Close closes both pools; statements in flight finish first.
func (s *Store) Close() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.getManifest, s.getManifestByTag, s.resolveTag, s.repositoryBlob, s.getBlob} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	return errors.Join(errs...)
}

// Ping checks both pools answer a query: readiness means reads and writes can proceed.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("ping metadata database (read): %w", err)
	}
	if err := s.w.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("ping metadata database (write): %w", err)
	}
	return nil
}

// write runs fn in a write transaction (BEGIN IMMEDIATE on the single write
// connection) and commits when fn returns nil.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// read runs fn in a transaction on the read pool, so several queries see one
// snapshot; it always rolls back, there being nothing to commit.
func (s *Store) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.r.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	return fn(tx)
}

// nanos is how times are stored: UTC unix nanoseconds, sortable as integers. A zero
// time means "now", so callers need not stamp every record.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UTC().UnixNano()
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// limit maps the interface's "n <= 0 means no limit" onto SQLite's LIMIT -1.
func limit(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}

// repoID returns the id of a repository, sql.ErrNoRows when it does not exist.
func repoID(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, name string) (int64, error) {
	var id int64
	err := q.QueryRowContext(ctx, "SELECT id FROM repositories WHERE name = ?", name).Scan(&id)
	return id, err
}

// ensureRepo returns the id of a repository, creating it inside tx.
func ensureRepo(ctx context.Context, tx *sql.Tx, name string) (int64, error) {
	if name == "" {
		return 0, errors.New("repository name is empty")
	}
	var id int64
	// DO UPDATE with a no-op instead of DO NOTHING so RETURNING yields the id of an
	// existing row too, in one statement. The visibility of a new repository is its
	// namespace's default, chosen here so that every path creating a repository (a blob
	// link, a manifest push, an explicit create) applies it; the no-op update leaves the
	// visibility of an existing repository alone.
	err := tx.QueryRowContext(ctx, `INSERT INTO repositories (name, created_at, visibility)
		VALUES (?, ?, COALESCE((SELECT default_visibility FROM namespaces WHERE name = ?), 'private'))
		ON CONFLICT (name) DO UPDATE SET name = excluded.name
		RETURNING id`, name, nanos(time.Time{}), namespaceOf(name)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("ensure repository %s: %w", name, err)
	}
	return id, nil
}
