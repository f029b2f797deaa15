package sqlite

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/metadata/migrate"
	"github.com/hubctl/hubctl/internal/metadata/storetest"
)

func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return s, path
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) metadata.Store {
		s, _ := openTemp(t)
		return s
	})
}

func TestMigrationsRecordedAndIdempotent(t *testing.T) {
	s, path := openTemp(t)
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var want []int
	for _, m := range ms {
		want = append(want, m.Version)
	}
	if want[0] != 1 {
		t.Fatalf("first migration is %d, want 1", want[0])
	}
	got, err := migrate.Applied(t.Context(), s.w)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("applied = %v, want %v", got, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Re-opening applies nothing (a second CREATE TABLE would fail) and records nothing.
	s, err = Open(t.Context(), path)
	if err != nil {
		t.Fatalf("re-open: %v", err)
	}
	defer s.Close()
	got, err = migrate.Applied(t.Context(), s.w)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("applied after re-open = %v, want %v", got, want)
	}
	applied, err := migrate.Apply(t.Context(), s.w, migrate.SQLite, ms)
	if err != nil || len(applied) != 0 {
		t.Fatalf("Apply on a migrated database = %v, %v; want nothing applied", applied, err)
	}
}

func TestPragmas(t *testing.T) {
	s, _ := openTemp(t)
	defer s.Close()
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
		if err := s.w.QueryRowContext(t.Context(), "PRAGMA "+tc.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("PRAGMA %s = %s, want %s", tc.pragma, got, tc.want)
		}
	}
	// The read pool must refuse writes.
	if _, err := s.r.ExecContext(t.Context(), "INSERT INTO repositories (name, created_at) VALUES ('x', 0)"); err == nil {
		t.Error("a write through the read pool succeeded")
	}
}

func TestDataSurvivesReopen(t *testing.T) {
	s, path := openTemp(t)
	ctx := t.Context()
	cfg := digest.FromString("config")
	if err := s.PutBlob(ctx, metadata.Blob{Digest: cfg, Size: 6}); err != nil {
		t.Fatal(err)
	}
	if err := s.LinkBlob(ctx, "app", cfg); err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"schemaVersion":2}`)
	m := metadata.Manifest{Repository: "app", Digest: digest.FromBytes(payload), MediaType: "application/vnd.oci.image.manifest.v1+json",
		Size: int64(len(payload)), Payload: payload}
	if _, err := s.PutManifest(ctx, m, metadata.References{Blobs: []digest.Digest{cfg}}, "latest"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUpload(ctx, metadata.Upload{ID: "u", Repository: "app", Offset: 3, HashState: []byte("h")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, err := s.ResolveTag(ctx, "app", "latest")
	if err != nil || d != m.Digest {
		t.Fatalf("ResolveTag after re-open = %s, %v; want %s", d, err, m.Digest)
	}
	got, err := s.GetManifest(ctx, "app", m.Digest)
	if err != nil || !bytes.Equal(got.Payload, payload) {
		t.Fatalf("GetManifest after re-open = %q, %v", got.Payload, err)
	}
	if _, err := s.RepositoryBlob(ctx, "app", cfg); err != nil {
		t.Fatalf("RepositoryBlob after re-open: %v", err)
	}
	u, err := s.GetUpload(ctx, "u")
	if err != nil || u.Offset != 3 || string(u.HashState) != "h" {
		t.Fatalf("GetUpload after re-open = %+v, %v", u, err)
	}
}

func TestFileMode(t *testing.T) {
	s, path := openTemp(t)
	// Write something so the WAL exists too.
	if err := s.EnsureRepository(t.Context(), "app"); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
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

func TestOpenFailsOnNewerSchema(t *testing.T) {
	s, path := openTemp(t)
	if _, err := s.w.ExecContext(t.Context(), "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(t.Context(), path); err == nil {
		s.Close()
		t.Fatal("Open succeeded on a database migrated by a newer hubctl")
	}
}

func TestOpenBadPath(t *testing.T) {
	if s, err := Open(t.Context(), filepath.Join(t.TempDir(), "missing-dir", "meta.db")); err == nil {
		s.Close()
		t.Fatal("Open succeeded in a directory that does not exist")
	}
}
