package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/pgtest"
)

// serverLog is what the server wrote on stderr so far.
func serverLog(t testing.TB, s *server) string {
	t.Helper()
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// hubctlIn runs the client with stdin and extra environment, and returns its exit
// error, stdout and stderr.
func hubctlIn(t testing.TB, stdin string, env []string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), hubctlBin, args...)
	cmd.Env = append(append(cleanEnv("HUBCTL_", "DOCKER_CONFIG"), "DOCKER_CONFIG="+dockerConfigFor(t)), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// TestAdminPasswordIgnoredAndReset follows issue 13's first trap on both databases:
// a second start with another HUBCTL_ADMIN_PASSWORD says the variable is ignored and
// how to change the password; `hubctl admin reset-password`, given the configuration
// serve reads, changes it on the host while the hub is stopped.
func TestAdminPasswordIgnoredAndReset(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			var env []string
			if db == "postgres" {
				env = []string{"HUBCTL_DB_PATH=" + pgtest.Start(t)}
			}
			data := t.TempDir()
			s := startServerEnv(t, data, env)
			if r, _ := getToken(t, s, "admin", adminPassword); r.StatusCode != http.StatusOK {
				t.Fatalf("admin login with the first password: %s", r.Status)
			}
			s.Stop()

			s = startServerEnv(t, data, append(env, "HUBCTL_ADMIN_PASSWORD=a-second-password"))
			log := serverLog(t, s)
			if !strings.Contains(log, "HUBCTL_ADMIN_PASSWORD is ignored: the admin account already exists") ||
				!strings.Contains(log, "hubctl admin reset-password") {
				t.Errorf("serve did not say the variable is ignored and what to do:\n%s", log)
			}
			if r, _ := getToken(t, s, "admin", "a-second-password"); r.StatusCode == http.StatusOK {
				t.Fatal("the ignored password works")
			}
			s.Stop()

			// On the host, with the same configuration: --data, and for PostgreSQL the
			// DSN from HUBCTL_DB_PATH as serve had it.
			_, errOut, err := hubctlIn(t, "a-reset-password\n", env, "admin", "reset-password", "--data", data)
			if err != nil || !strings.Contains(errOut, "Password of admin reset") {
				t.Fatalf("admin reset-password: %v\n%s", err, errOut)
			}
			s = startServerEnv(t, data, env)
			if r, _ := getToken(t, s, "admin", "a-reset-password"); r.StatusCode != http.StatusOK {
				t.Errorf("admin login with the reset password: %s", r.Status)
			}
			if r, _ := getToken(t, s, "admin", adminPassword); r.StatusCode == http.StatusOK {
				t.Error("the old password still works after the reset")
			}
		})
	}
}

// TestServeBindsBeforeCreatingAdmin: a first start on a taken port fails before it
// creates the admin account and prints a one-time password; the next start, on a
// free port, still creates the account and shows its password.
func TestServeBindsBeforeCreatingAdmin(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	data := t.TempDir()
	cmd := exec.CommandContext(t.Context(), hubctlBin, "serve", "--addr", ln.Addr().String(), "--data", data)
	cmd.Env = cleanEnv("HUBCTL_")
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("serve on a taken port exited 0:\n%s", out)
	}
	if strings.Contains(string(out), "password") || !strings.Contains(string(out), "listen on "+ln.Addr().String()) {
		t.Errorf("serve on a taken port, want only the listen error:\n%s", out)
	}
	if lines := strings.Count(strings.TrimSpace(string(out)), "\n"); lines != 0 {
		t.Errorf("want one error line, got %d:\n%s", lines+1, out)
	}

	// Without HUBCTL_ADMIN_PASSWORD the next start generates one and shows it.
	s := startServerEnv(t, data, []string{"HUBCTL_ADMIN_PASSWORD="})
	log := serverLog(t, s)
	if !strings.Contains(log, "created the admin account with password ") {
		t.Errorf("the start after the failed one did not create the admin account:\n%s", log)
	}
}

