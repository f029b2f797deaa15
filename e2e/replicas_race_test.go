package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/s3test"
)

// streamingRequest sends method url with a body written through a pipe, so a test
// controls when the server sees each byte. It returns the pipe and a channel that
// delivers the response (nil and the error when the request failed).
type streamResult struct {
	resp *http.Response
	body []byte
	err  error
}

func streamingRequest(t *testing.T, method, url, tok string, length int64, hdr ...string) (*io.PipeWriter, <-chan streamResult) {
	t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest(method, url, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = length
	req.Header.Set("Authorization", "Bearer "+tok)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	out := make(chan streamResult, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			pr.CloseWithError(err)
			out <- streamResult{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		pr.Close()
		out <- streamResult{resp: resp, body: b}
	}()
	return pw, out
}

// writeAsync writes b to w in the background and closes w, ignoring a reader that has
// gone (the server answered without reading the body).
func writeAsync(w *io.PipeWriter, b []byte) {
	go func() {
		_, err := w.Write(b)
		w.CloseWithError(err)
	}()
}

// TestReplicasConcurrentPatchesOfOneSession: two PATCHes of one upload session at the
// same offset, through two replicas, both in flight at once (issue 16, item 6). One
// wins; the other must not change what the session holds, so the winner's bytes
// commit and read back, and nothing answers 500.
func TestReplicasConcurrentPatchesOfOneSession(t *testing.T) {
	rs := startReplicas(t, 2)
	a, b := rs[0], rs[1]
	tok := mustToken(t, a, "admin", adminPassword, "repository:admin/race:pull,push")

	// Each chunk is a whole S3 part (above the 5 MiB minimum): the two requests would
	// write part 1 of the same multipart upload.
	const size = 6 << 20
	chunkA, chunkB := make([]byte, size), make([]byte, size)
	if _, err := rand.Read(chunkA); err != nil {
		t.Fatal(err)
	}
	if _, err := rand.Read(chunkB); err != nil {
		t.Fatal(err)
	}

	for _, order := range []string{"the first to start finishes first", "the second to start finishes first"} {
		t.Run(order, func(t *testing.T) {
			resp, body := send(t, "POST", a.URL("/v2/admin/race/blobs/uploads/"), tok, nil)
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("POST: %s %s", resp.Status, body)
			}
			loc := resp.Header.Get("Location")
			hdr := []string{"Content-Range", fmt.Sprintf("0-%d", size-1), "Content-Type", "application/octet-stream"}
			// Both requests have read the session (offset 0) before either finishes:
			// each has sent its first megabyte.
			wa, ra := streamingRequest(t, "PATCH", a.URL(loc), tok, size, hdr...)
			if _, err := wa.Write(chunkA[:1<<20]); err != nil {
				t.Fatalf("PATCH on A: %v", err)
			}
			wb, rb := streamingRequest(t, "PATCH", b.URL(loc), tok, size, hdr...)
			// B may be refused before reading its body; then this write fails, which
			// is fine.
			go func() { _, _ = wb.Write(chunkB[:1<<20]) }()
			time.Sleep(500 * time.Millisecond)

			type req struct {
				w    *io.PipeWriter
				res  <-chan streamResult
				data []byte
				r    streamResult
			}
			first, second := &req{w: wa, res: ra, data: chunkA}, &req{w: wb, res: rb, data: chunkB}
			if order == "the second to start finishes first" {
				first, second = second, first
			}
			writeAsync(first.w, first.data[1<<20:])
			first.r = <-first.res
			writeAsync(second.w, second.data[1<<20:])
			second.r = <-second.res

			var winner []byte
			accepted := 0
			for _, q := range []*req{first, second} {
				if q.r.err != nil {
					continue // the server closed a refused request's connection mid-body
				}
				switch {
				case q.r.resp.StatusCode == http.StatusAccepted:
					accepted++
					winner = q.data
				case q.r.resp.StatusCode >= 500:
					t.Errorf("PATCH: %s", status(q.r))
				}
			}
			if accepted != 1 {
				t.Fatalf("%d PATCHes accepted, want exactly 1 (first to finish: %v; second: %v)", accepted, status(first.r), status(second.r))
			}
			dgst := sha256Digest(winner)
			resp, body = send(t, "PUT", b.URL(loc+"?digest="+dgst), tok, nil)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("PUT of the accepted chunk's digest: %s %s", resp.Status, body)
			}
			resp, got := pull(t, a, "/v2/admin/race/blobs/"+dgst, tok)
			if resp.StatusCode != 200 || !bytes.Equal(got, winner) {
				t.Fatalf("GET: %s, %d bytes, equal %v", resp.Status, len(got), bytes.Equal(got, winner))
			}
		})
	}
}

