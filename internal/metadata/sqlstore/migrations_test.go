package sqlstore

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/metadata/migrate"
)

func versions(ms []migrate.Migration) []int {
	var vs []int
	for _, m := range ms {
		vs = append(vs, m.Version)
	}
	return vs
}

// applied returns the versions recorded in s's schema_migrations.
func applied(t *testing.T, s *Store) []int {
	t.Helper()
	db, release := s.e.sqlDB()
	defer release()
	got, err := migrate.Applied(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestMigrationsMirror: the two databases' migrations match version for version and
// name for name, so a schema change made to one and forgotten in the other shows up.
func TestMigrationsMirror(t *testing.T) {
	names := map[string][]string{}
	for _, db := range []string{"sqlite", "postgres"} {
		ms, err := Migrations(db)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			names[db] = append(names[db], fmt.Sprintf("%04d_%s", m.Version, m.Name))
		}
	}
	if !slices.Equal(names["sqlite"], names["postgres"]) {
		t.Fatalf("SQLite migrations %q, PostgreSQL migrations %q: they must match", names["sqlite"], names["postgres"])
	}
}

func TestMigrationsRecordedAndIdempotent(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s, reopen := openFresh(t, b)
		ms, err := Migrations(b.name)
		if err != nil {
			t.Fatal(err)
		}
		want := versions(ms)
		if want[0] != 1 {
			t.Fatalf("first migration is %d, want 1", want[0])
		}
		if !slices.Equal(s.migrated, want) {
			t.Fatalf("first Open applied %v, want %v", s.migrated, want)
		}
		if got := applied(t, s); !slices.Equal(got, want) {
			t.Fatalf("applied = %v, want %v", got, want)
		}
		s.Close()

		// Re-opening applies nothing (a second CREATE TABLE would fail) and records nothing.
		s = reopen(t)
		defer s.Close()
		if len(s.migrated) != 0 {
			t.Fatalf("re-open applied %v, want nothing", s.migrated)
		}
		if got := applied(t, s); !slices.Equal(got, want) {
			t.Fatalf("applied after re-open = %v, want %v", got, want)
		}
	})
}

// TestOpenFailsOnNewerSchema: a replica of an older hubctl must not write into a
// schema a newer one migrated (a rolling upgrade), and must say why.
func TestOpenFailsOnNewerSchema(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		where := b.fresh(t)
		s, err := b.openAt(t.Context(), where)
		if err != nil {
			t.Fatal(err)
		}
		execSQL(t, s, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)")
		s.Close()
		s, err = b.openAt(t.Context(), where)
		if err == nil {
			s.Close()
			t.Fatal("Open succeeded on a database migrated by a newer hubctl")
		}
		if !errors.Is(err, migrate.ErrSchemaTooNew) {
			t.Fatalf("Open error = %v, want ErrSchemaTooNew", err)
		}
		for _, want := range []string{"9999", "upgrade"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Open error %q does not say %q", err, want)
			}
		}
	})
}

// TestMigrateFromInitialSchema opens, with this code, a database that an older hubctl
// created and filled with schema 0001 only: the later migrations apply on top, and the
// repositories that existed become private.
func TestMigrateFromInitialSchema(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		ms, err := Migrations(b.name)
		if err != nil {
			t.Fatal(err)
		}
		// An empty database, migrated to 0001 only and filled as the 0001-era code did.
		where := b.fresh(t)
		db, err := b.raw(where)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		dialect := map[string]migrate.Dialect{"sqlite": migrate.SQLite, "postgres": migrate.PostgreSQL}[b.name]
		if _, err := migrate.Apply(ctx, db, dialect, ms[:1]); err != nil {
			t.Fatal(err)
		}
		for _, stmt := range []string{
			"INSERT INTO repositories (name, created_at) VALUES ('acme/app', 1), ('alice/tools', 2)",
			"INSERT INTO blobs (digest, size, created_at) VALUES ('sha256:aa', 1, 1)",
			"INSERT INTO repository_blobs (repo_id, digest, created_at) SELECT id, 'sha256:aa', 1 FROM repositories WHERE name = 'acme/app'",
			`INSERT INTO manifests (repo_id, digest, media_type, size, payload, created_at)
				SELECT id, 'sha256:bb', 'application/vnd.oci.image.manifest.v1+json', 2, $1, 1 FROM repositories WHERE name = 'acme/app'`,
			"INSERT INTO tags (repo_id, name, digest, updated_at) SELECT id, 'latest', 'sha256:bb', 1 FROM repositories WHERE name = 'acme/app'",
		} {
			var args []any
			if strings.Contains(stmt, "$1") {
				args = append(args, []byte("{}"))
			}
			if _, err := db.ExecContext(ctx, stmt, args...); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}

		s, err := b.openAt(ctx, where)
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
		// The old data still reads, and the new tables work beside it. The names of the
		// namespaces that hold repositories are not free: nobody inherits them.
		if _, err := s.CreateUser(ctx, accounts.User{Name: "alice"}); !errors.Is(err, accounts.ErrExists) {
			t.Fatalf("CreateUser over alice/tools = %v, want refused", err)
		}
		if _, err := s.CreateUser(ctx, accounts.User{Name: "carol"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateOrg(ctx, "beta", "carol"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetRepositoryVisibility(ctx, "acme/app", accounts.Public); err != nil {
			t.Fatal(err)
		}
		if role, err := s.RoleOf(ctx, "carol", "beta/app"); err != nil || role != accounts.RoleAdmin {
			t.Fatalf("RoleOf after migration = %q, %v", role, err)
		}
	})
}
