package e2e

// Helm charts end to end (issue 15): the real helm 3 and helm 4 CLIs and curl against a
// token-auth `hubctl serve`, with hubctl's chart commands on the other side.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// helmCLIs are the helm binaries the interop tests drive, installed by
// e2e/install-tools.sh: helm 3 (what most users run) and helm 4.
var helmCLIs = []struct{ name, bin string }{{"helm3", "helm"}, {"helm4", "helm4"}}

// writeChart writes a small chart directory NAME with VERSION under dir and returns
// its path.
func writeChart(t testing.TB, dir, name, version, description string) string {
	t.Helper()
	d := filepath.Join(dir, name+"-src-"+version)
	files := map[string]string{
		"Chart.yaml": fmt.Sprintf("apiVersion: v2\nname: %s\nversion: %s\nappVersion: \"v%s\"\ndescription: %s\nkeywords: [e2e, demo]\nmaintainers:\n  - name: Ada\n    email: ada@example.com\n",
			name, version, version, description),
		"values.yaml":              "greeting: hello\n",
		"README.md":                "# " + name + "\n",
		"templates/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\ndata:\n  greeting: {{ .Values.greeting | quote }}\n",
	}
	for f, c := range files {
		p := filepath.Join(d, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// chartEnv is a client environment for alice: hubctl logged in with her password.
type chartEnv struct {
	f    authFixture
	env  []string
	dir  string
	helm string
}

func newChartEnv(t *testing.T, f authFixture, helm string) *chartEnv {
	t.Helper()
	home := t.TempDir()
	e := &chartEnv{f: f, env: clientEnv(t, home), dir: t.TempDir(), helm: helm}
	runStdin(t, "", e.env, f.alicePW+"\n", hubctlBin, "login", f.s.Addr, "-u", "alice", "--password-stdin")
	if helm != "" {
		runStdin(t, "", e.env, f.alicePW+"\n", helm, "registry", "login", f.s.Addr, "-u", "alice", "--password-stdin", "--insecure", "--plain-http")
	}
	return e
}

func (e *chartEnv) hubctl(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, e.dir, e.env, hubctlBin, args...)
}

func (e *chartEnv) helmRun(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, e.dir, e.env, e.helm, args...)
}

// packageChart packages a chart with hubctl into a directory of its own and returns
// the archive's path.
func (e *chartEnv) packageChart(t *testing.T, name, version, description string) string {
	t.Helper()
	src := writeChart(t, t.TempDir(), name, version, description)
	return strings.TrimSpace(e.hubctl(t, "chart", "package", src, "-d", t.TempDir()))
}

func sameFile(t *testing.T, a, b string) {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Fatalf("%s and %s differ", a, b)
	}
}

