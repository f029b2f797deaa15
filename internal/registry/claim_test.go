package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/blobstore/s3store"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/s3test"
)

func TestMain(m *testing.M) {
	code := m.Run()
	s3test.Stop()
	os.Exit(code)
}

// hookedMeta runs beforeFinish once, before the commit of an uploaded blob: a test's way
// to put a database failure or another replica's purge in the one gap that matters,
// between the blob store's commit and the database's.
type hookedMeta struct {
	metadata.Store
	beforeFinish func(upload string) error
}

func (m *hookedMeta) CommitUploadedBlob(ctx context.Context, repo string, b metadata.Blob, pinnedAt time.Time, upload string) (string, error) {
	if hook := m.beforeFinish; hook != nil {
		m.beforeFinish = nil
		if err := hook(upload); err != nil {
			return "", err
		}
	}
	return m.Store.CommitUploadedBlob(ctx, repo, b, pinnedAt, upload)
}

// newS3Env is newEnv on a fresh versitygw bucket, with the metadata store hooked; edit,
// if any, adjusts the blob store's options.
func newS3Env(t *testing.T, edit ...func(*s3store.Options)) (*env, *hookedMeta, string) {
	t.Helper()
	endpoint, ak, sk, bucket := s3test.Start(t)
	o := s3store.Options{Endpoint: endpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk, PathStyle: true}
	for _, f := range edit {
		f(&o)
	}
	blobs, err := s3store.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var hooked *hookedMeta
	e := newEnv(t, func(o *Options) {
		hooked = &hookedMeta{Store: o.Meta}
		o.Blobs, o.Meta = blobs, hooked
	})
	return e, hooked, bucket
}

// chunked starts an upload of data to repo and sends it in one PATCH; it returns the
// upload's URL for the PUT.
func (e *env) chunked(repo string, data []byte) string {
	e.t.Helper()
	r := e.do("POST", "/v2/"+repo+"/blobs/uploads/", nil)
	e.expect(r, http.StatusAccepted, "")
	r = e.do("PATCH", r.header.Get("Location"), bytes.NewReader(data), "Content-Range", fmt.Sprintf("0-%d", len(data)-1))
	e.expect(r, http.StatusAccepted, "")
	return r.header.Get("Location")
}

// unrecordedCommit pushes a blob in chunks on a fresh S3 env and fails the database's
// commit after the blob store's: the completed upload is in the bucket and recorded
// nowhere, and the client gave up. It returns the env, its bucket, the blob, the
// upload's URL and its id.
func unrecordedCommit(t *testing.T) (e *env, bucket string, data []byte, loc, id string) {
	t.Helper()
	e, hooked, bucket := newS3Env(t)
	data = make([]byte, 12<<20+5)
	rand.Read(data)
	d := digest.FromBytes(data)
	loc = e.chunked("app", data)
	hooked.beforeFinish = func(upload string) error {
		id = upload
		return errors.New("database unreachable")
	}
	e.expect(e.do("PUT", loc+"?digest="+d.String(), nil), http.StatusInternalServerError, "UNKNOWN")
	return e, bucket, data, loc, id
}

