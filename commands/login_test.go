package commands

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/cli/cli/config"
	"github.com/hubctl/hubctl/internal/credentials/credentialstest"
	"github.com/hubctl/hubctl/internal/iostreams"
)

var loginUsers = map[string]string{"alice": "s3cret"}

// runIO executes args in-process with stdin content, stdin marked a terminal or not,
// and DOCKER_CONFIG set to dockerConfig; it returns the exit code, stdout and stderr.
func runIO(t *testing.T, dockerConfig, stdin string, tty bool, args ...string) (int, string, string) {
	t.Helper()
	ios, in, out, errOut := iostreams.Test()
	in.WriteString(stdin)
	ios.SetTTY(tty, false, false)
	f := NewFactory(ios, BuildInfo{})
	f.LookupEnv = func(k string) (string, bool) {
		if k == "DOCKER_CONFIG" {
			return dockerConfig, true
		}
		return "", false
	}
	code := Execute(context.Background(), f, args)
	return code, out.String(), errOut.String()
}

// authEntry is one auths entry of config.json as written on disk.
type authEntry struct {
	Auth          string `json:"auth"`
	IdentityToken string `json:"identitytoken"`
}

func readAuths(t *testing.T, dir string) map[string]authEntry {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Auths map[string]authEntry `json:"auths"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("config.json: %v\n%s", err, b)
	}
	return c.Auths
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestLoginBearerStoresInConfigFile(t *testing.T) {
	t.Setenv("DOCKER_AUTH_CONFIG", "")
	reg := credentialstest.NewRegistry(t, credentialstest.Bearer, loginUsers)
	dir := t.TempDir()

	code, out, errOut := runIO(t, dir, "s3cret\n", false, "login", reg.Host, "-u", "alice", "--password-stdin")
	if code != 0 || out != "Login Succeeded\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if got := readAuths(t, dir)[reg.Host]; got != (authEntry{Auth: b64("alice:s3cret")}) {
		t.Errorf("config.json auths[%s] = %+v", reg.Host, got)
	}
	reqs := reg.TokenRequests()
	if len(reqs) != 1 || !reqs[0].Authorized || reqs[0].Service != reg.Service || reqs[0].OfflineToken != "true" || reqs[0].ClientID != "hubctl" {
		t.Errorf("token requests %+v", reqs)
	}

	// docker's own loader finds the login.
	cf, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ac, err := cf.GetAuthConfig(reg.Host); err != nil || ac.Username != "alice" || ac.Password != "s3cret" {
		t.Errorf("docker sees %+v, %v", ac, err)
	}
}

func TestLoginStoresRefreshToken(t *testing.T) {
	t.Setenv("DOCKER_AUTH_CONFIG", "")
	reg := credentialstest.NewRegistry(t, credentialstest.Bearer, loginUsers)
	reg.RefreshToken = "hubr_0123456789"
	dir := t.TempDir()

	code, out, errOut := runIO(t, dir, "", false, "login", "http://"+reg.Host+"/", "-u", "alice", "-p", "s3cret")
	if code != 0 || out != "Login Succeeded\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if !strings.Contains(errOut, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.") {
		t.Errorf("no -p warning on stderr: %q", errOut)
	}
	// Stored under the host alone, the password replaced by the refresh token.
	want := authEntry{Auth: b64("alice:"), IdentityToken: "hubr_0123456789"}
	if got := readAuths(t, dir)[reg.Host]; got != want {
		t.Errorf("config.json auths[%s] = %+v, want %+v", reg.Host, got, want)
	}
}

func TestLoginWrongPasswordSavesNothing(t *testing.T) {
	t.Setenv("DOCKER_AUTH_CONFIG", "")
	for name, ch := range map[string]credentialstest.Challenge{"bearer": credentialstest.Bearer, "basic": credentialstest.Basic} {
		t.Run(name, func(t *testing.T) {
			reg := credentialstest.NewRegistry(t, ch, loginUsers)
			dir := t.TempDir()
			code, out, errOut := runIO(t, dir, "wrong\n", false, "login", reg.Host, "-u", "alice", "--password-stdin")
			if code != 1 || out != "" {
				t.Errorf("exit %d, stdout %q", code, out)
			}
			if want := "hubctl: login to " + reg.Host + " failed: invalid username or password\n"; errOut != want {
				t.Errorf("stderr %q, want %q", errOut, want)
			}
			if auths := readAuths(t, dir); len(auths) != 0 {
				t.Errorf("saved after a failed login: %+v", auths)
			}
		})
	}
}

func TestLoginBasicAndNoAuthRegistries(t *testing.T) {
	t.Setenv("DOCKER_AUTH_CONFIG", "")
	basic := credentialstest.NewRegistry(t, credentialstest.Basic, loginUsers)
	dir := t.TempDir()
	code, out, errOut := runIO(t, dir, "s3cret", false, "login", basic.Host, "-u", "alice", "--password-stdin")
	if code != 0 || out != "Login Succeeded\n" || readAuths(t, dir)[basic.Host].Auth != b64("alice:s3cret") {
		t.Errorf("basic: exit %d, stdout %q, stderr %q, auths %+v", code, out, errOut, readAuths(t, dir))
	}

	open := credentialstest.NewRegistry(t, credentialstest.NoAuth, nil)
	code, out, errOut = runIO(t, dir, "pw\n", false, "login", open.Host, "-u", "bob", "--password-stdin")
	if code != 0 || out != "Login Succeeded\n" {
		t.Fatalf("no auth: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if !strings.Contains(errOut, open.Host+" does not require authentication") {
		t.Errorf("stderr %q lacks the no-authentication note", errOut)
	}
	if readAuths(t, dir)[open.Host].Auth != b64("bob:pw") {
		t.Errorf("auths %+v", readAuths(t, dir))
	}
}

func TestLoginPasswordStdinTrimsOneNewline(t *testing.T) {
	t.Setenv("DOCKER_AUTH_CONFIG", "")
	// The password itself ends in a space; only the line ending is stripped.
	reg := credentialstest.NewRegistry(t, credentialstest.Basic, map[string]string{"alice": "pass word "})
	dir := t.TempDir()
	code, _, errOut := runIO(t, dir, "pass word \r\n", false, "login", reg.Host, "-u", "alice", "--password-stdin")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if got := readAuths(t, dir)[reg.Host].Auth; got != b64("alice:pass word ") {
		t.Errorf("auth %q", got)
	}
}

func TestLoginCredentialHelper(t *testing.T) {
	t.Setenv("DOCKER_AUTH_CONFIG", "")
	h := credentialstest.BuildHelper(t)
	reg := credentialstest.NewRegistry(t, credentialstest.Bearer, loginUsers)
	for name, cfg := range map[string]string{
		"credsStore":  `{"credsStore":"` + credentialstest.HelperName + `"}`,
		"credHelpers": `{"credHelpers":{"` + reg.Host + `":"` + credentialstest.HelperName + `"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runIO(t, dir, "s3cret\n", false, "login", reg.Host, "-u", "alice", "--password-stdin")
			if code != 0 || out != "Login Succeeded\n" {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
			}
			if e := h.Entries(t)[reg.Host]; e.Username != "alice" || e.Secret != "s3cret" {
				t.Errorf("helper holds %+v", h.Entries(t))
			}
			if a := readAuths(t, dir)[reg.Host]; a.Auth != "" || a.IdentityToken != "" {
				t.Errorf("secret in config.json despite the helper: %+v", a)
			}

			code, out, _ = runIO(t, dir, "", false, "logout", reg.Host)
			if code != 0 || out != "Removing login credentials for "+reg.Host+"\n" {
				t.Errorf("logout: exit %d, stdout %q", code, out)
			}
			if _, ok := h.Entries(t)[reg.Host]; ok {
				t.Error("logout left the credentials in the helper")
			}
		})
	}
}

