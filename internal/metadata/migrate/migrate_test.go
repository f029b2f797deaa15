package migrate_test

import (
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"testing/fstest"

	_ "modernc.org/sqlite"

	"github.com/hubctl/hubctl/internal/metadata/migrate"
)

func openDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "m.db")+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

func TestLoad(t *testing.T) {
	for _, tc := range []struct {
		name     string
		files    fstest.MapFS
		versions []int
		wantErr  bool
	}{
		{"sorted by version not name", fstest.MapFS{
			"m/0010_ten.sql":  file("SELECT 10"),
			"m/0002_two.sql":  file("SELECT 2"),
			"m/0001_init.sql": file("SELECT 1"),
			"m/README.md":     file("not a migration"),
		}, []int{1, 2, 10}, false},
		{"duplicate version", fstest.MapFS{
			"m/0001_a.sql": file("SELECT 1"), "m/001_b.sql": file("SELECT 1"),
		}, nil, true},
		{"bad name", fstest.MapFS{"m/init.sql": file("SELECT 1")}, nil, true},
		{"version zero", fstest.MapFS{"m/0000_zero.sql": file("SELECT 1")}, nil, true},
		{"empty", fstest.MapFS{"m/README.md": file("x")}, nil, true},
		{"missing dir", fstest.MapFS{}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := migrate.Load(tc.files, "m")
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Load = %+v, want an error", ms)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, m := range ms {
				got = append(got, m.Version)
			}
			if !slices.Equal(got, tc.versions) {
				t.Fatalf("versions = %v, want %v", got, tc.versions)
			}
		})
	}
}

func TestApply(t *testing.T) {
	db := openDB(t)
	ctx := t.Context()
	v1 := []migrate.Migration{{Version: 1, Name: "init", SQL: "CREATE TABLE a (x INTEGER); CREATE TABLE b (y INTEGER);"}}
	applied, err := migrate.Apply(ctx, db, migrate.SQLite, v1)
	if err != nil || !slices.Equal(applied, []int{1}) {
		t.Fatalf("Apply = %v, %v; want [1]", applied, err)
	}
	// Both statements of the script ran.
	if _, err := db.ExecContext(ctx, "INSERT INTO b (y) VALUES (1)"); err != nil {
		t.Fatalf("second statement of the script did not run: %v", err)
	}
	applied, err = migrate.Apply(ctx, db, migrate.SQLite, v1)
	if err != nil || len(applied) != 0 {
		t.Fatalf("second Apply = %v, %v; want nothing", applied, err)
	}

	// A later batch whose second script fails applies none of its scripts.
	bad := append(slices.Clone(v1),
		migrate.Migration{Version: 2, Name: "good", SQL: "CREATE TABLE c (z INTEGER)"},
		migrate.Migration{Version: 3, Name: "bad", SQL: "CREATE TABLE a (x INTEGER)"}, // a exists
	)
	if _, err := migrate.Apply(ctx, db, migrate.SQLite, bad); err == nil {
		t.Fatal("Apply with a failing migration succeeded")
	}
	got, err := migrate.Applied(ctx, db)
	if err != nil || !slices.Equal(got, []int{1}) {
		t.Fatalf("Applied after a failed batch = %v, %v; want [1]", got, err)
	}
	if _, err := db.ExecContext(ctx, "SELECT * FROM c"); err == nil {
		t.Fatal("table c exists: the failed batch was not rolled back")
	}

	// A binary that knows fewer migrations than were applied refuses the database.
	good := bad[:2]
	if _, err := migrate.Apply(ctx, db, migrate.SQLite, good); err != nil {
		t.Fatal(err)
	}
	if _, err := migrate.Apply(ctx, db, migrate.SQLite, v1); !errors.Is(err, migrate.ErrSchemaTooNew) {
		t.Fatalf("Apply with an older migration set = %v, want ErrSchemaTooNew", err)
	}
}

// TestApplyConcurrent starts several openers on one file at once, as replicas or a
// restart racing the old process would: each migration is applied exactly once.
func TestApplyConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	ms := []migrate.Migration{
		{Version: 1, Name: "a", SQL: "CREATE TABLE a (x INTEGER)"},
		{Version: 2, Name: "b", SQL: "CREATE TABLE b (x INTEGER)"},
	}
	// The file exists in WAL mode before the racers come, as it does for every start
	// after the first: switching a database to WAL takes a lock for which SQLite does
	// not wait (busy_timeout does not apply), which is not what this test is about.
	setup, err := sql.Open("sqlite", path+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	if err := setup.Ping(); err != nil {
		t.Fatal(err)
	}
	setup.Close()
	const n = 4
	errs := make(chan error, n)
	total := make(chan int, n)
	for range n {
		go func() {
			db, err := sql.Open("sqlite", path+"?_txlock=immediate&_busy_timeout=10000&_journal_mode=WAL")
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			applied, err := migrate.Apply(t.Context(), db, migrate.SQLite, ms)
			total <- len(applied)
			errs <- err
		}()
	}
	sum := 0
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	close(total)
	for k := range total {
		sum += k
	}
	if sum != len(ms) {
		t.Fatalf("migrations applied %d times in all, want %d", sum, len(ms))
	}
}