// TestPurgeDiscardsUnrecordedCommit: the blob store completed a chunked upload in
// place but the database never recorded it (it failed, and the client gave up). The
// stale-session purge claims the session and deletes the completed object, which
// nothing refers to; the client can push the blob again.
func TestPurgeDiscardsUnrecordedCommit(t *testing.T) {
	e, bucket, data, _, _ := unrecordedCommit(t)
	d := digest.FromBytes(data)
	if got := s3test.Keys(t, bucket, "blobs/by-upload/"); len(got) != 1 {
		t.Fatalf("after the failed commit: by-upload objects %q, want the completed upload", got)
	}
	n, err := e.h.CleanStaleUploads(context.Background(), 0)
	if err != nil || n != 1 {
		t.Fatalf("CleanStaleUploads = %d, %v; want 1 session purged", n, err)
	}
	for _, prefix := range []string{"blobs/", "uploads/"} {
		if got := s3test.Keys(t, bucket, prefix); len(got) != 0 {
			t.Fatalf("after the purge: objects under %s: %q", prefix, got)
		}
	}
	e.expect(e.do("HEAD", "/v2/app/blobs/"+d.String(), nil), http.StatusNotFound, "")
	e.expect(e.do("PUT", e.chunked("app", data)+"?digest="+d.String(), nil), http.StatusCreated, "")
	got := e.do("GET", "/v2/app/blobs/"+d.String(), nil)
	if got.status != http.StatusOK || !bytes.Equal(got.body, data) {
		t.Fatalf("GET after pushing again: %d, %d bytes", got.status, len(got.body))
	}
}

