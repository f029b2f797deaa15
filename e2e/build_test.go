package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildEnv is the environment of hubctl build runs: a private docker config, no
// HUBCTL_ variables, and the given extras.
func buildEnv(t testing.TB, cfg string, extra ...string) []string {
	return append(append(cleanEnv("HUBCTL_", "DOCKER_CONFIG", "SOURCE_DATE_EPOCH"), "DOCKER_CONFIG="+cfg), extra...)
}

// writeFiles writes name → content files under dir (mode 0644, or 0755 for names
// ending in "*", which is dropped).
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, "*") {
			name, mode = strings.TrimSuffix(name, "*"), 0o755
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBuildPushPullRunWithDocker builds a FROM-scratch image holding a static Go binary
// and a config file with hubctl build, pushes it to a hub with token auth, and has the
// Docker engine pull, run and inspect it.
func TestBuildPushPullRunWithDocker(t *testing.T) {
	requireDocker(t)
	s := startAuthServer(t)
	dir, want := helloContext(t, "hello from hubctl build")
	writeFiles(t, dir, map[string]string{
		"config/app.yaml": "greeting: hi\n",
		"Dockerfile": `FROM scratch
ARG VERSION=0
ENV APP_ENV=production VERSION=$VERSION
WORKDIR /srv/app
COPY hello /usr/local/bin/hello
COPY config/ ./config/
USER 1000:1000
EXPOSE 8080/tcp 9090/udp
HEALTHCHECK --interval=15s --timeout=3s --retries=2 CMD ["/usr/local/bin/hello", "-health"]
LABEL org.opencontainers.image.title="hello" com.example.version=$VERSION
ENTRYPOINT ["/usr/local/bin/hello"]
CMD ["--greet"]
`,
	})
	cfg := t.TempDir()
	env := buildEnv(t, cfg)
	ref := s.Addr + "/admin/hello:1"

	// Anonymous: the hub refuses the push, and the message says how to log in.
	_, errOut, err := runErr(t, dir, env, hubctlBin, "build", "--cache-dir", t.TempDir(), "-t", ref, ".")
	if err == nil || !strings.Contains(errOut, "hubctl login "+s.Addr) {
		t.Fatalf("anonymous build push: err %v, stderr %q; want a hint to log in", err, errOut)
	}
	runStdin(t, "", env, adminPassword+"\n", hubctlBin, "login", s.Addr, "-u", "admin", "--password-stdin")
	iid := filepath.Join(t.TempDir(), "iid")
	meta := filepath.Join(t.TempDir(), "meta.json")
	out := run(t, dir, env, hubctlBin, "build", "--cache-dir", t.TempDir(), "--build-arg", "VERSION=1.2.3",
		"--iidfile", iid, "--metadata-file", meta, "-t", ref, ".")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], ref+"@sha256:") {
		t.Fatalf("stdout = %q, want one line %s@sha256:…", out, ref)
	}
	digest := strings.TrimPrefix(lines[0], ref+"@")
	if b, _ := os.ReadFile(iid); string(b) != digest {
		t.Errorf("--iidfile holds %q, want %s", b, digest)
	}
	var md map[string]any
	if b, err := os.ReadFile(meta); err != nil || json.Unmarshal(b, &md) != nil || md["containerimage.digest"] != digest {
		t.Errorf("--metadata-file: %v %v", md, err)
	}

	dockerEnv := append(cleanEnv("DOCKER_CONFIG"), "DOCKER_CONFIG="+cfg)
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", ref).Run() })
	if out := runStdin(t, "", dockerEnv, adminPassword+"\n", "docker", "login", s.Addr, "-u", "admin", "--password-stdin"); !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("docker login: %s", out)
	}
	run(t, "", dockerEnv, "docker", "pull", ref)
	got := run(t, "", dockerEnv, "docker", "run", "--rm", ref)
	if strings.TrimSpace(got) != want {
		t.Fatalf("docker run printed %q, want %q", got, want)
	}
	var inspect []struct {
		ID     string `json:"Id"`
		Config struct {
			Env          []string
			WorkingDir   string
			User         string
			Entrypoint   []string
			Cmd          []string
			ExposedPorts map[string]any
			Labels       map[string]string
			Healthcheck  struct {
				Test     []string
				Interval int64
				Timeout  int64
				Retries  int
			}
		}
		RepoDigests []string
	}
	if err := json.Unmarshal([]byte(run(t, "", dockerEnv, "docker", "image", "inspect", ref)), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("docker inspect: %v", err)
	}
	c := inspect[0].Config
	if !slices.Contains(c.Env, "APP_ENV=production") || !slices.Contains(c.Env, "VERSION=1.2.3") {
		t.Errorf("Env = %v", c.Env)
	}
	if c.WorkingDir != "/srv/app" || c.User != "1000:1000" {
		t.Errorf("WorkingDir %q User %q", c.WorkingDir, c.User)
	}
	if !slices.Equal(c.Entrypoint, []string{"/usr/local/bin/hello"}) || !slices.Equal(c.Cmd, []string{"--greet"}) {
		t.Errorf("Entrypoint %v Cmd %v", c.Entrypoint, c.Cmd)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("ExposedPorts %v", c.ExposedPorts)
	}
	if _, ok := c.ExposedPorts["9090/udp"]; !ok {
		t.Errorf("ExposedPorts %v", c.ExposedPorts)
	}
	if c.Labels["org.opencontainers.image.title"] != "hello" || c.Labels["com.example.version"] != "1.2.3" {
		t.Errorf("Labels %v", c.Labels)
	}
	h := c.Healthcheck
	if !slices.Equal(h.Test, []string{"CMD", "/usr/local/bin/hello", "-health"}) || h.Interval != 15e9 || h.Timeout != 3e9 || h.Retries != 2 {
		t.Errorf("Healthcheck %+v", h)
	}
	if !slices.Contains(inspect[0].RepoDigests, s.Addr+"/admin/hello@"+digest) {
		t.Errorf("RepoDigests %v, want the pushed digest %s", inspect[0].RepoDigests, digest)
	}
	// The config file is where COPY ./config/ put it, relative to WORKDIR.
	name := "hubctl-e2e-build-" + strings.ReplaceAll(s.Addr, ":", "-")
	run(t, "", nil, "docker", "create", "--name", name, ref)
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", name).Run() })
	copied := filepath.Join(t.TempDir(), "app.yaml")
	run(t, "", nil, "docker", "cp", name+":/srv/app/config/app.yaml", copied)
	if b, err := os.ReadFile(copied); err != nil || string(b) != "greeting: hi\n" {
		t.Errorf("config file in the image: %q, %v", b, err)
	}
}

