// Package postgres implements metadata.Store and accounts.Store on PostgreSQL with pgx,
// for hubctl serve running as several replicas that share one database.
//
// Consistency across replicas comes from the database alone, never from a lock in one
// process. Transactions run at READ COMMITTED and take row locks where a decision must
// hold until commit:
//   - PutManifest and DeleteManifest lock their repository row (FOR NO KEY UPDATE), so
//     the puts and deletes of one repository apply one after another, each seeing the
//     tags the previous one left: the check-refs / insert / move-tag sequence and the
//     PreviousTagDigest it reports form one chain, with no lost update. NO KEY UPDATE,
//     not UPDATE, so blob links into the same repository (whose foreign-key checks take
//     KEY SHARE on that row) do not wait for them.
//   - Creation races (EnsureRepository, LinkBlob, PutBlob) are INSERT … ON CONFLICT DO
//     NOTHING, which waits for the competing insert and then does nothing.
//   - UpdateUpload is a single compare-and-set UPDATE.
//
// Row locks were chosen over SERIALIZABLE: the conflicts are known (one repository's
// tags), waiting on a row lock costs nothing while nobody contends, and a put never
// fails because of an unrelated concurrent read, whereas SERIALIZABLE would abort and
// retry whole transactions under exactly the load (many CI jobs pushing :latest) that
// matters. Transient failures (deadlock, serialization failure, a connection cut by a
// server restart) are retried a bounded number of times; see retry.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/metadata/migrate"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations returns the schema migrations of the PostgreSQL store, in version order.
// They mirror the SQLite store's, version for version.
func Migrations() ([]migrate.Migration, error) {
	return migrate.Load(migrationFS, "migrations")
}

// Store is the PostgreSQL metadata and accounts store. It is safe for concurrent use,
// and any number of Stores, in any number of processes, may share one database.
type Store struct {
	pool *pgxpool.Pool
	// migrated lists the versions this Open applied (none when another replica had),
	// so tests can check that concurrent starts migrate once.
	migrated []int
}

var (
	_ metadata.Store = (*Store)(nil)
	_ accounts.Store = (*Store)(nil)
)

// Open connects to the database named by dsn (a postgres:// URL or a "key=value" string,
// as libpq and pgx accept), applies pending migrations and returns the store.
//
// The pool holds at most max(8, 2×GOMAXPROCS) connections unless the DSN sets
// pool_max_conns; every replica opens its own pool, so size max_connections on the
// server for replicas × pool size. The application_name defaults to "hubctl" so the
// connections are recognisable in pg_stat_activity.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message quotes the DSN with the password redacted on a best-effort basis;
		// keep only the reason, as the DSN holds a secret.
		var pe *pgconn.ParseConfigError
		if errors.As(err, &pe) && errors.Unwrap(pe) != nil {
			return nil, fmt.Errorf("open metadata database: invalid PostgreSQL DSN: %w", errors.Unwrap(pe))
		}
		return nil, errors.New("open metadata database: invalid PostgreSQL DSN")
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = int32(max(8, 2*runtime.GOMAXPROCS(0)))
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "hubctl"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open metadata database: %w", err)
	}
	s := &Store{pool: pool}
	if s.migrated, err = s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open metadata database %s/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Database, err)
	}
	return s, nil
}

// migrate applies pending migrations through the shared runner. Its PostgreSQL dialect
// takes a transaction-scoped advisory lock first, so replicas starting together queue
// and each finds the work done by the first.
func (s *Store) migrate(ctx context.Context) ([]int, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	var applied []int
	err = s.retry(ctx, func() error {
		// A database/sql view of the pool, because the runner is shared with SQLite;
		// closing it returns the connection to the pool and leaves the pool open.
		db := stdlib.OpenDBFromPool(s.pool)
		defer db.Close()
		var err error
		applied, err = migrate.Apply(ctx, db, migrate.PostgreSQL, ms)
		return err
	})
	return applied, err
}

// Close closes the pool, waiting for connections in use to be released.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Ping checks that a connection can be had and answers. Dead connections left by a
// server restart are replaced rather than reported, through retry.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.retry(ctx, func() error { return s.pool.Ping(ctx) }); err != nil {
		return fmt.Errorf("ping metadata database: %w", err)
	}
	return nil
}

// querier is what a statement runs on: the pool or a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// write runs fn in a READ COMMITTED transaction and commits when fn returns nil,
// retrying the whole transaction on transient failures. fn may run more than once, so
// it must set its results afresh on every call.
func (s *Store) write(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return s.retry(ctx, func() error { return s.inTx(ctx, pgx.TxOptions{}, fn) })
}

// read runs fn in a read-only REPEATABLE READ transaction, so its queries see one
// snapshot (a read-only transaction never fails serialization at this level).
func (s *Store) read(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return s.retry(ctx, func() error {
		return s.inTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
	})
}

func (s *Store) inTx(ctx context.Context, opts pgx.TxOptions, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		// Roll back even when ctx ended (else pgx closes the connection instead), but
		// bounded; a failure here (the connection is gone) is not the error to report.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = tx.Rollback(rctx)
		cancel()
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return &commitError{err}
	}
	return nil
}