// TestPurgeRacingCommit: another replica's purge claims the session between the blob
// store's commit and the database's. The commit records nothing and tells the client
// the upload is unknown; the purge's discard leaves nothing behind; no blob row points
// at deleted bytes.
func TestPurgeRacingCommit(t *testing.T) {
	e, hooked, bucket := newS3Env(t)
	data := make([]byte, 9<<20)
	rand.Read(data)
	d := digest.FromBytes(data)
	loc := e.chunked("app", data)
	hooked.beforeFinish = func(upload string) error {
		u, err := e.h.o.Meta.GetUpload(context.Background(), upload)
		if err != nil {
			return err
		}
		return e.h.discardUpload(context.Background(), u, time.Time{})
	}
	r := e.do("PUT", loc+"?digest="+d.String(), nil)
	e.expect(r, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	if !strings.Contains(string(r.body), "cancelled or expired") {
		t.Errorf("error body %s", r.body)
	}
	for _, prefix := range []string{"blobs/", "uploads/"} {
		if got := s3test.Keys(t, bucket, prefix); len(got) != 0 {
			t.Fatalf("after the race: objects under %s: %q", prefix, got)
		}
	}
	e.expect(e.do("HEAD", "/v2/app/blobs/"+d.String(), nil), http.StatusNotFound, "")
	if _, err := e.h.o.Meta.GetBlob(context.Background(), d); !errors.Is(err, metadata.ErrBlobNotFound) {
		t.Fatalf("GetBlob after the race = %v, want ErrBlobNotFound", err)
	}
}

// TestCancelDiscards: DELETE of a session claims it and discards its storage; a second
// DELETE finds it unknown.
func TestCancelDiscards(t *testing.T) {
	e, _, bucket := newS3Env(t)
	data := make([]byte, 9<<20)
	rand.Read(data)
	loc := e.chunked("app", data)
	e.expect(e.do("DELETE", loc, nil), http.StatusNoContent, "")
	e.expect(e.do("DELETE", loc, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	for _, prefix := range []string{"blobs/", "uploads/"} {
		if got := s3test.Keys(t, bucket, prefix); len(got) != 0 {
			t.Fatalf("after cancel: objects under %s: %q", prefix, got)
		}
	}
}

// TestPurgeTakesOverDeadClaim: a purge (or cancel) claimed a session and died before
// discarding what the upload stored, here a chunked upload the blob store completed but
// the database never recorded. The session is gone for the client at once; the purge
// leaves a fresh claim to its claimer, and takes over one older than its cutoff:
// nothing stays behind in the bucket or the database.
func TestPurgeTakesOverDeadClaim(t *testing.T) {
	e, bucket, _, loc, id := unrecordedCommit(t)
	ctx := context.Background()
	if ok, err := e.h.o.Meta.ClaimUpload(ctx, id, time.Time{}); err != nil || !ok {
		t.Fatalf("ClaimUpload = %v, %v", ok, err)
	}
	e.expect(e.do("GET", loc, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	if n, err := e.h.CleanStaleUploads(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("CleanStaleUploads(1h) = %d, %v; want the fresh claim left alone", n, err)
	}
	if got := s3test.Keys(t, bucket, "blobs/by-upload/"); len(got) != 1 {
		t.Fatalf("with the claim fresh: by-upload objects %q, want the completed upload", got)
	}
	if n, err := e.h.CleanStaleUploads(ctx, 0); err != nil || n != 1 {
		t.Fatalf("CleanStaleUploads(0) = %d, %v; want the dead claim taken over", n, err)
	}
	for _, prefix := range []string{"blobs/", "uploads/"} {
		if got := s3test.Keys(t, bucket, prefix); len(got) != 0 {
			t.Fatalf("after the purge: objects under %s: %q", prefix, got)
		}
	}
	if stale, err := e.h.o.Meta.StaleUploads(ctx, time.Now().Add(time.Minute)); err != nil || len(stale) != 0 {
		t.Fatalf("StaleUploads after the purge = %+v, %v; want the session deleted", stale, err)
	}
}

// TestCancelWhileStoreDown: a cancel whose blob store is down fails with 503 and
// withdraws its claim, so the session is still there for the client (and the purge) to
// cancel again once the store is back.
func TestCancelWhileStoreDown(t *testing.T) {
	// One attempt: the outage is certain, its retries would only slow the test.
	e, _, bucket := newS3Env(t, func(o *s3store.Options) { o.MaxAttempts = 1 })
	data := make([]byte, 9<<20)
	rand.Read(data)
	loc := e.chunked("app", data)
	resume := s3test.Pause(t)
	e.expect(e.do("DELETE", loc, nil), http.StatusServiceUnavailable, "UNAVAILABLE")
	resume()
	e.expect(e.do("GET", loc, nil), http.StatusNoContent, "")
	e.expect(e.do("DELETE", loc, nil), http.StatusNoContent, "")
	for _, prefix := range []string{"blobs/", "uploads/"} {
		if got := s3test.Keys(t, bucket, prefix); len(got) != 0 {
			t.Fatalf("after the second cancel: objects under %s: %q", prefix, got)
		}
	}
}

// TestCommitOfOverwrittenUploadIsUnknown: a part of the session was replaced behind the
// database's back (two writers of one part, as two replicas were before sessions had
// one writer). The commit cannot succeed: it answers 404 BLOB_UPLOAD_UNKNOWN, never
// 500, and discards the session, so the client starts again and nothing is left in
// the bucket (issue 16, item 6).
func TestCommitOfOverwrittenUploadIsUnknown(t *testing.T) {
	e, _, bucket := newS3Env(t)
	data, other := make([]byte, 6<<20), make([]byte, 6<<20)
	rand.Read(data)
	rand.Read(other)
	loc := e.chunked("app", data)
	id := loc[strings.LastIndexByte(loc, '/')+1:]
	u, err := e.h.o.Meta.GetUpload(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	// The other writer appends from the state both read, before the first recorded.
	st := blobstore.UploadState{Backend: []byte(`{"upload":"` + decodeUploadID(t, u.BackendState) + `"}`)}
	if _, err := e.h.o.Blobs.AppendUpload(context.Background(), id, st, bytes.NewReader(other)); err != nil {
		t.Fatal(err)
	}
	r := e.do("PUT", loc+"?digest="+digest.FromBytes(data).String(), nil)
	e.expect(r, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	e.expect(e.do("GET", loc, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	for _, prefix := range []string{"blobs/", "uploads/"} {
		if got := s3test.Keys(t, bucket, prefix); len(got) != 0 {
			t.Fatalf("after the refused commit: objects under %s: %q", prefix, got)
		}
	}
}

func decodeUploadID(t *testing.T, backend []byte) string {
	t.Helper()
	var b struct {
		Upload string `json:"upload"`
	}
	if err := json.Unmarshal(backend, &b); err != nil {
		t.Fatal(err)
	}
	return b.Upload
}