// TestBuildBaseLayersMounted builds on a base pushed earlier to the same hub: the base's
// layers are mounted into the new repository, never downloaded by the client.
func TestBuildBaseLayersMounted(t *testing.T) {
	s := startServer(t)
	p := startCountingProxy(t, s.Addr)
	cfg := t.TempDir()
	env := buildEnv(t, cfg)
	base := t.TempDir()
	big := make([]byte, 2<<20)
	_, _ = rand.Read(big)
	writeFiles(t, base, map[string]string{
		"Dockerfile":        "FROM scratch\nCOPY big.bin /opt/big.bin\nCOPY rootfs/ /\n",
		"rootfs/etc/passwd": "root:x:0:0::/root:/bin/sh\napp:x:1500:1500::/home/app:/bin/sh\n",
		"rootfs/etc/group":  "root:x:0:\napp:x:1500:\n",
		"big.bin":           string(big),
	})
	run(t, base, env, hubctlBin, "build", "--cache-dir", t.TempDir(), "-t", p.Addr+"/lib/base:1", ".")
	p.reset()

	app := t.TempDir()
	writeFiles(t, app, map[string]string{
		"Dockerfile": "FROM " + p.Addr + "/lib/base:1\nCOPY --chown=app:app app.txt /home/app/\n",
		"app.txt":    "application",
	})
	run(t, app, env, hubctlBin, "build", "--cache-dir", t.TempDir(), "-t", p.Addr+"/team/app:1", ".")
	if got := p.mounts.Load(); got != 2 {
		t.Errorf("%d blobs mounted, want the base's 2 layers", got)
	}
	// --chown=app read /etc/passwd and /etc/group from the base: only the top layer,
	// which holds them, was streamed (and the config), not the 2 MiB layer below.
	if got := p.downloaded.Load(); got > 4096 {
		t.Errorf("the client downloaded %d bytes of base blobs; want only the small layer holding /etc/passwd", got)
	}
	if n := len(p.uploadedDigests()); n != 2 {
		t.Errorf("uploaded %d blobs, want the new layer and the config", n)
	}

	// Without --chown, no base layer is read at all: the config is the only blob.
	p.reset()
	writeFiles(t, app, map[string]string{"Dockerfile": "FROM " + p.Addr + "/lib/base:1\nCOPY app.txt /srv/\n"})
	run(t, app, env, hubctlBin, "build", "--cache-dir", t.TempDir(), "-t", p.Addr+"/team/app:2", ".")
	if got := p.downloaded.Load(); got > 4096 {
		t.Errorf("building on a registry base downloaded %d bytes of blobs, want the config only", got)
	}

	// A local output needs the base's bytes: they come once, then from the cache.
	cache := t.TempDir()
	p.reset()
	layout := filepath.Join(t.TempDir(), "out")
	run(t, app, env, hubctlBin, "build", "--cache-dir", cache, "--output", "oci:"+layout, ".")
	first := p.downloaded.Load()
	p.reset()
	run(t, app, env, hubctlBin, "build", "--cache-dir", cache, "--output", "oci:"+filepath.Join(t.TempDir(), "again"), ".")
	// The second time only the base's config is read (its manifest is not a blob).
	if first < 2<<20 || p.downloaded.Load() > 4096 {
		t.Errorf("local output fetched %d bytes of base blobs, then %d with a warm cache; want the layers once, then the config alone", first, p.downloaded.Load())
	}
}

