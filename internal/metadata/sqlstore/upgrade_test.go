package sqlstore

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/metadata"
)

// Upgrade fixtures: databases that a released hubctl made, one per database kind, which
// the current code must open and read in full. testdata/upgrade/<commit>/ holds
// sqlite.db.gz (the SQLite file) and postgres.sql.gz (pg_dump --inserts of the same
// content). They were written by fillForUpgrade running on that commit's stores (see
// TestWriteUpgradeFixture, which writes new ones with the current code), and
// checkUpgraded reads them back through the interfaces alone.

// upgradeFixtures lists the commits whose databases must keep opening.
var upgradeFixtures = []string{
	"b21c672", // the last main with two stores (internal/metadata/sqlite and /postgres), schema 0007
}

// upgradeTime is the creation time of everything fillForUpgrade writes.
var upgradeTime = time.Date(2026, 11, 24, 2, 34, 31, 0, time.UTC)

// upgradeStore is what fillForUpgrade and checkUpgraded use: the two interfaces, which
// every store of every release implements.
type upgradeStore interface {
	metadata.Store
	accounts.Store
}

func upgradeToken(i int) []byte {
	h := sha256.Sum256([]byte(fmt.Sprint("upgrade token ", i)))
	return h[:]
}

// fillForUpgrade writes a little of everything a hub keeps.
func fillForUpgrade(t testing.TB, s upgradeStore) {
	ctx := t.Context()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.CreateUser(ctx, accounts.User{Name: "admin", Email: "admin@example.com", PasswordHash: "$argon2id$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA", Admin: true, CreatedAt: upgradeTime})
	must(err)
	_, err = s.CreateUser(ctx, accounts.User{Name: "alice", Email: "alice@example.com", PasswordHash: "$argon2id$v=19$m=1,t=1,p=1$c2FsdA$YWxpY2U", CreatedAt: upgradeTime})
	must(err)
	_, err = s.CreateOrg(ctx, "acme", "alice")
	must(err)
	_, err = s.CreateUser(ctx, accounts.User{Name: "acme-ci", Robot: true, Owner: "acme", CreatedAt: upgradeTime})
	must(err)
	must(s.CreateTeam(ctx, accounts.Team{Org: "acme", Name: "devs", Description: "Developers"}))
	must(s.AddTeamMember(ctx, "acme", "devs", "admin"))
	must(s.AddTeamMember(ctx, "acme", "devs", "acme-ci"))
	must(s.SetTeamGrant(ctx, accounts.TeamGrant{Org: "acme", Team: "devs", Repository: "acme/app", Role: accounts.RoleWrite}))
	must(s.SetDefaultVisibility(ctx, "alice", accounts.Public))
	must(s.SetQuota(ctx, "acme", 1<<30))
	_, err = s.CreateToken(ctx, accounts.AccessToken{User: "alice", Name: "ci", Hash: upgradeToken(1),
		Scopes: []string{"repository:acme/*:pull,push"}, ExpiresAt: upgradeTime.Add(90 * 24 * time.Hour), CreatedAt: upgradeTime})
	must(err)
	_, err = s.CreateToken(ctx, accounts.AccessToken{User: "acme-ci", Name: "deploy", Hash: upgradeToken(2), CreatedAt: upgradeTime})
	must(err)
	must(s.RevokeToken(ctx, "acme-ci", "deploy"))
	must(s.TouchToken(ctx, 1, upgradeTime.Add(time.Hour)))
	for i, a := range []string{"login", "token.create", "push"} {
		must(s.Audit(ctx, accounts.AuditEntry{Time: upgradeTime.Add(time.Duration(i) * time.Second), Actor: "alice", Action: a,
			Target: "acme/app", Remote: "127.0.0.1", Detail: "fixture"}))
	}

	// acme/app: a config, two layers, an image tagged v1 and latest, an index over it,
	// and a signature referring to the image.
	var blobs []digest.Digest
	for i, content := range []string{"config", "layer one", "layer two"} {
		d := digest.FromString(content)
		pinned, err := s.PinBlob(ctx, d, int64(len(content)))
		must(err)
		location := ""
		if i == 2 {
			location = "blobs/by-upload/u-1"
		}
		_, err = s.CommitBlob(ctx, "acme/app", metadata.Blob{Digest: d, Size: int64(len(content)), Location: location}, pinned)
		must(err)
		blobs = append(blobs, d)
	}
	image := upgradeManifest("acme/app", "image", "", nil)
	_, err = s.PutManifest(ctx, image, metadata.References{Blobs: blobs}, "v1")
	must(err)
	_, err = s.PutManifest(ctx, image, metadata.References{Blobs: blobs}, "latest")
	must(err)
	index := upgradeManifest("acme/app", "index", "", map[string]string{"org.opencontainers.image.version": "1"})
	index.MediaType = "application/vnd.oci.image.index.v1+json"
	_, err = s.PutManifest(ctx, index, metadata.References{Manifests: []digest.Digest{image.Digest}}, "multi")
	must(err)
	sig := upgradeManifest("acme/app", "signature", image.Digest, nil)
	sig.ArtifactType = "application/vnd.dev.cosign.artifact.sig.v1+json"
	_, err = s.PutManifest(ctx, sig, metadata.References{Blobs: blobs[:1]}, "")
	must(err)
	// alice/tools shares a layer; an unreferenced blob waits for GC; an upload is open.
	must(s.LinkBlob(ctx, "alice/tools", blobs[1]))
	must(s.PutBlob(ctx, metadata.Blob{Digest: digest.FromString("orphan"), Size: 6, CreatedAt: upgradeTime}))
	must(s.CreateUpload(ctx, metadata.Upload{ID: "upload-1", Repository: "acme/app", Offset: 5, HashState: []byte("hash state"),
		BackendState: []byte(`{"parts":[1]}`), CreatedAt: upgradeTime, UpdatedAt: upgradeTime}))
	must(s.SetRepositoryVisibility(ctx, "acme/app", accounts.Public))
}

