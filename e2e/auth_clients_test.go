package e2e

// Real clients against a registry with token auth on (issue 3): the Docker engine,
// crane, skopeo, oras and helm each log in and push and pull, once with a password and
// once with an access token created by `hubctl token create`. Every client gets its own
// HOME and credentials file, so the tests never read or write the machine's real
// credentials and one client's login cannot make another's pass.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// runStdin is run with stdin: logins read passwords with --password-stdin so that no
// secret appears in a process list. It returns stdout and stderr together, because the
// clients disagree on where "Login Succeeded" goes.
func runStdin(t testing.TB, dir string, env []string, stdin, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(name), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String() + stderr.String()
}

// clientEnv is an environment whose HOME, docker config, XDG and helm directories are
// all under home, a fresh directory: a client cannot find credentials anywhere else.
func clientEnv(t testing.TB, home string) []string {
	t.Helper()
	for _, d := range []string{".docker", ".config", ".cache", ".local/share", "run"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	env := cleanEnv("HOME=", "DOCKER_CONFIG=", "DOCKER_AUTH_CONFIG=", "REGISTRY_AUTH_FILE=", "XDG_", "HELM_", "HUBCTL_")
	return append(env,
		"HOME="+home,
		"DOCKER_CONFIG="+filepath.Join(home, ".docker"),
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"XDG_DATA_HOME="+filepath.Join(home, ".local/share"),
		"XDG_RUNTIME_DIR="+filepath.Join(home, "run"),
		// containers/image (skopeo) reads this before its other places.
		"REGISTRY_AUTH_FILE="+filepath.Join(home, "auth.json"),
		"HELM_CONFIG_HOME="+filepath.Join(home, ".config", "helm"),
		"HELM_CACHE_HOME="+filepath.Join(home, ".cache", "helm"),
		"HELM_DATA_HOME="+filepath.Join(home, ".local/share", "helm"),
	)
}

// authFixture is a token-auth server with the user alice.
type authFixture struct {
	s       *server
	alicePW string
}

func newAuthFixture(t testing.TB) authFixture {
	t.Helper()
	f := authFixture{s: startAuthServer(t), alicePW: "alice-password-1"}
	createUser(t, f.s, "alice", f.alicePW)
	return f
}

// cliAccessToken logs alice in with `hubctl login` (in a config dir of its own) and
// creates an access token with `hubctl token create`, exercising the CLI end to end:
// login stores the refresh token, token create trades it for a registry JWT and calls
// the API with it. It returns the hub_ secret.
func (f authFixture) cliAccessToken(t testing.TB, name string, scopes ...string) string {
	t.Helper()
	env := clientEnv(t, t.TempDir())
	out := runStdin(t, "", env, f.alicePW+"\n", hubctlBin, "login", f.s.Addr, "-u", "alice", "--password-stdin")
	if !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("hubctl login: %q, want Login Succeeded", out)
	}
	args := []string{"token", "create", name, "--registry", f.s.Addr}
	for _, sc := range scopes {
		args = append(args, "--scope", sc)
	}
	tok := strings.TrimSpace(run(t, "", env, hubctlBin, args...))
	if !strings.HasPrefix(tok, "hub_") || strings.ContainsAny(tok, " \n") {
		t.Fatalf("hubctl token create printed %q, want one hub_ secret", tok)
	}
	return tok
}

// tagsAs lists repo's tags with a token alice gets by password: what is in the
// registry, independent of the client under test.
func (f authFixture) tagsAs(t testing.TB, repo string) []string {
	t.Helper()
	tok := mustToken(t, f.s, "alice", f.alicePW, "repository:"+repo+":pull")
	resp, body := do(t, http.MethodGet, f.s.URL("/v2/"+repo+"/tags/list"), nil, bearer(tok))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("tags list %s as alice: %s %q", repo, resp.Status, truncate(body, 300))
	}
	var tl struct {
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(body, &tl); err != nil {
		t.Fatal(err)
	}
	return tl.Tags
}

// refusedPrivate matches how clients word a refused pull of a private repository:
// registries answer 401/403, and some clients (docker) word that as "not found".
var refusedPrivate = regexp.MustCompile(`(?i)unauthori[sz]ed|denied|not found|authentication required|401|403`)