// TestChartsHelmInterop: helm push → hubctl chart pull (byte for byte), and hubctl
// chart push → helm pull + helm template, with helm 3 and helm 4, through token auth.
func TestChartsHelmInterop(t *testing.T) {
	for _, h := range helmCLIs {
		t.Run(h.name, func(t *testing.T) {
			helm := tool(t, h.bin)
			f := newAuthFixture(t)
			e := newChartEnv(t, f, helm)

			// helm push, with build metadata in the version: tag 1.2.3_build.1.
			tgz := e.packageChart(t, "app", "1.2.3+build.1", "pushed by helm")
			so, se, err := runErr(t, e.dir, e.env, helm, "push", tgz, "oci://"+f.s.Addr+"/alice", "--plain-http")
			if err != nil {
				t.Fatalf("helm push: %v\n%s%s", err, so, se)
			}
			if out := so + se; !strings.Contains(out, "alice/app:1.2.3_build.1") {
				t.Errorf("helm push output: %s", out)
			}
			pulled := filepath.Join(e.dir, "pulled")
			got := strings.TrimSpace(e.hubctl(t, "chart", "pull", "oci://"+f.s.Addr+"/alice/app", "--version", "1.2.3+build.1", "-d", pulled, "--progress", "quiet"))
			if filepath.Base(got) != "app-1.2.3+build.1.tgz" {
				t.Errorf("hubctl chart pull wrote %s", got)
			}
			sameFile(t, tgz, got)

			// hubctl chart push, then helm pull and render.
			tgz2 := e.packageChart(t, "app", "1.3.0", "pushed by hubctl")
			ref := strings.TrimSpace(e.hubctl(t, "chart", "push", tgz2, "oci://"+f.s.Addr+"/alice", "--progress", "quiet"))
			if !regexp.MustCompile(`/alice/app:1\.3\.0@sha256:[0-9a-f]{64}$`).MatchString(ref) {
				t.Errorf("hubctl chart push printed %q", ref)
			}
			hp := filepath.Join(e.dir, "helm-pulled")
			if err := os.MkdirAll(hp, 0o755); err != nil {
				t.Fatal(err)
			}
			e.helmRun(t, "pull", "oci://"+f.s.Addr+"/alice/app", "--version", "1.3.0", "-d", hp, "--plain-http")
			sameFile(t, tgz2, filepath.Join(hp, "app-1.3.0.tgz"))
			rendered := e.helmRun(t, "template", "demo", filepath.Join(hp, "app-1.3.0.tgz"))
			if !strings.Contains(rendered, "kind: ConfigMap") || !strings.Contains(rendered, `greeting: "hello"`) {
				t.Errorf("helm template:\n%s", rendered)
			}
			// A range resolves to the highest match, in semver order.
			got = strings.TrimSpace(e.hubctl(t, "chart", "pull", "oci://"+f.s.Addr+"/alice/app", "--version", "^1", "-d", pulled, "--progress", "quiet"))
			if filepath.Base(got) != "app-1.3.0.tgz" {
				t.Errorf("--version ^1 pulled %s, want app-1.3.0.tgz", got)
			}
		})
	}
}

// TestChartsClassicRepository: charts pushed by OCI are a classic repository: helm repo
// add/update/search and pull with a range, basic auth with a password or an access
// token, a private namespace refuses anonymous helm repo add, ETags answer 304, a
// deleted version leaves the index at once.
func TestChartsClassicRepository(t *testing.T) {
	for _, h := range helmCLIs {
		t.Run(h.name, func(t *testing.T) {
			helm := tool(t, h.bin)
			f := newAuthFixture(t)
			e := newChartEnv(t, f, helm)
			for _, v := range []string{"1.2.0", "1.2.10", "1.3.0", "1.9.0", "1.10.0"} {
				e.hubctl(t, "chart", "push", e.packageChart(t, "app", v, "demo app "+v), "oci://"+f.s.Addr+"/alice", "--progress", "quiet")
			}
			repoURL := "http://" + f.s.Addr + "/charts/alice"

			// Anonymous: the namespace is private.
			so, se, err := runErr(t, e.dir, e.env, helm, "repo", "add", "anon", repoURL)
			if err == nil || !strings.Contains(so+se, "401") {
				t.Fatalf("anonymous helm repo add of a private namespace: err %v\n%s%s", err, so, se)
			}
			// And a namespace that does not exist looks the same.
			resp, _ := do(t, http.MethodGet, f.s.URL("/charts/nobody/index.yaml"), nil, nil)
			resp2, _ := do(t, http.MethodGet, f.s.URL("/charts/alice/index.yaml"), nil, nil)
			if resp.StatusCode != resp2.StatusCode || resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("anonymous index: nonexistent %s, private %s; want the same 401", resp.Status, resp2.Status)
			}

			e.helmRun(t, "repo", "add", "team", repoURL, "--username", "alice", "--password", f.alicePW)
			e.helmRun(t, "repo", "update")
			out := e.helmRun(t, "search", "repo", "team/", "--versions")
			var order []string
			for _, m := range regexp.MustCompile(`team/app\s+(\S+)`).FindAllStringSubmatch(out, -1) {
				order = append(order, m[1])
			}
			if strings.Join(order, " ") != "1.10.0 1.9.0 1.3.0 1.2.10 1.2.0" {
				t.Errorf("helm search repo --versions: %v\n%s", order, out)
			}
			pd := filepath.Join(e.dir, "classic")
			if err := os.MkdirAll(pd, 0o755); err != nil {
				t.Fatal(err)
			}
			e.helmRun(t, "pull", "team/app", "--version", "~1.2", "-d", pd)
			if _, err := os.Stat(filepath.Join(pd, "app-1.2.10.tgz")); err != nil {
				t.Errorf("helm pull team/app --version ~1.2: %v", err)
			}

			// An access token works as the password too.
			tok := f.cliAccessToken(t, "charts", "repository:alice/*:pull")
			e.helmRun(t, "repo", "add", "tok", repoURL, "--username", "ci", "--password", tok)

			// ETag: an unchanged index moves no body.
			auth := map[string]string{"Authorization": basic("alice", f.alicePW)}
			resp, body := do(t, http.MethodGet, f.s.URL("/charts/alice/index.json"), nil, auth)
			etag := resp.Header.Get("ETag")
			if resp.StatusCode != http.StatusOK || etag == "" || !bytes.Contains(body, []byte(`"1.10.0"`)) {
				t.Fatalf("index.json: %s etag %q %s", resp.Status, etag, truncate(body, 200))
			}
			resp, _ = do(t, http.MethodGet, f.s.URL("/charts/alice/index.json"), nil, map[string]string{"Authorization": basic("alice", f.alicePW), "If-None-Match": etag})
			if resp.StatusCode != http.StatusNotModified {
				t.Errorf("If-None-Match with the current ETag: %s, want 304", resp.Status)
			}

			// Deleting a version (ChartMuseum API) removes it from the next index.
			resp, body = do(t, http.MethodDelete, f.s.URL("/api/alice/charts/app/1.10.0"), nil, auth)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("delete: %s %s", resp.Status, body)
			}
			resp, body = do(t, http.MethodGet, f.s.URL("/charts/alice/index.yaml"), nil, map[string]string{"Authorization": basic("alice", f.alicePW), "If-None-Match": etag})
			if resp.StatusCode != http.StatusOK || bytes.Contains(body, []byte("version: 1.10.0")) {
				t.Errorf("index after delete: %s\n%s", resp.Status, truncate(body, 500))
			}

			// Public: anonymous helm repo add works.
			e.hubctl(t, "repo", "set-visibility", "alice/app", "public", "--registry", f.s.Addr)
			e.helmRun(t, "repo", "add", "anon", repoURL)
		})
	}
}

