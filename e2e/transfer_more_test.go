package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestDockerDaemonRoundTrip: docker build FROM scratch → hubctl push docker-daemon:… →
// the image leaves the engine → hubctl pull … docker-daemon: → docker run prints the
// run's nonce.
func TestDockerDaemonRoundTrip(t *testing.T) {
	requireDocker(t)
	s := startServer(t)
	dir, want := helloContext(t, "hello through hubctl push and pull")
	local := fmt.Sprintf("hubctl-e2e-hello-%d:1", time.Now().UnixNano())
	pulled := strings.Replace(local, ":1", "-pulled:2", 1)
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", local, pulled).Run() })
	env := os.Environ()
	if exec.Command("docker", "buildx", "version").Run() != nil {
		env = append(env, "DOCKER_BUILDKIT=0")
	}
	run(t, dir, env, "docker", "build", "-t", local, ".")

	ref := s.Addr + "/daemon/hello:1"
	out := strings.TrimSpace(hubctl(t, "push", "docker-daemon:"+local, ref))
	if !strings.HasPrefix(out, ref+"@sha256:") {
		t.Fatalf("push printed %q", out)
	}
	run(t, dir, nil, "docker", "rmi", local)

	hubctl(t, "pull", ref, "docker-daemon:"+pulled)
	if got := strings.TrimSpace(run(t, dir, nil, "docker", "run", "--rm", pulled)); got != want {
		t.Fatalf("docker run %s printed %q, want %q", pulled, got, want)
	}
	// One argument works as docker push and docker pull do: the engine's image of that
	// name goes to the registry of that name, and back.
	one := s.Addr + "/daemon/one:1"
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", one).Run() })
	run(t, dir, nil, "docker", "tag", pulled, one)
	if out := strings.TrimSpace(hubctl(t, "push", one)); !strings.HasPrefix(out, one+"@sha256:") {
		t.Fatalf("one-argument push printed %q", out)
	}
	run(t, dir, nil, "docker", "rmi", one)
	hubctl(t, "pull", one)
	if got := strings.TrimSpace(run(t, dir, nil, "docker", "run", "--rm", one)); got != want {
		t.Fatalf("docker run %s after a one-argument pull printed %q, want %q", one, got, want)
	}

	// The same engine image pushed again moves nothing (its layers compress the same).
	out2 := hubctl(t, "push", "-o", "json", "docker-daemon:"+pulled, ref)
	lines := jsonLines(t, out2)
	if res := lines[len(lines)-1]; res["upToDate"] != true {
		t.Fatalf("pushing the pulled image back was not up to date: %v", res)
	}
}

