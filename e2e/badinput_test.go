package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// uploadURL resolves an upload Location (relative or absolute) against the server and
// appends query parameters.
func uploadURL(t testing.TB, s *server, location string, query string) string {
	t.Helper()
	base, _ := url.Parse(s.URL("/"))
	u, err := base.Parse(location)
	if err != nil {
		t.Fatalf("bad Location %q: %v", location, err)
	}
	if query != "" {
		if u.RawQuery != "" {
			u.RawQuery += "&" + query
		} else {
			u.RawQuery = query
		}
	}
	return u.String()
}

// startUpload opens an upload session in repo and returns its Location.
func startUpload(t testing.TB, s *server, repo string) string {
	t.Helper()
	resp, body := do(t, http.MethodPost, s.URL("/v2/"+repo+"/blobs/uploads/"), nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST upload %s: %s %q", repo, resp.Status, truncate(body, 300))
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		t.Fatalf("POST upload %s: no Location", repo)
	}
	return loc
}

// patchChunk PATCHes b at offset and returns the response.
func patchChunk(t testing.TB, s *server, loc string, offset int, b []byte) (*http.Response, []byte) {
	t.Helper()
	return do(t, http.MethodPatch, uploadURL(t, s, loc, ""), bytes.NewReader(b), map[string]string{
		"Content-Type":   "application/octet-stream",
		"Content-Range":  fmt.Sprintf("%d-%d", offset, offset+len(b)-1),
		"Content-Length": strconv.Itoa(len(b)),
	})
}

// assertNoBlobs asserts that nothing became a blob: no file under blobs/, no blobs row,
// and HEAD of each digest in repo is 404.
func assertNoBlobs(t testing.TB, s *server, repo string, digests ...string) {
	t.Helper()
	if fs := files(t, s.DataDir, "blobs"); len(fs) != 0 {
		t.Errorf("blob files left under the data dir: %v", fs)
	}
	if n := count(t, s.DataDir, "SELECT COUNT(*) FROM blobs"); n != 0 {
		t.Errorf("%d rows in blobs, want 0", n)
	}
	for _, d := range digests {
		if st := headStatus(t, s, "/v2/"+repo+"/blobs/"+d); st != http.StatusNotFound {
			t.Errorf("HEAD %s = %d, want 404", d, st)
		}
	}
}

