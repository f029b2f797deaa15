package sqlstore

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/charts/chartstore/chartstoretest"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/metadata/storetest"
	"github.com/hubctl/hubctl/internal/metadata/storetest/accountstest"
	"github.com/hubctl/hubctl/internal/pgtest"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for raw setup
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// A backend makes new, empty databases of one kind and opens stores on them.
type backend struct {
	name string
	// fresh makes a new, empty database and returns where it is: a path or a DSN.
	fresh func(t testing.TB) string
	// openAt opens a Store on the database at where.
	openAt func(ctx context.Context, where string) (*Store, error)
	// raw opens a database/sql connection to where, for setting up what an older hubctl
	// left behind.
	raw func(where string) (*sql.DB, error)
}

var backends = []backend{
	{
		name:   "sqlite",
		fresh:  func(t testing.TB) string { return filepath.Join(t.TempDir(), "meta.db") },
		openAt: OpenSQLite,
		raw: func(path string) (*sql.DB, error) {
			return sql.Open("sqlite", path+"?_foreign_keys=on&_txlock=immediate")
		},
	},
	{
		name:   "postgres",
		fresh:  func(t testing.TB) string { return pgtest.Start(t) },
		openAt: OpenPostgres,
		raw:    func(dsn string) (*sql.DB, error) { return sql.Open("pgx", dsn) },
	},
}

// open opens a Store on a new, empty database of b's kind and returns a function that
// opens another Store on the same database (another replica, or the same host after a
// restart).
func (b backend) open(t testing.TB) (*Store, func(t testing.TB) *Store) {
	t.Helper()
	where := b.fresh(t)
	reopen := func(t testing.TB) *Store {
		t.Helper()
		s, err := b.openAt(context.Background(), where)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return reopen(t), reopen
}

// eachBackend runs fn as a subtest per database.
func eachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

// openFresh opens a store on a new database of b's kind, closed when the test ends.
func openFresh(t testing.TB, b backend) (*Store, func(testing.TB) *Store) {
	t.Helper()
	s, reopen := b.open(t)
	t.Cleanup(func() { s.Close() })
	return s, reopen
}

func TestStore(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		storetest.Run(t, func(t *testing.T) metadata.Store {
			s, _ := b.open(t)
			return s
		})
	})
}

func TestAccountsStore(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		accountstest.Run(t, func(t *testing.T) accounts.Store {
			s, _ := b.open(t)
			return s
		})
	})
}

// execSQL runs a raw statement on s's database, for tests that set up what no method
// writes.
func execSQL(t testing.TB, s *Store, query string, args ...any) {
	t.Helper()
	err := s.write(t.Context(), func(q querier) error {
		_, err := q.Exec(t.Context(), query, args...)
		return err
	})
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// count returns the rows of a table.
func count(t testing.TB, s *Store, table string) int {
	t.Helper()
	var n int
	err := s.do(t.Context(), func(q querier) error {
		return q.QueryRow(t.Context(), "SELECT count(*) FROM "+table).Scan(&n)
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestChartStore(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		chartstoretest.Run(t, func(t *testing.T) chartstoretest.Store {
			s, _ := b.open(t)
			return s
		})
	})
}