// TestBuildUploadsOnlyWhatChanged: after one source file changes, only its layer, the
// config and the manifest go up; a no-op rebuild opens no upload session and PUTs no
// manifest.
func TestBuildUploadsOnlyWhatChanged(t *testing.T) {
	s := startServer(t)
	p := startCountingProxy(t, s.Addr)
	env := buildEnv(t, t.TempDir())
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"hubctl.yaml":                    "preset: java\nentrypoint: [java, -cp, '/app/classes:/app/lib/*', com.example.App]\n",
		"lib/guava-33.0.jar":             strings.Repeat("g", 300_000),
		"lib/commons-1.0.jar":            strings.Repeat("c", 200_000),
		"lib/internal-2.0-SNAPSHOT.jar":  strings.Repeat("s", 50_000),
		"classes/application.properties": "a=1\n",
		"classes/com/example/App.class":  "v1",
		"classes/com/example/Util.class": "u1",
	})
	cache := t.TempDir()
	ref := p.Addr + "/team/svc:1"
	build := func() string {
		return strings.TrimSpace(run(t, dir, env, hubctlBin, "build", "--cache-dir", cache, "-t", ref, "."))
	}
	first := build()
	if got := len(p.uploadedDigests()); got != 5 {
		t.Fatalf("first build uploaded %d blobs, want 4 layers and the config", got)
	}

	p.reset()
	writeFiles(t, dir, map[string]string{"classes/com/example/App.class": "v2"})
	second := build()
	if second == first {
		t.Fatal("the digest did not change")
	}
	if got := len(p.uploadedDigests()); got != 2 {
		t.Errorf("after one class changed, uploaded %d blobs (%v), want the classes layer and the config", got, p.uploadedDigests())
	}
	if got := p.uploaded.Load(); got > 2048 {
		t.Errorf("after one class changed, uploaded %d bytes", got)
	}
	if got := p.manifestPuts.Load(); got != 1 {
		t.Errorf("%d manifests PUT, want 1", got)
	}

	p.reset()
	if third := build(); third != second {
		t.Errorf("no-op rebuild gave %s, want %s", third, second)
	}
	if p.sessions.Load() != 0 || p.manifestPuts.Load() != 0 || p.uploaded.Load() != 0 {
		t.Errorf("no-op rebuild opened %d upload sessions, PUT %d manifests, sent %d bytes; want none",
			p.sessions.Load(), p.manifestPuts.Load(), p.uploaded.Load())
	}
}

