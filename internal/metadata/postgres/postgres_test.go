package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/accounts"
	accountstest "github.com/hubctl/hubctl/internal/accounts/storetest"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/metadata/migrate"
	"github.com/hubctl/hubctl/internal/metadata/storetest"
	"github.com/hubctl/hubctl/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// openFresh opens a store on a new, empty database and returns its DSN too, so a test
// can open a second store (another replica) on the same database.
func openFresh(t testing.TB) (*Store, string) {
	t.Helper()
	dsn := pgtest.Start(t)
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	return s, dsn
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) metadata.Store {
		s, _ := openFresh(t)
		return s
	})
}

func TestAccountsStore(t *testing.T) {
	accountstest.Run(t, func(t *testing.T) accounts.Store {
		s, _ := openFresh(t)
		return s
	})
}

func versions(ms []migrate.Migration) []int {
	var vs []int
	for _, m := range ms {
		vs = append(vs, m.Version)
	}
	return vs
}

func applied(t *testing.T, s *Store) []int {
	t.Helper()
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	got, err := migrate.Applied(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestMigrationsMirrorSQLite(t *testing.T) {
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range ms {
		names = append(names, fmt.Sprintf("%04d_%s", m.Version, m.Name))
	}
	// The SQLite store's migrations, version for version: a schema change made to one
	// store and forgotten in the other shows up here.
	entries, err := os.ReadDir("../sqlite/migrations")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") {
			want = append(want, strings.TrimSuffix(e.Name(), ".sql"))
		}
	}
	if !slices.Equal(names, want) {
		t.Fatalf("PostgreSQL migrations %q, SQLite migrations %q: they must match", names, want)
	}
}

func TestMigrationsRecordedAndIdempotent(t *testing.T) {
	s, dsn := openFresh(t)
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	want := versions(ms)
	if !slices.Equal(s.migrated, want) {
		t.Fatalf("first Open applied %v, want %v", s.migrated, want)
	}
	if got := applied(t, s); !slices.Equal(got, want) {
		t.Fatalf("applied = %v, want %v", got, want)
	}
	s.Close()

	// Re-opening applies nothing (a second CREATE TABLE would fail) and records nothing.
	s, err = Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("re-open: %v", err)
	}
	defer s.Close()
	if len(s.migrated) != 0 {
		t.Fatalf("re-open applied %v, want nothing", s.migrated)
	}
	if got := applied(t, s); !slices.Equal(got, want) {
		t.Fatalf("applied after re-open = %v, want %v", got, want)
	}
}

// TestConcurrentOpen starts four replicas at once on an empty database: every Open
// must succeed and exactly one must apply the migrations (the advisory lock makes the
// others wait and then find the work done).
func TestConcurrentOpen(t *testing.T) {
	dsn := pgtest.Start(t)
	const n = 4
	stores := make([]*Store, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = Open(t.Context(), dsn)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	ms, err := Migrations()
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

func TestOpenFailsOnNewerSchema(t *testing.T) {
	s, dsn := openFresh(t)
	if _, err := s.pool.Exec(t.Context(), "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err := Open(t.Context(), dsn)
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded on a database migrated by a newer hubctl")
	}
	if !errors.Is(err, migrate.ErrSchemaTooNew) {
		t.Fatalf("Open error = %v, want ErrSchemaTooNew", err)
	}
}

// TestOpenErrorsHideThePassword: a DSN holds a secret, and Open's errors end up in logs.
func TestOpenErrorsHideThePassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://hubctl:s3cret-pw@127.0.0.1:1/db?pool_max_conns=nope",
		"postgres://hubctl:s3cret-pw@127.0.0.1:1/db?connect_timeout=5",   // nothing listens on port 1
		"host=127.0.0.1 port=1 user=hubctl password=s3cret-pw sslmode=x", // bad sslmode
	} {
		s, err := Open(t.Context(), dsn)
		if err == nil {
			s.Close()
			t.Fatalf("Open(%s) succeeded", dsn)
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("Open error reveals the password: %v", err)
		}
	}
}

// TestNameColumnsSortByBytes checks every name and digest column is COLLATE "C" in the
// schema itself, whatever the database's default collation: listings must come out in
// byte order, as SQLite returns them.
func TestNameColumnsSortByBytes(t *testing.T) {
	s, _ := openFresh(t)
	defer s.Close()
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
			err := s.pool.QueryRow(t.Context(), `SELECT collation_name FROM information_schema.columns
				WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2`, table, col).Scan(&collation)
			if err != nil {
				t.Fatalf("%s.%s: %v", table, col, err)
			}
			if collation == nil || *collation != "C" {
				t.Errorf("%s.%s collation = %v, want C", table, col, collation)
			}
		}
	}
}

