package web_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// chartArchive is a chart's .tgz holding files under the chart's directory.
func chartArchive(t *testing.T, name string, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range []string{"Chart.yaml", "values.yaml", "README.md", "charts/sub/Chart.yaml", "charts/sub/values.yaml"} {
		body, ok := files[f]
		if !ok {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Name: name + "/" + f, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// pushChart pushes a chart version to repo as an OCI artifact, as helm push does.
func (h *hub) pushChart(tok, repo, name, version string, files map[string]string) {
	h.t.Helper()
	files["Chart.yaml"] = "apiVersion: v2\nname: " + name + "\nversion: " + version + "\nappVersion: \"9.9\"\ndescription: <b>a chart</b>\n"
	tgz := chartArchive(h.t, name, files)
	cfg, _ := json.Marshal(map[string]string{"apiVersion": "v2", "name": name, "version": version, "appVersion": "9.9", "description": "<b>a chart</b>"})
	for _, b := range [][]byte{cfg, tgz} {
		h.put(tok, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+digestOf(b), "application/octet-stream", b)
	}
	man, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": digestOf(cfg), "size": len(cfg)},
		"layers": []map[string]any{{"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip", "digest": digestOf(tgz), "size": len(tgz)}},
	})
	h.put(tok, "PUT", "/v2/"+repo+"/manifests/"+strings.ReplaceAll(version, "+", "_"), "application/vnd.oci.image.manifest.v1+json", man)
}

// TestChartPage: a chart version's page lists the repository's versions, its
// values.yaml and README (with <script> in both rendered inert) and the helm commands
// for the classic index and OCI; the page is as private as the repository.
func TestChartPage(t *testing.T) {
	h := startHub(t)
	h.user("alice")
	h.user("dave")
	tok := h.registryToken("alice", "alice-password", "alice/web")
	h.pushChart(tok, "alice/web", "web", "1.0.0", map[string]string{"values.yaml": "image: nginx\n"})
	h.pushChart(tok, "alice/web", "web", "1.1.0", map[string]string{
		"values.yaml":            "banner: \"<script>alert('values')</script>\"\n",
		"README.md":              "# Web\n\n<script>alert('readme')</script>\n<img src=x onerror=alert(1)>\n[x](javascript:alert(1))\n",
		"charts/sub/Chart.yaml":  "apiVersion: v2\nname: sub\nversion: 0.1.0\n",
		"charts/sub/values.yaml": "sub: only\n",
	})
	alice, dave, anon := h.browser(), h.browser(), h.browser()
	alice.login("alice")
	dave.login("dave")
	path := "/alice/web/-/charts/1.1.0"
	p := alice.get(path)
	if p.Status != http.StatusOK {
		t.Fatalf("chart page: %d\n%s", p.Status, p.Body)
	}
	for _, want := range []string{
		"helm repo add alice http://" + h.addr + "/charts/alice",
		"helm install web alice/web --version 1.1.0",
		"helm pull oci://" + h.addr + "/alice/web --version 1.1.0 --plain-http",
		`href="/alice/web/-/charts/1.0.0"`,
		">Web</h1>",
		"&lt;script&gt;alert(&#39;values&#39;)&lt;/script&gt;",
		"&lt;b&gt;a chart&lt;/b&gt;",
	} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("chart page lacks %q", want)
		}
	}
	for _, bad := range []string{"<script>alert", "<img src=x", `href="javascript:`, "sub: only"} {
		if strings.Contains(p.Body, bad) {
			t.Errorf("chart page holds %q", bad)
		}
	}
	if p := alice.get("/alice/web/-/charts/1.0.0"); !strings.Contains(p.Body, "image: nginx") || !strings.Contains(p.Body, "no README.md") {
		t.Errorf("1.0.0 page:\n%s", p.Body)
	}
	// Private: an outsider and anonymous get the page of a missing chart.
	missing := alice.get("/alice/web/-/charts/9.9.9")
	for who, b := range map[string]*browser{"dave": dave, "anonymous": anon} {
		if got := b.get(path); got.Status != http.StatusNotFound {
			t.Errorf("%s: %d", who, got.Status)
		}
	}
	if missing.Status != http.StatusNotFound || dave.get(path).Body != dave.get("/alice/nosuch/-/charts/1.1.0").Body {
		t.Errorf("a hidden chart and a missing one differ")
	}
	h.setVisibility("alice/web", "public")
	if got := anon.get(path); got.Status != http.StatusOK {
		t.Errorf("public chart, anonymous: %d", got.Status)
	}
	// The artifact view of the chart's tag links back to the chart page.
	if got := anon.get("/alice/web/-/artifacts/1.1.0"); got.Status != http.StatusOK || !strings.Contains(got.Body, `href="/alice/web/-/charts/1.1.0"`) ||
		!strings.Contains(got.Body, "application/vnd.cncf.helm.config.v1&#43;json") {
		t.Errorf("chart's artifact view: %d\n%s", got.Status, got.Body)
	}
}

// TestArtifactPage: an OCI artifact's page shows its type, its files by title (a
// title holding <script> rendered inert), what it refers to and the pull commands.
func TestArtifactPage(t *testing.T) {
	h := startHub(t)
	h.user("alice")
	tok := h.registryToken("alice", "alice-password", "alice/tool")
	img := h.pushImage(tok, "alice/tool", "app", "amd64", nil, 100)
	empty := []byte("{}")
	file := []byte("hello artifact")
	for _, b := range [][]byte{empty, file} {
		h.put(tok, "POST", "/v2/alice/tool/blobs/uploads/?digest="+digestOf(b), "application/octet-stream", b)
	}
	man, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"artifactType": "application/vnd.example.sbom+json",
		"config":       map[string]any{"mediaType": "application/vnd.oci.empty.v1+json", "digest": digestOf(empty), "size": 2},
		"layers": []map[string]any{{"mediaType": "text/plain", "digest": digestOf(file), "size": len(file),
			"annotations": map[string]string{"org.opencontainers.image.title": "<script>x</script>.txt"}}},
		"subject": map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": img.Digest, "size": len(h.manifest(tok, "alice/tool", img.Digest))},
	})
	h.put(tok, "PUT", "/v2/alice/tool/manifests/sbom", "application/vnd.oci.image.manifest.v1+json", man)
	b := h.browser()
	b.login("alice")
	p := b.get("/alice/tool/-/artifacts/sbom")
	if p.Status != http.StatusOK {
		t.Fatalf("artifact page: %d\n%s", p.Status, p.Body)
	}
	for _, want := range []string{"application/vnd.example.sbom&#43;json", "&lt;script&gt;x&lt;/script&gt;.txt",
		"hubctl artifact pull " + h.addr + "/alice/tool:sbom -d out/", "oras pull --plain-http -o out/ " + h.addr + "/alice/tool:sbom",
		`href="/alice/tool/-/manifests/` + img.Digest + `"`} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("artifact page lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("page:\n%s", p.Body)
	}
	if strings.Contains(p.Body, "<script>x") {
		t.Error("a file title renders raw")
	}
	if p := b.get("/alice/tool/-/tags/sbom"); !strings.Contains(p.Body, `href="/alice/tool/-/artifacts/sbom"`) {
		t.Errorf("the tag page of an artifact does not link its artifact view")
	}
	if p := h.browser().get("/alice/tool/-/artifacts/sbom"); p.Status != http.StatusNotFound {
		t.Errorf("private artifact, anonymous: %d", p.Status)
	}
}