// TestMirror runs a mirror spec of three entries, one of whose source does not exist:
// the others complete, the exit code is non-zero and the summary names the broken one;
// a second run moves zero bytes and says so.
func TestMirror(t *testing.T) {
	src := startServer(t)
	dst := startDistribution(t)
	lay := newLayout(t)
	for i, tag := range []string{"1.0.0", "1.1.0", "2.0.0-rc1", "latest"} {
		img := buildImage(t, "amd64", randomLayer(t, 8<<10+i))
		lay.addImage(img, tag)
		hubctl(t, "push", "oci:"+lay.Dir+":"+tag, src.Addr+"/lib/app:"+tag)
	}
	other := buildImage(t, "amd64", randomLayer(t, 8<<10))
	lay.addImage(other, "tool")
	hubctl(t, "push", "oci:"+lay.Dir+":tool", src.Addr+"/lib/tool:v3")

	spec := fmt.Sprintf(`defaults:
  tags:
    semver: ">=1.0.0"
mirrors:
  - source: %[1]s/lib/app
    target: %[2]s/mirror/app
  - source: %[1]s/lib/missing
    target: %[2]s/mirror/missing
  - source: %[1]s/lib/tool:v3
    target: %[2]s/mirror/tool
`, src.Addr, dst.Addr)
	specPath := filepath.Join(t.TempDir(), "mirror.yaml")
	if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}

	// The dry run shows the plan, and fails because one source cannot be listed.
	plan, planErr, err := hubctlErr(t, "mirror", "-f", specPath, "--dry-run")
	if err == nil || !strings.Contains(plan, "lib/missing") || !strings.Contains(planErr, "could not be read") {
		t.Fatalf("dry run with a missing source: err %v\nstdout:\n%s\nstderr:\n%s", err, plan, planErr)
	}
	for _, want := range []string{"/lib/app:1.0.0", "/lib/app:1.1.0", "/lib/tool:v3"} {
		if !strings.Contains(plan, want) {
			t.Fatalf("dry run plan lacks %s:\n%s", want, plan)
		}
	}
	if strings.Contains(plan, "2.0.0-rc1") || strings.Contains(plan, ":latest") {
		t.Fatalf("dry run plan includes tags the semver filter excludes:\n%s", plan)
	}
	planJSON, _, _ := hubctlErr(t, "mirror", "-f", specPath, "--dry-run", "-o", "json")
	statuses := map[string]string{}
	for _, l := range jsonLines(t, planJSON) {
		statuses[l["source"].(string)] = l["status"].(string)
	}
	if statuses[src.Addr+"/lib/app:1.0.0"] != "would copy" || statuses[src.Addr+"/lib/missing"] != "failed" {
		t.Fatalf("dry run -o json statuses = %v", statuses)
	}

	out, errOut, err := hubctlErr(t, "mirror", "-f", specPath, "--progress", "plain")
	if err == nil {
		t.Fatalf("mirror with a missing source exited 0\n%s\n%s", out, errOut)
	}
	if !strings.Contains(errOut, "lib/missing") {
		t.Fatalf("mirror summary does not name the broken source:\n%s", errOut)
	}
	for _, ref := range []string{dst.Addr + "/mirror/app:1.0.0", dst.Addr + "/mirror/app:1.1.0", dst.Addr + "/mirror/tool:v3"} {
		hubctl(t, "digest", ref)
	}

	out, _, _ = hubctlErr(t, "mirror", "-f", specPath, "-o", "json")
	lines := jsonLines(t, out)
	var summary map[string]any
	for _, l := range lines {
		if l["event"] == "summary" {
			summary = l
		}
		if l["event"] == "blob-done" {
			t.Fatalf("second mirror run moved a blob: %v", l)
		}
	}
	if summary == nil || summary["bytes"] != nil && summary["bytes"].(float64) != 0 {
		t.Fatalf("second mirror run summary = %v, want 0 bytes", summary)
	}
}

// TestProgressInTerminal drives `hubctl copy` in a real terminal (tmux): the live view
// shows a bar per blob while the copy runs and a summary at the end.
func TestProgressInTerminal(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		skipOrFatal(t, "tmux not found on PATH")
	}
	s := startServer(t)
	d := startServer(t) // another registry: bytes must flow, no mount
	img := buildImage(t, "amd64", randomLayer(t, 3<<20), randomLayer(t, 3<<20))
	lay := newLayout(t)
	lay.addImage(img, "1")
	hubctl(t, "push", "oci:"+lay.Dir+":1", s.Addr+"/tty/app:1")

	sock := fmt.Sprintf("hubctl-e2e-%d", time.Now().UnixNano())
	session := "copy"
	stty := filepath.Join(t.TempDir(), "stty.txt")
	script := fmt.Sprintf("DOCKER_CONFIG=%s %s copy --rate 2MiB %s/tty/app:1 %s/tty/copy:1; echo EXIT=$?; stty -a > %s; sleep 30",
		dockerConfigFor(t), hubctlBin, s.Addr, d.Addr, stty)
	run(t, "", nil, tmux, "-L", sock, "new-session", "-d", "-s", session, "-x", "120", "-y", "30", "sh", "-c", script)
	t.Cleanup(func() { _ = exec.Command(tmux, "-L", sock, "kill-server").Run() })
	capture := func() string {
		out, _, _ := runErr(t, "", nil, tmux, "-L", sock, "capture-pane", "-p", "-t", session)
		return out
	}
	sawBar := false
	var screen string
	for range 300 {
		screen = capture()
		if strings.Contains(screen, "sha256:") && (strings.Contains(screen, "█") || strings.Contains(screen, "░")) {
			sawBar = true
		}
		if strings.Contains(screen, "EXIT=") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !sawBar {
		t.Fatalf("never saw a progress bar; last screen:\n%s", screen)
	}
	if !strings.Contains(screen, "EXIT=0") || !strings.Contains(screen, d.Addr+"/tty/copy:1@"+img.Manifest.Digest) {
		t.Fatalf("copy did not finish with the reference on screen:\n%s", screen)
	}
	if !strings.Contains(screen, "copied") {
		t.Fatalf("no summary on screen:\n%s", screen)
	}
	waitFor(t, func() bool { b, _ := os.ReadFile(stty); return len(b) > 0 }, "stty output")
	b, _ := os.ReadFile(stty)
	if !strings.Contains(string(b), " icanon") || strings.Contains(string(b), "-echo ") {
		t.Fatalf("terminal not restored after the view: %s", b)
	}
}