func status(r streamResult) string {
	if r.err != nil {
		return r.err.Error()
	}
	return fmt.Sprintf("%s %s", r.resp.Status, truncate(r.body, 200))
}

// bucketOf returns the bucket named in replica flags.
func bucketOf(t *testing.T, args []string) string {
	t.Helper()
	for _, a := range args {
		if b, ok := strings.CutPrefix(a, "--s3-bucket="); ok {
			return b
		}
	}
	t.Fatal("no --s3-bucket in the replica flags")
	return ""
}

// waitUntil polls cond every 200 ms until it holds, for at most limit (a hang guard,
// not a timing assertion).
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", limit, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestReplicasInterruptedMonolithicPush: a monolithic push (POST ?digest=) streams into
// a multipart upload at the blob's key; a replica killed in the middle of it, or shut
// down with a timeout shorter than the push, must not leave that upload in the bucket
// for ever (issue 16, item 5). Killed, another replica's stale-session purge aborts it;
// stopped, the replica aborts it before it exits.
func TestReplicasInterruptedMonolithicPush(t *testing.T) {
	const size = 64 << 20
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	dgst := sha256Digest(data)
	// startPush sends the first 24 MiB of the blob to s and waits until its multipart
	// upload is in the bucket.
	startPush := func(t *testing.T, s *server, bucket string) {
		tok := mustToken(t, s, "admin", adminPassword, "repository:admin/mono:pull,push")
		w, _ := streamingRequest(t, "POST", s.URL("/v2/admin/mono/blobs/uploads/?digest="+dgst), tok, size,
			"Content-Type", "application/octet-stream")
		go func() { _, _ = w.Write(data[:24<<20]) }()
		waitUntil(t, 60*time.Second, "no multipart upload in the bucket during the push", func() bool {
			return len(s3test.MultipartUploads(t, bucket)) > 0
		})
	}

	t.Run("killed, purged by another replica", func(t *testing.T) {
		env, args, _ := replicaConfig(t)
		bucket := bucketOf(t, args)
		a := startServerEnv(t, t.TempDir(), env, args...)
		b := startServerEnv(t, t.TempDir(), append(env[:len(env):len(env)], "HUBCTL_UPLOADS_MAX_AGE=2s", "HUBCTL_UPLOADS_CLEANUP_INTERVAL=1s"), args...)
		startPush(t, a, bucket)
		a.Kill()
		waitUntil(t, 90*time.Second, fmt.Sprintf("the purge on the other replica left multipart uploads %q", s3test.MultipartUploads(t, bucket)), func() bool {
			return len(s3test.MultipartUploads(t, bucket)) == 0
		})
		_ = b
	})

	t.Run("stopped with a shutdown timeout shorter than the push", func(t *testing.T) {
		env, args, _ := replicaConfig(t)
		bucket := bucketOf(t, args)
		a := startServerEnv(t, t.TempDir(), append(env[:len(env):len(env)], "HUBCTL_SHUTDOWN_TIMEOUT=1s"), args...)
		startPush(t, a, bucket)
		a.Stop()
		if ups := s3test.MultipartUploads(t, bucket); len(ups) != 0 {
			t.Fatalf("after the replica stopped: multipart uploads %q left in the bucket", ups)
		}
	})
}

