package registry

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/accounts"
)

// quotaEnv is a registry on the filesystem whose namespace alice has a quota of quota
// bytes.
func quotaEnv(t *testing.T, quota int64) (*env, accounts.Store) {
	t.Helper()
	e := newEnv(t)
	acc := e.h.o.Meta.(accounts.Store)
	if _, err := acc.CreateUser(t.Context(), accounts.User{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	if err := acc.SetQuota(t.Context(), "alice", quota); err != nil {
		t.Fatal(err)
	}
	return e, acc
}

// stored returns the bytes in regular files under the blob store's root, blobs,
// upload sessions and temporary files alike: what the registry takes on disk.
func (e *env) stored() (total int64, files []string) {
	e.t.Helper()
	err := filepath.WalkDir(e.data, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while walking: a concurrent request's
		}
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		if fi.Size() > 0 || strings.Contains(p, "/blobs/") {
			total += fi.Size()
			files = append(files, strings.TrimPrefix(p, e.data+"/"))
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return total, files
}

func (e *env) wantNothingStored(what string) {
	e.t.Helper()
	if total, files := e.stored(); total != 0 {
		e.t.Errorf("%s: %d bytes left on disk: %v", what, total, files)
	}
}

// streamed sends body without a Content-Length (chunked), as docker sends a layer.
type streamed struct{ io.Reader }

func (e *env) doStreamed(method, path string, body []byte) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, streamed{bytes.NewReader(body)})
	if err != nil {
		e.t.Fatal(err)
	}
	req.ContentLength = -1
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

func wantQuotaDenied(t *testing.T, e *env, what string, r resp, quota int64) {
	t.Helper()
	e.expect(r, 403, "DENIED")
	if !strings.Contains(string(r.body), fmt.Sprintf("quota of %d bytes", quota)) || !strings.Contains(string(r.body), "alice") {
		t.Errorf("%s: message does not name the quota: %s", what, r.body)
	}
}

// TestQuotaDenied pushes into a namespace past its quota by each path that links a
// blob: a monolithic upload, a chunked upload's completion and a cross-repository mount.
func TestQuotaDenied(t *testing.T) {
	e, acc := quotaEnv(t, 1500)
	ctx := t.Context()
	first, _ := randomBlob(t, 1000)
	e.pushBlob("alice/app", first)
	// The same blob in another repository of the namespace costs nothing.
	e.pushBlob("alice/web", first)
	notLinked := func(repo string, d fmt.Stringer) {
		t.Helper()
		e.expect(e.do("HEAD", "/v2/"+repo+"/blobs/"+d.String(), nil), 404, "")
	}
	storedBefore, _ := e.stored()

	// Monolithic, with and without a Content-Length: refused before a byte is stored.
	big, bigD := randomBlob(t, 600)
	wantQuotaDenied(t, e, "monolithic", e.do("POST", fmt.Sprintf("/v2/alice/app/blobs/uploads/?digest=%s", bigD), bytes.NewReader(big)), 1500)
	wantQuotaDenied(t, e, "monolithic streamed", e.doStreamed("POST", fmt.Sprintf("/v2/alice/app/blobs/uploads/?digest=%s", bigD), big), 1500)
	notLinked("alice/app", bigD)

	// Chunked: the chunk that would pass the quota is refused before it is written,
	// and the session ends with what it held.
	r := e.do("POST", "/v2/alice/app/blobs/uploads/", nil)
	e.expect(r, 202, "")
	loc := r.header.Get("Location")
	e.expect(e.do("PATCH", loc, bytes.NewReader(big[:300]), "Content-Range", "0-299"), 202, "")
	wantQuotaDenied(t, e, "chunk", e.do("PATCH", loc, bytes.NewReader(big[300:]), "Content-Range", "300-599"), 1500)
	e.expect(e.do("GET", loc, nil), 404, "BLOB_UPLOAD_UNKNOWN")
	// The same streamed (docker's single PATCH without a length): cut off at the quota.
	r = e.do("POST", "/v2/alice/app/blobs/uploads/", nil)
	e.expect(r, 202, "")
	loc = r.header.Get("Location")
	wantQuotaDenied(t, e, "streamed chunk", e.doStreamed("PATCH", loc, big), 1500)
	e.expect(e.do("GET", loc, nil), 404, "BLOB_UPLOAD_UNKNOWN")
	notLinked("alice/app", bigD)
	if after, files := e.stored(); after != storedBefore {
		t.Errorf("refused pushes left %d bytes on disk (%d before): %v", after-storedBefore, storedBefore, files)
	}

	// Mount from a namespace without an account (unlimited) into alice's.
	e.pushBlob("other/src", big)
	wantQuotaDenied(t, e, "mount", e.do("POST", fmt.Sprintf("/v2/alice/app/blobs/uploads/?mount=%s&from=other/src", bigD), nil), 1500)
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
	// Full: a new session is refused at once.
	if err := acc.SetQuota(ctx, "alice", 1600); err != nil {
		t.Fatal(err)
	}
	wantFull := e.do("POST", "/v2/alice/app/blobs/uploads/", nil)
	e.expect(wantFull, 403, "DENIED")
}

// TestQuotaBoundsUploads is issue 12's report: with a 1 KiB quota, 300 upload
// sessions each writing a chunk stored 6.5 MB. Now the bytes of open sessions count:
// at most 1 KiB is ever on disk, and the sessions that were refused hold nothing.
func TestQuotaBoundsUploads(t *testing.T) {
	const quota = 1024
	e, _ := quotaEnv(t, quota)
	chunk, _ := randomBlob(t, 22<<10)
	small, _ := randomBlob(t, 100)
	var (
		wg                   sync.WaitGroup
		mu                   sync.Mutex
		accepted, refused    int
		maxStored            int64
		sessions, sessionErr []string
	)
	// 300 sessions, 16 requests at a time (the upload slots would refuse more).
	slots := make(chan struct{}, 16)
	for i := range 300 {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			r := e.do("POST", "/v2/alice/app/blobs/uploads/", nil)
			if r.status != 202 {
				mu.Lock()
				defer mu.Unlock()
				if r.status != 403 {
					sessionErr = append(sessionErr, string(r.body))
				}
				refused++
				return
			}
			loc := r.header.Get("Location")
			body := chunk
			if i%3 == 0 {
				body = small
			}
			var pr resp
			if i%2 == 0 {
				pr = e.doStreamed("PATCH", loc, body)
			} else {
				pr = e.do("PATCH", loc, bytes.NewReader(body))
			}
			total, _ := e.stored()
			mu.Lock()
			defer mu.Unlock()
			maxStored = max(maxStored, total)
			switch pr.status {
			case 202:
				accepted++
				sessions = append(sessions, loc)
			case 403:
				refused++
			default:
				sessionErr = append(sessionErr, string(pr.body))
			}
		})
	}
	wg.Wait()
	if len(sessionErr) > 0 {
		t.Fatalf("unexpected answers: %q", sessionErr)
	}
	total, files := e.stored()
	if total > quota || maxStored > quota {
		t.Fatalf("%d bytes on disk at the end, at most %d meanwhile, with a quota of %d: %v", total, maxStored, quota, files)
	}
	if accepted == 0 || accepted > quota/100 || refused == 0 {
		t.Errorf("%d chunks accepted and %d refused; want some of the 100-byte ones accepted, the rest refused", accepted, refused)
	}
	t.Logf("%d chunks accepted, %d refused, at most %d bytes on disk", accepted, refused, maxStored)
	// Cancelling the open sessions gives the room back.
	for _, loc := range sessions {
		e.expect(e.do("DELETE", loc, nil), 204, "")
	}
	e.wantNothingStored("after cancelling every session")
	e.pushBlob("alice/app", small)
}

