package sqlstore

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func openSQLite(t *testing.T) (*Store, *sqliteEngine, string) {
	t.Helper()
	path := backends[0].fresh(t)
	s, err := OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, s.e.(*sqliteEngine), path
}

func TestSQLitePragmas(t *testing.T) {
	_, e, _ := openSQLite(t)
	for _, tc := range []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"synchronous", "1"}, // NORMAL
		{"busy_timeout", "10000"},
	} {
		var got string
		if err := e.w.QueryRowContext(t.Context(), "PRAGMA "+tc.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("PRAGMA %s = %s, want %s", tc.pragma, got, tc.want)
		}
	}
	// The read pool must refuse writes.
	if _, err := e.r.ExecContext(t.Context(), "INSERT INTO repositories (name, created_at) VALUES ('x', 0)"); err == nil {
		t.Error("a write through the read pool succeeded")
	}
}

func TestSQLiteFileMode(t *testing.T) {
	s, _, path := openSQLite(t)
	// Write something so the WAL exists too.
	if err := s.EnsureRepository(t.Context(), "app"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s mode = %o, want 600", filepath.Base(p), mode)
		}
	}
}

func TestSQLiteOpenBadPath(t *testing.T) {
	if s, err := OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "missing-dir", "meta.db")); err == nil {
		s.Close()
		t.Fatal("Open succeeded in a directory that does not exist")
	}
}

// TestSQLiteStatementCache: the read pool prepares each text once, and a full cache
// runs further texts unprepared rather than failing or leaking statements.
func TestSQLiteStatementCache(t *testing.T) {
	s, e, _ := openSQLite(t)
	ctx := t.Context()
	for range 3 {
		if _, err := s.RepositoryExists(ctx, "app"); err != nil {
			t.Fatal(err)
		}
	}
	e.mu.RLock()
	n := len(e.stmts)
	e.mu.RUnlock()
	if n != 1 {
		t.Fatalf("%d statements cached after one text run three times, want 1", n)
	}
	for i := range maxCachedStatements + 10 {
		err := s.do(ctx, func(q querier) error {
			var v int
			return q.QueryRow(ctx, "SELECT $1 + "+strconv.Itoa(i), 1).Scan(&v)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	e.mu.RLock()
	n = len(e.stmts)
	e.mu.RUnlock()
	if n != maxCachedStatements {
		t.Fatalf("%d statements cached, want the bound %d", n, maxCachedStatements)
	}
}