// TestReplicasManifestsCountAgainstQuota: manifests live in the database, up to
// max_manifest_size each; a namespace whose quota is full of blobs could fill the
// database with manifests instead (issue 16, item 1). Manifests and tags now count, so
// pushes through either replica are refused with 403 DENIED once the quota is spent;
// and a repository holds at most limits.manifests_per_repository manifests and
// limits.tags_per_repository tags, quota or not.
func TestReplicasManifestsCountAgainstQuota(t *testing.T) {
	rs, _ := startReplicaSetEnv(t, 2, []string{"HUBCTL_LIMITS_MANIFESTS_PER_REPOSITORY=6", "HUBCTL_LIMITS_TAGS_PER_REPOSITORY=4"})
	a, b := rs[0], rs[1]
	createUser(t, a, "alice", "alice-password-1")
	tok := mustToken(t, a, "alice", "alice-password-1", "repository:alice/app:pull,push", "repository:alice/big:pull,push")
	img := newImage(t, "amd64")
	pushImageAs(t, a, tok, "alice/app", "v1", img)
	pushImageAs(t, b, tok, "alice/big", "v1", img)
	// Manifests of 256 KiB, each distinct: padded annotations, as in the report.
	padded := func(i int) []byte {
		return bytes.Replace(img.Manifest, []byte(`"schemaVersion":2`),
			[]byte(fmt.Sprintf(`"schemaVersion":2,"annotations":{"n":"%d","pad":"%s"}`, i, strings.Repeat("x", 256<<10))), 1)
	}
	resp, body := apiCall(t, a, http.MethodPut, "/api/v1/namespaces/alice/quota", "admin", adminPassword, map[string]any{"bytes": 2 << 20})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("set quota: %s %s", resp.Status, body)
	}
	accepted, refused := 0, 0
	for i := range 10 {
		s := rs[i%2]
		resp, body := send(t, "PUT", s.URL("/v2/alice/big/manifests/"+sha256Digest(padded(i))), tok, padded(i), "Content-Type", mtOCIManifest)
		switch resp.StatusCode {
		case http.StatusCreated:
			accepted++
		case http.StatusForbidden:
			refused++
			wantError(t, resp, body, []int{http.StatusForbidden}, "DENIED")
		default:
			t.Fatalf("PUT manifest %d: %s %s", i, resp.Status, truncate(body, 300))
		}
	}
	// 2 MiB hold three such manifests (each counts twice its bytes) and the image.
	if accepted == 0 || refused == 0 || accepted > 4 {
		t.Fatalf("%d manifests of 256 KiB accepted and %d refused under a 2 MiB quota; want a few accepted, then refusals", accepted, refused)
	}
	var usage struct {
		Used  int64 `json:"used_bytes"`
		Quota int64 `json:"quota_bytes"`
	}
	resp, body = apiCall(t, b, http.MethodGet, "/api/v1/namespaces/alice/usage", "admin", adminPassword, nil)
	if err := json.Unmarshal(body, &usage); resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("usage: %s %s", resp.Status, body)
	}
	if usage.Used > usage.Quota || usage.Used < int64(accepted)*(256<<10) {
		t.Fatalf("usage %d of quota %d after %d manifests of 256 KiB", usage.Used, usage.Quota, accepted)
	}

	// Per-repository bounds, without a quota.
	resp, body = apiCall(t, a, http.MethodPut, "/api/v1/namespaces/alice/quota", "admin", adminPassword, map[string]any{"bytes": 0})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("clear quota: %s %s", resp.Status, body)
	}
	tags := 1 // v1
	for i := range 6 {
		s := rs[i%2]
		resp, body := send(t, "PUT", s.URL(fmt.Sprintf("/v2/alice/app/manifests/t%d", i)), tok, img.Manifest, "Content-Type", mtOCIManifest)
		if tags < 4 {
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("tag %d of 4: %s %s", tags+1, resp.Status, body)
			}
			tags++
			continue
		}
		wantError(t, resp, body, []int{http.StatusForbidden}, "DENIED")
		if !strings.Contains(string(body), "limits.tags_per_repository") {
			t.Fatalf("refused tag: %s, want the setting named", body)
		}
	}
	manifests := 1 // the image
	for i := range 8 {
		m := bytes.Replace(img.Manifest, []byte(`"schemaVersion":2`), []byte(fmt.Sprintf(`"schemaVersion":2,"annotations":{"m":"%d"}`, i)), 1)
		resp, body := send(t, "PUT", rs[i%2].URL("/v2/alice/app/manifests/"+sha256Digest(m)), tok, m, "Content-Type", mtOCIManifest)
		if manifests < 6 {
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("manifest %d of 6: %s %s", manifests+1, resp.Status, body)
			}
			manifests++
			continue
		}
		wantError(t, resp, body, []int{http.StatusForbidden}, "DENIED")
	}
}