// rawTruncated sends a request whose declared Content-Length exceeds the bytes sent,
// then half-closes the connection. It returns the response if the server sent one, or
// nil when it just closed; either way the handler has finished when it returns, because
// the server closes the connection only after its handler returned.
func rawTruncated(t testing.TB, s *server, method, target string, hdr map[string]string, declared int, sent []byte) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var req strings.Builder
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nConnection: close\r\n", method, target, s.Addr, declared)
	for k, v := range hdr {
		fmt.Fprintf(&req, "%s: %s\r\n", k, v)
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(conn, req.String()); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(sent); err != nil {
		t.Fatal(err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Logf("%s %s (truncated body): no response (%v)", method, target, err)
		return nil
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	_, _ = io.Copy(io.Discard, br) // wait for the server to close
	return resp
}

// checkTruncatedResponse asserts a response (if any) to a truncated upload is a spec
// error saying the upload was invalid.
func checkTruncatedResponse(t testing.TB, resp *http.Response) {
	t.Helper()
	if resp == nil {
		return
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 400 {
		t.Errorf("truncated upload answered %s %q, want an error", resp.Status, truncate(body, 300))
		return
	}
	var e specError
	if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) == 0 {
		t.Errorf("truncated upload: %s with non-spec body %q", resp.Status, truncate(body, 300))
		return
	}
	ok := false
	for _, it := range e.Errors {
		ok = ok || slices.Contains([]string{"BLOB_UPLOAD_INVALID", "SIZE_INVALID", "DIGEST_INVALID"}, it.Code)
	}
	if !ok {
		t.Errorf("truncated upload: %s codes %+v, want BLOB_UPLOAD_INVALID, SIZE_INVALID or DIGEST_INVALID", resp.Status, e.Errors)
	}
}

func TestBadInputTruncatedUpload(t *testing.T) {
	s := startServer(t)
	const repo = "bad/trunc"
	full := randomBytes(t, 1<<20)
	d := sha256Digest(full)

	t.Run("monolithic", func(t *testing.T) {
		resp := rawTruncated(t, s, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+d,
			map[string]string{"Content-Type": "application/octet-stream"}, len(full), full[:len(full)/2])
		checkTruncatedResponse(t, resp)
		assertNoBlobs(t, s, repo, d)
	})

	t.Run("patch", func(t *testing.T) {
		loc := startUpload(t, s, repo)
		u, _ := url.Parse(uploadURL(t, s, loc, ""))
		resp := rawTruncated(t, s, http.MethodPatch, u.RequestURI(),
			map[string]string{"Content-Type": "application/octet-stream", "Content-Range": fmt.Sprintf("0-%d", len(full)-1)},
			len(full), full[:len(full)/2])
		checkTruncatedResponse(t, resp)
		// Finishing the session with the full digest but without the missing bytes must
		// fail: the truncated chunk can never complete the blob.
		r, body := do(t, http.MethodPut, uploadURL(t, s, loc, "digest="+d), nil, map[string]string{"Content-Length": "0"})
		wantError(t, r, body, []int{http.StatusBadRequest, http.StatusNotFound, http.StatusRequestedRangeNotSatisfiable},
			"DIGEST_INVALID", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "SIZE_INVALID")
		assertNoBlobs(t, s, repo, d)
	})

	// Control: the same bytes pushed whole are accepted and land where the checks above
	// look, so those checks could have seen a leak.
	t.Run("control", func(t *testing.T) {
		pushBlob(t, s, repo, full)
		if !exists(blobPath(s.DataDir, d)) {
			t.Fatalf("blob %s not at %s after a good push: the no-file checks look in the wrong place; files: %v",
				d, blobPath(s.DataDir, d), files(t, s.DataDir, "blobs"))
		}
		if n := count(t, s.DataDir, "SELECT COUNT(*) FROM blobs"); n != 1 {
			t.Errorf("%d blobs rows after one good push, want 1", n)
		}
	})
}

func TestBadInputCorruptUpload(t *testing.T) {
	s := startServer(t)
	const repo = "bad/corrupt"
	good := randomBytes(t, 64<<10)
	bad := append([]byte(nil), good...)
	bad[len(bad)/2] ^= 0xff
	d := sha256Digest(good)

	// Monolithic: the declared digest does not match the bytes.
	resp, body := do(t, http.MethodPost, s.URL("/v2/"+repo+"/blobs/uploads/?digest="+d), bytes.NewReader(bad),
		map[string]string{"Content-Type": "application/octet-stream"})
	wantError(t, resp, body, []int{http.StatusBadRequest}, "DIGEST_INVALID")
	assertNoBlobs(t, s, repo, d, sha256Digest(bad))

	// Session: PATCH the corrupt bytes, PUT with the good digest.
	loc := startUpload(t, s, repo)
	if resp, body := patchChunk(t, s, loc, 0, bad); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH: %s %q", resp.Status, body)
	}
	resp, body = do(t, http.MethodPut, uploadURL(t, s, loc, "digest="+d), nil, map[string]string{"Content-Length": "0"})
	wantError(t, resp, body, []int{http.StatusBadRequest}, "DIGEST_INVALID")
	assertNoBlobs(t, s, repo, d, sha256Digest(bad))
}

func TestBadInputWrongDigest(t *testing.T) {
	s := startServer(t)
	const repo = "bad/digest"
	data := randomBytes(t, 1000)

	for _, d := range []string{"sha256:xyz", "sha256:" + strings.Repeat("0", 63), "nope"} {
		loc := startUpload(t, s, repo)
		resp, body := do(t, http.MethodPut, uploadURL(t, s, loc, "digest="+url.QueryEscape(d)), bytes.NewReader(data),
			map[string]string{"Content-Type": "application/octet-stream"})
		wantError(t, resp, body, []int{http.StatusBadRequest}, "DIGEST_INVALID")
	}
	assertNoBlobs(t, s, repo, sha256Digest(data))

	// A manifest PUT by a digest its bytes do not hash to.
	img := newImage(t, "amd64")
	pushBlob(t, s, repo, img.Config)
	pushBlob(t, s, repo, img.Layer)
	wrong := sha256Digest(append([]byte("x"), img.Manifest...))
	resp, body := pushManifest(t, s, repo, wrong, mtOCIManifest, img.Manifest)
	wantError(t, resp, body, []int{http.StatusBadRequest}, "DIGEST_INVALID", "MANIFEST_INVALID")
	if n := count(t, s.DataDir, "SELECT COUNT(*) FROM manifests"); n != 0 {
		t.Errorf("%d manifests rows after a refused manifest, want 0", n)
	}
}

func TestBadInputOversizedManifest(t *testing.T) {
	s := startServer(t)
	const repo = "bad/big"
	img := newImage(t, "amd64")
	pushBlob(t, s, repo, img.Config)
	pushBlob(t, s, repo, img.Layer)
	var m manifest
	if err := json.Unmarshal(img.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	// A valid manifest whose only fault is its size: 4 MiB + 1 KiB of annotation.
	m.Annotations = map[string]string{"pad": strings.Repeat("a", 4<<20+1024)}
	big := mustJSON(t, m)
	resp, body := pushManifest(t, s, repo, "big", mtOCIManifest, big)
	wantError(t, resp, body, []int{http.StatusRequestEntityTooLarge, http.StatusBadRequest}, "MANIFEST_INVALID", "SIZE_INVALID")
	if n := count(t, s.DataDir, "SELECT COUNT(*) FROM manifests"); n != 0 {
		t.Errorf("%d manifests rows after an oversized manifest, want 0", n)
	}
	if n := count(t, s.DataDir, "SELECT COUNT(*) FROM tags"); n != 0 {
		t.Errorf("%d tags rows after an oversized manifest, want 0", n)
	}
	// Control: the same manifest without padding is accepted.
	if resp, body := pushManifest(t, s, repo, "small", mtOCIManifest, img.Manifest); resp.StatusCode != http.StatusCreated {
		t.Errorf("control manifest: %s %q", resp.Status, truncate(body, 300))
	}
}

func TestBadInputManifestMissingBlobs(t *testing.T) {
	s := startServer(t)
	const repo = "bad/missing"
	img := newImage(t, "amd64")

	// Nothing pushed: config and layer unknown.
	resp, body := pushManifest(t, s, repo, "v1", mtOCIManifest, img.Manifest)
	wantError(t, resp, body, []int{http.StatusBadRequest}, "MANIFEST_BLOB_UNKNOWN")

	// Config pushed, layer still missing.
	pushBlob(t, s, repo, img.Config)
	resp, body = pushManifest(t, s, repo, "v1", mtOCIManifest, img.Manifest)
	wantError(t, resp, body, []int{http.StatusBadRequest}, "MANIFEST_BLOB_UNKNOWN")

	// An index whose child manifest is not in the repository.
	idx := mustJSON(t, manifest{SchemaVersion: 2, MediaType: mtOCIIndex, Manifests: []descriptor{{
		MediaType: mtOCIManifest, Digest: img.ManifestDigest, Size: int64(len(img.Manifest)),
		Platform: &platform{OS: "linux", Architecture: "amd64"},
	}}})
	resp, body = pushManifest(t, s, repo, "idx", mtOCIIndex, idx)
	wantError(t, resp, body, []int{http.StatusBadRequest}, "MANIFEST_BLOB_UNKNOWN")

	// A blob pushed to another repository does not satisfy this one.
	pushBlob(t, s, "bad/other", img.Layer)
	resp, body = pushManifest(t, s, repo, "v1", mtOCIManifest, img.Manifest)
	wantError(t, resp, body, []int{http.StatusBadRequest}, "MANIFEST_BLOB_UNKNOWN")

	if n := count(t, s.DataDir, "SELECT COUNT(*) FROM manifests"); n != 0 {
		t.Errorf("%d manifests rows after refused manifests, want 0", n)
	}
	if n := count(t, s.DataDir, "SELECT COUNT(*) FROM tags"); n != 0 {
		t.Errorf("%d tags rows after refused manifests, want 0", n)
	}
	if st := headStatus(t, s, "/v2/"+repo+"/manifests/v1"); st != http.StatusNotFound {
		t.Errorf("HEAD refused manifest tag = %d, want 404", st)
	}
}

func TestBadInputInvalidNames(t *testing.T) {
	s := startServer(t)
	img := newImage(t, "amd64")
	long := strings.Repeat("a", 300)
	// Dot segments and empty segments reach the registry verbatim (it is not behind
	// ServeMux's path cleaning, which would redirect "a/../x" into repository x).
	cases := []string{"../x", "a/../x", "..", "Upper/case", "UPPER", long, "a//b", "-a/b"}
	for _, c := range cases {
		for _, req := range []struct{ method, path, ct string }{
			{http.MethodPost, "/v2/" + c + "/blobs/uploads/", ""},
			{http.MethodPost, "/v2/" + c + "/blobs/uploads/?digest=" + img.ConfigDigest, "application/octet-stream"},
			{http.MethodPut, "/v2/" + c + "/manifests/v1", mtOCIManifest},
			{http.MethodGet, "/v2/" + c + "/tags/list", ""},
		} {
			var body io.Reader
			switch {
			case req.method == http.MethodPut:
				body = bytes.NewReader(img.Manifest)
			case req.ct != "":
				body = bytes.NewReader(img.Config)
			}
			hdr := map[string]string{}
			if req.ct != "" {
				hdr["Content-Type"] = req.ct
			}
			// Sent verbatim (Go's client does not clean dot segments) so the server sees
			// the hostile path.
			resp, b := do(t, req.method, "http://"+s.Addr+req.path, body, hdr)
			label := fmt.Sprintf("%s %.60s", req.method, req.path)
			switch {
			case resp.StatusCode < 300:
				t.Errorf("%s: %s, want an error", label, resp.Status)
			case resp.StatusCode == http.StatusBadRequest:
				codes := errorCodes(t, resp, b)
				if !slices.Contains(codes, "NAME_INVALID") {
					t.Errorf("%s: 400 with codes %v, want NAME_INVALID", label, codes)
				}
			default:
				t.Errorf("%s: %s %q, want 400 NAME_INVALID", label, resp.Status, truncate(b, 200))
			}
		}
	}
	// Nothing was created by any of it.
	for _, table := range []string{"repositories", "blobs", "repository_blobs", "manifests", "tags", "uploads"} {
		if n := count(t, s.DataDir, "SELECT COUNT(*) FROM "+table); n != 0 {
			t.Errorf("%d rows in %s after invalid names, want 0", n, table)
		}
	}
	for _, sub := range []string{"blobs", "uploads"} {
		if fs := files(t, s.DataDir, sub); len(fs) != 0 {
			t.Errorf("files under %s after invalid names: %v", sub, fs)
		}
	}
}

func TestBadInputChunkOutOfOrder(t *testing.T) {
	s := startServer(t)
	const repo = "bad/chunks"
	data := randomBytes(t, 30)
	d := sha256Digest(data)
	loc := startUpload(t, s, repo)

	resp, body := patchChunk(t, s, loc, 0, data[:10])
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Range") != "0-9" {
		t.Fatalf("first chunk: %s Range %q %q, want 202 Range 0-9", resp.Status, resp.Header.Get("Range"), body)
	}
	loc = resp.Header.Get("Location")

	// Skip bytes 10-19.
	resp, body = patchChunk(t, s, loc, 20, data[20:])
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("out-of-order chunk: %s %q, want 416", resp.Status, truncate(body, 300))
	}
	if got := resp.Header.Get("Range"); got != "0-9" {
		t.Errorf("416 Range = %q, want 0-9 (the bytes the server holds)", got)
	}

	// A chunk overlapping what was already received is out of order too.
	resp, _ = patchChunk(t, s, loc, 5, data[5:15])
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("overlapping chunk: %s, want 416", resp.Status)
	}

	// The session is intact: status says 0-9, the right chunk continues it.
	resp, _ = do(t, http.MethodGet, uploadURL(t, s, loc, ""), nil, nil)
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Range") != "0-9" {
		t.Fatalf("upload status: %s Range %q, want 204 Range 0-9", resp.Status, resp.Header.Get("Range"))
	}
	resp, body = patchChunk(t, s, loc, 10, data[10:])
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Range") != "0-29" {
		t.Fatalf("in-order chunk: %s Range %q %q", resp.Status, resp.Header.Get("Range"), body)
	}
	resp, body = do(t, http.MethodPut, uploadURL(t, s, resp.Header.Get("Location"), "digest="+d), nil, map[string]string{"Content-Length": "0"})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %s %q", resp.Status, body)
	}
	resp, got := do(t, http.MethodGet, s.URL("/v2/"+repo+"/blobs/"+d), nil, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("GET blob: %s, %d bytes, equal=%v", resp.Status, len(got), bytes.Equal(got, data))
	}
}

