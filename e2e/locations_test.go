package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/s3test"
)

// TestBlobLocationsOnS3 follows one blob's bytes through the bucket
// (docs/design/blob-locations.md): a chunked push completes where it was written, under
// blobs/by-upload/, and nothing is copied to the digest's key; the same blob pushed
// again, chunked through another replica or monolithically, or mounted, leaves no second
// copy; a push refused for quota leaves none either; every replica serves the blob from
// its location; GC deletes it there.
func TestBlobLocationsOnS3(t *testing.T) {
	rs, env := startReplicaSet(t, 2)
	a, b := rs[0], rs[1]
	bucket := envDir(env, "HUBCTL_STORAGE_S3_BUCKET")
	if bucket == "" {
		t.Fatal("the replica set's environment names no bucket")
	}
	tok := mustToken(t, a, "admin", adminPassword, "repository:admin/one:pull,push", "repository:admin/two:pull,push",
		"repository:admin/three:pull,push", "repository:admin/four:pull,push", "repository:admin/five:pull,push")
	data := make([]byte, 13<<20+17)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	dgst := sha256Digest(data)
	blobKey := "blobs/sha256/" + dgst[7:9] + "/" + dgst[7:]

	byUpload := func() []string { return s3test.Keys(t, bucket, "blobs/by-upload/") }
	atDigest := func() []string { return s3test.Keys(t, bucket, blobKey) }

	chunkedPush(t, a, b, tok, "admin/one", data)
	first := byUpload()
	if len(first) != 1 || len(atDigest()) != 0 {
		t.Fatalf("after a chunked push: by-upload objects %q, objects at the digest's key %q; want one and none", first, atDigest())
	}

	// The same bytes again, through the other replica into another repository: the
	// registry keeps the first location and deletes the new object.
	chunkedPush(t, b, a, tok, "admin/two", data)
	if got := byUpload(); len(got) != 1 || got[0] != first[0] || len(atDigest()) != 0 {
		t.Fatalf("after a second chunked push: by-upload objects %q (want only %q), at the digest's key %q", got, first, atDigest())
	}

	// Monolithically: written to the digest's key, then found redundant and deleted.
	resp, body := send(t, "POST", a.URL("/v2/admin/three/blobs/uploads/?digest="+dgst), tok, data, "Content-Type", "application/octet-stream")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("monolithic push: %s %s", resp.Status, body)
	}
	if got := byUpload(); len(got) != 1 || got[0] != first[0] || len(atDigest()) != 0 {
		t.Fatalf("after a monolithic push: by-upload objects %q (want only %q), at the digest's key %q", got, first, atDigest())
	}

	// A mount links the blob at its location; nothing is written.
	resp, body = send(t, "POST", b.URL("/v2/admin/four/blobs/uploads/?mount="+dgst+"&from=admin/one"), tok, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("mount: %s %s", resp.Status, body)
	}
	if got := byUpload(); len(got) != 1 || got[0] != first[0] || len(atDigest()) != 0 {
		t.Fatalf("after a mount: by-upload objects %q (want only %q), at the digest's key %q", got, first, atDigest())
	}

	// A chunked push refused for quota leaves no object behind.
	// admin holds the one 13 MiB blob; 9 MiB more would pass 20 MiB.
	resp, body = apiCall(t, a, http.MethodPut, "/api/v1/namespaces/admin/quota", "admin", adminPassword, map[string]any{"bytes": 20 << 20})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("set quota: %s %s", resp.Status, body)
	}
	other := make([]byte, 9<<20)
	if _, err := rand.Read(other); err != nil {
		t.Fatal(err)
	}
	status, denied := chunkedPushStatus(t, a, b, tok, "admin/five", other)
	if status != http.StatusForbidden || !strings.Contains(string(denied), "DENIED") {
		t.Fatalf("chunked push over quota: %d %s, want 403 DENIED", status, denied)
	}
	if got := byUpload(); len(got) != 1 || got[0] != first[0] {
		t.Fatalf("after a push refused for quota: by-upload objects %q, want only %q", got, first)
	}
	if got := s3test.Keys(t, bucket, "uploads/"); len(got) != 0 {
		t.Fatalf("after a push refused for quota: upload objects %q, want none", got)
	}

	for _, s := range []*server{a, b} {
		for _, repo := range []string{"admin/one", "admin/two", "admin/three", "admin/four"} {
			resp, body := pull(t, s, "/v2/"+repo+"/blobs/"+dgst, tok)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
				t.Fatalf("GET %s from %s: %s, %d bytes", repo, s.URL(""), resp.Status, len(body))
			}
		}
	}

	// No manifest refers to the blob: a GC without grace unlinks and deletes it, at
	// its location.
	out := run(t, t.TempDir(), env, hubctlBin, "gc", "--grace", "0s", "-o", "json", "--data", t.TempDir())
	var rep struct {
		Swept      int   `json:"swept"`
		BytesFreed int64 `json:"bytes_freed"`
	}
	// One row goes: the blob. The refused push was refused at its first chunk, before
	// it pinned anything or stored a byte.
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Swept != 1 || rep.BytesFreed != int64(len(data)) {
		t.Fatalf("gc: %q (%v), want 1 row swept and %d bytes freed", out, err, len(data))
	}
	if got := s3test.Keys(t, bucket, "blobs/"); len(got) != 0 {
		t.Fatalf("after gc the bucket still holds blobs: %q", got)
	}
}

// chunkedPush uploads data to repo as docker does, in chunks, starting on replica s and
// sending the later PATCHes and the PUT to replica o.
func chunkedPush(t *testing.T, s, o *server, tok, repo string, data []byte) {
	t.Helper()
	if status, body := chunkedPushStatus(t, s, o, tok, repo, data); status != http.StatusCreated {
		t.Fatalf("PUT %s: %d %s", repo, status, body)
	}
}

// chunkedPushStatus is chunkedPush that returns the status and body of the final PUT,
// or of the first PATCH that was refused.
func chunkedPushStatus(t *testing.T, s, o *server, tok, repo string, data []byte) (int, []byte) {
	t.Helper()
	resp, body := send(t, "POST", s.URL("/v2/"+repo+"/blobs/uploads/"), tok, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST %s: %s %s", repo, resp.Status, body)
	}
	loc := resp.Header.Get("Location")
	const chunk = 8 << 20
	for off, i := 0, 0; off < len(data); off, i = off+chunk, i+1 {
		end := min(len(data), off+chunk)
		r := s
		if i%2 == 1 {
			r = o
		}
		resp, body = send(t, "PATCH", r.URL(loc), tok, data[off:end], "Content-Range", fmt.Sprintf("%d-%d", off, end-1),
			"Content-Type", "application/octet-stream")
		if resp.StatusCode != http.StatusAccepted {
			return resp.StatusCode, body // refused, e.g. for quota: the push ends here
		}
		loc = resp.Header.Get("Location")
	}
	resp, body = send(t, "PUT", o.URL(loc+"?digest="+sha256Digest(data)), tok, nil)
	return resp.StatusCode, body
}