// TestChartsChartMuseumAPI: a chart uploaded as ChartMuseum's docs show (curl) is the
// same OCI artifact helm pulls; listing, provenance, overwrite refusal, delete.
func TestChartsChartMuseumAPI(t *testing.T) {
	helm := tool(t, "helm")
	curl := tool(t, "curl")
	f := newAuthFixture(t)
	e := newChartEnv(t, f, helm)
	tgz := e.packageChart(t, "web", "0.1.0", "uploaded with curl")
	api := "http://" + f.s.Addr + "/api/alice"
	user := "alice:" + f.alicePW

	out := run(t, e.dir, e.env, curl, "-sS", "-u", user, "--data-binary", "@"+tgz, api+"/charts")
	if strings.TrimSpace(out) != `{"saved":true}` {
		t.Fatalf("upload: %s", out)
	}
	pd := filepath.Join(e.dir, "oci")
	if err := os.MkdirAll(pd, 0o755); err != nil {
		t.Fatal(err)
	}
	e.helmRun(t, "pull", "oci://"+f.s.Addr+"/alice/web", "--version", "0.1.0", "-d", pd, "--plain-http")
	sameFile(t, tgz, filepath.Join(pd, "web-0.1.0.tgz"))

	// Multipart with a provenance file: it travels with the chart.
	tgz2 := e.packageChart(t, "web", "0.2.0", "with provenance")
	prov := tgz2 + ".prov"
	provBody := fmt.Sprintf("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nname: web\n...\nfiles:\n  web-0.2.0.tgz: sha256:%s\n-----BEGIN PGP SIGNATURE-----\n\nnot a real signature\n-----END PGP SIGNATURE-----\n",
		strings.TrimPrefix(sha256Digest(mustRead(t, tgz2)), "sha256:"))
	if err := os.WriteFile(prov, []byte(provBody), 0o644); err != nil {
		t.Fatal(err)
	}
	out = run(t, e.dir, e.env, curl, "-sS", "-u", user, "-F", "chart=@"+tgz2, "-F", "prov=@"+prov, api+"/charts")
	if strings.TrimSpace(out) != `{"saved":true}` {
		t.Fatalf("multipart upload: %s", out)
	}
	got := strings.TrimSpace(e.hubctl(t, "chart", "pull", "oci://"+f.s.Addr+"/alice/web", "--version", "0.2.0", "-d", filepath.Join(e.dir, "p"), "--progress", "quiet"))
	sameFile(t, prov, got+".prov")
	resp, body := do(t, http.MethodGet, f.s.URL("/charts/alice/web-0.2.0.tgz.prov"), nil, map[string]string{"Authorization": basic("alice", f.alicePW)})
	if resp.StatusCode != http.StatusOK || string(body) != provBody {
		t.Errorf("classic .prov: %s %q", resp.Status, truncate(body, 100))
	}

	// Listing as ChartMuseum answers it.
	out = run(t, e.dir, e.env, curl, "-sS", "-u", user, api+"/charts")
	if !strings.Contains(out, `"web":[`) || !strings.Contains(out, `"version":"0.2.0"`) {
		t.Errorf("GET /api/alice/charts: %s", out)
	}
	// Another chart under an existing version is refused; the same one again is not.
	other := e.packageChart(t, "web", "0.1.0", "other content, same version")
	out = run(t, e.dir, e.env, curl, "-sS", "-w", " %{http_code}", "-u", user, "--data-binary", "@"+other, api+"/charts")
	if !strings.HasSuffix(out, " 409") || !strings.Contains(out, "already exists") {
		t.Errorf("overwrite: %s", out)
	}
	out = run(t, e.dir, e.env, curl, "-sS", "-w", " %{http_code}", "-u", user, "--data-binary", "@"+tgz, api+"/charts")
	if !strings.HasSuffix(out, " 201") {
		t.Errorf("same chart again: %s", out)
	}
	// Unless the namespace allows overwrites.
	resp, body = do(t, http.MethodPut, f.s.URL("/charts/-/settings/alice"), strings.NewReader(`{"allow_overwrite":true}`), map[string]string{"Authorization": basic("alice", f.alicePW)})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("settings: %s %s", resp.Status, body)
	}
	out = run(t, e.dir, e.env, curl, "-sS", "-w", " %{http_code}", "-u", user, "--data-binary", "@"+other, api+"/charts")
	if !strings.HasSuffix(out, " 201") {
		t.Errorf("overwrite allowed: %s", out)
	}
	// Anonymous uploads are refused.
	out = run(t, e.dir, e.env, curl, "-sS", "-w", " %{http_code}", "--data-binary", "@"+tgz, api+"/charts")
	if !strings.HasSuffix(out, " 401") {
		t.Errorf("anonymous upload: %s", out)
	}
	// Delete, then the version is gone for helm too.
	out = run(t, e.dir, e.env, curl, "-sS", "-u", user, "-X", "DELETE", api+"/charts/web/0.1.0")
	if strings.TrimSpace(out) != `{"deleted":true}` {
		t.Fatalf("delete: %s", out)
	}
	if so, se, err := runErr(t, e.dir, e.env, helm, "pull", "oci://"+f.s.Addr+"/alice/web", "--version", "0.1.0", "-d", pd, "--plain-http"); err == nil {
		t.Errorf("helm pull of a deleted version succeeded: %s%s", so, se)
	}
	// /api/v1/ stays the hub API, and no namespace can be called v1.
	resp, _ = do(t, http.MethodGet, f.s.URL("/api/v1/user"), nil, map[string]string{"Authorization": basic("alice", f.alicePW)})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/api/v1/user: %s", resp.Status)
	}
	resp, body = apiCall(t, f.s, http.MethodPost, "/api/v1/orgs", "alice", f.alicePW, map[string]any{"name": "v1"})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("organisation v1: %s %s, want 400", resp.Status, body)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestChartsBadInput: what is not a valid chart, or not where it may go, is refused