// TestLsPrefixAndReferenceErrors: `ls HOST/PREFIX` matches a prefix that ends inside
// a path component, a registry alone is no Docker Hub image, and reference typos say
// why in one line (issue 13 item 10).
func TestLsPrefixAndReferenceErrors(t *testing.T) {
	s := startServer(t)
	img := buildImage(t, "amd64", randomLayer(t, 4<<10))
	src := newLayout(t)
	src.addImage(img, "1")
	for _, repo := range []string{"team/app", "teamcity/agent", "other/x"} {
		hubctl(t, "copy", "oci:"+src.Dir+":1", s.Addr+"/"+repo+":1")
	}
	for prefix, want := range map[string]string{
		"tea":   s.Addr + "/team/app\n" + s.Addr + "/teamcity/agent\n",
		"team/": s.Addr + "/team/app\n",
		"other": s.Addr + "/other/x\n",
	} {
		if got := hubctl(t, "ls", s.Addr+"/"+prefix); got != want {
			t.Errorf("ls %s/%s = %q, want %q", s.Addr, prefix, got, want)
		}
	}
	out, errOut, err := hubctlErr(t, "ls", s.Addr+"/nothing")
	if err != nil || out != "" || !strings.Contains(errOut, `no repository of `+s.Addr+` starts with "nothing" (3 listed in all)`) {
		t.Errorf("ls of a prefix nothing has: %v, stdout %q, stderr %q", err, out, errOut)
	}

	for arg, want := range map[string]string{
		s.Addr:                          s.Addr + " names a registry, not an image",
		s.Addr + "/Team/App:1":          `did you mean "` + s.Addr + `/team/app:1"?`,
		s.Addr + "/team/app@sha256:abc": "has 3 hex digits, sha256 has 64",
		s.Addr + "/team/app:":           "empty tag after ':'",
	} {
		_, errOut, err := hubctlErr(t, "inspect", arg)
		if err == nil || !strings.Contains(errOut, want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("inspect %s: %v, stderr %q; want one line with %q", arg, err, errOut, want)
		}
		if strings.Contains(errOut, "docker.io") {
			t.Errorf("inspect %s went to Docker Hub: %q", arg, errOut)
		}
	}
}

