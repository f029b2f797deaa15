package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tagsOf returns the tags of repo through the tags/list API.
func tagsOf(t testing.TB, s *server, repo string) []string {
	t.Helper()
	resp, body := do(t, http.MethodGet, s.URL("/v2/"+repo+"/tags/list"), nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("tags list %s: %s %q", repo, resp.Status, truncate(body, 300))
	}
	var tl struct {
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(body, &tl); err != nil {
		t.Fatalf("tags list %s: %q: %v", repo, body, err)
	}
	return tl.Tags
}

// headStatus returns the status of a HEAD on path.
func headStatus(t testing.TB, s *server, path string) int {
	t.Helper()
	resp, _ := do(t, http.MethodHead, s.URL(path), nil, nil)
	return resp.StatusCode
}

// blobsOfManifest returns the config and layer digests of an image manifest.
func blobsOfManifest(t testing.TB, raw []byte) []string {
	t.Helper()
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("manifest %q: %v", truncate(raw, 200), err)
	}
	var ds []string
	if m.Config != nil {
		ds = append(ds, m.Config.Digest)
	}
	for _, l := range m.Layers {
		ds = append(ds, l.Digest)
	}
	return ds
}

// TestCrane drives go-containerregistry's crane: push, tag, tags list, copy across
// repositories (mount), a multi-platform index, and delete.
func TestCrane(t *testing.T) {
	crane := tool(t, "crane")
	s := startServer(t)
	dir := t.TempDir()
	c := func(args ...string) string {
		t.Helper()
		return strings.TrimSpace(run(t, dir, nil, crane, append([]string{"--insecure"}, args...)...))
	}
	repo := s.Addr + "/crane/app"

	// Push: an image built by crane from a random layer tarball.
	if err := os.WriteFile(filepath.Join(dir, "layer.tar"), layerTar(t, "payload.bin", 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	c("append", "--oci-empty-base", "-f", filepath.Join(dir, "layer.tar"), "-t", repo+":v1")
	d1 := c("digest", repo+":v1")
	raw := c("manifest", repo+":v1")
	if sha256Digest([]byte(raw)) != d1 {
		t.Fatalf("crane manifest bytes hash to %s, crane digest says %s", sha256Digest([]byte(raw)), d1)
	}

	// Tags list.
	c("tag", repo+":v1", "v2")
	ls := strings.Fields(c("ls", repo))
	if !slices.Contains(ls, "v1") || !slices.Contains(ls, "v2") {
		t.Fatalf("crane ls = %v, want v1 and v2", ls)
	}

	// Copy to another repository of the same server: the blobs must be mounted (the
	// blob store holds each digest once, so the file count must not grow) and served
	// from the new repository.
	blobsBefore := files(t, s.DataDir, "blobs")
	if len(blobsBefore) == 0 {
		t.Fatalf("no blob files under %s/blobs after a push", s.DataDir)
	}
	_, copyLog, err := runErr(t, dir, nil, crane, "--insecure", "copy", repo+":v1", s.Addr+"/crane/copy:v1")
	if err != nil {
		t.Fatalf("crane copy: %v\n%s", err, copyLog)
	}
	// crane reports each blob it mounted instead of uploading.
	for _, d := range blobsOfManifest(t, []byte(raw)) {
		if !strings.Contains(copyLog, "mounted blob: "+d) {
			t.Errorf("crane copy did not mount %s (a cross-repository mount was expected):\n%s", d, copyLog)
		}
	}
	if got := c("digest", s.Addr+"/crane/copy:v1"); got != d1 {
		t.Fatalf("copied digest %s, want %s", got, d1)
	}
	if after := files(t, s.DataDir, "blobs"); len(after) != len(blobsBefore) {
		t.Fatalf("blob files grew from %d to %d on a same-registry copy: %v", len(blobsBefore), len(after), after)
	}
	for _, d := range blobsOfManifest(t, []byte(raw)) {
		if st := headStatus(t, s, "/v2/crane/copy/blobs/"+d); st != http.StatusOK {
			t.Errorf("HEAD crane/copy blob %s = %d after copy, want 200", d, st)
		}
	}

	// Multi-platform index pushed by crane from two single-platform images.
	c("mutate", "--set-platform", "linux/amd64", repo+":v1", "-t", repo+":amd64")
	c("mutate", "--set-platform", "linux/arm64", repo+":v1", "-t", repo+":arm64")
	dAMD := c("digest", repo+":amd64")
	dARM := c("digest", repo+":arm64")
	c("index", "append", "-m", repo+":amd64", "-m", repo+":arm64", "-t", repo+":multi")
	var idx manifest
	if err := json.Unmarshal([]byte(c("manifest", repo+":multi")), &idx); err != nil {
		t.Fatal(err)
	}
	if idx.MediaType != mtOCIIndex || len(idx.Manifests) != 2 {
		t.Fatalf("index = %+v, want an OCI index of 2 manifests", idx)
	}
	if got := c("digest", "--platform", "linux/arm64", repo+":multi"); got != dARM {
		t.Errorf("crane digest --platform linux/arm64 = %s, want %s", got, dARM)
	}
	if got := c("digest", "--platform", "linux/amd64", repo+":multi"); got != dAMD {
		t.Errorf("crane digest --platform linux/amd64 = %s, want %s", got, dAMD)
	}

	// Delete by digest in the copy: gone there (with its tag), intact in the source.
	c("delete", s.Addr+"/crane/copy@"+d1)
	resp, body := do(t, http.MethodGet, s.URL("/v2/crane/copy/manifests/"+d1), nil, map[string]string{"Accept": mtOCIManifest})
	wantError(t, resp, body, []int{http.StatusNotFound}, "MANIFEST_UNKNOWN")
	if _, _, err := runErr(t, dir, nil, crane, "--insecure", "manifest", s.Addr+"/crane/copy:v1"); err == nil {
		t.Errorf("crane/copy:v1 still resolves after deleting its manifest")
	}
	if got := c("digest", repo+":v1"); got != d1 {
		t.Errorf("source %s:v1 = %s after deleting the copy, want %s", repo, got, d1)
	}
}

// TestSkopeo drives containers/image through skopeo: push from an OCI layout written by
// the test, inspect, tags list, copy between repositories, delete.
func TestSkopeo(t *testing.T) {
	skopeo := tool(t, "skopeo")
	s := startServer(t)
	dir := t.TempDir()
	sk := func(args ...string) string {
		t.Helper()
		return run(t, dir, nil, skopeo, args...)
	}
	img := newImage(t, "amd64")
	layout := filepath.Join(dir, "layout")
	writeOCILayout(t, layout, "v1", img)

	dst := "docker://" + s.Addr + "/skopeo/img:v1"
	sk("copy", "--insecure-policy", "--preserve-digests", "--dest-tls-verify=false", "oci:"+layout+":v1", dst)
	raw := sk("inspect", "--raw", "--tls-verify=false", dst)
	if raw != string(img.Manifest) {
		t.Fatalf("skopeo inspect --raw = %q, want the pushed manifest %q", raw, img.Manifest)
	}
	var tl struct {
		Tags []string `json:"Tags"`
	}
	if err := json.Unmarshal([]byte(sk("list-tags", "--tls-verify=false", "docker://"+s.Addr+"/skopeo/img")), &tl); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(tl.Tags, "v1") {
		t.Fatalf("skopeo list-tags = %v, want v1", tl.Tags)
	}

	// Copy between repositories of the same server.
	blobsBefore := files(t, s.DataDir, "blobs")
	cp := "docker://" + s.Addr + "/skopeo/copy:v1"
	sk("copy", "--insecure-policy", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false", dst, cp)
	if got := sk("inspect", "--raw", "--tls-verify=false", cp); got != string(img.Manifest) {
		t.Fatalf("copied manifest = %q, want %q", got, img.Manifest)
	}
	if after := files(t, s.DataDir, "blobs"); len(after) != len(blobsBefore) {
		t.Errorf("blob files grew from %d to %d on a same-registry copy", len(blobsBefore), len(after))
	}
	for _, d := range []string{img.ConfigDigest, img.LayerDigest} {
		if st := headStatus(t, s, "/v2/skopeo/copy/blobs/"+d); st != http.StatusOK {
			t.Errorf("HEAD skopeo/copy blob %s = %d, want 200", d, st)
		}
	}

	// Delete (skopeo resolves the tag and deletes the manifest by digest).
	sk("delete", "--tls-verify=false", cp)
	if st := headStatus(t, s, "/v2/skopeo/copy/manifests/"+img.ManifestDigest); st != http.StatusNotFound {
		t.Errorf("HEAD deleted manifest = %d, want 404", st)
	}
	if st := headStatus(t, s, "/v2/skopeo/img/manifests/v1"); st != http.StatusOK {
		t.Errorf("HEAD source manifest after deleting the copy = %d, want 200", st)
	}
}

// TestOras drives oras: push and pull an artifact, attach an artifact whose subject is
// it, discover it with `oras discover` and through the raw referrers API.
func TestOras(t *testing.T) {
	oras := tool(t, "oras")
	s := startServer(t)
	dir := t.TempDir()
	o := func(args ...string) string {
		t.Helper()
		return run(t, dir, nil, oras, append(args, "--plain-http")...)
	}
	content := randomBytes(t, 1000)
	if err := os.WriteFile(filepath.Join(dir, "payload.bin"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sig.txt"), []byte("signed by e2e\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := s.Addr + "/oras/art:v1"
	const artType = "application/vnd.hubctl.e2e.payload"
	const sigType = "application/vnd.hubctl.e2e.signature"

	o("push", "--artifact-type", artType, ref, "payload.bin:application/octet-stream")
	resp, subjectRaw := do(t, http.MethodGet, s.URL("/v2/oras/art/manifests/v1"), nil, map[string]string{"Accept": mtOCIManifest})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET pushed artifact: %s %q", resp.Status, truncate(subjectRaw, 300))
	}
	subject := sha256Digest(subjectRaw)
	if got := resp.Header.Get("Docker-Content-Digest"); got != subject {
		t.Errorf("Docker-Content-Digest = %q, want %s", got, subject)
	}

	pulled := filepath.Join(dir, "pulled")
	o("pull", "-o", pulled, ref)
	if b, err := os.ReadFile(filepath.Join(pulled, "payload.bin")); err != nil || string(b) != string(content) {
		t.Fatalf("oras pull: payload.bin differs from what was pushed (err %v)", err)
	}

	// Attach a signature whose subject is the artifact, via the referrers API.
	var att struct {
		Digest string `json:"digest"`
	}
	out := o("attach", "--distribution-spec", "v1.1-referrers-api", "--artifact-type", sigType, "--format", "json", ref, "sig.txt:text/plain")
	if err := json.Unmarshal([]byte(out), &att); err != nil || !strings.HasPrefix(att.Digest, "sha256:") {
		t.Fatalf("oras attach --format json = %q: %v", out, err)
	}

	// oras discover finds it.
	disc := o("discover", "--distribution-spec", "v1.1-referrers-api", "--format", "json", ref)
	if !strings.Contains(disc, att.Digest) || !strings.Contains(disc, sigType) {
		t.Fatalf("oras discover output does not list %s (%s):\n%s", att.Digest, sigType, disc)
	}

	// The raw referrers API returns an index holding the attached manifest's descriptor.
	referrers := func(query string) (*http.Response, manifest) {
		t.Helper()
		resp, body := do(t, http.MethodGet, s.URL("/v2/oras/art/referrers/"+subject+query), nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET referrers%s: %s %q", query, resp.Status, truncate(body, 300))
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, mtOCIIndex) {
			t.Errorf("referrers Content-Type = %q, want %s", ct, mtOCIIndex)
		}
		var idx manifest
		if err := json.Unmarshal(body, &idx); err != nil {
			t.Fatalf("referrers body %q: %v", truncate(body, 300), err)
		}
		return resp, idx
	}
	_, idx := referrers("")
	if idx.SchemaVersion != 2 || idx.MediaType != mtOCIIndex {
		t.Errorf("referrers index header = schemaVersion %d mediaType %q", idx.SchemaVersion, idx.MediaType)
	}
	if len(idx.Manifests) != 1 {
		t.Fatalf("referrers = %+v, want exactly the attached manifest", idx.Manifests)
	}
	got := idx.Manifests[0]
	resp, attRaw := do(t, http.MethodGet, s.URL("/v2/oras/art/manifests/"+att.Digest), nil, map[string]string{"Accept": mtOCIManifest})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET attached manifest: %s", resp.Status)
	}
	if got.Digest != att.Digest || got.MediaType != mtOCIManifest || got.ArtifactType != sigType || got.Size != int64(len(attRaw)) {
		t.Errorf("referrer descriptor = %+v, want digest %s mediaType %s artifactType %s size %d",
			got, att.Digest, mtOCIManifest, sigType, len(attRaw))
	}

	// artifactType filtering: matching and non-matching, both flagged as filtered.
	resp, idx = referrers("?artifactType=" + sigType)
	if resp.Header.Get("OCI-Filters-Applied") != "artifactType" || len(idx.Manifests) != 1 {
		t.Errorf("filtered referrers: OCI-Filters-Applied %q, %d manifests; want artifactType and 1",
			resp.Header.Get("OCI-Filters-Applied"), len(idx.Manifests))
	}
	resp, idx = referrers("?artifactType=application/vnd.hubctl.e2e.none")
	if resp.Header.Get("OCI-Filters-Applied") != "artifactType" || len(idx.Manifests) != 0 {
		t.Errorf("non-matching filter: OCI-Filters-Applied %q, %d manifests; want artifactType and 0",
			resp.Header.Get("OCI-Filters-Applied"), len(idx.Manifests))
	}
}
