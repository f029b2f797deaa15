// Package sqlstore is the hub's one SQL store: it implements metadata.Store and
// accounts.Store on SQLite (the default: one file, pure Go, CGO_ENABLED=0) and on
// PostgreSQL (for replicas sharing one database), with every query and transaction
// written once.
//
// Statements use PostgreSQL's numbered placeholders ($1, $2 …), which SQLite reads as
// parameters named "$1", "$2" and the modernc driver binds by that number, so the same
// text runs on both. What really differs between the databases lives in dialect.go
// (lock clauses, list parameters, the clock, error classes) and in the two engines,
// sqlite.go and postgres.go (connection setup, transactions). docs/design/sql-store.md
// says why, and how to add a table.
//
// Consistency comes from the database alone, never from a lock in one process.
//   - SQLite allows one writer at a time: every write transaction begins IMMEDIATE on
//     the single write connection, so write transactions run one after another and a
//     lock clause has nothing to add.
//   - PostgreSQL runs writes at READ COMMITTED and takes row locks where a decision must
//     hold until commit. PutManifest and DeleteManifest lock their repository row (FOR
//     NO KEY UPDATE), so the puts and deletes of one repository apply one after another,
//     each seeing the tags the previous one left; NO KEY UPDATE, not UPDATE, so blob
//     links into the same repository (whose foreign-key checks take KEY SHARE on that
//     row) do not wait for them. Creation races are INSERT … ON CONFLICT, which waits
//     for the competing insert. UpdateUpload is a compare-and-set UPDATE. Row locks were
//     chosen over SERIALIZABLE: the conflicts are known (one repository's tags), waiting
//     on a row lock costs nothing while nobody contends, and a put never fails because
//     of an unrelated concurrent read, whereas SERIALIZABLE would abort and retry whole
//     transactions under exactly the load (many CI jobs pushing :latest) that matters.
//     Transient failures (deadlock, serialization failure, a connection cut by a server
//     restart) are retried a bounded number of times; see retry.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/metadata/migrate"
)

// Store is the metadata and accounts store on one SQL database. It is safe for
// concurrent use; any number of Stores, in any number of processes, may share one
// database.
type Store struct {
	e engine
	d *dialect
	// limits are the repository limits PutManifest enforces (SetRepositoryLimits).
	limits atomic.Pointer[metadata.RepositoryLimits]
	// hold is how long tag history keeps a manifest from GC and retention
	// (SetTagHistoryHold), as a time.Duration.
	hold atomic.Int64
	// migrated lists the versions this Open applied (none when another process had),
	// so tests can check that concurrent starts migrate once.
	migrated []int
	// obs, when set, hears of every transaction (SetObserver).
	obs func(ctx context.Context, kind string, start time.Time, failed bool)
}

// SetObserver makes every transaction report, when it ends, the caller's context, its
// kind ("read", "write" or "single"), when it started (its duration counts retries)
// and whether the database failed it (not a not-found or a refusal of the caller's
// request): the server's metrics and trace spans. Call it before use.
func (s *Store) SetObserver(fn func(ctx context.Context, kind string, start time.Time, failed bool)) {
	s.obs = fn
}

// observe reports one transaction to the observer.
func (s *Store) observe(ctx context.Context, kind string, start time.Time, err error) error {
	var ce *commitError
	failed := err != nil && !isNoRows(err) &&
		(s.e.classify(err) != permanent || errors.As(err, &ce) || errors.Is(err, metadata.ErrUnavailable))
	s.obs(ctx, kind, start, failed)
	return err
}

var (
	_ metadata.Store = (*Store)(nil)
	_ accounts.Store = (*Store)(nil)
)

// engine is one database's connection handling; the Store's queries run through it.
type engine interface {
	// begin starts a transaction: a read-only snapshot, or a read-write transaction
	// that the dialect's lock clauses make safe against concurrent writers.
	begin(ctx context.Context, readOnly bool) (txn, error)
	// pool runs single statements outside a transaction (reads only).
	pool() querier
	// classify sorts an error into a failure kind, for retry.
	classify(err error) failure
	// lost is called when a connection was found dead, before a retry.
	lost()
	ping(ctx context.Context) error
	// sqlDB is a database/sql view of the database for the migration runner; release
	// gives back what it holds (the database stays open).
	sqlDB() (db *sql.DB, release func())
	close() error
}

// txn is a transaction of either database.
type txn interface {
	querier
	commit(ctx context.Context) error
	rollback(ctx context.Context)
}

// querier runs statements: a transaction or, outside one, the pool.
type querier interface {
	Exec(ctx context.Context, query string, args ...any) (rowsAffected int64, err error)
	Query(ctx context.Context, query string, args ...any) (rows, error)
	QueryRow(ctx context.Context, query string, args ...any) row
}

// rows is a result set; Close may be called more than once.
type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// row is the result of QueryRow: Scan returns an error wrapping sql.ErrNoRows when
// there was none (pgx.ErrNoRows wraps it too).
type row interface{ Scan(dest ...any) error }

// failure kinds, for retry.
type failure int

const (
	permanent      failure = iota
	conflict               // the transaction lost a race and rolled back: run it again
	connectionLost         // the connection or the server went away: reconnect and run it again
)