// TestRmTagAndRepairIndex (issue 13 item 2, client side): `rm REPO:TAG` deletes the
// tag alone where the registry can, and says so where it cannot, deleting nothing;
// `--manifest` deletes the manifest; and a copy repairs an index whose child was
// deleted under it instead of calling it up to date.
func TestRmTagAndRepairIndex(t *testing.T) {
	for _, reg := range clientRegistries(t) {
		t.Run(reg.name, func(t *testing.T) {
			amd := buildImage(t, "amd64", randomLayer(t, 16<<10))
			arm := buildImage(t, "arm64", randomLayer(t, 16<<10))
			src := newLayout(t)
			idx := src.addIndex("multi", amd, arm)
			r := reg.addr + "/team/multi"
			hubctl(t, "copy", "oci:"+src.Dir+":multi", r+":1")
			hubctl(t, "tag", r+":1", "2")
			// digest --platform names one platform's manifest (issue 13 item 11).
			if d := strings.TrimSpace(hubctl(t, "digest", "--platform", "linux/arm64", r+":1")); d != arm.Manifest.Digest {
				t.Errorf("digest --platform linux/arm64 = %q, want %s", d, arm.Manifest.Digest)
			}
			if d := strings.TrimSpace(hubctl(t, "digest", "--platform", "linux/amd64", "oci:"+src.Dir+":multi")); d != amd.Manifest.Digest {
				t.Errorf("digest --platform linux/amd64 of the layout = %q, want %s", d, amd.Manifest.Digest)
			}
			if _, errOut, err := hubctlErr(t, "digest", "--platform", "linux/arm64", r+"@"+amd.Manifest.Digest); err == nil || !strings.Contains(errOut, "is a single image") {
				t.Errorf("digest --platform of an image: %v %q", err, errOut)
			}

			// rm REPO:TAG: the tag alone.
			out, errOut, err := hubctlErr(t, "rm", r+":2")
			switch {
			case err == nil:
				if strings.TrimSpace(out) != idx.Digest || !strings.Contains(errOut, "deleted tag "+r+":2") {
					t.Errorf("rm %s:2: stdout %q, stderr %q", r, out, errOut)
				}
				if _, _, err := hubctlErr(t, "digest", r+":2"); err == nil {
					t.Errorf("tag 2 still there after rm")
				}
			case strings.Contains(errOut, "cannot delete the tag 2 alone") && strings.Contains(errOut, "--manifest"):
				// A registry without tag deletion: nothing went.
				if strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
					t.Errorf("refusal is not one line: %q", errOut)
				}
			default:
				t.Fatalf("rm %s:2: %v\n%s", r, err, errOut)
			}
			if d := strings.TrimSpace(hubctl(t, "digest", r+":1")); d != idx.Digest {
				t.Fatalf("rm of a tag took the manifest: digest of :1 is %q", d)
			}

			// Delete a child of the index by digest, where the registry allows it (the
			// CNCF registry does; hubctl serve may refuse while an index holds it).
			child := r + "@" + arm.Manifest.Digest
			if _, errOut, err := hubctlErr(t, "rm", child); err != nil {
				t.Logf("%s refused to delete a child of an index: %s", reg.name, strings.TrimSpace(errOut))
			} else {
				if _, _, err := hubctlErr(t, "digest", child); err == nil {
					t.Fatalf("child still there after rm %s", child)
				}
				// The copy again: the tag names the same index, but the copy sees the
				// missing child and puts it back.
				out := hubctl(t, "copy", "oci:"+src.Dir+":multi", r+":1")
				if !strings.HasSuffix(strings.TrimSpace(out), "@"+idx.Digest) {
					t.Errorf("copy printed %q", out)
				}
				if d := strings.TrimSpace(hubctl(t, "digest", child)); d != arm.Manifest.Digest {
					t.Errorf("the copy did not repair the index: digest of %s is %q", child, d)
				}
			}

			// --manifest deletes the manifest the tag names.
			if out := strings.TrimSpace(hubctl(t, "rm", "--manifest", r+":1")); out != idx.Digest {
				t.Errorf("rm --manifest printed %q, want %s", out, idx.Digest)
			}
			if _, _, err := hubctlErr(t, "digest", r+"@"+idx.Digest); err == nil {
				t.Errorf("the index is still there after rm --manifest")
			}
		})
	}
}

// TestJSONLinesHaveTime: -o json is one object per line, each with its time, the
// summary and the result included (issue 13 item 11).
func TestJSONLinesHaveTime(t *testing.T) {
	s := startServer(t)
	img := buildImage(t, "amd64", randomLayer(t, 8<<10))
	src := newLayout(t)
	src.addImage(img, "1")
	out := hubctl(t, "copy", "-o", "json", "oci:"+src.Dir+":1", s.Addr+"/team/json:1")
	lines := jsonLines(t, out)
	if len(lines) < 3 {
		t.Fatalf("copy -o json wrote %d lines:\n%s", len(lines), out)
	}
	for i, l := range lines {
		if ts, ok := l["time"].(string); !ok || ts == "" {
			t.Errorf("line %d has no time: %v", i+1, l)
		}
	}
	if ev := lines[len(lines)-1]["event"]; ev != "result" {
		t.Errorf("last line is %v, want the result", ev)
	}
}