// TestClientTokenAuth pushes and pulls through hubctl serve's token service with a
// `hubctl login`, and an anonymous pull of a private repository fails with one line
// that says what to do.
func TestClientTokenAuth(t *testing.T) {
	s := startAuthServer(t)
	img := buildImage(t, "amd64", randomLayer(t, 16<<10))
	lay := newLayout(t)
	lay.addImage(img, "1")
	cfg := dockerConfigFor(t)
	env := append(cleanEnv("HUBCTL_", "DOCKER_CONFIG"), "DOCKER_CONFIG="+cfg)
	ref := s.Addr + "/admin/app:1"

	_, errOut, err := runErr(t, "", env, hubctlBin, "push", "oci:"+lay.Dir+":1", ref)
	if err == nil || !strings.Contains(errOut, "hubctl login "+s.Addr) {
		t.Fatalf("anonymous push: err %v, stderr %q; want a hint to log in", err, errOut)
	}
	runStdin(t, "", env, adminPassword+"\n", hubctlBin, "login", s.Addr, "-u", "admin", "--password-stdin")
	run(t, "", env, hubctlBin, "push", "oci:"+lay.Dir+":1", ref)
	out := run(t, "", env, hubctlBin, "pull", ref, "oci:"+filepath.Join(t.TempDir(), "out")+":1")
	if !strings.HasSuffix(strings.TrimSpace(out), img.Manifest.Digest) {
		t.Fatalf("pull printed %q", out)
	}
	var tags []string
	if err := json.Unmarshal([]byte(run(t, "", env, hubctlBin, "tags", "-o", "json", s.Addr+"/admin/app")), &tags); err != nil || len(tags) != 1 {
		t.Fatalf("tags = %v, %v", tags, err)
	}
	anon := append(cleanEnv("HUBCTL_", "DOCKER_CONFIG"), "DOCKER_CONFIG="+t.TempDir())
	_, errOut, err = runErr(t, "", anon, hubctlBin, "pull", ref, "oci:"+t.TempDir()+":1")
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if last := lines[len(lines)-1]; err == nil || !strings.HasPrefix(last, "hubctl: pull ") || !strings.Contains(last, "run 'hubctl login "+s.Addr+"'") {
		t.Fatalf("anonymous pull of a private image: err %v, stderr %q; want a last line that says to log in", err, errOut)
	}
}

// TestRetriesOnThrottling: a registry that answers 429 with Retry-After is waited for
// and retried, and the plain progress says so; the copy completes.
func TestRetriesOnThrottling(t *testing.T) {
	s := startServer(t)
	p := startCountingProxy(t, s.Addr)
	img := buildImage(t, "amd64", randomLayer(t, 64<<10))
	lay := newLayout(t)
	lay.addImage(img, "1")
	p.throttle.Store(3)
	start := time.Now()
	_, errOut, err := hubctlErr(t, "push", "--progress", "plain", "oci:"+lay.Dir+":1", p.Addr+"/retry/app:1")
	if err != nil {
		t.Fatalf("push through a throttling registry: %v\n%s", err, errOut)
	}
	if p.throttled.Load() != 3 {
		t.Fatalf("proxy throttled %d requests, want 3", p.throttled.Load())
	}
	if !strings.Contains(errOut, "retry") {
		t.Fatalf("plain progress does not mention the retries:\n%s", errOut)
	}
	// Retry-After: 1 on three sequential requests: the client waited, it did not spin.
	if time.Since(start) < time.Second {
		t.Fatalf("push finished in %v: Retry-After was not honoured", time.Since(start))
	}
	if got := strings.TrimSpace(hubctl(t, "digest", s.Addr+"/retry/app:1")); got != img.Manifest.Digest {
		t.Fatalf("digest after throttled push = %q", got)
	}
}