// commitError marks a failed COMMIT: unless the server said it rolled back, the
// transaction may or may not have been applied, so it must not be run again.
type commitError struct{ err error }

func (e *commitError) Error() string { return "commit: " + e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

// Retry policy: attempts in all, and the first pause, doubled each time with jitter (25,
// 50, 100, 200 ms: under a second in all). That rides out deadlocks and a pool full of
// connections killed by a server restart; a database that stays down is reported
// instead of hanging the request.
const (
	maxAttempts = 5
	firstPause  = 25 * time.Millisecond
)

// retry runs fn until it succeeds, fails permanently, the context ends or maxAttempts
// is reached. When a connection was lost it also resets the pool: a restarted server
// killed every connection, and without the reset each attempt could draw another dead
// one from the idle list.
func (s *Store) retry(ctx context.Context, fn func() error) error {
	pause := firstPause
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		kind := classify(err)
		if kind == connectionLost {
			s.pool.Reset()
		}
		var ce *commitError
		if errors.As(err, &ce) && kind != conflict {
			return err
		}
		if kind == permanent || ctx.Err() != nil {
			return err
		}
		if attempt == maxAttempts {
			if kind == connectionLost {
				// Still unreachable: callers answer 503 so clients retry later.
				return fmt.Errorf("%w: %w", metadata.ErrUnavailable, err)
			}
			return err
		}
		t := time.NewTimer(pause/2 + rand.N(pause))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		pause *= 2
	}
}

// failure kinds, for retry.
const (
	permanent      = iota
	conflict       // the transaction lost a race and rolled back: run it again
	connectionLost // the connection or the server went away: reconnect and run it again
)

// classify sorts an error into a failure kind. Errors of the store's own making
// (metadata.ErrUploadConflict, *metadata.MissingReferenceError, …) are permanent.
func classify(err error) int {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return permanent
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "40001", pe.Code == "40P01": // serialization failure, deadlock
			return conflict
		case pe.Code == "53300": // too many connections: another replica will release one
			return conflict
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			pe.Code == "57P01", // admin shutdown: terminated by a restart or pg_terminate_backend
			pe.Code == "57P02", // crash shutdown
			pe.Code == "57P03": // cannot connect now: starting up or recovering
			return connectionLost
		}
		return permanent
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "conn closed") {
		return connectionLost
	}
	return permanent
}

// isUniqueViolation reports a unique or primary-key violation.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
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

// limit maps the interface's "n <= 0 means no limit" onto LIMIT NULL, which is no limit.
func limit(n int) *int64 {
	if n <= 0 {
		return nil
	}
	v := int64(n)
	return &v
}

// repoID returns the id of a repository, pgx.ErrNoRows when it does not exist.
func repoID(ctx context.Context, q querier, name string) (int64, error) {
	var id int64
	err := q.QueryRow(ctx, "SELECT id FROM repositories WHERE name = $1", name).Scan(&id)
	return id, err
}

// ensureRepo returns the id of a repository, creating it inside tx. With lock, the row
// is locked FOR NO KEY UPDATE until tx ends: the serialisation point of the manifest
// puts and deletes of one repository.
func ensureRepo(ctx context.Context, tx pgx.Tx, name string, lock bool) (int64, error) {
	if name == "" {
		return 0, errors.New("repository name is empty")
	}
	sel := "SELECT id FROM repositories WHERE name = $1"
	if lock {
		sel += " FOR NO KEY UPDATE"
	}
	// Look first: the repository nearly always exists, and a SELECT writes nothing,
	// where an upsert would write a row version on every push.
	for range 3 {
		var id int64
		err := tx.QueryRow(ctx, sel, name).Scan(&id)
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return 0, fmt.Errorf("ensure repository %s: %w", name, err)
		}
		// The visibility of a new repository is its namespace's default, chosen here so
		// every path creating a repository (a blob link, a manifest push, an explicit
		// create) applies it. A row inserted by this transaction is ours alone until
		// commit, so it needs no further lock.
		err = tx.QueryRow(ctx, `INSERT INTO repositories (name, created_at, visibility)
			VALUES ($1, $2, COALESCE((SELECT default_visibility FROM namespaces WHERE name = $3), 'private'))
			ON CONFLICT (name) DO NOTHING
			RETURNING id`, name, nanos(time.Time{}), namespaceOf(name)).Scan(&id)
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return 0, fmt.Errorf("ensure repository %s: %w", name, err)
		}
		// Another transaction inserted it between our SELECT and INSERT, and has
		// committed (ON CONFLICT waits for it): the next SELECT, a new snapshot at READ
		// COMMITTED, sees it.
	}
	return 0, fmt.Errorf("ensure repository %s: created and deleted concurrently, try again", name)
}

// namespaceOf returns the first path component of a repository name: the user or
// organisation it belongs to.
func namespaceOf(repository string) string {
	ns, _, _ := strings.Cut(repository, "/")
	return ns
}

func collectStrings(rows pgx.Rows) ([]string, error) {
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if out == nil {
		out = []string{}
	}
	return out, err
}