// TestErrorsAreOneActionableLine (issue 13 item 7): a 403, a quota refusal and a
// missing engine image each end in one line with the cause and a hint (who is logged
// in, sizes in KiB/MiB), the progress lines spell a cause once, and -v traces the
// HTTP exchange without a secret.
func TestErrorsAreOneActionableLine(t *testing.T) {
	s := startAuthServer(t)
	createUser(t, s, "alice", "alice-password")
	if resp, body := apiCall(t, s, http.MethodPut, "/api/v1/namespaces/alice/quota", "admin", adminPassword, map[string]any{"bytes": 10 << 10}); resp.StatusCode != http.StatusOK {
		t.Fatalf("set quota: %s %s", resp.Status, body)
	}
	cfg := t.TempDir()
	login := exec.CommandContext(t.Context(), hubctlBin, "login", s.Addr, "-u", "alice", "--password-stdin")
	login.Env = append(cleanEnv("HUBCTL_", "DOCKER_CONFIG"), "DOCKER_CONFIG="+cfg)
	login.Stdin = strings.NewReader("alice-password")
	if out, err := login.CombinedOutput(); err != nil {
		t.Fatalf("login: %v\n%s", err, out)
	}
	img := buildImage(t, "amd64", randomLayer(t, 64<<10), randomLayer(t, 64<<10))
	src := newLayout(t)
	src.addImage(img, "1")
	as := func(args ...string) (string, string, error) {
		cmd := exec.CommandContext(t.Context(), hubctlBin, args...)
		cmd.Env = append(cleanEnv("HUBCTL_", "DOCKER_CONFIG"), "DOCKER_CONFIG="+cfg)
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		return out.String(), errOut.String(), err
	}
	lastLine := func(errOut string) string {
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		return lines[len(lines)-1]
	}
	// The refusals of one cause: spelt once, then referred to.
	checkProgress := func(what, errOut, cause string) {
		t.Helper()
		if n := strings.Count(errOut, cause); n != 2 { // one progress line and the final line
			t.Errorf("%s: the cause %q appears %d times, want once in the progress and once at the end:\n%s", what, cause, n, errOut)
		}
		if strings.Contains(errOut, "/v2/") {
			t.Errorf("%s: a URL reached the output without --debug:\n%s", what, errOut)
		}
	}

	_, errOut, err := as("push", "--progress", "plain", "oci:"+src.Dir+":1", s.Addr+"/admin/x:1")
	want := "hubctl: push oci:" + src.Dir + ":1 to " + s.Addr + "/admin/x:1: denied: logged in to " + s.Addr + " as alice, who may not push to " + s.Addr + "/admin/x; check the name, or ask for write access"
	if err == nil || lastLine(errOut) != want {
		t.Errorf("push to another's namespace: %v, last line\n %q\nwant\n %q", err, lastLine(errOut), want)
	}
	checkProgress("403", errOut, "denied: logged in")
	if strings.Contains(lastLine(errOut), "sha256:") {
		t.Errorf("the error line repeats a digest: %q", lastLine(errOut))
	}

	_, errOut, err = as("push", "--progress", "plain", "oci:"+src.Dir+":1", s.Addr+"/alice/x:1")
	if err == nil || !regexp.MustCompile(`^hubctl: push .* to .*/alice/x:1: storage quota exceeded: namespace alice uses [0-9.]+ (B|KiB) of its 10\.0 KiB quota, and a blob of [0-9.]+ KiB does not fit; .*hubctl quota set alice SIZE\)$`).MatchString(lastLine(errOut)) {
		t.Errorf("push over quota: %v, last line %q", err, lastLine(errOut))
	}
	checkProgress("quota", errOut, "storage quota exceeded")

	// -v: the HTTP exchange, secrets redacted.
	_, errOut, err = as("-v", "tags", s.Addr+"/alice/x")
	_ = err
	for _, want := range []string{"--> GET http://" + s.Addr + "/v2/", "<-- HTTP/1.1 401 Unauthorized", "--> POST http://" + s.Addr + "/token"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("-v trace lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "alice-password") || regexp.MustCompile(`Authorization: (Bearer|Basic) [^<]`).MatchString(errOut) {
		t.Errorf("-v trace shows a secret:\n%s", errOut)
	}

	if _, err := exec.LookPath("docker"); err == nil {
		requireDocker(t)
		_, errOut, err = as("push", "--progress", "plain", "hubctl-e2e-no-such-image:1", s.Addr+"/alice/x:1")
		want := "hubctl: push docker-daemon:hubctl-e2e-no-such-image:1 to " + s.Addr + "/alice/x:1: the Docker engine has no image hubctl-e2e-no-such-image:1 ('docker images' lists what it has)"
		if err == nil || lastLine(errOut) != want {
			t.Errorf("push of a missing engine image: %v, last line\n %q\nwant\n %q", err, lastLine(errOut), want)
		}
		if n := strings.Count(errOut, "hubctl-e2e-no-such-image"); n > 4 { // started, failed, and the final line's context and cause
			t.Errorf("the missing image is named %d times:\n%s", n, errOut)
		}
	}
}

// TestMirrorMovesEachBlobOnce (issue 13 item 9): a mirror of several tags of one
// digest, copied at once, sends each blob to the destination once; the other copies
// wait for it and count it as there.
func TestMirrorMovesEachBlobOnce(t *testing.T) {
	src := startServer(t)
	dst := startServer(t)
	p := startCountingProxy(t, dst.Addr)
	img := buildImage(t, "amd64", randomLayer(t, 2<<20), randomLayer(t, 1<<20))
	lay := newLayout(t)
	lay.addImage(img, "1")
	tags := []string{"1", "1.0", "1.0.0", "latest"}
	for _, tag := range tags {
		hubctl(t, "copy", "oci:"+lay.Dir+":1", src.Addr+"/lib/app:"+tag)
	}
	spec := fmt.Sprintf("mirrors:\n  - source: %s/lib/app\n    target: %s/mirror/app\n", src.Addr, p.Addr)
	specPath := filepath.Join(t.TempDir(), "mirror.yaml")
	if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	hubctl(t, "mirror", "-f", specPath, "--images", "4", "--progress", "plain")
	var want int64
	for _, b := range append([]blob{img.Config}, img.Layers...) {
		want += int64(len(b.Data))
	}
	if got := p.uploaded.Load(); got != want || p.blobPuts.Load() != 3 {
		t.Errorf("mirror of %d tags of one image sent %d bytes in %d uploads, want %d bytes in 3 (each blob once)", len(tags), got, p.blobPuts.Load(), want)
	}
	for _, tag := range tags {
		if d := strings.TrimSpace(hubctl(t, "digest", dst.Addr+"/mirror/app:"+tag)); d != img.Manifest.Digest {
			t.Errorf("mirror/app:%s = %q, want %s", tag, d, img.Manifest.Digest)
		}
	}
}

// TestPullIntoEngineSkipsLayersItHas (issue 13 item 9): a pull into docker-daemon:
// leaves out of the archive the layers the engine already has (by chain ID), and the
// engine loads the image whole all the same.
func TestPullIntoEngineSkipsLayersItHas(t *testing.T) {
	requireDocker(t)
	s := startServer(t)
	base := randomLayer(t, 256<<10)
	a := buildImage(t, "amd64", base, randomLayer(t, 64<<10))
	b := buildImage(t, "amd64", base, randomLayer(t, 64<<10))
	lay := newLayout(t)
	lay.addImage(a, "a")
	lay.addImage(b, "b")
	hubctl(t, "copy", "oci:"+lay.Dir+":a", s.Addr+"/skip/app:a")
	hubctl(t, "copy", "oci:"+lay.Dir+":b", s.Addr+"/skip/app:b")

	name := "hubctl-e2e-skip-" + strings.ReplaceAll(s.Addr, ":", "-")
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", name+":a", name+":b", name+":a2").Run() })
	// kinds are the events of each blob of a pull -o json.
	kinds := func(src, dst string) map[string]string {
		out := map[string]string{}
		for _, l := range jsonLines(t, hubctl(t, "pull", "-o", "json", src, "docker-daemon:"+dst)) {
			if d, _ := l["digest"].(string); d != "" {
				switch ev := l["event"].(string); ev {
				case "blob-exists", "blob-done":
					out[d] = ev
				}
			}
		}
		return out
	}
	inspect := func(ref string) (id string, layers []string) {
		var img []struct {
			ID     string `json:"Id"`
			RootFS struct {
				Layers []string `json:"Layers"`
			} `json:"RootFS"`
		}
		if err := json.Unmarshal([]byte(run(t, "", nil, "docker", "image", "inspect", ref)), &img); err != nil || len(img) != 1 {
			t.Fatalf("docker image inspect %s: %v", ref, err)
		}
		return img[0].ID, img[0].RootFS.Layers
	}

	// The first pull: everything moves (the base is new to the engine).
	k := kinds(s.Addr+"/skip/app:a", name+":a")
	if k[base.Digest] != "blob-done" || k[a.Layers[1].Digest] != "blob-done" {
		t.Fatalf("first pull: %v, want both layers sent", k)
	}
	// The second image shares the base: it stays out of the archive.
	k = kinds(s.Addr+"/skip/app:b", name+":b")
	if k[base.Digest] != "blob-exists" || k[b.Layers[1].Digest] != "blob-done" {
		t.Errorf("pull of an image sharing the base: %v, want the base skipped and the top sent", k)
	}
	// The first image again, under another name: nothing but the config moves.
	k = kinds(s.Addr+"/skip/app:a", name+":a2")
	if k[base.Digest] != "blob-exists" || k[a.Layers[1].Digest] != "blob-exists" {
		t.Errorf("second pull of the same image: %v, want every layer skipped", k)
	}
	for ref, img := range map[string]layeredImage{name + ":a": a, name + ":b": b, name + ":a2": a} {
		id, layers := inspect(ref)
		if id != img.Config.Digest || len(layers) != 2 || layers[0] != base.DiffID || layers[1] != img.Layers[1].DiffID {
			t.Errorf("%s in the engine: id %s layers %v, want %s with %s, %s", ref, id, layers, img.Config.Digest, base.DiffID, img.Layers[1].DiffID)
		}
	}
}

// TestDockerArchivePullPrintsItsDigest (issue 13 item 8): the digest a pull into a
// docker-archive prints is the one the archive gives back (hubctl digest, a push of
// it), not the source's.
func TestDockerArchivePullPrintsItsDigest(t *testing.T) {
	s := startServer(t)
	img := buildImage(t, "amd64", randomLayer(t, 32<<10))
	lay := newLayout(t)
	lay.addImage(img, "1")
	hubctl(t, "copy", "oci:"+lay.Dir+":1", s.Addr+"/team/arch:1")
	file := filepath.Join(t.TempDir(), "app.tar")
	out, errOut, err := hubctlErr(t, "pull", "--progress", "plain", s.Addr+"/team/arch:1", "docker-archive:"+file+":team/arch:1")
	if err != nil {
		t.Fatalf("pull: %v\n%s", err, errOut)
	}
	_, printed, ok := strings.Cut(strings.TrimSpace(out), "@")
	if !ok {
		t.Fatalf("pull printed %q, want a reference with its digest", out)
	}
	if back := strings.TrimSpace(hubctl(t, "digest", "docker-archive:"+file+":team/arch:1")); back != printed {
		t.Errorf("pull printed %s, the archive reads back as %s", printed, back)
	}
	if !strings.Contains(errOut, "docker's manifest form") {
		t.Errorf("the pull did not say why the digest is not the source's %s:\n%s", img.Manifest.Digest, errOut)
	}
	// Pushed back, the archive gives that digest at the registry too.
	if pushed := strings.TrimSpace(hubctl(t, "push", "docker-archive:"+file+":team/arch:1", s.Addr+"/team/arch:back")); !strings.HasSuffix(pushed, "@"+printed) {
		t.Errorf("push of the archive printed %q, want digest %s", pushed, printed)
	}
}