// TestMigrateFromInitialSchema opens, with this code, a database that an older hubctl
// created and filled with schema 0001 only: 0002 must apply on top, and the
// repositories that existed become private.
func TestMigrateFromInitialSchema(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.Start(t)
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDBFromPool(pool)
	if _, err := migrate.Apply(ctx, db, migrate.PostgreSQL, ms[:1]); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		"INSERT INTO repositories (name, created_at) VALUES ('acme/app', 1), ('alice/tools', 2)",
		"INSERT INTO blobs (digest, size, created_at) VALUES ('sha256:aa', 1, 1)",
		"INSERT INTO repository_blobs (repo_id, digest, created_at) SELECT id, 'sha256:aa', 1 FROM repositories WHERE name = 'acme/app'",
		`INSERT INTO manifests (repo_id, digest, media_type, size, payload, created_at)
			SELECT id, 'sha256:bb', 'application/vnd.oci.image.manifest.v1+json', 2, '\x7b7d', 1 FROM repositories WHERE name = 'acme/app'`,
		"INSERT INTO tags (repo_id, name, digest, updated_at) SELECT id, 'latest', 'sha256:bb', 1 FROM repositories WHERE name = 'acme/app'",
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	db.Close()
	pool.Close()

	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatalf("open a 0001 database with the current code: %v", err)
	}
	defer s.Close()
	if !slices.Equal(s.migrated, versions(ms)[1:]) {
		t.Fatalf("Open applied %v, want %v", s.migrated, versions(ms)[1:])
	}
	for _, repo := range []string{"acme/app", "alice/tools"} {
		v, exists, err := s.RepositoryVisibility(ctx, repo)
		if err != nil || v != accounts.Private || !exists {
			t.Errorf("RepositoryVisibility(%s) after migration = %q, %v, %v; want private, existing", repo, v, exists, err)
		}
	}
	if d, err := s.ResolveTag(ctx, "acme/app", "latest"); err != nil || d.String() != "sha256:bb" {
		t.Fatalf("ResolveTag after migration = %s, %v", d, err)
	}
	// The old data still reads, and the new tables work beside it.
	if _, err := s.CreateUser(ctx, accounts.User{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateOrg(ctx, "acme", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRepositoryVisibility(ctx, "acme/app", accounts.Public); err != nil {
		t.Fatal(err)
	}
	if role, err := s.RoleOf(ctx, "alice", "acme/app"); err != nil || role != accounts.RoleAdmin {
		t.Fatalf("RoleOf after migration = %q, %v", role, err)
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"deadlock", &pgconn.PgError{Code: "40P01"}, conflict},
		{"serialization", fmt.Errorf("put: %w", &pgconn.PgError{Code: "40001"}), conflict},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, connectionLost},
		{"starting up", &pgconn.PgError{Code: "57P03"}, connectionLost},
		{"connection failure", &pgconn.PgError{Code: "08006"}, connectionLost},
		{"unique violation", &pgconn.PgError{Code: "23505"}, permanent},
		{"unexpected EOF", fmt.Errorf("failed to receive message: %w", io.ErrUnexpectedEOF), connectionLost},
		{"canceled", fmt.Errorf("x: %w", context.Canceled), permanent},
		{"missing reference", &metadata.MissingReferenceError{Digest: digest.FromString("x")}, permanent},
		{"upload conflict", metadata.ErrUploadConflict, permanent},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%s) = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestRetryDoesNotRepeatACommit: a COMMIT whose connection broke may have been
// applied, so the transaction must not run again.
func TestRetryDoesNotRepeatACommit(t *testing.T) {
	s, _ := openFresh(t)
	defer s.Close()
	for _, tc := range []struct {
		err   error
		calls int
	}{
		{&commitError{io.ErrUnexpectedEOF}, 1},
		{&commitError{&pgconn.PgError{Code: "40001"}}, maxAttempts}, // rolled back for sure
		{io.ErrUnexpectedEOF, maxAttempts},
		{metadata.ErrUploadConflict, 1},
	} {
		calls := 0
		err := s.retry(t.Context(), func() error { calls++; return tc.err })
		if !errors.Is(err, tc.err) || calls != tc.calls {
			t.Errorf("retry of %v: %d calls, error %v; want %d calls", tc.err, calls, err, tc.calls)
		}
	}
}
