package sqlite

import (
	"database/sql"
	"net/url"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/accounts/storetest"
	"github.com/hubctl/hubctl/internal/metadata/migrate"
)

func TestAccountsStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) accounts.Store {
		s, _ := openTemp(t)
		return s
	})
}

// TestMigrateFromInitialSchema opens, with this code, a database that an older hubctl
// created and filled with schema 0001 only: 0002 must apply on top, and the
// repositories that existed become private.
func TestMigrateFromInitialSchema(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "meta.db")
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 2 || ms[0].Version != 1 || ms[1].Version != 2 {
		t.Fatalf("migrations = %d, want 0001 and 0002 first", len(ms))
	}
	q := url.Values{}
	q.Set("_foreign_keys", "on")
	q.Set("_txlock", "immediate")
	old, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migrate.Apply(ctx, old, migrate.SQLite, ms[:1]); err != nil {
		t.Fatal(err)
	}
	// What the 0001-era code wrote: repositories, a blob, a link, a manifest, a tag.
	for _, stmt := range []string{
		"INSERT INTO repositories (id, name, created_at) VALUES (1, 'acme/app', 1), (2, 'alice/tools', 2)",
		"INSERT INTO blobs (digest, size, created_at) VALUES ('sha256:aa', 1, 1)",
		"INSERT INTO repository_blobs (repo_id, digest, created_at) VALUES (1, 'sha256:aa', 1)",
		`INSERT INTO manifests (repo_id, digest, media_type, size, payload, created_at)
			VALUES (1, 'sha256:bb', 'application/vnd.oci.image.manifest.v1+json', 2, x'7b7d', 1)`,
		"INSERT INTO tags (repo_id, name, digest, updated_at) VALUES (1, 'latest', 'sha256:bb', 1)",
	} {
		if _, err := old.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("open a 0001 database with the current code: %v", err)
	}
	defer s.Close()
	applied, err := migrate.Applied(ctx, s.w)
	if err != nil {
		t.Fatal(err)
	}
	var want []int
	for _, m := range ms {
		want = append(want, m.Version)
	}
	if !slices.Equal(applied, want) {
		t.Fatalf("applied = %v, want %v", applied, want)
	}
	for _, repo := range []string{"acme/app", "alice/tools"} {
		v, exists, err := s.RepositoryVisibility(ctx, repo)
		if err != nil || v != accounts.Private || !exists {
			t.Errorf("RepositoryVisibility(%s) after migration = %q, %v, %v; want private, existing", repo, v, exists, err)
		}
	}
	// The old data still reads, and the new tables work beside it.
	if d, err := s.ResolveTag(ctx, "acme/app", "latest"); err != nil || d.String() != "sha256:bb" {
		t.Fatalf("ResolveTag after migration = %s, %v", d, err)
	}
	if _, err := s.CreateUser(ctx, accounts.User{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateOrg(ctx, "acme", "alice"); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.SetRepositoryVisibility(ctx, "acme/app", accounts.Public))
	if role, err := s.RoleOf(ctx, "alice", "acme/app"); err != nil || role != accounts.RoleAdmin {
		t.Fatalf("RoleOf after migration = %q, %v", role, err)
	}
}
