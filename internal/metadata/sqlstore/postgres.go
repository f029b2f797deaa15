package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// The PostgreSQL engine runs on pgx's own pool and protocol rather than through
// database/sql: pgx prepares and caches each statement text per connection, sends
// arrays in binary, and saves database/sql's per-call conversions on the hot path of
// every pull. Only the migration runner, shared with SQLite, gets a database/sql view.

// OpenPostgres connects to the database named by dsn (a postgres:// URL or a
// "key=value" string, as libpq and pgx accept), applies pending migrations and returns
// the store.
//
// The pool holds at most max(8, 2×GOMAXPROCS) connections unless the DSN sets
// pool_max_conns; every replica opens its own pool, so size max_connections on the
// server for replicas × pool size. The application_name defaults to "hubctl" so the
// connections are recognisable in pg_stat_activity.
func OpenPostgres(ctx context.Context, dsn string) (*Store, error) {
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
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open metadata database: %w", err)
	}
	s, err := open(ctx, &pgEngine{p: p, q: pgQuerier{p}}, postgresDialect)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("open metadata database %s/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Database, err)
	}
	return s, nil
}

type pgEngine struct {
	p *pgxpool.Pool
	q querier // the pool as a querier, made once
}

// begin: writes run at READ COMMITTED and take the dialect's row locks; reads run in a
// read-only REPEATABLE READ transaction, one snapshot for all their statements (a
// read-only transaction never fails serialization at this level).
func (e *pgEngine) begin(ctx context.Context, readOnly bool) (txn, error) {
	var opts pgx.TxOptions
	if readOnly {
		opts = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	}
	tx, err := e.p.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return pgTx{pgQuerier{tx}, tx}, nil
}

func (e *pgEngine) pool() querier { return e.q }

// lost drops every idle connection: a restarted server killed them all, and without
// the reset each attempt could draw another dead one from the idle list.
func (e *pgEngine) lost() { e.p.Reset() }

func (e *pgEngine) ping(ctx context.Context) error { return e.p.Ping(ctx) }

// sqlDB is a database/sql view of the pool; closing it returns the connection to the
// pool and leaves the pool open.
func (e *pgEngine) sqlDB() (*sql.DB, func()) {
	db := stdlib.OpenDBFromPool(e.p)
	return db, func() { _ = db.Close() }
}

// close closes the pool, waiting for connections in use to be released.
func (e *pgEngine) close() error {
	e.p.Close()
	return nil
}

// classify sorts an error into a failure kind. Errors of the store's own making
// (metadata.ErrUploadConflict, *metadata.MissingReferenceError, …) are permanent.
func (e *pgEngine) classify(err error) failure {
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

// pgQuerier runs statements on the pool or a transaction.
type pgQuerier struct {
	q interface {
		Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
		Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
		QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	}
}

func (p pgQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := p.q.Exec(ctx, query, args...)
	return tag.RowsAffected(), err
}

func (p pgQuerier) Query(ctx context.Context, query string, args ...any) (rows, error) {
	return p.q.Query(ctx, query, args...)
}

func (p pgQuerier) QueryRow(ctx context.Context, query string, args ...any) row {
	return p.q.QueryRow(ctx, query, args...)
}

type pgTx struct {
	pgQuerier
	tx pgx.Tx
}

func (t pgTx) commit(ctx context.Context) error { return t.tx.Commit(ctx) }

// rollback rolls back even when ctx ended (else pgx closes the connection instead),
// but bounded; a failure here (the connection is gone) is not the error to report.
func (t pgTx) rollback(ctx context.Context) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	_ = t.tx.Rollback(rctx)
	cancel()
}