func TestLoginRefusesToPromptWithoutTTY(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"login", "127.0.0.1:1"},
		{"login", "127.0.0.1:1", "-u", "alice"},
	} {
		code, out, errOut := runIO(t, dir, "s3cret\n", false, args...)
		if code != 1 || out != "" {
			t.Errorf("%v: exit %d, stdout %q", args, code, out)
		}
		if !strings.HasPrefix(errOut, "hubctl: cannot prompt for credentials: stdin is not a terminal; use -u USER --password-stdin") || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: stderr %q", args, errOut)
		}
	}
	if auths := readAuths(t, dir); len(auths) != 0 {
		t.Errorf("saved: %+v", auths)
	}
}

func TestLoginPrompts(t *testing.T) {
	t.Setenv("DOCKER_AUTH_CONFIG", "")
	reg := credentialstest.NewRegistry(t, credentialstest.Bearer, loginUsers)
	dir := t.TempDir()
	code, out, errOut := runIO(t, dir, "alice\ns3cret\n", true, "login", reg.Host)
	if code != 0 || out != "Login Succeeded\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if !strings.HasPrefix(errOut, "Username: Password: \n") {
		t.Errorf("prompts on stderr %q", errOut)
	}

	// The stored username is the default: an empty answer keeps it.
	code, out, errOut = runIO(t, dir, "\ns3cret\n", true, "login", reg.Host)
	if code != 0 || out != "Login Succeeded\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if !strings.HasPrefix(errOut, "Username (alice): Password: ") {
		t.Errorf("prompts on stderr %q", errOut)
	}
	if got := readAuths(t, dir)[reg.Host].Auth; got != b64("alice:s3cret") {
		t.Errorf("auth %q", got)
	}
}

