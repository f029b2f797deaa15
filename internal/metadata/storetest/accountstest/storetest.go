// Package accountstest is the behavioural test suite of accounts.Store. Every
// implementation (SQLite now, PostgreSQL later) runs it against a real database, so the
// semantics the policy layer and the hub API rely on cannot drift apart.
package accountstest

import (
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/metadata"
)

// Run runs the whole suite. open must return a new, empty store for each call; Run
// closes it (when it is an io.Closer) when the subtest ends. The visibility tests
// create repositories, so the store must also be a metadata.Store, as accounts live in
// the registry's metadata database.
func Run(t *testing.T, open func(t *testing.T) accounts.Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s accounts.Store)
	}{
		{"Users", testUsers},
		{"Names", testNames},
		{"FieldLimits", testFieldLimits},
		{"Robots", testRobots},
		{"Orgs", testOrgs},
		{"SharedNameSpace", testSharedNameSpace},
		{"Teams", testTeams},
		{"TeamMembers", testTeamMembers},
		{"Grants", testGrants},
		{"RolePrecedence", testRolePrecedence},
		{"RepositoryVisibility", testRepositoryVisibility},
		{"VisibilityOnImplicitCreate", testVisibilityOnImplicitCreate},
		{"Catalog", testCatalog},
		{"Tokens", testTokens},
		{"TokenRevoke", testTokenRevoke},
		{"TokenTouch", testTokenTouch},
		{"Audit", testAudit},
		{"AuditPagination", testAuditPagination},
		{"DeleteUserCascades", testDeleteUserCascades},
		{"DeleteOrgCascades", testDeleteOrgCascades},
		{"NoTakeover", testNoTakeover},
		{"Sessions", testSessions},
		{"SessionsEndTogether", testSessionsEndTogether},
		{"BootstrapAdmin", testBootstrapAdmin},
		{"Usage", testUsage},
		{"QuotaEnforced", testQuotaEnforced},
		{"QuotaConcurrent", testQuotaConcurrent},
		{"QuotaCountsManifests", testQuotaCountsManifests},
		{"UploadQuota", testUploadQuota},
		{"UploadQuotaConcurrent", testUploadQuotaConcurrent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			if c, ok := s.(io.Closer); ok {
				t.Cleanup(func() {
					if err := c.Close(); err != nil {
						t.Errorf("close: %v", err)
					}
				})
			}
			tc.fn(t, s)
		})
	}
}

// testTime is a fixed instant with microsecond precision: the finest every supported
// database keeps (PostgreSQL timestamps stop at microseconds).
var testTime = time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error = %v, want %v", what, err, target)
	}
}

func equalStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if got == nil {
		t.Errorf("%s = nil, want an empty slice rather than nil", what)
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

// metaStore returns s as the registry metadata store it shares a database with.
func metaStore(t *testing.T, s accounts.Store) metadata.Store {
	t.Helper()
	m, ok := s.(metadata.Store)
	if !ok {
		t.Fatalf("%T does not implement metadata.Store; the visibility tests need to create repositories", s)
	}
	return m
}

// linkBlob creates repo the way the first blob of a push does.
func linkBlob(t *testing.T, m metadata.Store, repo string) {
	t.Helper()
	d := digest.FromString("layer of " + repo)
	must(t, m.PutBlob(t.Context(), metadata.Blob{Digest: d, Size: 1, CreatedAt: testTime}))
	must(t, m.LinkBlob(t.Context(), repo, d))
}

// putManifest creates repo with a manifest that references nothing, so PutManifest is
// the call that creates the repository.
func putManifest(t *testing.T, m metadata.Store, repo string) {
	t.Helper()
	payload := []byte(`{"schemaVersion":2,"repo":"` + repo + `"}`)
	_, err := m.PutManifest(t.Context(), metadata.Manifest{
		Repository: repo, Digest: digest.FromBytes(payload), MediaType: "application/vnd.oci.image.manifest.v1+json",
		Size: int64(len(payload)), Payload: payload, CreatedAt: testTime,
	}, metadata.References{}, "v1")
	must(t, err)
}

// newUser creates a person with a password hash.
func newUser(t *testing.T, s accounts.Store, name string) accounts.User {
	t.Helper()
	u, err := s.CreateUser(t.Context(), accounts.User{Name: name, Email: name + "@example.com",
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", CreatedAt: testTime})
	must(t, err)
	return u
}