func upgradeManifest(repo, content string, subject digest.Digest, annotations map[string]string) metadata.Manifest {
	payload := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","x":%q}`, content))
	return metadata.Manifest{Repository: repo, Digest: digest.FromBytes(payload), MediaType: "application/vnd.oci.image.manifest.v1+json",
		Size: int64(len(payload)), Payload: payload, Subject: subject, Annotations: annotations, CreatedAt: upgradeTime}
}

// checkUpgraded reads back everything fillForUpgrade wrote, then writes to every kind of
// table.
func checkUpgraded(t *testing.T, s upgradeStore) {
	ctx := t.Context()
	check := func(what string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	users, err := s.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range users {
		names = append(names, fmt.Sprintf("%s admin=%v robot=%v owner=%s %s", u.Name, u.Admin, u.Robot, u.Owner, u.Email))
	}
	check("users", names, []string{"acme-ci admin=false robot=true owner=acme ", "admin admin=true robot=false owner= admin@example.com",
		"alice admin=false robot=false owner= alice@example.com"})
	alice, err := s.GetUser(ctx, "alice")
	if err != nil || alice.PasswordHash != "$argon2id$v=19$m=1,t=1,p=1$c2FsdA$YWxpY2U" || !alice.CreatedAt.Equal(upgradeTime) {
		t.Errorf("alice = %+v, %v", alice, err)
	}
	ns, err := s.GetNamespace(ctx, "alice")
	check("alice's default visibility", ns.DefaultVisibility, accounts.Public)
	check("GetNamespace error", err, nil)
	members, err := s.ListTeamMembers(ctx, "acme", "devs")
	check("devs", members, []string{"acme-ci", "admin"})
	check("ListTeamMembers error", err, nil)
	for _, tc := range []struct {
		user, repo string
		want       accounts.Role
	}{{"alice", "acme/app", accounts.RoleAdmin}, {"admin", "acme/app", accounts.RoleWrite}, {"admin", "acme/other", accounts.RoleNone}} {
		role, err := s.RoleOf(ctx, tc.user, tc.repo)
		check("RoleOf "+tc.user+" "+tc.repo, role, tc.want)
		check("RoleOf error", err, nil)
	}
	used, quota, err := s.Usage(ctx, "acme")
	// The blobs, and (since issue 16) the three manifests and three tags.
	wantUsed := int64(len("config") + len("layer one") + len("layer two") + 3*metadata.RowQuotaBytes)
	img := upgradeManifest("acme/app", "image", "", nil)
	for _, m := range []metadata.Manifest{img, upgradeManifest("acme/app", "index", "", map[string]string{"org.opencontainers.image.version": "1"}),
		upgradeManifest("acme/app", "signature", img.Digest, nil)} {
		wantUsed += metadata.ManifestQuotaBytes(m.Size)
	}
	check("acme usage", fmt.Sprint(used, " ", quota), fmt.Sprint(wantUsed, " ", 1<<30))
	check("Usage error", err, nil)
	tok, err := s.TokenByHash(ctx, upgradeToken(1))
	if err != nil || tok.Name != "ci" || tok.User != "alice" || !slices.Equal(tok.Scopes, []string{"repository:acme/*:pull,push"}) ||
		!tok.ExpiresAt.Equal(upgradeTime.Add(90*24*time.Hour)) || !tok.LastUsedAt.Equal(upgradeTime.Add(time.Hour)) || !tok.Active(upgradeTime) {
		t.Errorf("token ci = %+v, %v", tok, err)
	}
	if tok, err := s.TokenByHash(ctx, upgradeToken(2)); err != nil || tok.RevokedAt.IsZero() {
		t.Errorf("revoked token = %+v, %v", tok, err)
	}
	audit, err := s.ListAudit(ctx, accounts.AuditFilter{Actor: "alice"})
	check("audit", len(audit), 3)
	check("ListAudit error", err, nil)
	if len(audit) == 3 {
		check("newest audit entry", audit[0].Action+" "+audit[0].Time.String(), "push "+upgradeTime.Add(2*time.Second).String())
	}

	repos, err := s.ListRepositories(ctx, "", 0)
	check("repositories", repos, []string{"acme/app", "alice/tools"})
	check("ListRepositories error", err, nil)
	v, _, err := s.RepositoryVisibility(ctx, "acme/app")
	check("acme/app visibility", v, accounts.Public)
	check("RepositoryVisibility error", err, nil)
	tags, err := s.ListTags(ctx, "acme/app", "", 0)
	check("tags", tags, []string{"latest", "multi", "v1"})
	check("ListTags error", err, nil)
	image := upgradeManifest("acme/app", "image", "", nil)
	m, err := s.GetManifestByTag(ctx, "acme/app", "v1")
	if err != nil || m.Digest != image.Digest || !bytes.Equal(m.Payload, image.Payload) || !m.CreatedAt.Equal(upgradeTime) {
		t.Errorf("v1 = %+v, %v", m, err)
	}
	index, err := s.GetManifestByTag(ctx, "acme/app", "multi")
	if err != nil || index.Annotations["org.opencontainers.image.version"] != "1" || index.MediaType != "application/vnd.oci.image.index.v1+json" {
		t.Errorf("multi = %+v, %v", index, err)
	}
	refs, err := s.Referrers(ctx, "acme/app", image.Digest, "")
	if err != nil || len(refs) != 1 || refs[0].ArtifactType != "application/vnd.dev.cosign.artifact.sig.v1+json" {
		t.Errorf("referrers = %+v, %v", refs, err)
	}
	layer, err := s.RepositoryBlob(ctx, "alice/tools", digest.FromString("layer one"))
	check("shared layer", fmt.Sprint(layer.Size, err), fmt.Sprint(len("layer one"), nil))
	located, err := s.GetBlob(ctx, digest.FromString("layer two"))
	check("blob location", located.Location, "blobs/by-upload/u-1")
	check("GetBlob error", err, nil)
	u, err := s.GetUpload(ctx, "upload-1")
	if err != nil || u.Offset != 5 || string(u.HashState) != "hash state" || string(u.BackendState) != `{"parts":[1]}` {
		t.Errorf("upload = %+v, %v", u, err)
	}
	// The index keeps its child: deleting the image's tags leaves it, and GC of what is
	// unreferenced marks only the orphan.
	marked, err := s.GCMarkBlobs(ctx, time.Now(), true)
	if err != nil || len(marked) != 1 || marked[0].Digest != digest.FromString("orphan") {
		t.Errorf("GC dry run marks %+v, %v; want the orphan alone", marked, err)
	}

	// Writes into every kind of table.
	if _, err := s.CreateUser(ctx, accounts.User{Name: "bob"}); err != nil {
		t.Error(err)
	}
	if _, err := s.CreateToken(ctx, accounts.AccessToken{User: "bob", Name: "ci", Hash: upgradeToken(3)}); err != nil {
		t.Error(err)
	}
	next := upgradeManifest("acme/app", "image 2", "", nil)
	if res, err := s.PutManifest(ctx, next, metadata.References{Blobs: []digest.Digest{digest.FromString("config")}}, "latest"); err != nil || res.PreviousTagDigest != image.Digest {
		t.Errorf("move latest = %+v, %v", res, err)
	}
	if err := s.UpdateUpload(ctx, metadata.Upload{ID: "upload-1", Repository: "acme/app", Offset: 9}, 5); err != nil {
		t.Error(err)
	}
	if _, ok, err := s.AcquireGCLease(ctx, "upgrade test", time.Minute); err != nil || !ok {
		t.Errorf("AcquireGCLease = %v, %v", ok, err)
	}
}

// TestUpgradeFromFixture opens the databases of earlier releases with the current
// code: each migrates in place and keeps all its data.
func TestUpgradeFromFixture(t *testing.T) {
	for _, commit := range upgradeFixtures {
		dir := filepath.Join("testdata", "upgrade", commit)
		t.Run(commit+"/sqlite", func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "hubctl.db")
			if err := os.WriteFile(path, gunzip(t, filepath.Join(dir, "sqlite.db.gz")), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := OpenSQLite(t.Context(), path)
			if err != nil {
				t.Fatalf("open the %s database: %v", commit, err)
			}
			defer s.Close()
			checkUpgraded(t, s)
			checkSearchScope(t, s)
		})
		t.Run(commit+"/postgres", func(t *testing.T) {
			dsn := backends[1].fresh(t)
			conn, err := pgx.Connect(t.Context(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			// pg_dump's plain format is SQL plus psql meta-commands (\restrict and
			// \unrestrict since PostgreSQL 15.14): run the SQL, skip the meta-commands.
			var script strings.Builder
			sc := bufio.NewScanner(bytes.NewReader(gunzip(t, filepath.Join(dir, "postgres.sql.gz"))))
			sc.Buffer(nil, 16<<20)
			for sc.Scan() {
				if !strings.HasPrefix(sc.Text(), `\`) {
					script.WriteString(sc.Text() + "\n")
				}
			}
			if _, err := conn.Exec(t.Context(), script.String()); err != nil {
				t.Fatalf("load the %s dump: %v", commit, err)
			}
			conn.Close(t.Context())
			s, err := OpenPostgres(t.Context(), dsn)
			if err != nil {
				t.Fatalf("open the %s database: %v", commit, err)
			}
			defer s.Close()
			checkUpgraded(t, s)
			checkSearchScope(t, s)
		})
	}
}

// checkSearchScope: migration 0033 gave the repositories an upgraded database held
// their search scope, so a search with no text finds what Catalog lists, anonymous
// and for the owner of a namespace.
func checkSearchScope(t *testing.T, s *Store) {
	t.Helper()
	all, err := s.Catalog(t.Context(), metadata.CatalogFilter{All: true}, "", 0)
	if err != nil || len(all) == 0 {
		t.Fatalf("catalog: %q, %v", all, err)
	}
	for _, f := range []metadata.CatalogFilter{{Public: true}, {Namespaces: []string{namespaceOf(all[0])}}, {Public: true, Namespaces: []string{namespaceOf(all[len(all)-1])}}} {
		want, err := s.Catalog(t.Context(), f, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for after := ""; ; {
			res, err := s.Search(t.Context(), f, metadata.SearchQuery{After: after, Limit: 3})
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range res.Hits {
				got = append(got, h.Repository)
			}
			if after = res.Next; after == "" {
				break
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("%+v: search finds %q, catalog lists %q", f, got, want)
		}
	}
}

func gunzip(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWriteUpgradeFixture writes upgrade fixtures with the current code into the
// directory HUBCTL_WRITE_UPGRADE_FIXTURE names (it does nothing otherwise): run it on a
// release's commit, then add the directory to testdata/upgrade and its commit to
// upgradeFixtures. It needs pg_dump on PATH or beside the server binaries.
func TestWriteUpgradeFixture(t *testing.T) {
	out := os.Getenv("HUBCTL_WRITE_UPGRADE_FIXTURE")
	if out == "" {
		t.Skip("HUBCTL_WRITE_UPGRADE_FIXTURE is not set: nothing to write")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "hubctl.db")
	s, err := OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	fillForUpgrade(t, s)
	s.Close()
	db, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeGzip(t, filepath.Join(out, "sqlite.db.gz"), db)

	dsn := backends[1].fresh(t)
	s, err = OpenPostgres(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	fillForUpgrade(t, s)
	s.Close()
	pgDump, err := exec.LookPath("pg_dump")
	if err != nil {
		matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_dump")
		if len(matches) == 0 {
			t.Fatal("pg_dump not found")
		}
		pgDump = matches[len(matches)-1]
	}
	cmd := exec.Command(pgDump, "--no-owner", "--no-privileges", "--inserts", "--dbname", dsn)
	dump, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("pg_dump: %v: %s", err, ee.Stderr)
	} else if err != nil {
		t.Fatal(err)
	}
	writeGzip(t, filepath.Join(out, "postgres.sql.gz"), dump)
}

func writeGzip(t *testing.T, path string, b []byte) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
