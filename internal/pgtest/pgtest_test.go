package pgtest

import (
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

func query(t *testing.T, dsn, q string) string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var out string
	if err := conn.QueryRow(t.Context(), q).Scan(&out); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

// TestStartGivesFreshDatabases: each Start is a database of its own, empty, in one
// cluster that listens on loopback only.
func TestStartGivesFreshDatabases(t *testing.T) {
	a, b := Start(t), Start(t)
	if a == b {
		t.Fatalf("two Starts returned the same DSN %s", a)
	}
	if _, err := pgx.Connect(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), a)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	if _, err := conn.Exec(t.Context(), "CREATE TABLE only_in_a (x int)"); err != nil {
		t.Fatal(err)
	}
	if got := query(t, b, "SELECT count(*)::text FROM pg_tables WHERE tablename = 'only_in_a'"); got != "0" {
		t.Fatalf("a table created in one database is visible in another")
	}
	if got := query(t, a, "SHOW listen_addresses"); got != "127.0.0.1" {
		t.Errorf("listen_addresses = %q, want 127.0.0.1 only", got)
	}
	if got := query(t, a, "SHOW fsync"); got != "off" {
		t.Errorf("fsync = %q, want off for speed", got)
	}
}

// TestRestartKeepsData: committed data survives Restart, and a connection opened
// before it is cut.
func TestRestartKeepsData(t *testing.T) {
	dsn := Start(t)
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	if _, err := conn.Exec(t.Context(), "CREATE TABLE kept AS SELECT 42 AS x"); err != nil {
		t.Fatal(err)
	}
	Restart(t)
	if _, err := conn.Exec(t.Context(), "SELECT 1"); err == nil {
		t.Error("a connection opened before Restart still works: the server did not restart")
	}
	if got := query(t, dsn, "SELECT x::text FROM kept"); got != "42" {
		t.Fatalf("after Restart x = %s, want 42", got)
	}
}