// TestBuildReproducibleBinary: two checkouts (different umask, mtimes, times) built
// with cold caches give the same digest, for a Dockerfile and for the java preset.
func TestBuildReproducibleBinary(t *testing.T) {
	files := map[string]string{
		"Dockerfile":                     "FROM scratch\nCOPY app* /app/\nCOPY conf/ /etc/app/\nENTRYPOINT [\"/app/app\"]\n",
		"app*":                           "#!/bin/sh\necho hi\n",
		"conf/a.yaml":                    "a: 1\n",
		"lib/dep-1.0.jar":                "dep",
		"classes/com/x/App.class":        "cls",
		"classes/application.properties": "p",
	}
	checkout := func(umask int, mtimeSeconds int64) string {
		old := syscall.Umask(umask)
		defer syscall.Umask(old)
		dir := t.TempDir()
		for name, data := range files {
			perm := os.FileMode(0o666)
			if strings.HasSuffix(name, "*") {
				name, perm = strings.TrimSuffix(name, "*"), 0o777
			}
			p := filepath.Join(dir, name)
			os.MkdirAll(filepath.Dir(p), 0o777)
			if err := os.WriteFile(p, []byte(data), perm); err != nil {
				t.Fatal(err)
			}
			tm := timeAt(mtimeSeconds)
			os.Chtimes(p, tm, tm)
		}
		return dir
	}
	a, b := checkout(0o022, 1_000_000_000), checkout(0o077, 1_800_000_000)
	env := buildEnv(t, t.TempDir(), "SOURCE_DATE_EPOCH=1700000000")
	for _, args := range [][]string{{}, {"--preset", "java"}} {
		var digests []string
		for _, dir := range []string{a, b} {
			iid := filepath.Join(t.TempDir(), "iid")
			cmd := append([]string{"build", "--cache-dir", t.TempDir(), "--iidfile", iid, "--output", "oci:" + filepath.Join(t.TempDir(), "o")}, args...)
			run(t, dir, env, hubctlBin, append(cmd, ".")...)
			d, _ := os.ReadFile(iid)
			digests = append(digests, string(d))
		}
		if digests[0] != digests[1] || digests[0] == "" {
			t.Errorf("build %v: digests %v differ between checkouts", args, digests)
		}
	}
}

// TestBuildTwoPlatformIndex pushes a two-platform index built on a two-platform base.
func TestBuildTwoPlatformIndex(t *testing.T) {
	s := startServer(t)
	env := buildEnv(t, t.TempDir())
	base := t.TempDir()
	writeFiles(t, base, map[string]string{"Dockerfile": "FROM scratch\nARG TARGETARCH\nCOPY f /arch-$TARGETARCH\n", "f": "x"})
	run(t, base, env, hubctlBin, "build", "--cache-dir", t.TempDir(), "--platform", "linux/amd64,linux/arm64", "-t", s.Addr+"/lib/multi:1", ".")
	app := t.TempDir()
	writeFiles(t, app, map[string]string{"Dockerfile": "FROM " + s.Addr + "/lib/multi:1\nCOPY app /app\n", "app": "a"})
	out := run(t, app, env, hubctlBin, "build", "--cache-dir", t.TempDir(), "--platform", "linux/amd64,linux/arm64", "-o", "json", "-t", s.Addr+"/team/multi:1", ".")
	lines := jsonLines(t, out)
	res := lines[len(lines)-1]
	if res["event"] != "result" || res["mediaType"] != "application/vnd.oci.image.index.v1+json" {
		t.Fatalf("result %v", res)
	}
	plats, _ := res["platforms"].([]any)
	if len(plats) != 2 {
		t.Fatalf("platforms %v", res["platforms"])
	}
	human := hubctl(t, "inspect", s.Addr+"/team/multi:1")
	for _, want := range []string{"linux/amd64", "linux/arm64"} {
		if !strings.Contains(human, want) {
			t.Errorf("inspect lacks %s:\n%s", want, human)
		}
	}
	// A docker-archive holds one platform and loads into the engine.
	requireDocker(t)
	{
		tarFile := filepath.Join(t.TempDir(), "img.tar")
		run(t, app, env, hubctlBin, "build", "--cache-dir", t.TempDir(), "--platform", "linux/"+runtime.GOARCH, "-t", "hubctl-e2e/archive:1", "--output", "docker-archive:"+tarFile, ".")
		t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", "hubctl-e2e/archive:1").Run() })
		if out := run(t, "", nil, "docker", "load", "-i", tarFile); !strings.Contains(out, "hubctl-e2e/archive:1") {
			t.Errorf("docker load: %s", out)
		}
	}
}