// TestCancelInTerminal presses Ctrl-C in the middle of a rate-capped `hubctl copy` in a
// real terminal: the copy stops with a non-zero exit and says it was cancelled, the
// terminal is left sane, and the destination has no tag.
func TestCancelInTerminal(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		skipOrFatal(t, "tmux not found on PATH")
	}
	s := startServer(t)
	d := startServer(t)
	img := buildImage(t, "amd64", randomLayer(t, 4<<20), randomLayer(t, 4<<20))
	lay := newLayout(t)
	lay.addImage(img, "1")
	hubctl(t, "push", "oci:"+lay.Dir+":1", s.Addr+"/tty/app:1")

	sock := fmt.Sprintf("hubctl-e2e-%d", time.Now().UnixNano())
	stty := filepath.Join(t.TempDir(), "stty.txt")
	script := fmt.Sprintf("DOCKER_CONFIG=%s %s copy --rate 1MiB %s/tty/app:1 %s/tty/copy:1; echo EXIT=$?; stty -a > %s; sleep 30",
		dockerConfigFor(t), hubctlBin, s.Addr, d.Addr, stty)
	run(t, "", nil, tmux, "-L", sock, "new-session", "-d", "-s", "c", "-x", "120", "-y", "30", "sh", "-c", script)
	t.Cleanup(func() { _ = exec.Command(tmux, "-L", sock, "kill-server").Run() })
	capture := func() string {
		out, _, _ := runErr(t, "", nil, tmux, "-L", sock, "capture-pane", "-p", "-t", "c")
		return out
	}
	waitFor(t, func() bool { return strings.Contains(capture(), "█") || strings.Contains(capture(), "░") }, "a progress bar")
	run(t, "", nil, tmux, "-L", sock, "send-keys", "-t", "c", "C-c")
	waitFor(t, func() bool { return strings.Contains(capture(), "EXIT=") }, "the copy to end after Ctrl-C")
	screen := capture()
	if strings.Contains(screen, "EXIT=0") || !strings.Contains(screen, "cancelled") {
		t.Fatalf("after Ctrl-C the copy should fail saying it was cancelled:\n%s", screen)
	}
	waitFor(t, func() bool { b, _ := os.ReadFile(stty); return len(b) > 0 }, "stty output")
	b, _ := os.ReadFile(stty)
	if !strings.Contains(string(b), " icanon") || strings.Contains(string(b), "-echo ") || strings.Contains(string(b), "-isig") {
		t.Fatalf("terminal not restored after Ctrl-C: %s", b)
	}
	if _, _, err := hubctlErr(t, "digest", d.Addr+"/tty/copy:1"); err == nil {
		t.Fatalf("the cancelled copy left a tag at the destination")
	}
}

// TestClientBasicAuth pushes to and pulls from the distribution registry behind HTTP
// Basic auth (htpasswd), with the login stored by `hubctl login`.
func TestClientBasicAuth(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(htpasswd, []byte("bob:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDistributionWith(t, fmt.Sprintf("auth:\n  htpasswd:\n    realm: e2e\n    path: %s\n", htpasswd))
	img := buildImage(t, "amd64", randomLayer(t, 32<<10))
	lay := newLayout(t)
	lay.addImage(img, "1")
	env := append(cleanEnv("HUBCTL_", "DOCKER_CONFIG"), "DOCKER_CONFIG="+t.TempDir())
	ref := d.Addr + "/bob/app:1"

	_, errOut, err := runErr(t, "", env, hubctlBin, "push", "oci:"+lay.Dir+":1", ref)
	if err == nil || !strings.Contains(errOut, "hubctl login "+d.Addr) {
		t.Fatalf("anonymous push to a Basic-auth registry: err %v, stderr %q", err, errOut)
	}
	runStdin(t, "", env, "s3cret-pw\n", hubctlBin, "login", d.Addr, "-u", "bob", "--password-stdin")
	out := run(t, "", env, hubctlBin, "push", "oci:"+lay.Dir+":1", ref)
	if strings.TrimSpace(out) != ref+"@"+img.Manifest.Digest {
		t.Fatalf("push printed %q", out)
	}
	out = run(t, "", env, hubctlBin, "pull", ref, "oci-archive:"+filepath.Join(t.TempDir(), "a.tar"))
	if !strings.HasSuffix(strings.TrimSpace(out), img.Manifest.Digest) {
		t.Fatalf("pull printed %q", out)
	}
}
