// Package storetest is the behavioural test suite of metadata.Store. Every
// implementation (SQLite now, PostgreSQL later) runs the same suite against a real
// database, so they cannot drift apart in the semantics callers rely on.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/metadata"
)

// Run runs the whole suite. open must return a new, empty store for each call; Run
// closes it when the subtest ends.
func Run(t *testing.T, open func(t *testing.T) metadata.Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s metadata.Store)
	}{
		{"Ping", testPing},
		{"Repositories", testRepositories},
		{"ListRepositoriesPagination", testListRepositoriesPagination},
		{"Blobs", testBlobs},
		{"LinkUnknownBlob", testLinkUnknownBlob},
		{"PutGetManifest", testPutGetManifest},
		{"ManifestNotFound", testManifestNotFound},
		{"MissingReferences", testMissingReferences},
		{"IndexWithChildren", testIndexWithChildren},
		{"TagMove", testTagMove},
		{"ListTags", testListTags},
		{"DeleteTag", testDeleteTag},
		{"DeleteManifest", testDeleteManifest},
		{"DeleteIndexChild", testDeleteIndexChild},
		{"DeleteRepository", testDeleteRepository},
		{"Referrers", testReferrers},
		{"RepositoryLimits", testRepositoryLimits},
		{"Uploads", testUploads},
		{"UploadCompareAndSet", testUploadCompareAndSet},
		{"StaleUploads", testStaleUploads},
		{"ClaimUpload", testClaimUpload},
		{"ConcurrentClaimUpload", testConcurrentClaimUpload},
		{"ConcurrentPutSameTag", testConcurrentPutSameTag},
		{"ConcurrentLinkBlob", testConcurrentLinkBlob},
		{"ConcurrentUploadUpdate", testConcurrentUploadUpdate},
		{"UploadWrite", testUploadWrite},
		{"ConcurrentUploadWrite", testConcurrentUploadWrite},
		{"PinBlob", testPinBlob},
		{"CommitReclaimed", testCommitReclaimed},
		{"BlobLocations", testBlobLocations},
		{"ConcurrentCommitBlob", testConcurrentCommitBlob},
		{"GC", testGC},
		{"UnpinBlob", testUnpinBlob},
		{"DiscardBlob", testDiscardBlob},
		{"GCLease", testGCLease},
		{"GCLeaseExpiry", testGCLeaseExpiry},
		{"ConcurrentGCLease", testConcurrentGCLease},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
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

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

// pushBlob records a blob and links it to repo, as a finished upload does.
func pushBlob(t *testing.T, s metadata.Store, repo, content string) digest.Digest {
	t.Helper()
	d := digest.FromString(content)
	must(t, s.PutBlob(t.Context(), metadata.Blob{Digest: d, Size: int64(len(content)), CreatedAt: testTime}))
	must(t, s.LinkBlob(t.Context(), repo, d))
	return d
}

// newManifest builds a manifest value whose digest matches its payload.
func newManifest(repo, content string) metadata.Manifest {
	payload := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","x":%q}`, content))
	return metadata.Manifest{
		Repository: repo,
		Digest:     digest.FromBytes(payload),
		MediaType:  "application/vnd.oci.image.manifest.v1+json",
		Size:       int64(len(payload)),
		Payload:    payload,
		CreatedAt:  testTime,
	}
}

// putImage pushes a config blob and a manifest referencing it, tagged when tag != "".
func putImage(t *testing.T, s metadata.Store, repo, content, tag string) metadata.Manifest {
	t.Helper()
	cfg := pushBlob(t, s, repo, "config of "+content)
	m := newManifest(repo, content)
	_, err := s.PutManifest(t.Context(), m, metadata.References{Blobs: []digest.Digest{cfg}}, tag)
	must(t, err)
	return m
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

func testPing(t *testing.T, s metadata.Store) {
	must(t, s.Ping(t.Context()))
}

// ctx is a shorthand so the table-driven tests read like the calls they make.
func ctx(t *testing.T) context.Context { return t.Context() }
