package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/pgtest"
	"github.com/hubctl/hubctl/internal/s3test"
)

// startReplicas starts n `hubctl serve` processes that share one bucket on a real S3
// server, one PostgreSQL database and one key directory, and nothing else: each has
// its own data directory, as separate hosts would.
func startReplicas(t *testing.T, n int) []*server {
	t.Helper()
	rs, _ := startReplicaSet(t, n)
	return rs
}

// startReplicaSet is startReplicas that also returns the environment that configures a
// hubctl command (gc) for the same bucket and database.
func startReplicaSet(t *testing.T, n int) ([]*server, []string) {
	t.Helper()
	return startReplicaSetEnv(t, n, nil)
}

// startReplicaSetEnv is startReplicaSet with extra environment for the replicas (e.g.
// HUBCTL_GC_INTERVAL).
func startReplicaSetEnv(t *testing.T, n int, extra []string) ([]*server, []string) {
	t.Helper()
	env, args, cmdEnv := replicaConfig(t)
	out := make([]*server, n)
	for i := range out {
		out[i] = startServerEnv(t, t.TempDir(), append(env[:len(env):len(env)], extra...), args...)
	}
	return out, cmdEnv
}

// replicaConfig makes a fresh bucket and database and returns the environment and
// flags of a replica on them, and the environment of a hubctl command using them.
func replicaConfig(t *testing.T) (env, args, cmdEnv []string) {
	t.Helper()
	endpoint, access, secret, bucket := s3test.Start(t)
	dsn := pgtest.Start(t)
	keys := t.TempDir()
	env = []string{
		"HUBCTL_STORAGE_S3_ACCESS_KEY=" + access, "HUBCTL_STORAGE_S3_SECRET_KEY=" + secret,
		"HUBCTL_DB_PATH=" + dsn, "HUBCTL_AUTH_KEYS_DIR=" + keys,
	}
	args = []string{"--storage=s3", "--s3-endpoint=" + endpoint, "--s3-bucket=" + bucket, "--s3-region=us-east-1", "--s3-path-style"}
	cmdEnv = append(cleanEnv("HUBCTL_"), env...)
	cmdEnv = append(cmdEnv, "HUBCTL_STORAGE_DRIVER=s3", "HUBCTL_STORAGE_S3_ENDPOINT="+endpoint,
		"HUBCTL_STORAGE_S3_BUCKET="+bucket, "HUBCTL_STORAGE_S3_REGION=us-east-1", "HUBCTL_STORAGE_S3_PATH_STYLE=true")
	return env, args, cmdEnv
}

// TestReplicasStartTogether: replicas started at the same moment on an empty database,
// an empty bucket and an empty key directory all come up (issue 16, item 7): one
// migrates, one makes the admin, one makes the first key, and every replica signs
// and verifies with the same key. Three rounds, each on a fresh database.
func TestReplicasStartTogether(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprintf("round %d", round+1), func(t *testing.T) {
			env, args, _ := replicaConfig(t)
			rs := make([]*server, 3)
			for i := range rs {
				rs[i] = launchServerEnv(t, t.TempDir(), env, args...)
			}
			for _, s := range rs {
				s.await()
			}
			for i, s := range rs {
				// The admin logs in on every replica, and a token from one is good on
				// the next: one admin, one key.
				tok := mustToken(t, s, "admin", adminPassword, "repository:admin/start:pull,push")
				next := rs[(i+1)%len(rs)]
				if resp, body := send(t, "GET", next.URL("/v2/"), tok, nil); resp.StatusCode != 200 {
					t.Fatalf("token of replica %d on replica %d: %s %s", i+1, (i+1)%len(rs)+1, resp.Status, body)
				}
			}
		})
	}
}