// TestQuotaRefusedCommitLeavesNothing: bytes stored before the refusing link (the
// quota lowered meanwhile, or another push's link took the room) are deleted at once,
// on the monolithic and the chunked path, not left for garbage collection.
func TestQuotaRefusedCommitLeavesNothing(t *testing.T) {
	e, acc := quotaEnv(t, 4000)
	ctx := t.Context()
	data, d := randomBlob(t, 3000)

	// Chunked: received within the quota, refused at the PUT.
	r := e.do("POST", "/v2/alice/app/blobs/uploads/", nil)
	e.expect(r, 202, "")
	loc := r.header.Get("Location")
	e.expect(e.do("PATCH", loc, bytes.NewReader(data)), 202, "")
	if err := acc.SetQuota(ctx, "alice", 1000); err != nil {
		t.Fatal(err)
	}
	wantQuotaDenied(t, e, "commit", e.do("PUT", loc+"?digest="+d.String(), nil), 1000)
	e.expect(e.do("GET", loc, nil), 404, "BLOB_UPLOAD_UNKNOWN")
	e.wantNothingStored("refused chunked commit")
	if _, err := e.h.o.Meta.GetBlob(ctx, d); err == nil {
		t.Error("the refused blob's row is still there")
	}

	// Monolithic: the quota is lowered while the body streams in, after the check.
	if err := acc.SetQuota(ctx, "alice", 4000); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	done := make(chan resp)
	go func() {
		req, _ := http.NewRequest("POST", e.srv.URL+"/v2/alice/app/blobs/uploads/?digest="+d.String(), pr)
		req.ContentLength = int64(len(data))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- resp{status: -1, body: []byte(err.Error())}
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		done <- resp{res.StatusCode, res.Header, b}
	}()
	// The write returns once the server read it: it is past the quota check.
	if _, err := pw.Write(data[:1000]); err != nil {
		t.Fatal(err)
	}
	if err := acc.SetQuota(ctx, "alice", 1000); err != nil {
		t.Fatal(err)
	}
	if _, err := pw.Write(data[1000:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	wantQuotaDenied(t, e, "monolithic commit", <-done, 1000)
	e.wantNothingStored("refused monolithic commit")
	if _, err := e.h.o.Meta.GetBlob(ctx, d); err == nil {
		t.Error("the refused blob's row is still there")
	}
	e.expect(e.do("HEAD", "/v2/alice/app/blobs/"+d.String(), nil), 404, "")

	// A blob another namespace holds is not deleted by alice's refused push of it.
	e.pushBlob("other/app", data)
	wantQuotaDenied(t, e, "shared blob", e.do("POST", "/v2/alice/app/blobs/uploads/?digest="+d.String(), bytes.NewReader(data)), 1000)
	e.expect(e.do("GET", "/v2/other/app/blobs/"+d.String(), nil), 200, "")
	_ = digest.Digest("")
}