// wantFailure asserts that a client command failed with a refusal of access.
func wantFailure(t testing.TB, what string, stdout, stderr string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s succeeded, want it refused\nstdout:\n%s\nstderr:\n%s", what, stdout, stderr)
	}
	if !refusedPrivate.MatchString(stdout + stderr) {
		t.Errorf("%s failed, but not with an access refusal: %v\nstdout:\n%s\nstderr:\n%s", what, err, stdout, stderr)
		return
	}
	t.Logf("%s refused: %s", what, strings.TrimSpace(stderr))
}

// loginAuditCount counts alice's password logins at the token service.
func loginAuditCount(t testing.TB, s *server) int {
	t.Helper()
	return count(t, s.DataDir, "SELECT COUNT(*) FROM audit_log WHERE actor = 'alice' AND action = 'login'")
}

// TestAuthDocker drives the Docker engine: login, push to a private repository, an
// anonymous pull refused, a pull after login that runs, and a public repository pulled
// anonymously.
func TestAuthDocker(t *testing.T) {
	requireDocker(t)
	f := newAuthFixture(t)
	s := f.s

	dir, want := helloContext(t, "hello from hubctl auth e2e")

	aliceEnv := clientEnv(t, t.TempDir())
	anonEnv := clientEnv(t, t.TempDir())
	if exec.Command("docker", "buildx", "version").Run() != nil {
		// Without the buildx plugin the CLI needs the classic builder selected explicitly.
		aliceEnv = append(aliceEnv, "DOCKER_BUILDKIT=0")
	}
	private := s.Addr + "/alice/private:1"
	public := s.Addr + "/alice/public:1"
	t.Cleanup(func() {
		// Best effort: the engine is shared, leave no image behind.
		_ = exec.Command("docker", "rmi", "-f", private, public).Run()
	})
	docker := func(env []string, args ...string) string {
		t.Helper()
		return run(t, dir, env, "docker", args...)
	}

	out := runStdin(t, dir, aliceEnv, f.alicePW+"\n", "docker", "login", s.Addr, "-u", "alice", "--password-stdin")
	if !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("docker login: %q", out)
	}
	// docker keeps the refresh token our token service issued on login (identitytoken)
	// instead of the password; every later request trades it with the OAuth2 POST.
	cfgPath := filepath.Join(envDir(aliceEnv, "DOCKER_CONFIG"), "config.json")
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(f.alicePW)) {
		t.Errorf("docker's config.json holds alice's password in clear:\n%s", raw)
	}
	var cfg struct {
		Auths map[string]struct {
			Auth          string `json:"auth"`
			IdentityToken string `json:"identitytoken"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("config.json %q: %v", raw, err)
	}
	entry, ok := cfg.Auths[s.Addr]
	if !ok {
		t.Fatalf("config.json has no auths entry for %s:\n%s", s.Addr, raw)
	}
	if entry.IdentityToken == "" {
		t.Errorf("config.json entry for %s has no identitytoken: docker did not get a refresh token at login:\n%s", s.Addr, raw)
	}
	if dec, _ := base64.StdEncoding.DecodeString(entry.Auth); strings.Contains(string(dec), f.alicePW) {
		t.Errorf("config.json auth field holds the password")
	}
	loginsAfterLogin := loginAuditCount(t, s)

	docker(aliceEnv, "build", "-t", private, ".")
	docker(aliceEnv, "tag", private, public)
	docker(aliceEnv, "push", private)
	docker(aliceEnv, "push", public)
	if tags := f.tagsAs(t, "alice/private"); !slices.Equal(tags, []string{"1"}) {
		t.Fatalf("alice/private tags = %v after docker push, want [1]", tags)
	}
	// The pushes signed in with the refresh token, not with a password: no new
	// password login was audited.
	if n := loginAuditCount(t, s); n != loginsAfterLogin {
		t.Errorf("password logins of alice went from %d to %d during docker push: docker did not use its identity token", loginsAfterLogin, n)
	}

	// Remove the local copies so every pull below really goes to the registry.
	docker(aliceEnv, "rmi", private, public)

	// Anonymous: refused.
	so, se, err := runErr(t, dir, anonEnv, "docker", "pull", private)
	wantFailure(t, "anonymous docker pull "+private, so, se, err)
	if _, _, err := runErr(t, dir, nil, "docker", "image", "inspect", private); err == nil {
		t.Fatalf("%s is present locally after a refused pull", private)
	}

	// After login: works, and runs.
	docker(aliceEnv, "pull", private)
	if got := strings.TrimSpace(docker(aliceEnv, "run", "--rm", private)); got != want {
		t.Fatalf("docker run %s = %q, want %q", private, got, want)
	}
	docker(aliceEnv, "rmi", private)

	// Public: made so with the hubctl CLI on docker's stored login (the identity token
	// in alice's config dir), then pulled anonymously.
	so, se, err = runErr(t, dir, anonEnv, "docker", "pull", public)
	wantFailure(t, "anonymous docker pull of a still private "+public, so, se, err)
	run(t, dir, aliceEnv, hubctlBin, "repo", "set-visibility", "alice/public", "public", "--registry", s.Addr)
	resp, body := apiCall(t, s, http.MethodGet, "/api/v1/repositories/alice/public", "alice", f.alicePW, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"visibility":"public"`) {
		t.Fatalf("GET /api/v1/repositories/alice/public: %s %q, want public", resp.Status, truncate(body, 300))
	}
	docker(anonEnv, "pull", public)
	if got := strings.TrimSpace(docker(anonEnv, "run", "--rm", public)); got != want {
		t.Fatalf("docker run %s (anonymous pull) = %q, want %q", public, got, want)
	}
	// alice/private stayed private.
	so, se, err = runErr(t, dir, anonEnv, "docker", "pull", private)
	wantFailure(t, "anonymous docker pull "+private+" after making alice/public public", so, se, err)
	// The anonymous side never stored credentials.
	if b, err := os.ReadFile(filepath.Join(envDir(anonEnv, "DOCKER_CONFIG"), "config.json")); err == nil && bytes.Contains(b, []byte(s.Addr)) {
		t.Errorf("the anonymous docker config has an entry for %s:\n%s", s.Addr, b)
	}
}