// TestBuildMatchesDockerBuild: for a RUN-free Dockerfile the classic builder
// understands, docker build and hubctl build --preserve-modes give the same files
// (paths, types, modes, owners, contents, link targets) and the same config.
func TestBuildMatchesDockerBuild(t *testing.T) {
	requireDocker(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		".dockerignore":    "*.md\nsecret\n",
		"README.md":        "not copied",
		"secret":           "not copied",
		"hello*":           "#!/bin/sh\necho hello\n",
		"conf/app.yaml":    "a: 1\n",
		"conf/sub/x.yaml":  "x: 1\n",
		"data/one.txt":     "1",
		"data/two.txt":     "2",
		"data/skip.bin":    "b",
		"static/index.htm": "<h1>hi</h1>",
		"Dockerfile": `ARG APP=hello
FROM scratch AS assets
COPY conf/ /conf/
FROM scratch
ARG APP
ENV APP_NAME=$APP PORT=8080
LABEL org.example.app=$APP org.example.port="${PORT}"
WORKDIR /app
COPY ${APP} /app/bin/
COPY --from=assets /conf /app/conf
COPY --chown=1000:1000 data/*.txt /app/data/
COPY static /srv/static
COPY hello /usr/local/bin/run
USER 1000
EXPOSE 8080/tcp
VOLUME /app/data
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s CMD ["/app/bin/hello", "-health"]
ENTRYPOINT ["/app/bin/hello"]
CMD ["--serve"]
`,
	})
	os.Chmod(filepath.Join(dir, "conf", "app.yaml"), 0o640)
	os.Chmod(filepath.Join(dir, "data", "one.txt"), 0o600)
	os.Chmod(filepath.Join(dir, "static"), 0o750)

	suffix := strings.ToLower(sanitize(t.Name()))
	dockerRef, hubRef := "hubctl-e2e/docker-"+suffix+":1", "hubctl-e2e/hub-"+suffix+":1"
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", dockerRef, hubRef).Run() })
	dockerEnv := append(os.Environ(), "DOCKER_BUILDKIT=0")
	run(t, dir, dockerEnv, "docker", "build", "-q", "-t", dockerRef, ".")
	run(t, dir, buildEnv(t, t.TempDir()), hubctlBin, "build", "--cache-dir", t.TempDir(), "--preserve-modes",
		"-t", hubRef, "--output", "docker-daemon", ".")

	dockerFS, dockerCfg := savedImage(t, dockerRef)
	hubFS, hubCfg := savedImage(t, hubRef)
	if !reflect.DeepEqual(dockerFS, hubFS) {
		t.Errorf("filesystems differ:\n%s", diffFS(dockerFS, hubFS))
	}
	if !reflect.DeepEqual(dockerCfg, hubCfg) {
		dj, _ := json.MarshalIndent(dockerCfg, "", "  ")
		hj, _ := json.MarshalIndent(hubCfg, "", "  ")
		t.Errorf("configs differ:\ndocker build:\n%s\nhubctl build:\n%s", dj, hj)
	}
}