// TestReplicasShareLoginLimits: behind a load balancer (the test plays the proxy: the
// replicas trust 127.0.0.1 and read X-Forwarded-For), failed logins count across
// replicas, per client address rather than per proxy, and the per-account ceiling
// never refuses the owner at an address the owner signed in from (issue 16, item 8).
func TestReplicasShareLoginLimits(t *testing.T) {
	rs, _ := startReplicaSetEnv(t, 2, []string{"HUBCTL_TRUSTED_PROXIES=127.0.0.1/32", "HUBCTL_AUTH_MAX_ACCOUNT_LOGIN_FAILURES=30"})
	login := func(s *server, user, pass, from string) int {
		t.Helper()
		q := url.Values{"service": {"hubctl"}, "scope": {"repository:admin/x:pull"}}
		resp, _ := do(t, http.MethodGet, s.URL("/token?"+q.Encode()), nil,
			map[string]string{"Authorization": basic(user, pass), "X-Forwarded-For": "1.2.3.4, " + from})
		return resp.StatusCode
	}
	// The owner signs in from their usual address, through replica A.
	if st := login(rs[0], "admin", adminPassword, "203.0.113.10"); st != http.StatusOK {
		t.Fatalf("admin's first login: %d", st)
	}
	// Five guesses at admin from one address, alternating replicas: the limit is one
	// for both, not five each.
	for i := range 5 {
		if st := login(rs[i%2], "admin", "wrong", "198.51.100.1"); st != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i+1, st)
		}
	}
	for i, s := range rs {
		if st := login(s, "admin", adminPassword, "198.51.100.1"); st != http.StatusTooManyRequests {
			t.Fatalf("replica %d after five guesses over both: %d, want 429", i+1, st)
		}
	}
	// A sprayer at one address locks out that address only, not everyone behind the
	// proxy: another client signs in.
	for i := range 20 {
		_ = login(rs[i%2], fmt.Sprintf("user%d", i), "wrong", "198.51.100.2")
	}
	if st := login(rs[1], "someone", "x", "198.51.100.2"); st != http.StatusTooManyRequests {
		t.Fatalf("the sprayer's address after 20 failures: %d, want 429", st)
	}
	if st := login(rs[1], "admin", adminPassword, "203.0.113.11"); st != http.StatusOK {
		t.Fatalf("another client behind the same proxy: %d, want 200", st)
	}
	// Guesses from many addresses reach the per-account ceiling (30, five of them made
	// above): the account refuses new addresses, but never its owner at a known one.
	for i := range 25 {
		if st := login(rs[i%2], "admin", "wrong", fmt.Sprintf("198.51.101.%d", i)); st != http.StatusUnauthorized {
			t.Fatalf("distributed guess %d: %d, want 401", i+1, st)
		}
	}
	if st := login(rs[0], "admin", "wrong", "198.51.102.1"); st != http.StatusTooManyRequests {
		t.Fatalf("a guess from a new address at the ceiling: %d, want 429", st)
	}
	for i, s := range rs {
		if st := login(s, "admin", adminPassword, "203.0.113.10"); st != http.StatusOK {
			t.Fatalf("the owner at the known address, replica %d, at the ceiling: %d, want 200", i+1, st)
		}
	}
}

// TestReplicasPresignedURLsEndWithTheirToken: a presigned blob URL never outlives the
// registry token that obtained it, and points at storage.s3.presign_endpoint (issue
// 16, item 9). Tokens here live 20 s, under the 60 s redirect default; once the token
// has expired (and is still accepted within the clock leeway), the bytes are streamed
// rather than handed out as a URL that would live on.
func TestReplicasPresignedURLsEndWithTheirToken(t *testing.T) {
	env, args, _ := replicaConfig(t)
	var endpoint string
	for _, a := range args {
		if e, ok := strings.CutPrefix(a, "--s3-endpoint="); ok {
			endpoint = e
		}
	}
	public := strings.Replace(endpoint, "127.0.0.1", "localhost", 1)
	env = append(env, "HUBCTL_AUTH_TOKEN_TTL=20s", "HUBCTL_STORAGE_S3_PRESIGN_ENDPOINT="+public)
	a := startServerEnv(t, t.TempDir(), env, args...)
	b := startServerEnv(t, t.TempDir(), env, args...)
	tok := mustToken(t, a, "admin", adminPassword, "repository:admin/app:pull,push")
	issued := time.Now()
	img := newImage(t, "amd64")
	pushImageAs(t, a, tok, "admin/app", "v1", img)

	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func() *http.Response {
		req, _ := http.NewRequest("GET", b.URL("/v2/admin/app/blobs/"+img.LayerDigest), nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := get()
	res.Body.Close()
	loc, err := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusTemporaryRedirect || err != nil {
		t.Fatalf("blob GET: %s, Location %q", res.Status, res.Header.Get("Location"))
	}
	if !strings.HasPrefix(loc.String(), public+"/") {
		t.Fatalf("presigned URL %s is not at the presign endpoint %s", loc, public)
	}
	expires, _ := strconv.Atoi(loc.Query().Get("X-Amz-Expires"))
	if expires <= 0 || time.Duration(expires)*time.Second > 20*time.Second-time.Since(issued)+time.Second {
		t.Fatalf("presigned URL expires in %d s; the token that obtained it expires in %v", expires, 20*time.Second-time.Since(issued))
	}
	if resp, body := pull(t, b, "/v2/admin/app/blobs/"+img.LayerDigest, tok); resp.StatusCode != 200 || !bytes.Equal(body, img.Layer) {
		t.Fatalf("pull through the presigned URL: %s", resp.Status)
	}
	// Past the token's expiry, within the leeway the registry grants it.
	time.Sleep(time.Until(issued.Add(21 * time.Second)))
	res = get()
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode == http.StatusTemporaryRedirect {
		t.Fatalf("an expired token got a presigned URL: %s", res.Header.Get("Location"))
	}
	if res.StatusCode == http.StatusOK && !bytes.Equal(body, img.Layer) {
		t.Fatalf("streamed blob differs")
	}
}