// open finishes opening a store on e: it applies the pending migrations of d.
func open(ctx context.Context, e engine, d *dialect) (*Store, error) {
	s := &Store{e: e, d: d}
	s.limits.Store(&metadata.RepositoryLimits{})
	s.hold.Store(int64(metadata.DefaultTagHistoryHold))
	ms, err := Migrations(d.name)
	if err != nil {
		return nil, err
	}
	err = s.retry(ctx, func() error {
		db, release := e.sqlDB()
		defer release()
		var err error
		s.migrated, err = migrate.Apply(ctx, db, d.migrate, ms)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Close closes the store's connections, waiting for statements in flight.
func (s *Store) Close() error { return s.e.close() }

// Ping checks that reads and writes can proceed. Dead connections left by a server
// restart are replaced rather than reported.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.retry(ctx, func() error { return s.e.ping(ctx) }); err != nil {
		return fmt.Errorf("ping metadata database: %w", err)
	}
	return nil
}

// write runs fn in a read-write transaction and commits when fn returns nil, retrying
// the whole transaction on transient failures. fn may run more than once, so it must
// set its results afresh on every call.
func (s *Store) write(ctx context.Context, fn func(q querier) error) error {
	if s.obs != nil {
		start := time.Now()
		return s.observe(ctx, "write", start, s.retry(ctx, func() error { return s.inTx(ctx, false, fn) }))
	}
	return s.retry(ctx, func() error { return s.inTx(ctx, false, fn) })
}

// read runs fn in a read-only transaction, so its statements see one snapshot.
func (s *Store) read(ctx context.Context, fn func(q querier) error) error {
	if s.obs != nil {
		start := time.Now()
		return s.observe(ctx, "read", start, s.retry(ctx, func() error { return s.inTx(ctx, true, fn) }))
	}
	return s.retry(ctx, func() error { return s.inTx(ctx, true, fn) })
}

// do runs fn's reads on the pool, each statement on its own, retrying transient
// failures: the path of single-statement lookups. The first attempt runs outside
// retry, which costs an allocation that the pull path need not pay when it succeeds.
func (s *Store) do(ctx context.Context, fn func(q querier) error) error {
	if s.obs != nil {
		start := time.Now()
		return s.observe(ctx, "single", start, s.doOnce(ctx, fn))
	}
	return s.doOnce(ctx, fn)
}

func (s *Store) doOnce(ctx context.Context, fn func(q querier) error) error {
	err := fn(s.e.pool())
	if err == nil || isNoRows(err) || s.e.classify(err) == permanent {
		return err
	}
	return s.retry(ctx, func() error { return fn(s.e.pool()) })
}

func (s *Store) inTx(ctx context.Context, readOnly bool, fn func(q querier) error) error {
	tx, err := s.e.begin(ctx, readOnly)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.rollback(ctx)
		return err
	}
	if err := tx.commit(ctx); err != nil {
		return &commitError{err}
	}
	return nil
}

// commitError marks a failed COMMIT: unless the database said it rolled back, the
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
// is reached.
func (s *Store) retry(ctx context.Context, fn func() error) error {
	pause := firstPause
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		kind := s.e.classify(err)
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			kind = permanent
		}
		if kind == connectionLost {
			s.e.lost()
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

// nanos is how times are stored: UTC unix nanoseconds, sortable as integers. A zero
// time means "now", so callers need not stamp every record.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UTC().UnixNano()
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// nullNanos stores a zero time as NULL: "never" for expiry, last use and revocation.
func nullNanos(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	n := t.UTC().UnixNano()
	return &n
}

func fromNullNanos(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return fromNanos(*n)
}

// namespaceOf returns the first path component of a repository name: the user or
// organisation it belongs to.
func namespaceOf(repository string) string {
	ns, _, _ := strings.Cut(repository, "/")
	return ns
}

// collect returns a function that scans every row of a Query's result with scan and
// closes it; the slice is empty, never nil, when there are none. It is shaped for
// collect(scan)(q.Query(…)).
func collect[T any](scan func(r row) (T, error)) func(rows, error) ([]T, error) {
	return func(rs rows, err error) ([]T, error) {
		if err != nil {
			return nil, err
		}
		defer rs.Close()
		out := []T{}
		for rs.Next() {
			v, err := scan(rs)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, rs.Err()
	}
}

// scanString scans a row of one text column.
func scanString(r row) (string, error) {
	var v string
	err := r.Scan(&v)
	return v, err
}

// isNoRows reports a QueryRow that found nothing.
func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// notFound maps "no rows" to accounts.ErrNotFound and passes other errors through.
func notFound(err error) error {
	if isNoRows(err) {
		return accounts.ErrNotFound
	}
	return err
}

// mustAffect turns the result of an UPDATE or DELETE that matched no row into
// accounts.ErrNotFound.
func mustAffect(n int64, err error) error {
	if err != nil {
		return err
	}
	if n == 0 {
		return accounts.ErrNotFound
	}
	return nil
}

// uniqueAs maps a unique or primary-key violation to sentinel and passes other errors
// through. Where a name is checked first this is only a safety net; for token names
// and hashes the unique indexes are the check.
func (s *Store) uniqueAs(err error, sentinel error) error {
	if err != nil && s.d.isUniqueViolation(err) {
		return fmt.Errorf("%w: %v", sentinel, err)
	}
	return err
}
