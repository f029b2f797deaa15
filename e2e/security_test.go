package e2e

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"
)

// Issue 12, end to end against a real `hubctl serve` with token auth.

// TestSecurityNamespaceTakeover: deleting an organisation that holds repositories is
// refused with the count and a hint, purging takes them along, and whoever registers
// the name next finds nothing of them; a name that repositories are filed under without
// an account cannot be registered either.
func TestSecurityNamespaceTakeover(t *testing.T) {
	s := startAuthServer(t)
	createUser(t, s, "alice", "alice-password-1")
	createUser(t, s, "mallory", "mallory-password-1")
	if resp, body := apiCall(t, s, http.MethodPost, "/api/v1/orgs", "alice", "alice-password-1", map[string]any{"name": "acme"}); resp.StatusCode != 201 {
		t.Fatalf("create acme: %s %s", resp.Status, body)
	}
	img := newImage(t, "amd64")
	pushImageAs(t, s, mustToken(t, s, "alice", "alice-password-1", "repository:acme/app:pull,push"), "acme/app", "v1", img)

	env := clientEnv(t, t.TempDir())
	runStdin(t, "", env, "alice-password-1\n", hubctlBin, "login", s.Addr, "-u", "alice", "--password-stdin")
	_, stderr, err := runErr(t, "", env, hubctlBin, "org", "rm", "acme", "--registry", s.Addr)
	if err == nil || !strings.Contains(stderr, "1 repositories") || !strings.Contains(stderr, "--purge") {
		t.Fatalf("hubctl org rm acme with a repository: %v %q, want refused with the count and --purge", err, stderr)
	}
	if tags := tagsList(t, s, "alice", "alice-password-1", "acme/app"); tags != 200 {
		t.Fatalf("acme/app after a refused removal: tags list %d", tags)
	}
	_, stderr, err = runErr(t, "", env, hubctlBin, "org", "rm", "acme", "--purge", "--registry", s.Addr)
	if err != nil || !strings.Contains(stderr, "1 repositories") {
		t.Fatalf("hubctl org rm acme --purge: %v %q", err, stderr)
	}
	// mallory takes the name: nothing of acme/app is hers.
	if resp, body := apiCall(t, s, http.MethodPost, "/api/v1/orgs", "mallory", "mallory-password-1", map[string]any{"name": "acme"}); resp.StatusCode != 201 {
		t.Fatalf("mallory creates acme: %s %s", resp.Status, body)
	}
	if got := tagsList(t, s, "mallory", "mallory-password-1", "acme/app"); got != http.StatusNotFound {
		t.Fatalf("mallory lists acme/app's tags: %d, want 404 (the repository was purged)", got)
	}
	// An admin pushes where no account is; nobody may then register the name.
	pushImageAs(t, s, mustToken(t, s, "admin", adminPassword, "repository:library/base:pull,push"), "library/base", "1", img)
	resp, body := apiCall(t, s, http.MethodPost, "/api/v1/orgs", "mallory", "mallory-password-1", map[string]any{"name": "library"})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), "repositories") {
		t.Fatalf("mallory creates library over library/base: %s %s, want 409", resp.Status, body)
	}
}

// tagsList lists repo's tags with a token user gets by password and returns the status.
func tagsList(t testing.TB, s *server, user, pass, repo string) int {
	t.Helper()
	tok := mustToken(t, s, user, pass, "repository:"+repo+":pull")
	resp, _ := do(t, http.MethodGet, s.URL("/v2/"+repo+"/tags/list"), nil, bearer(tok))
	return resp.StatusCode
}

// TestSecurityRefreshSessions: the refresh token a login keeps (hubctl login, and
// docker login's identity token) ends when an administrator resets the password, the
// session shows in `hubctl session ls`, and a new login works.
func TestSecurityRefreshSessions(t *testing.T) {
	s := startAuthServer(t)
	createUser(t, s, "alice", "alice-password-1")
	env := clientEnv(t, t.TempDir())
	runStdin(t, "", env, "alice-password-1\n", hubctlBin, "login", s.Addr, "-u", "alice", "--password-stdin")
	list := run(t, "", env, hubctlBin, "session", "ls", "--registry", s.Addr)
	if !strings.Contains(list, "refresh") || !strings.Contains(list, "yes") {
		t.Fatalf("hubctl session ls after login:\n%s", list)
	}

	var dockerEnv []string
	dockerOK := exec.Command("docker", "version").Run() == nil
	if dockerOK {
		dockerEnv = clientEnv(t, t.TempDir())
		runStdin(t, "", dockerEnv, "alice-password-1\n", "docker", "login", s.Addr, "-u", "alice", "--password-stdin")
	}

	// The admin resets alice's password.
	adminEnv := clientEnv(t, t.TempDir())
	runStdin(t, "", adminEnv, adminPassword+"\n", hubctlBin, "login", s.Addr, "-u", "admin", "--password-stdin")
	runStdin(t, "", adminEnv, "alice-password-2\n", hubctlBin, "user", "passwd", "alice", "--password-stdin", "--registry", s.Addr)

	// Every refresh token of alice's is dead at once.
	_, stderr, err := runErr(t, "", env, hubctlBin, "session", "ls", "--registry", s.Addr)
	if err == nil || !strings.Contains(stderr, "log in again") {
		t.Fatalf("hubctl session ls on the old login after a reset: %v %q, want refused with 'log in again'", err, stderr)
	}
	if dockerOK {
		so, se, err := runErr(t, "", dockerEnv, "docker", "pull", s.Addr+"/alice/none:1")
		wantFailure(t, "docker pull with the identity token of before the reset", so, se, err)
	}
	if n := count(t, s.DataDir, "SELECT COUNT(*) FROM audit_log WHERE action = 'login.failed' AND detail LIKE '%refresh token%'"); n == 0 {
		t.Error("no refused refresh grant was audited")
	}
	runStdin(t, "", env, "alice-password-2\n", hubctlBin, "login", s.Addr, "-u", "alice", "--password-stdin")
	list = run(t, "", env, hubctlBin, "session", "ls", "--registry", s.Addr)
	if lines := strings.Count(strings.TrimSpace(list), "\n"); lines < 2 || !strings.Contains(list, " no ") {
		t.Fatalf("hubctl session ls after a new login lists the ended sessions and the new one:\n%s", list)
	}
	// Sign out everywhere, then the login's own refresh token is gone too.
	run(t, "", env, hubctlBin, "session", "revoke", "--all", "--registry", s.Addr)
	if _, _, err := runErr(t, "", env, hubctlBin, "session", "ls", "--registry", s.Addr); err == nil {
		t.Fatal("hubctl session ls after signing out everywhere succeeded")
	}
}
