package registry

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/accounts"
)

// TestQuotaDenied pushes into a namespace past its quota by each path that links a
// blob: a monolithic upload, a chunked upload's completion and a cross-repository mount.
func TestQuotaDenied(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	acc := e.h.o.Meta.(accounts.Store)
	if _, err := acc.CreateUser(ctx, accounts.User{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	if err := acc.SetQuota(ctx, "alice", 1500); err != nil {
		t.Fatal(err)
	}
	first, _ := randomBlob(t, 1000)
	e.pushBlob("alice/app", first)
	// The same blob in another repository of the namespace costs nothing.
	e.pushBlob("alice/web", first)

	wantDenied := func(what string, r resp) {
		t.Helper()
		e.expect(r, 403, "DENIED")
		if !strings.Contains(string(r.body), "quota of 1500 bytes") || !strings.Contains(string(r.body), "alice") {
			t.Errorf("%s: message does not name the quota: %s", what, r.body)
		}
	}
	notLinked := func(repo string, d fmt.Stringer) {
		t.Helper()
		e.expect(e.do("HEAD", "/v2/"+repo+"/blobs/"+d.String(), nil), 404, "")
	}

	// Monolithic.
	big, bigD := randomBlob(t, 600)
	wantDenied("monolithic", e.do("POST", fmt.Sprintf("/v2/alice/app/blobs/uploads/?digest=%s", bigD), bytes.NewReader(big)))
	notLinked("alice/app", bigD)

	// Chunked: the bytes reach storage, the link is refused and the session ends.
	r := e.do("POST", "/v2/alice/app/blobs/uploads/", nil)
	e.expect(r, 202, "")
	loc := r.header.Get("Location")
	e.expect(e.do("PATCH", loc, bytes.NewReader(big)), 202, "")
	wantDenied("upload commit", e.do("PUT", loc+"?digest="+bigD.String(), nil))
	notLinked("alice/app", bigD)
	e.expect(e.do("GET", loc, nil), 404, "BLOB_UPLOAD_UNKNOWN")

	// Mount from a namespace without an account (unlimited) into alice's.
	e.pushBlob("other/src", big)
	wantDenied("mount", e.do("POST", fmt.Sprintf("/v2/alice/app/blobs/uploads/?mount=%s&from=other/src", bigD), nil))
	notLinked("alice/app", bigD)

	// Within the quota the same pushes go through.
	if err := acc.SetQuota(ctx, "alice", 2000); err != nil {
		t.Fatal(err)
	}
	e.expect(e.do("POST", fmt.Sprintf("/v2/alice/app/blobs/uploads/?mount=%s&from=other/src", bigD), nil), 201, "")
	used, quota, err := acc.Usage(ctx, "alice")
	if err != nil || used != 1600 || quota != 2000 {
		t.Fatalf("Usage = %d, %d, %v; want 1600, 2000", used, quota, err)
	}
}