// envDir returns the value of key in env.
func envDir(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v
		}
	}
	return ""
}

// TestAuthCrane logs crane in with a password and with an access token and pushes and
// pulls an image each time.
func TestAuthCrane(t *testing.T) {
	crane := tool(t, "crane")
	f := newAuthFixture(t)
	s := f.s
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "layer.tar"), layerTar(t, "payload.bin", 32<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	c := func(env []string, args ...string) string {
		t.Helper()
		return strings.TrimSpace(run(t, dir, env, crane, append([]string{"--insecure"}, args...)...))
	}
	pushPull := func(env []string, ref string) {
		t.Helper()
		c(env, "append", "--oci-empty-base", "-f", filepath.Join(dir, "layer.tar"), "-t", ref)
		d := c(env, "digest", ref)
		raw := c(env, "manifest", ref)
		if sha256Digest([]byte(raw)) != d {
			t.Fatalf("crane manifest %s hashes to %s, crane digest says %s", ref, sha256Digest([]byte(raw)), d)
		}
		out := filepath.Join(dir, "pulled-"+filepath.Base(strings.ReplaceAll(ref, ":", "_"))+".tar")
		c(env, "pull", ref, out)
		if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
			t.Fatalf("crane pull %s wrote nothing (err %v)", ref, err)
		}
	}

	// Anonymous: pushing is refused.
	anonEnv := clientEnv(t, t.TempDir())
	so, se, err := runErr(t, dir, anonEnv, crane, "--insecure", "append", "--oci-empty-base", "-f", filepath.Join(dir, "layer.tar"), "-t", s.Addr+"/alice/crane:anon")
	wantFailure(t, "anonymous crane push", so, se, err)

	// Password.
	pwEnv := clientEnv(t, t.TempDir())
	runStdin(t, dir, pwEnv, f.alicePW, crane, "auth", "login", s.Addr, "-u", "alice", "--password-stdin")
	pushPull(pwEnv, s.Addr+"/alice/crane:password")

	// Anonymous: pulling the private result is refused.
	so, se, err = runErr(t, dir, anonEnv, crane, "--insecure", "manifest", s.Addr+"/alice/crane:password")
	wantFailure(t, "anonymous crane manifest", so, se, err)

	// Access token, as the password of any user name.
	tok := f.cliAccessToken(t, "ci", "repository:alice/*:pull,push")
	tokEnv := clientEnv(t, t.TempDir())
	runStdin(t, dir, tokEnv, tok, crane, "auth", "login", s.Addr, "-u", "ci", "--password-stdin")
	pushPull(tokEnv, s.Addr+"/alice/crane:token")
	// The token is held to its scopes: nothing outside alice/*.
	so, se, err = runErr(t, dir, tokEnv, crane, "--insecure", "append", "--oci-empty-base", "-f", filepath.Join(dir, "layer.tar"), "-t", s.Addr+"/other/crane:token")
	wantFailure(t, "crane push outside the token's scope", so, se, err)

	if tags := f.tagsAs(t, "alice/crane"); !slices.Equal(tags, []string{"password", "token"}) {
		t.Errorf("alice/crane tags = %v, want [password token]", tags)
	}
	if n := count(t, s.DataDir, "SELECT COUNT(*) FROM repositories WHERE name LIKE 'other/%'"); n != 0 {
		t.Errorf("a refused push created %d repositories under other/", n)
	}
}