func TestBadInputConcurrentTagPush(t *testing.T) {
	s := startServer(t)
	const repo = "bad/race"
	const n = 20
	img := newImage(t, "amd64")
	pushBlob(t, s, repo, img.Config)
	pushBlob(t, s, repo, img.Layer)

	var base manifest
	if err := json.Unmarshal(img.Manifest, &base); err != nil {
		t.Fatal(err)
	}
	bodies := make([][]byte, n)
	digests := make([]string, n)
	for i := range bodies {
		m := base
		m.Annotations = map[string]string{"e2e.writer": strconv.Itoa(i)}
		bodies[i] = mustJSON(t, m)
		digests[i] = sha256Digest(bodies[i])
	}

	var wg sync.WaitGroup
	statuses := make([]string, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start // release all writers together to maximise contention
			req, _ := http.NewRequest(http.MethodPut, s.URL("/v2/"+repo+"/manifests/race"), bytes.NewReader(bodies[i]))
			req.Header.Set("Content-Type", mtOCIManifest)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				statuses[i] = err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			statuses[i] = resp.Status
			if resp.StatusCode != http.StatusCreated {
				statuses[i] += " " + truncate(b, 200)
			}
		}()
	}
	close(start)
	wg.Wait()
	for i, st := range statuses {
		if !strings.HasPrefix(st, "201") {
			t.Errorf("writer %d: %s, want 201", i, st)
		}
	}

	resp, _ := do(t, http.MethodHead, s.URL("/v2/"+repo+"/manifests/race"), nil, map[string]string{"Accept": mtOCIManifest})
	got := resp.Header.Get("Docker-Content-Digest")
	if resp.StatusCode != http.StatusOK || !slices.Contains(digests, got) {
		t.Errorf("tag resolves to %s (%s), want one of the pushed manifests", got, resp.Status)
	}
	if tags := tagsOf(t, s, repo); !slices.Equal(tags, []string{"race"}) {
		t.Errorf("tags = %v, want [race]", tags)
	}
	if c := count(t, s.DataDir, "SELECT COUNT(*) FROM tags"); c != 1 {
		t.Errorf("%d tags rows, want exactly 1", c)
	}
	if c := count(t, s.DataDir, "SELECT COUNT(*) FROM manifests"); c != n {
		t.Errorf("%d manifests rows, want %d (every push is kept, untagged but one)", c, n)
	}
}