// pull GETs a blob as a client does: with the token at the registry and, when it
// answers 307 to a presigned bucket URL, without it at the bucket.
func pull(t testing.TB, s *server, path, tok string) (*http.Response, []byte) {
	t.Helper()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", s.URL(path), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode == http.StatusTemporaryRedirect {
		res.Body.Close()
		if res, err = http.Get(res.Header.Get("Location")); err != nil {
			t.Fatal(err)
		}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

// send is do with a bearer token and the body's length known up front.
func send(t testing.TB, method, url, tok string, body []byte, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	h := map[string]string{"Authorization": "Bearer " + tok}
	for i := 0; i+1 < len(hdr); i += 2 {
		h[hdr[i]] = hdr[i+1]
	}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	return do(t, method, url, r, h)
}

func TestReplicas(t *testing.T) {
	rs := startReplicas(t, 3)
	a, b, c := rs[0], rs[1], rs[2]
	// A token issued by one replica is good on every other: they share the keys.
	tok := mustToken(t, a, "admin", adminPassword, "repository:admin/app:pull,push,delete")

	t.Run("chunked upload across replicas", func(t *testing.T) {
		data := make([]byte, 12<<20+123)
		if _, err := rand.Read(data); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		dgst := "sha256:" + hex.EncodeToString(sum[:])
		resp, body := send(t, "POST", a.URL("/v2/admin/app/blobs/uploads/"), tok, nil)
		if resp.StatusCode != 202 {
			t.Fatalf("POST on A: %s %s", resp.Status, body)
		}
		loc := resp.Header.Get("Location")
		cut := []int{0, 6 << 20, 10 << 20, len(data)}
		for i, s := range []*server{b, c, a} {
			part := data[cut[i]:cut[i+1]]
			resp, body = send(t, "PATCH", s.URL(loc), tok, part, "Content-Range", fmt.Sprintf("%d-%d", cut[i], cut[i+1]-1),
				"Content-Type", "application/octet-stream")
			if resp.StatusCode != 202 || resp.Header.Get("Range") != fmt.Sprintf("0-%d", cut[i+1]-1) {
				t.Fatalf("PATCH %d on replica %d: %s %q %s", i, i+1, resp.Status, resp.Header.Get("Range"), body)
			}
			loc = resp.Header.Get("Location")
		}
		if resp, body = send(t, "PUT", b.URL(loc+"?digest="+dgst), tok, nil); resp.StatusCode != 201 {
			t.Fatalf("PUT on B: %s %s", resp.Status, body)
		}
		resp, body = pull(t, c, "/v2/admin/app/blobs/"+dgst, tok)
		if resp.StatusCode != 200 || !bytes.Equal(body, data) {
			t.Fatalf("GET on C: %s, %d bytes", resp.Status, len(body))
		}
	})

	t.Run("push on one, pull on another", func(t *testing.T) {
		img := newImage(t, "amd64")
		pushImageAs(t, a, tok, "admin/app", "v1", img)
		resp, body := send(t, "GET", c.URL("/v2/admin/app/manifests/v1"), tok, nil, "Accept", mtOCIManifest)
		if resp.StatusCode != 200 || !bytes.Equal(body, img.Manifest) {
			t.Fatalf("GET manifest on C: %s %s", resp.Status, truncate(body, 200))
		}
		resp, body = pull(t, b, "/v2/admin/app/blobs/"+img.LayerDigest, tok)
		if resp.StatusCode != 200 || !bytes.Equal(body, img.Layer) {
			t.Fatalf("GET layer on B: %s", resp.Status)
		}
		// The pull went by a presigned URL: the registry answers 307, and the URL
		// serves ranges on its own.
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		req, _ := http.NewRequest("GET", b.URL("/v2/admin/app/blobs/"+img.LayerDigest), nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		loc := res.Header.Get("Location")
		if res.StatusCode != http.StatusTemporaryRedirect || !strings.Contains(loc, "X-Amz-Signature=") {
			t.Fatalf("blob GET on S3: %s, Location %q", res.Status, loc)
		}
		rreq, _ := http.NewRequest("GET", loc, nil)
		rreq.Header.Set("Range", "bytes=10-19")
		rres, err := http.DefaultClient.Do(rreq)
		if err != nil {
			t.Fatal(err)
		}
		part, _ := io.ReadAll(rres.Body)
		rres.Body.Close()
		if rres.StatusCode != http.StatusPartialContent || !bytes.Equal(part, img.Layer[10:20]) {
			t.Fatalf("ranged GET of the presigned URL: %s %d bytes", rres.Status, len(part))
		}
	})

	t.Run("50 concurrent tag moves end in one state", func(t *testing.T) {
		img := newImage(t, "amd64")
		pushImageAs(t, a, tok, "admin/app", "base", img)
		manifests := make([][]byte, 50)
		for i := range manifests {
			// Same blobs, different annotations: 50 distinct manifests.
			manifests[i] = bytes.Replace(img.Manifest, []byte(`"schemaVersion":2`),
				[]byte(fmt.Sprintf(`"schemaVersion":2,"annotations":{"n":"%d"}`, i)), 1)
		}
		var wg sync.WaitGroup
		errs := make(chan string, len(manifests))
		for i, m := range manifests {
			wg.Go(func() {
				s := rs[i%len(rs)]
				resp, body := send(t, "PUT", s.URL("/v2/admin/app/manifests/race"), tok, m, "Content-Type", mtOCIManifest)
				if resp.StatusCode != 201 {
					errs <- fmt.Sprintf("PUT %d: %s %s", i, resp.Status, truncate(body, 200))
				}
			})
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
		digests := map[string]bool{}
		for _, m := range manifests {
			digests[sha256Digest(m)] = true
		}
		var seen []string
		for _, s := range rs {
			resp, _ := send(t, "HEAD", s.URL("/v2/admin/app/manifests/race"), tok, nil, "Accept", mtOCIManifest)
			seen = append(seen, resp.Header.Get("Docker-Content-Digest"))
		}
		if seen[0] != seen[1] || seen[1] != seen[2] || !digests[seen[0]] {
			t.Fatalf("replicas disagree on the tag, or it is none of the pushed manifests: %v", seen)
		}
		resp, body := send(t, "GET", b.URL("/v2/admin/app/tags/list"), tok, nil)
		if resp.StatusCode != 200 || strings.Count(string(body), `"race"`) != 1 {
			t.Fatalf("tags: %s %s", resp.Status, body)
		}
	})

	t.Run("a replica killed mid-upload, the client goes on elsewhere", func(t *testing.T) {
		data := make([]byte, 9<<20)
		if _, err := rand.Read(data); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		dgst := "sha256:" + hex.EncodeToString(sum[:])
		resp, body := send(t, "POST", c.URL("/v2/admin/app/blobs/uploads/"), tok, nil)
		if resp.StatusCode != 202 {
			t.Fatalf("POST on C: %s %s", resp.Status, body)
		}
		loc := resp.Header.Get("Location")
		first := 5 << 20
		if resp, body = send(t, "PATCH", c.URL(loc), tok, data[:first], "Content-Range", fmt.Sprintf("0-%d", first-1)); resp.StatusCode != 202 {
			t.Fatalf("PATCH on C: %s %s", resp.Status, body)
		}
		// A PATCH that is cut off by the crash: its bytes must not count.
		pr, pw := io.Pipe()
		go func() {
			req, _ := http.NewRequest("PATCH", c.URL(loc), pr)
			req.Header.Set("Authorization", "Bearer "+tok)
			if res, err := http.DefaultClient.Do(req); err == nil {
				res.Body.Close()
			}
		}()
		if _, err := pw.Write(data[first : first+1<<20]); err != nil {
			t.Fatal(err)
		}
		c.Kill()
		pw.CloseWithError(io.ErrUnexpectedEOF)

		resp, _ = send(t, "GET", a.URL(loc), tok, nil)
		if resp.StatusCode != 204 || resp.Header.Get("Range") != fmt.Sprintf("0-%d", first-1) {
			t.Fatalf("status on A after the crash: %s %q", resp.Status, resp.Header.Get("Range"))
		}
		if resp, body = send(t, "PATCH", a.URL(loc), tok, data[first:], "Content-Range", fmt.Sprintf("%d-%d", first, len(data)-1)); resp.StatusCode != 202 {
			t.Fatalf("PATCH rest on A: %s %s", resp.Status, body)
		}
		if resp, body = send(t, "PUT", a.URL(loc+"?digest="+dgst), tok, nil); resp.StatusCode != 201 {
			t.Fatalf("PUT on A: %s %s", resp.Status, body)
		}
		resp, body = pull(t, b, "/v2/admin/app/blobs/"+dgst, tok)
		if resp.StatusCode != 200 || !bytes.Equal(body, data) {
			t.Fatalf("GET on B: %s, %d bytes", resp.Status, len(body))
		}
	})
}

// TestPostgresOutage: while PostgreSQL is down the registry answers 503 UNAVAILABLE
// (clients retry), and once it is back the same server serves again without a restart.
func TestPostgresOutage(t *testing.T) {
	s := startReplicas(t, 1)[0]
	tok := mustToken(t, s, "admin", adminPassword, "repository:admin/app:pull,push")
	img := newImage(t, "amd64")
	pushImageAs(t, s, tok, "admin/app", "v1", img)

	resume := pgtest.Pause(t)
	resp, body := send(t, "GET", s.URL("/v2/admin/app/manifests/v1"), tok, nil, "Accept", mtOCIManifest)
	wantError(t, resp, body, []int{http.StatusServiceUnavailable}, "UNAVAILABLE")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if resp, _ := do(t, "GET", s.URL("/readyz"), nil, nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz while the database is down: %s", resp.Status)
	}
	resume()

	resp, body = send(t, "GET", s.URL("/v2/admin/app/manifests/v1"), tok, nil, "Accept", mtOCIManifest)
	if resp.StatusCode != 200 || !bytes.Equal(body, img.Manifest) {
		t.Fatalf("after the database came back: %s %s", resp.Status, truncate(body, 200))
	}
	pushImageAs(t, s, tok, "admin/app", "v2", newImage(t, "arm64"))
}

// roundRobin is a minimal load balancer on loopback: each request goes to the next
// replica. It keeps the client's Host, so token realms name the balancer, as a real
// one in front of replicas would arrange.
func roundRobin(t *testing.T, rs []*server) string {
	t.Helper()
	var next atomic.Int64
	proxy := &httputil.ReverseProxy{
		Director: func(r *http.Request) {
			s := rs[int(next.Add(1)-1)%len(rs)]
			r.URL.Scheme, r.URL.Host = "http", s.Addr
		},
		FlushInterval: -1,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// TestDockerThroughReplicas: docker logs in, pushes and pulls through a round-robin
// balancer in front of two replicas, so its requests (token, uploads, manifest) land
// on both.
func TestDockerThroughReplicas(t *testing.T) {
	requireDocker(t)
	rs := startReplicas(t, 2)
	lb := roundRobin(t, rs)
	dir, want := helloContext(t, "hello through two replicas")
	env := clientEnv(t, t.TempDir())
	if exec.Command("docker", "buildx", "version").Run() != nil {
		env = append(env, "DOCKER_BUILDKIT=0")
	}
	ref := lb + "/admin/hello:1"
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", ref).Run() })
	if out := runStdin(t, dir, env, adminPassword+"\n", "docker", "login", lb, "-u", "admin", "--password-stdin"); !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("docker login: %q", out)
	}
	run(t, dir, env, "docker", "build", "-t", ref, ".")
	run(t, dir, env, "docker", "push", ref)
	run(t, dir, env, "docker", "rmi", ref)
	run(t, dir, env, "docker", "pull", ref)
	if out := strings.TrimSpace(run(t, dir, env, "docker", "run", "--rm", ref)); out != want {
		t.Fatalf("docker run printed %q, want %q", out, want)
	}
	// Both replicas took part: each served requests for the repository.
	for i, s := range rs {
		logb, err := os.ReadFile(s.logPath)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(logb), "admin/hello") {
			t.Errorf("replica %d served nothing of admin/hello", i)
		}
	}
}

// TestS3Outage: the S3 server stops in the middle of a push. The client gets a clean
// error (503 UNAVAILABLE, not a half-written blob or tag), and once S3 is back the same
// push succeeds without restarting the server.
func TestS3Outage(t *testing.T) {
	s := startReplicas(t, 1)[0]
	tok := mustToken(t, s, "admin", adminPassword, "repository:admin/app:pull,push")
	img := newImage(t, "amd64")
	// The config lands before the outage; the layer and the manifest do not.
	resp, body := send(t, "POST", s.URL("/v2/admin/app/blobs/uploads/?digest="+img.ConfigDigest), tok, img.Config, "Content-Type", "application/octet-stream")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push config: %s %s", resp.Status, body)
	}

	resume := s3test.Pause(t)
	resp, body = send(t, "POST", s.URL("/v2/admin/app/blobs/uploads/?digest="+img.LayerDigest), tok, img.Layer, "Content-Type", "application/octet-stream")
	wantError(t, resp, body, []int{http.StatusServiceUnavailable}, "UNAVAILABLE")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	// Nothing of the failed push is visible: not the layer, so not the manifest either.
	if st := headStatusAuth(t, s, "/v2/admin/app/blobs/"+img.LayerDigest, tok); st != http.StatusNotFound {
		t.Fatalf("HEAD of the layer that failed to upload: %d", st)
	}
	resp, body = send(t, "PUT", s.URL("/v2/admin/app/manifests/v1"), tok, img.Manifest, "Content-Type", mtOCIManifest)
	wantError(t, resp, body, []int{http.StatusBadRequest}, "MANIFEST_BLOB_UNKNOWN")
	resume()

	pushImageAs(t, s, tok, "admin/app", "v1", img)
	resp, body = pull(t, s, "/v2/admin/app/blobs/"+img.LayerDigest, tok)
	if resp.StatusCode != 200 || !bytes.Equal(body, img.Layer) {
		t.Fatalf("layer after S3 came back: %s, %d bytes", resp.Status, len(body))
	}
}

// TestGCOnS3: garbage collection on the scale-out setup (S3 + PostgreSQL) while two
// replicas serve: the bytes of a deleted image go, a kept image still pulls.
func TestGCOnS3(t *testing.T) {
	rs, env := startReplicaSet(t, 2)
	a, b := rs[0], rs[1]
	tok := mustToken(t, a, "admin", adminPassword, "repository:admin/app:pull,push,delete")
	kept, gone := newImage(t, "amd64"), newImage(t, "arm64")
	pushImageAs(t, a, tok, "admin/app", "kept", kept)
	pushImageAs(t, b, tok, "admin/app", "gone", gone)
	if resp, body := send(t, "DELETE", b.URL("/v2/admin/app/manifests/"+gone.ManifestDigest), tok, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("delete: %s %s", resp.Status, body)
	}
	out := run(t, t.TempDir(), env, hubctlBin, "gc", "--grace", "0s", "-o", "json", "--data", t.TempDir())
	var rep struct {
		Swept      int   `json:"swept"`
		BytesFreed int64 `json:"bytes_freed"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("gc output %q: %v", out, err)
	}
	// The deleted image's config and layer are swept; the kept image's are not.
	if rep.Swept != 2 || rep.BytesFreed != int64(len(gone.Config)+len(gone.Layer)) {
		t.Fatalf("gc report %+v, want the 2 blobs of the deleted image (%d bytes)", rep, len(gone.Config)+len(gone.Layer))
	}
	for _, d := range []string{kept.ConfigDigest, kept.LayerDigest} {
		resp, body := pull(t, a, "/v2/admin/app/blobs/"+d, tok)
		if resp.StatusCode != http.StatusOK || sha256Digest(body) != d {
			t.Fatalf("kept blob %s after gc: %s", d, resp.Status)
		}
	}
	resp, _ := pull(t, b, "/v2/admin/app/blobs/"+gone.LayerDigest, tok)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("deleted image's layer after gc: %s", resp.Status)
	}
}

// TestGCOnS3Replicas: two replicas run the GC schedule every second and an operator
// runs hubctl gc, all on one bucket and database. One collection runs at a time: the
// others skip and say so (the schedules in their logs, hubctl gc with exit 1); the
// kept image's blobs survive and the deleted image's go.
func TestGCOnS3Replicas(t *testing.T) {
	rs, env := startReplicaSetEnv(t, 2, []string{"HUBCTL_GC_INTERVAL=1s", "HUBCTL_GC_GRACE=0s"})
	a, b := rs[0], rs[1]
	var dsn string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "HUBCTL_DB_PATH="); ok {
			dsn = v
		}
	}
	meta, err := sqlstore.OpenPostgres(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	// The test holds the lease, as a long collection would, while it pushes: with a
	// grace of 0 a schedule could otherwise unlink a blob between its upload and the
	// manifest that references it (the client would have to push again).
	const holder = "e2e test holding the lease"
	if l, ok, err := meta.AcquireGCLease(t.Context(), holder, 10*time.Minute); err != nil || !ok {
		t.Fatalf("acquire the gc lease: %+v %v %v", l, ok, err)
	}
	release := sync.OnceFunc(func() {
		if err := meta.ReleaseGCLease(t.Context(), holder); err != nil {
			t.Error(err)
		}
	})
	defer release()

	tok := mustToken(t, a, "admin", adminPassword, "repository:admin/app:pull,push,delete")
	kept, gone := newImage(t, "amd64"), newImage(t, "arm64")
	pushImageAs(t, a, tok, "admin/app", "kept", kept)
	pushImageAs(t, b, tok, "admin/app", "gone", gone)
	if resp, body := send(t, "DELETE", b.URL("/v2/admin/app/manifests/"+gone.ManifestDigest), tok, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("delete: %s %s", resp.Status, body)
	}

	// Both schedules find the lease held and log that they skipped.
	for _, s := range rs {
		poll(t, 2*time.Minute, "replica "+s.Addr+" to log a skipped gc", func() bool {
			log, _ := os.ReadFile(s.logPath)
			for _, line := range strings.Split(string(log), "\n") {
				if strings.Contains(line, "garbage collection skipped: another collection is running") && strings.Contains(line, holder) {
					return true
				}
			}
			return false
		})
	}
	// So does hubctl gc, with exit 1 and the holder named.
	out, errOut, err := runErr(t, t.TempDir(), env, hubctlBin, "gc", "--grace", "0s", "--data", t.TempDir())
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(errOut, "another garbage collection is running (holder "+holder) {
		t.Fatalf("hubctl gc while the lease is held: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	for _, d := range []string{gone.ConfigDigest, gone.LayerDigest} {
		if resp, _ := pull(t, a, "/v2/admin/app/blobs/"+d, tok); resp.StatusCode != http.StatusOK {
			t.Fatalf("blob %s collected while the test held the lease: %s", d, resp.Status)
		}
	}

	// Released, the lease goes to the schedules and hubctl gc in turn; hubctl gc is
	// refused only while a schedule holds it, so it is run until it gets it.
	release()
	poll(t, 2*time.Minute, "hubctl gc to get the lease", func() bool {
		_, errOut, err := runErr(t, t.TempDir(), env, hubctlBin, "gc", "--grace", "0s", "--data", t.TempDir())
		if err != nil && !strings.Contains(errOut, "another garbage collection is running") {
			t.Fatalf("hubctl gc: %v\n%s", err, errOut)
		}
		return err == nil
	})
	for _, s := range rs {
		poll(t, 2*time.Minute, "the deleted image's blobs to go", func() bool {
			for _, d := range []string{gone.ConfigDigest, gone.LayerDigest} {
				if resp, _ := pull(t, s, "/v2/admin/app/blobs/"+d, tok); resp.StatusCode != http.StatusNotFound {
					return false
				}
			}
			return true
		})
		for _, d := range []string{kept.ConfigDigest, kept.LayerDigest} {
			resp, body := pull(t, s, "/v2/admin/app/blobs/"+d, tok)
			if resp.StatusCode != http.StatusOK || sha256Digest(body) != d {
				t.Fatalf("kept blob %s after gc: %s", d, resp.Status)
			}
		}
		if resp, body := send(t, "GET", s.URL("/v2/admin/app/manifests/kept"), tok, nil, "Accept", mtOCIManifest); resp.StatusCode != http.StatusOK || !bytes.Equal(body, kept.Manifest) {
			t.Fatalf("kept manifest after gc: %s", resp.Status)
		}
	}
}

// poll calls cond until it is true, failing the test after timeout. The timeout is a
// hang guard, not a speed assertion.
func poll(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting %s for %s", timeout, what)
		}
	}
}