// with a clear message and leaves no manifest and no chart record.
func TestChartsBadInput(t *testing.T) {
	curl := tool(t, "curl")
	f := newAuthFixture(t)
	e := newChartEnv(t, f, "")
	good := e.packageChart(t, "app", "1.0.0", "good")
	e.hubctl(t, "chart", "push", good, "oci://"+f.s.Addr+"/alice", "--progress", "quiet")
	api := "http://" + f.s.Addr + "/api/alice/charts"
	user := "alice:" + f.alicePW

	notChart := filepath.Join(e.dir, "not-a-chart.tgz")
	writeTarGz(t, notChart, map[string]string{"hello/hello.txt": "not a chart"})
	badVersion := filepath.Join(e.dir, "bad-version.tgz")
	writeTarGz(t, badVersion, map[string]string{"app/Chart.yaml": "apiVersion: v2\nname: app\nversion: one.two\n"})
	truncated := filepath.Join(e.dir, "truncated.tgz")
	if err := os.WriteFile(truncated, mustRead(t, good)[:200], 0o644); err != nil {
		t.Fatal(err)
	}
	dup := e.packageChart(t, "app", "1.0.0", "same version, other content")

	before := chartRows(t, f.s)
	for _, c := range []struct {
		name, file, want string
	}{
		{"not a chart", notChart, "Chart.yaml"},
		{"invalid version", badVersion, "version"},
		{"truncated", truncated, "unexpected EOF"},
		{"duplicate version", dup, "already exists"},
	} {
		t.Run(c.name, func(t *testing.T) {
			so, se, err := runErr(t, e.dir, e.env, hubctlBin, "chart", "push", c.file, "oci://"+f.s.Addr+"/alice", "--progress", "quiet")
			if err == nil || !strings.Contains(se, c.want) {
				t.Errorf("hubctl chart push: err %v, want a message with %q\n%s%s", err, c.want, so, se)
			}
			out := run(t, e.dir, e.env, curl, "-sS", "-w", " %{http_code}", "-u", user, "--data-binary", "@"+c.file, api)
			if !strings.Contains(out, c.want) || !regexp.MustCompile(` (400|409)$`).MatchString(out) {
				t.Errorf("ChartMuseum upload: %s, want 400/409 with %q", out, c.want)
			}
		})
	}
	// A chart pushed by OCI to a repository not named after it.
	raw := mustRead(t, good)
	tok := mustToken(t, f.s, "alice", f.alicePW, "repository:alice/other:pull,push")
	cfg := []byte(`{"apiVersion":"v2","name":"app","version":"1.0.0"}`)
	cfgD := pushBlobAs(t, f.s, tok, "alice/other", cfg)
	layerD := pushBlobAs(t, f.s, tok, "alice/other", raw)
	man := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.cncf.helm.chart.content.v1.tar+gzip","digest":%q,"size":%d}]}`,
		cfgD, len(cfg), layerD, len(raw))
	resp, body := do(t, http.MethodPut, f.s.URL("/v2/alice/other/manifests/1.0.0"), strings.NewReader(man),
		map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "application/vnd.oci.image.manifest.v1+json"})
	if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte("last component must be the chart's name")) {
		t.Errorf("chart app pushed to alice/other: %s %s", resp.Status, body)
	}
	if after := chartRows(t, f.s); after != before {
		t.Errorf("chart records: %d before the bad inputs, %d after", before, after)
	}
	if n := count(t, f.s.DataDir, "SELECT count(*) FROM manifests"); n != 1 {
		t.Errorf("%d manifests stored, want only the good chart's", n)
	}
}

func chartRows(t *testing.T, s *server) int {
	t.Helper()
	return count(t, s.DataDir, "SELECT count(*) FROM chart_versions")
}

// pushBlobAs uploads b to repo with a bearer token and returns its digest.
func pushBlobAs(t *testing.T, s *server, tok, repo string, b []byte) string {
	t.Helper()
	d := sha256Digest(b)
	resp, body := do(t, http.MethodPost, s.URL("/v2/"+repo+"/blobs/uploads/?digest="+d), bytes.NewReader(b),
		map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "application/octet-stream"})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload blob to %s: %s %s", repo, resp.Status, body)
	}
	return d
}

// writeTarGz writes a gzip-compressed tar of files (name → content) to p.
func writeTarGz(t *testing.T, p string, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