func TestLogout(t *testing.T) {
	t.Setenv("DOCKER_AUTH_CONFIG", "")
	reg := credentialstest.NewRegistry(t, credentialstest.Bearer, loginUsers)
	dir := t.TempDir()
	if code, _, errOut := runIO(t, dir, "s3cret", false, "login", reg.Host, "-u", "alice", "--password-stdin"); code != 0 {
		t.Fatalf("login: %s", errOut)
	}

	code, out, errOut := runIO(t, dir, "", false, "logout", "http://"+reg.Host+"/")
	if code != 0 || out != "Removing login credentials for "+reg.Host+"\n" || errOut != "" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, ok := readAuths(t, dir)[reg.Host]; ok {
		t.Error("credentials still in config.json")
	}

	code, out, errOut = runIO(t, dir, "", false, "logout", reg.Host)
	if code != 0 || out != "Not logged in to "+reg.Host+"\n" || errOut != "" {
		t.Errorf("second logout: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestLoginFlags(t *testing.T) {
	parse := func(env map[string]string, args ...string) (*LoginOptions, error) {
		ios, _, _, _ := iostreams.Test()
		f := NewFactory(ios, BuildInfo{})
		f.LookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
		var got *LoginOptions
		cmd := NewCmdLogin(f, func(o *LoginOptions) error { got = o; return nil })
		cmd.SetArgs(args)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		return got, cmd.Execute()
	}
	o, err := parse(map[string]string{"DOCKER_CONFIG": "/cfg"}, "reg.example", "-u", "bob", "--password-stdin", "--insecure")
	if err != nil {
		t.Fatal(err)
	}
	if o.Host != "reg.example" || o.Username != "bob" || !o.PasswordStdin || !o.PlainHTTP || o.ConfigDir != "/cfg" {
		t.Errorf("options %+v", o)
	}
	if o, _ := parse(nil, "--plain-http"); o == nil || !o.PlainHTTP || o.Host != "" {
		t.Errorf("options %+v", o)
	}
	for _, args := range [][]string{
		{"reg.example", "-u", "bob", "-p", "x", "--password-stdin"},
		{"reg.example", "--password-stdin"},
		{"a", "b"},
	} {
		if _, err := parse(nil, args...); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// TestLoginAgainstServe logs in to a real `hubctl serve`. Until the token service
// lands the registry answers /v2/ without authentication; once it does, the same test
// logs in as the admin through the real /token and checks a wrong password fails.
func TestLoginAgainstServe(t *testing.T) {
	t.Setenv("DOCKER_AUTH_CONFIG", "")
	const adminPassword = "admin-test-password"
	ctx, cancel := context.WithCancel(context.Background())
	addr, done := startServeEnv(t, ctx, map[string]string{"HUBCTL_ADMIN_PASSWORD": adminPassword})
	defer func() { cancel(); <-done }()

	resp, err := http.Get("http://" + addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	authOn := resp.StatusCode == http.StatusUnauthorized

	dir := t.TempDir()
	if authOn {
		code, _, errOut := runIO(t, dir, "wrong\n", false, "login", addr, "-u", "admin", "--password-stdin")
		if code != 1 || !strings.Contains(errOut, "invalid username or password") {
			t.Errorf("wrong password: exit %d, stderr %q", code, errOut)
		}
	}
	code, out, errOut := runIO(t, dir, adminPassword+"\n", false, "login", addr, "-u", "admin", "--password-stdin")
	if code != 0 || out != "Login Succeeded\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if notice := strings.Contains(errOut, "does not require authentication"); notice == authOn {
		t.Errorf("auth on: %v, stderr %q", authOn, errOut)
	}
	cf, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ac, err := cf.GetAuthConfig(addr); err != nil || ac.Username != "admin" || (ac.Password == "" && ac.IdentityToken == "") {
		t.Errorf("stored %+v, %v", ac, err)
	}
}

// startServeEnv runs `hubctl serve` in-process with env and returns its address and a
// channel closed when it has exited.
func startServeEnv(t *testing.T, ctx context.Context, env map[string]string) (string, chan struct{}) {
	t.Helper()
	ios, _, _, _ := iostreams.Test()
	pr, pw := io.Pipe()
	ios.ErrOut = pw
	f := NewFactory(ios, BuildInfo{})
	f.LookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	done := make(chan struct{})
	go func() {
		defer close(done)
		Execute(ctx, f, []string{"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "error"})
		pw.Close()
	}()
	// Other lines (a generated admin password) may come first; the address line counts.
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if addr, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "listening on "); ok {
			go func() { _, _ = io.Copy(io.Discard, pr) }()
			return addr, done
		}
	}
	t.Fatalf("serve exited without a listening line: %v", sc.Err())
	return "", nil
}