// TestAuthSkopeo logs skopeo in with a password and with an access token and copies an
// image in and out each time.
func TestAuthSkopeo(t *testing.T) {
	skopeo := tool(t, "skopeo")
	f := newAuthFixture(t)
	s := f.s
	dir := t.TempDir()
	img := newImage(t, "amd64")
	layout := filepath.Join(dir, "layout")
	writeOCILayout(t, layout, "v1", img)

	pushPull := func(env []string, authfile, tag string) {
		t.Helper()
		dst := "docker://" + s.Addr + "/alice/skopeo:" + tag
		run(t, dir, env, skopeo, "copy", "--authfile", authfile, "--insecure-policy", "--preserve-digests", "--dest-tls-verify=false", "oci:"+layout+":v1", dst)
		raw := run(t, dir, env, skopeo, "inspect", "--authfile", authfile, "--raw", "--tls-verify=false", dst)
		if raw != string(img.Manifest) {
			t.Fatalf("skopeo inspect --raw %s = %q, want the pushed manifest", dst, truncate([]byte(raw), 200))
		}
		out := filepath.Join(dir, "pulled-"+tag)
		run(t, dir, env, skopeo, "copy", "--authfile", authfile, "--insecure-policy", "--preserve-digests", "--src-tls-verify=false", dst, "oci:"+out+":v1")
		if b, err := os.ReadFile(filepath.Join(out, "blobs", "sha256", strings.TrimPrefix(img.LayerDigest, "sha256:"))); err != nil || !bytes.Equal(b, img.Layer) {
			t.Fatalf("skopeo pull of %s: layer differs from the pushed one (err %v)", dst, err)
		}
	}
	login := func(env []string, authfile, user, secret string) {
		t.Helper()
		out := runStdin(t, dir, env, secret, skopeo, "login", "--authfile", authfile, "--tls-verify=false", "-u", user, "--password-stdin", s.Addr)
		if !strings.Contains(out, "Login Succeeded") {
			t.Fatalf("skopeo login as %s: %q", user, out)
		}
	}

	// Password.
	pwEnv := clientEnv(t, t.TempDir())
	pwAuth := envDir(pwEnv, "REGISTRY_AUTH_FILE")
	login(pwEnv, pwAuth, "alice", f.alicePW)
	pushPull(pwEnv, pwAuth, "password")

	// Anonymous, with an empty auth file: refused.
	anonEnv := clientEnv(t, t.TempDir())
	anonAuth := envDir(anonEnv, "REGISTRY_AUTH_FILE")
	if err := os.WriteFile(anonAuth, []byte(`{"auths":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	so, se, err := runErr(t, dir, anonEnv, skopeo, "inspect", "--authfile", anonAuth, "--raw", "--tls-verify=false", "docker://"+s.Addr+"/alice/skopeo:password")
	wantFailure(t, "anonymous skopeo inspect", so, se, err)
	so, se, err = runErr(t, dir, anonEnv, skopeo, "copy", "--authfile", anonAuth, "--insecure-policy", "--dest-tls-verify=false", "oci:"+layout+":v1", "docker://"+s.Addr+"/alice/skopeo:anon")
	wantFailure(t, "anonymous skopeo copy (push)", so, se, err)

	// Access token.
	tok := f.cliAccessToken(t, "ci", "repository:alice/*:pull,push")
	tokEnv := clientEnv(t, t.TempDir())
	tokAuth := envDir(tokEnv, "REGISTRY_AUTH_FILE")
	login(tokEnv, tokAuth, "ci", tok)
	pushPull(tokEnv, tokAuth, "token")

	if tags := f.tagsAs(t, "alice/skopeo"); !slices.Equal(tags, []string{"password", "token"}) {
		t.Errorf("alice/skopeo tags = %v, want [password token]", tags)
	}
}

// TestAuthOras logs oras in with a password and with an access token and pushes and
// pulls an artifact each time.
func TestAuthOras(t *testing.T) {
	oras := tool(t, "oras")
	f := newAuthFixture(t)
	s := f.s
	dir := t.TempDir()
	content := randomBytes(t, 2000)
	if err := os.WriteFile(filepath.Join(dir, "payload.bin"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	o := func(env []string, regcfg string, args ...string) (string, string, error) {
		t.Helper()
		return runErr(t, dir, env, oras, append(args, "--plain-http", "--registry-config", regcfg)...)
	}
	mustO := func(env []string, regcfg string, args ...string) string {
		t.Helper()
		so, se, err := o(env, regcfg, args...)
		if err != nil {
			t.Fatalf("oras %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, so, se)
		}
		return so
	}
	pushPull := func(env []string, regcfg, tag string) {
		t.Helper()
		ref := s.Addr + "/alice/oras:" + tag
		mustO(env, regcfg, "push", "--artifact-type", "application/vnd.hubctl.e2e.payload", ref, "payload.bin:application/octet-stream")
		out := filepath.Join(dir, "pulled-"+tag)
		mustO(env, regcfg, "pull", "-o", out, ref)
		if b, err := os.ReadFile(filepath.Join(out, "payload.bin")); err != nil || !bytes.Equal(b, content) {
			t.Fatalf("oras pull %s: payload differs from the pushed one (err %v)", ref, err)
		}
	}
	login := func(env []string, regcfg, user, secret string) {
		t.Helper()
		cmdArgs := []string{"login", "--plain-http", "--registry-config", regcfg, "-u", user, "--password-stdin", s.Addr}
		if out := runStdin(t, dir, env, secret, oras, cmdArgs...); !strings.Contains(out, "Login Succeeded") {
			t.Fatalf("oras login as %s: %q", user, out)
		}
	}

	pwEnv := clientEnv(t, t.TempDir())
	pwCfg := filepath.Join(envDir(pwEnv, "HOME"), "oras.json")
	login(pwEnv, pwCfg, "alice", f.alicePW)
	pushPull(pwEnv, pwCfg, "password")

	anonEnv := clientEnv(t, t.TempDir())
	anonCfg := filepath.Join(envDir(anonEnv, "HOME"), "oras.json")
	so, se, err := o(anonEnv, anonCfg, "pull", "-o", filepath.Join(dir, "anon"), s.Addr+"/alice/oras:password")
	wantFailure(t, "anonymous oras pull", so, se, err)
	so, se, err = o(anonEnv, anonCfg, "push", s.Addr+"/alice/oras:anon", "payload.bin:application/octet-stream")
	wantFailure(t, "anonymous oras push", so, se, err)

	tok := f.cliAccessToken(t, "ci", "repository:alice/*:pull,push")
	tokEnv := clientEnv(t, t.TempDir())
	tokCfg := filepath.Join(envDir(tokEnv, "HOME"), "oras.json")
	login(tokEnv, tokCfg, "ci", tok)
	pushPull(tokEnv, tokCfg, "token")

	if tags := f.tagsAs(t, "alice/oras"); !slices.Equal(tags, []string{"password", "token"}) {
		t.Errorf("alice/oras tags = %v, want [password token]", tags)
	}
}

// TestAuthHelm logs helm in with a password and with an access token and pushes and
// pulls a chart each time.
func TestAuthHelm(t *testing.T) {
	helm := tool(t, "helm")
	f := newAuthFixture(t)
	s := f.s
	dir := t.TempDir()
	baseEnv := clientEnv(t, t.TempDir())
	run(t, dir, baseEnv, helm, "create", "e2echart")

	h := func(env []string, args ...string) (string, string, error) {
		t.Helper()
		return runErr(t, dir, env, helm, args...)
	}
	mustH := func(env []string, args ...string) string {
		t.Helper()
		so, se, err := h(env, args...)
		if err != nil {
			t.Fatalf("helm %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, so, se)
		}
		return so + se
	}
	pushPull := func(env []string, regcfg, version string) {
		t.Helper()
		pkgDir := filepath.Join(dir, "pkg-"+version)
		mustH(env, "package", "e2echart", "--version", version, "-d", pkgDir)
		tgz := filepath.Join(pkgDir, "e2echart-"+version+".tgz")
		pushed, err := os.ReadFile(tgz)
		if err != nil {
			t.Fatal(err)
		}
		out := mustH(env, "push", tgz, "oci://"+s.Addr+"/alice", "--plain-http", "--registry-config", regcfg)
		if !strings.Contains(out, "Pushed: "+s.Addr+"/alice/e2echart:"+version) {
			t.Errorf("helm push output does not name the pushed chart:\n%s", out)
		}
		// helm pull -d needs the directory to exist.
		pullDir := filepath.Join(dir, "pulled-"+version)
		if err := os.MkdirAll(pullDir, 0o755); err != nil {
			t.Fatal(err)
		}
		mustH(env, "pull", "oci://"+s.Addr+"/alice/e2echart", "--version", version, "-d", pullDir, "--plain-http", "--registry-config", regcfg)
		got, err := os.ReadFile(filepath.Join(pullDir, "e2echart-"+version+".tgz"))
		if err != nil || !bytes.Equal(got, pushed) {
			t.Fatalf("helm pull %s: chart differs from the pushed one (err %v)", version, err)
		}
	}
	login := func(env []string, regcfg, user, secret string) {
		t.Helper()
		if out := runStdin(t, dir, env, secret, helm, "registry", "login", s.Addr, "--plain-http", "--insecure",
			"--registry-config", regcfg, "-u", user, "--password-stdin"); !strings.Contains(out, "Login Succeeded") {
			t.Fatalf("helm registry login as %s: %q", user, out)
		}
	}

	pwEnv := clientEnv(t, t.TempDir())
	pwCfg := filepath.Join(envDir(pwEnv, "HOME"), "helm-registry.json")
	login(pwEnv, pwCfg, "alice", f.alicePW)
	pushPull(pwEnv, pwCfg, "0.1.0")

	anonEnv := clientEnv(t, t.TempDir())
	anonCfg := filepath.Join(envDir(anonEnv, "HOME"), "helm-registry.json")
	anonDir := filepath.Join(dir, "anon")
	if err := os.MkdirAll(anonDir, 0o755); err != nil {
		t.Fatal(err)
	}
	so, se, err := h(anonEnv, "pull", "oci://"+s.Addr+"/alice/e2echart", "--version", "0.1.0", "-d", anonDir, "--plain-http", "--registry-config", anonCfg)
	wantFailure(t, "anonymous helm pull", so, se, err)
	so, se, err = h(anonEnv, "push", filepath.Join(dir, "pkg-0.1.0", "e2echart-0.1.0.tgz"), "oci://"+s.Addr+"/anon", "--plain-http", "--registry-config", anonCfg)
	wantFailure(t, "anonymous helm push", so, se, err)

	tok := f.cliAccessToken(t, "ci", "repository:alice/*:pull,push")
	tokEnv := clientEnv(t, t.TempDir())
	tokCfg := filepath.Join(envDir(tokEnv, "HOME"), "helm-registry.json")
	login(tokEnv, tokCfg, "ci", tok)
	pushPull(tokEnv, tokCfg, "0.2.0")

	if tags := f.tagsAs(t, "alice/e2echart"); !slices.Equal(tags, []string{"0.1.0", "0.2.0"}) {
		t.Errorf("alice/e2echart tags = %v, want [0.1.0 0.2.0]", tags)
	}
}
