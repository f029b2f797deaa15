package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"github.com/hubctl/hubctl/internal/metadata/storetest"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/pgtest"
)

// TestPostgresConcurrentOpen starts four replicas at once on an empty database: every
// Open must succeed and exactly one must apply the migrations (the advisory lock makes
// the others wait and then find the work done).
func TestPostgresConcurrentOpen(t *testing.T) {
	dsn := pgtest.Start(t)
	const n = 4
	stores := make([]*Store, n)
	errs := storetest.Concurrently(n, func(i int) error {
		var err error
		stores[i], err = OpenPostgres(t.Context(), dsn)
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	ms, err := Migrations("postgres")
	if err != nil {
		t.Fatal(err)
	}
	migrators := 0
	for i, s := range stores {
		switch {
		case slices.Equal(s.migrated, versions(ms)):
			migrators++
		case len(s.migrated) != 0:
			t.Errorf("store %d applied %v: a partial set", i, s.migrated)
		}
	}
	if migrators != 1 {
		t.Fatalf("%d stores applied the migrations, want exactly 1", migrators)
	}
	if got := applied(t, stores[0]); !slices.Equal(got, versions(ms)) {
		t.Fatalf("applied = %v, want %v", got, versions(ms))
	}
}

// TestPostgresOpenErrorsHideThePassword: a DSN holds a secret, and Open's errors end up
// in logs.
func TestPostgresOpenErrorsHideThePassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://hubctl:s3cret-pw@127.0.0.1:1/db?pool_max_conns=nope",
		"postgres://hubctl:s3cret-pw@127.0.0.1:1/db?connect_timeout=5",   // nothing listens on port 1
		"host=127.0.0.1 port=1 user=hubctl password=s3cret-pw sslmode=x", // bad sslmode
	} {
		s, err := OpenPostgres(t.Context(), dsn)
		if err == nil {
			s.Close()
			t.Fatalf("Open(%s) succeeded", dsn)
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("Open error reveals the password: %v", err)
		}
	}
}

// TestPostgresNameColumnsSortByBytes checks every name and digest column is COLLATE
// "C" in the schema itself, whatever the database's default collation: listings must
// come out in byte order, as SQLite returns them.
func TestPostgresNameColumnsSortByBytes(t *testing.T) {
	s, _ := openFresh(t, backends[1])
	want := map[string][]string{
		"repositories":     {"name"},
		"blobs":            {"digest"},
		"repository_blobs": {"digest"},
		"manifests":        {"digest", "subject"},
		"manifest_refs":    {"manifest_digest", "ref_digest"},
		"tags":             {"name", "digest"},
		"uploads":          {"id"},
		"users":            {"name", "owner"},
		"namespaces":       {"name"},
		"teams":            {"org", "name"},
		"team_members":     {"org", "team", "username"},
		"team_grants":      {"org", "team", "repository"},
		"access_tokens":    {"username", "name"},
	}
	for table, cols := range want {
		for _, col := range cols {
			var collation *string
			err := s.do(t.Context(), func(q querier) error {
				return q.QueryRow(t.Context(), `SELECT collation_name FROM information_schema.columns
					WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2`, table, col).Scan(&collation)
			})
			if err != nil {
				t.Fatalf("%s.%s: %v", table, col, err)
			}
			if collation == nil || *collation != "C" {
				t.Errorf("%s.%s collation = %v, want C", table, col, collation)
			}
		}
	}
}

func TestPostgresClassify(t *testing.T) {
	e := &pgEngine{}
	for _, tc := range []struct {
		name string
		err  error
		want failure
	}{
		{"deadlock", &pgconn.PgError{Code: "40P01"}, conflict},
		{"serialization", fmt.Errorf("put: %w", &pgconn.PgError{Code: "40001"}), conflict},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, connectionLost},
		{"starting up", &pgconn.PgError{Code: "57P03"}, connectionLost},
		{"connection failure", &pgconn.PgError{Code: "08006"}, connectionLost},
		{"unique violation", &pgconn.PgError{Code: "23505"}, permanent},
		{"unexpected EOF", fmt.Errorf("failed to receive message: %w", io.ErrUnexpectedEOF), connectionLost},
		{"missing reference", &metadata.MissingReferenceError{Digest: digest.FromString("x")}, permanent},
		{"upload conflict", metadata.ErrUploadConflict, permanent},
	} {
		if got := e.classify(tc.err); got != tc.want {
			t.Errorf("classify(%s) = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestRetry: a COMMIT whose connection broke may have been applied, so the transaction
// must not run again; a cancelled context is never retried.
func TestPostgresRetry(t *testing.T) {
	s, _ := openFresh(t, backends[1])
	for _, tc := range []struct {
		err   error
		calls int
	}{
		{&commitError{io.ErrUnexpectedEOF}, 1},
		{&commitError{&pgconn.PgError{Code: "40001"}}, maxAttempts}, // rolled back for sure
		{io.ErrUnexpectedEOF, maxAttempts},
		{metadata.ErrUploadConflict, 1},
		{fmt.Errorf("x: %w: %w", context.Canceled, io.ErrUnexpectedEOF), 1},
	} {
		calls := 0
		err := s.retry(t.Context(), func() error { calls++; return tc.err })
		if !errors.Is(err, tc.err) || calls != tc.calls {
			t.Errorf("retry of %v: %d calls, error %v; want %d calls", tc.err, calls, err, tc.calls)
		}
	}
}

// TestPostgresServerRestart restarts PostgreSQL under an open Store, whose pool then
// holds only dead connections: the next calls must succeed without reopening the Store.
func TestPostgresServerRestart(t *testing.T) {
	s, _ := openFresh(t, backends[1])
	ctx := t.Context()
	m := manifest("app", "before")
	if _, err := s.PutManifest(ctx, m, metadata.References{}, "latest"); err != nil {
		t.Fatal(err)
	}
	// Fill the pool with several idle connections, all of which the restart kills.
	if err := errors.Join(storetest.Concurrently(8, func(int) error {
		_, err := s.ResolveTag(ctx, "app", "latest")
		return err
	})...); err != nil {
		t.Fatal(err)
	}
	if idle := s.e.(*pgEngine).p.Stat().IdleConns(); idle < 2 {
		t.Logf("only %d idle connections before the restart", idle)
	}

	pgtest.Restart(t)

	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after restart: %v", err)
	}
	pgtest.Restart(t)
	// Reads and writes, each the first call after a restart in turn.
	if d, err := s.ResolveTag(ctx, "app", "latest"); err != nil || d != m.Digest {
		t.Fatalf("ResolveTag after restart = %s, %v; want %s", d, err, m.Digest)
	}
	pgtest.Restart(t)
	after := manifest("app", "after")
	res, err := s.PutManifest(ctx, after, metadata.References{}, "latest")
	if err != nil {
		t.Fatalf("PutManifest after restart: %v", err)
	}
	if res.PreviousTagDigest != m.Digest || !res.Created {
		t.Fatalf("PutManifest after restart = %+v", res)
	}
	// Concurrent calls after a restart each draw a dead connection at first.
	pgtest.Restart(t)
	if err := errors.Join(storetest.Concurrently(8, func(i int) error {
		_, err := s.GetManifestByTag(ctx, "app", "latest")
		return err
	})...); err != nil {
		t.Fatalf("concurrent reads after restart: %v", err)
	}
}