// fsEntry is one path of an image's merged filesystem, timestamps left out.
type fsEntry struct {
	Type     byte
	Mode     int64
	UID, GID int
	Link     string
	SHA256   string
}

// savedImage returns the merged filesystem and the runtime config of an image in the
// engine, read from 'docker save'.
func savedImage(t testing.TB, ref string) (map[string]fsEntry, map[string]any) {
	t.Helper()
	cmd := exec.Command("docker", "save", ref)
	var buf bytes.Buffer
	cmd.Stdout = &buf
	if err := cmd.Run(); err != nil {
		t.Fatalf("docker save %s: %v", ref, err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = b
	}
	var manifest []struct {
		Config string
		Layers []string
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("manifest.json of %s: %v", ref, err)
	}
	fs := map[string]fsEntry{}
	for _, l := range manifest[0].Layers {
		lr := tar.NewReader(bytes.NewReader(files[l]))
		for {
			h, err := lr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimSuffix(path.Clean("/"+h.Name), "/")
			dir, base := path.Split(name)
			if base == ".wh..wh..opq" {
				for k := range fs {
					if strings.HasPrefix(k, dir) {
						delete(fs, k)
					}
				}
				continue
			}
			if strings.HasPrefix(base, ".wh.") {
				delete(fs, dir+strings.TrimPrefix(base, ".wh."))
				continue
			}
			b, _ := io.ReadAll(lr)
			e := fsEntry{Type: h.Typeflag, Mode: h.Mode & 0o7777, UID: h.Uid, GID: h.Gid, Link: h.Linkname}
			if h.Typeflag == tar.TypeReg {
				s := sha256.Sum256(b)
				e.SHA256 = hex.EncodeToString(s[:])
			}
			fs[name] = e
		}
	}
	var cfg struct {
		Config       map[string]any `json:"config"`
		OS           string         `json:"os"`
		Architecture string         `json:"architecture"`
	}
	if err := json.Unmarshal(files[manifest[0].Config], &cfg); err != nil {
		t.Fatal(err)
	}
	keep := map[string]any{"os": cfg.OS, "architecture": cfg.Architecture}
	for _, k := range []string{"Env", "Entrypoint", "Cmd", "WorkingDir", "User", "ExposedPorts", "Volumes", "Labels", "StopSignal", "Healthcheck", "Shell", "OnBuild"} {
		if v, ok := cfg.Config[k]; ok && v != nil {
			keep[k] = v
		}
	}
	return fs, keep
}

func diffFS(a, b map[string]fsEntry) string {
	var names []string
	seen := map[string]bool{}
	for k := range a {
		names, seen[k] = append(names, k), true
	}
	for k := range b {
		if !seen[k] {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var out strings.Builder
	for _, n := range names {
		x, okx := a[n]
		y, oky := b[n]
		if okx && oky && x == y {
			continue
		}
		fmt.Fprintf(&out, "  %s: docker %s, hubctl %s\n", n, describe(x, okx), describe(y, oky))
	}
	return out.String()
}

func describe(e fsEntry, ok bool) string {
	if !ok {
		return "(absent)"
	}
	return fmt.Sprintf("type %c mode %o owner %d:%d link %q sha %.12s", e.Type, e.Mode, e.UID, e.GID, e.Link, e.SHA256)
}

func timeAt(sec int64) time.Time { return time.Unix(sec, 0) }

// TestBuildRefusesRunBeforeBuilding: a RUN fails the build with one line naming the
// file, the line and what to do instead, and nothing reaches the registry.
func TestBuildRefusesRunBeforeBuilding(t *testing.T) {
	s := startServer(t)
	p := startCountingProxy(t, s.Addr)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM scratch\nCOPY a /a\nRUN make\n", "a": "a"})
	cache := t.TempDir()
	_, errOut, err := runErr(t, dir, buildEnv(t, t.TempDir()), hubctlBin, "build", "--cache-dir", cache, "-t", p.Addr+"/team/app:1", ".")
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	last := lines[len(lines)-1]
	if err == nil || !strings.HasPrefix(last, "hubctl: build .: Dockerfile:3: RUN: ") || !strings.Contains(last, "COPY it in") {
		t.Fatalf("err %v, last stderr line %q", err, last)
	}
	if p.sessions.Load() != 0 || p.manifestPuts.Load() != 0 {
		t.Errorf("a refused build opened %d upload sessions and PUT %d manifests", p.sessions.Load(), p.manifestPuts.Load())
	}
	if ents, _ := os.ReadDir(filepath.Join(cache, "layers")); len(ents) != 0 {
		t.Errorf("a refused build made %d layers", len(ents))
	}
}

// TestBuildLocalOutputs writes an OCI layout and an OCI archive of a two-platform build,
// and reads them back with hubctl inspect.
func TestBuildLocalOutputs(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM scratch\nCOPY a /a\n", "a": "a"})
	env := buildEnv(t, t.TempDir())
	layout := filepath.Join(t.TempDir(), "layout")
	archive := filepath.Join(t.TempDir(), "image.tar")
	out := run(t, dir, env, hubctlBin, "build", "--cache-dir", t.TempDir(), "--platform", "linux/amd64,linux/arm64",
		"--output", "oci:"+layout+":1", "--output", "oci-archive:"+archive+":1", ".")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "oci:"+layout+"@sha256:") || !strings.HasPrefix(lines[1], "oci-archive:"+archive) {
		t.Fatalf("stdout %q", out)
	}
	for _, loc := range []string{"oci:" + layout + ":1", "oci-archive:" + archive + ":1"} {
		human := hubctl(t, "inspect", loc)
		if !strings.Contains(human, "linux/amd64") || !strings.Contains(human, "linux/arm64") {
			t.Errorf("inspect %s:\n%s", loc, human)
		}
	}
}

// TestBuildBaseOnAnotherRegistry: the base lives on one hub, the image goes to another;
// the base's layers are streamed registry to registry, and the pushed image is whole.
func TestBuildBaseOnAnotherRegistry(t *testing.T) {
	a, b := startServer(t), startServer(t)
	env := buildEnv(t, t.TempDir())
	base := t.TempDir()
	writeFiles(t, base, map[string]string{"Dockerfile": "FROM scratch\nCOPY lib/ /usr/lib/app/\n", "lib/x.so": strings.Repeat("x", 100_000)})
	run(t, base, env, hubctlBin, "build", "--cache-dir", t.TempDir(), "-t", a.Addr+"/lib/base:1", ".")
	app := t.TempDir()
	writeFiles(t, app, map[string]string{"Dockerfile": "FROM " + a.Addr + "/lib/base:1\nCOPY app /usr/bin/app\n", "app*": "#!/bin/sh\n"})
	run(t, app, env, hubctlBin, "build", "--cache-dir", t.TempDir(), "-t", b.Addr+"/team/app:1", ".")
	// Pull the result from the second hub into a layout: every blob is there.
	layout := filepath.Join(t.TempDir(), "pulled")
	hubctl(t, "pull", b.Addr+"/team/app:1", "oci:"+layout+":1")
	human := hubctl(t, "inspect", "oci:"+layout+":1")
	if strings.Count(human, "sha256:") < 3 {
		t.Errorf("inspect of the pulled image:\n%s", human)
	}
	var m struct {
		Annotations map[string]string `json:"annotations"`
	}
	var raw struct {
		Manifest json.RawMessage `json:"manifest"`
	}
	if err := json.Unmarshal([]byte(hubctl(t, "inspect", "-o", "json", b.Addr+"/team/app:1")), &raw); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	if m.Annotations["org.opencontainers.image.base.name"] != a.Addr+"/lib/base:1" || !strings.HasPrefix(m.Annotations["org.opencontainers.image.base.digest"], "sha256:") {
		t.Errorf("base annotations %v", m.Annotations)
	}
}
