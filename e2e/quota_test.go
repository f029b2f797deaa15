package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hubctl/hubctl/internal/s3test"
)

// TestQuotaBoundsDisk (issue 12 item 4) against a real `hubctl serve`, on the
// filesystem with SQLite and on S3 with PostgreSQL: with a 1 KiB quota, 300 upload
// sessions each sending 22 KiB (half of them streamed without a length, as docker
// sends a layer) are all refused and leave nothing stored; a monolithic push over the
// quota is refused before a byte is stored; a chunked push refused at its commit (the
// quota was lowered meanwhile) leaves neither its session's bytes nor the blob's.
func TestQuotaBoundsDisk(t *testing.T) {
	t.Run("filesystem", func(t *testing.T) {
		s := startAuthServer(t)
		quotaBoundsDisk(t, s, 8, func(t *testing.T) []string {
			var stored []string
			for _, dir := range []string{"blobs", "uploads", "tmp"} {
				root := filepath.Join(s.DataDir, dir)
				_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
					if err == nil && !d.IsDir() {
						stored = append(stored, strings.TrimPrefix(p, s.DataDir+"/"))
					}
					return nil
				})
			}
			return stored
		})
	})
	t.Run("s3", func(t *testing.T) {
		rs, env := startReplicaSet(t, 1)
		bucket := envDir(env, "HUBCTL_STORAGE_S3_BUCKET")
		// One session at a time: versitygw's posix backend races when one upload's
		// objects are deleted while another's are created (PutObject of a new upload's
		// marker answers 409 ExistingObjectIsDirectory now and then), which is the
		// peer's, not the registry's. The filesystem run and
		// registry.TestQuotaBoundsUploads cover concurrent sessions.
		quotaBoundsDisk(t, rs[0], 1, func(t *testing.T) []string {
			return append(s3test.Keys(t, bucket, "blobs/"), s3test.Keys(t, bucket, "uploads/")...)
		})
	})
}

// quotaBoundsDisk runs TestQuotaBoundsDisk on s, parallel sessions at a time; stored
// lists what the blob store holds (files or objects).
func quotaBoundsDisk(t *testing.T, s *server, parallel int, stored func(t *testing.T) []string) {
	createUser(t, s, "alice", "alice-password-1")
	setQuota := func(n int) {
		t.Helper()
		resp, body := apiCall(t, s, http.MethodPut, "/api/v1/namespaces/alice/quota", "admin", adminPassword, map[string]any{"bytes": n})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("set quota: %s %s", resp.Status, body)
		}
	}
	setQuota(1024)
	tok := mustToken(t, s, "alice", "alice-password-1", "repository:alice/app:pull,push")
	random := func(n int) []byte {
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	chunk := random(22 << 10)
	wantNothing := func(what string) {
		t.Helper()
		if got := stored(t); len(got) != 0 {
			t.Fatalf("%s: the blob store holds %q, want nothing", what, got)
		}
	}

	// 300 sessions, parallel at a time.
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[string]int{}
	)
	slots := make(chan struct{}, parallel)
	for i := range 300 {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			key := "POST"
			resp, body := send(t, "POST", s.URL("/v2/alice/app/blobs/uploads/"), tok, nil)
			if resp.StatusCode == http.StatusAccepted {
				key = "PATCH"
				loc := resp.Header.Get("Location")
				if i%2 == 0 {
					resp, body = streamTo(t, "PATCH", s.URL(loc), tok, chunk)
				} else {
					resp, body = send(t, "PATCH", s.URL(loc), tok, chunk, "Content-Type", "application/octet-stream")
				}
			}
			mu.Lock()
			defer mu.Unlock()
			statuses[fmt.Sprintf("%s %d", key, resp.StatusCode)]++
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "DENIED") {
				t.Errorf("%s: %s %s, want 403 DENIED; server log:\n%s", key, resp.Status, truncate(body, 300),
					logLinesOf(t, s, resp.Header.Get("X-Request-Id")))
			}
		})
	}
	wg.Wait()
	t.Logf("300 sessions of 22 KiB with a 1 KiB quota: %v", statuses)
	wantNothing("after 300 refused sessions")

	// Monolithic over the quota: refused before the body is stored.
	big := random(4 << 10)
	resp, body := send(t, "POST", s.URL("/v2/alice/app/blobs/uploads/?digest="+sha256Digest(big)), tok, big, "Content-Type", "application/octet-stream")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "quota of 1024 bytes") {
		t.Fatalf("monolithic push over quota: %s %s, want 403 naming the quota", resp.Status, body)
	}
	wantNothing("after a refused monolithic push")

	// Chunked within the quota, then refused at the commit: the quota went down.
	small := random(600)
	resp, body = send(t, "POST", s.URL("/v2/alice/app/blobs/uploads/"), tok, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %s %s", resp.Status, body)
	}
	loc := resp.Header.Get("Location")
	resp, body = send(t, "PATCH", s.URL(loc), tok, small, "Content-Type", "application/octet-stream")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH within the quota: %s %s", resp.Status, body)
	}
	setQuota(100)
	resp, body = send(t, "PUT", s.URL(resp.Header.Get("Location")+"?digest="+sha256Digest(small)), tok, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "quota of 100 bytes") {
		t.Fatalf("commit over the lowered quota: %s %s, want 403 naming the quota", resp.Status, body)
	}
	wantNothing("after a commit refused for quota")

	// Room again: the same push goes through and is stored once.
	setQuota(1024)
	resp, body = send(t, "POST", s.URL("/v2/alice/app/blobs/uploads/?digest="+sha256Digest(small)), tok, small, "Content-Type", "application/octet-stream")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push within the quota: %s %s", resp.Status, body)
	}
	if got := stored(t); len(got) != 1 {
		t.Fatalf("after one push the blob store holds %q, want one blob", got)
	}
}

// streamTo sends body without a Content-Length (chunked transfer encoding).
func streamTo(t testing.TB, method, url, tok string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, io.MultiReader(bytes.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

// logLinesOf returns the server log's lines of request id.
func logLinesOf(t testing.TB, s *server, id string) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil || id == "" {
		return fmt.Sprintf("(request %q: %v)", id, err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, id) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
