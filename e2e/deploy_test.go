package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/deploy/loadtest"
)

// webServerSource is the service the deploy tests run: a static Go HTTP server on
// :8080 whose answer names its version (set at build time), with /up answering 200,
// or 500 for a version built broken (its health check never passes).
const webServerSource = `package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

var version, broken = "dev", ""

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("/up", func(w http.ResponseWriter, r *http.Request) {
		if broken != "" {
			http.Error(w, "broken", 500)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, version) })
	srv := &http.Server{Addr: ":8080", Handler: mux}
	fmt.Fprintln(os.Stderr, "serving", version)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() { <-ctx.Done(); srv.Shutdown(context.Background()) }()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
`

// deployEnv is one deploy test's world: a hub holding the images, the proxy image,
// a deploy file and a state directory, all named after a random id so tests sharing
// the engine never meet.
type deployEnv struct {
	t        *testing.T
	id       string
	service  string
	hub      *server
	dir      string
	stateDir string
	proxy    string
	images   map[string]string // version → reference pushed to the hub
	digests  map[string]string // version → repo digest reference
	// dockerConfig, when set, is the DOCKER_CONFIG of hubctl and of the docker CLI's
	// pushes: the credentials of a hub with auth.
	dockerConfig string
	// extraImages are images the test's deploys made (the proxy image hubctl built).
	extraImages []string
	// env is added to hubctl's environment.
	env []string
	// hosts, when set, is the deploy file's hosts section.
	hosts string
}

func newDeployEnv(t *testing.T) *deployEnv {
	requireDocker(t)
	return newDeployEnvOn(t, startServer(t), "", "")
}

// newDeployEnvOn is newDeployEnv with the images pushed to hub under namespace ns
// (e2e-ID when empty), with the docker CLI's credentials in dockerConfig (none when
// empty).
func newDeployEnvOn(t *testing.T, hub *server, ns, dockerConfig string) *deployEnv {
	requireDocker(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	e := &deployEnv{t: t, id: id, service: "e2e-web-" + id, hub: hub, dir: t.TempDir(),
		images: map[string]string{}, digests: map[string]string{}, dockerConfig: dockerConfig}
	if ns == "" {
		ns = "e2e-" + id
	}
	e.stateDir = filepath.Join(e.dir, "state")
	t.Cleanup(e.cleanup)

	// The proxy image: this tree's hubctl (static) FROM scratch.
	pdir := t.TempDir()
	data, err := os.ReadFile(hubctlBin)
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, pdir, map[string]string{"hubctl*": string(data), "Dockerfile": "FROM scratch\nCOPY hubctl /hubctl\nENTRYPOINT [\"/hubctl\", \"proxy\", \"run\"]\n"})
	e.proxy = "hubctl-e2e-proxy:" + id
	e.dockerBuild(pdir, e.proxy)

	// v1 and v2 serve; v3's health check never passes.
	src := t.TempDir()
	writeFiles(t, src, map[string]string{"go.mod": "module web\n\ngo 1.22\n", "main.go": webServerSource,
		"Dockerfile": "FROM scratch\nCOPY web /web\nENTRYPOINT [\"/web\"]\n"})
	env := append(cleanEnv("GOFLAGS=", "GOWORK=", "CGO_ENABLED=", "GOOS=", "GOARCH="),
		"CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH, "GOWORK=off", "GOFLAGS=-trimpath")
	for _, v := range []string{"v1", "v2", "v3"} {
		flags := "-X main.version=" + v + "-" + id
		if v == "v3" {
			flags += " -X main.broken=yes"
		}
		run(t, src, env, "go", "build", "-ldflags", flags, "-o", "web", ".")
		ref := fmt.Sprintf("%s/%s/web-%s:%s", e.hub.Addr, ns, id, v)
		e.dockerBuild(src, ref)
		run(t, src, nil, "docker", append(e.dockerConfigArgs(), "push", ref)...)
		e.images[v] = ref
		dg := strings.TrimSpace(run(t, src, nil, "docker", "image", "inspect", "--format", "{{index .RepoDigests 0}}", ref))
		e.digests[v] = dg
	}
	return e
}

// dockerConfigArgs are the docker CLI's --config flag for the env's credentials.
func (e *deployEnv) dockerConfigArgs() []string {
	if e.dockerConfig == "" {
		return nil
	}
	return []string{"--config", e.dockerConfig}
}

func (e *deployEnv) dockerBuild(dir, ref string) {
	e.t.Helper()
	env := append(os.Environ(), "DOCKER_BUILDKIT=0")
	run(e.t, dir, env, "docker", "build", "-q", "--label", "hubctl.e2e="+e.id, "-t", ref, ".")
}

// cleanup removes whatever the test's service left (a failed test), and its images.
func (e *deployEnv) cleanup() {
	f := "label=dev.hubctl.service=" + e.service
	if ids := e.docker("ps", "-aq", "--filter", f); ids != "" {
		_ = exec.Command("docker", append([]string{"rm", "-f"}, strings.Fields(ids)...)...).Run()
	}
	for _, kind := range []string{"network", "volume"} {
		if ids := e.docker(kind, "ls", "-q", "--filter", f); ids != "" {
			_ = exec.Command("docker", append([]string{kind, "rm"}, strings.Fields(ids)...)...).Run()
		}
	}
	refs := append([]string{e.proxy}, e.extraImages...)
	for _, r := range e.images {
		refs = append(refs, r)
	}
	for _, r := range e.digests {
		refs = append(refs, r)
	}
	_ = exec.Command("docker", append([]string{"rmi", "-f"}, refs...)...).Run()
}

func (e *deployEnv) docker(args ...string) string {
	out, _ := exec.Command("docker", args...).Output()
	return strings.TrimSpace(string(out))
}

// writeSpec writes the deploy file for version v.
func (e *deployEnv) writeSpec(v string) string {
	e.t.Helper()
	spec := fmt.Sprintf(`service:
  name: %s
  image: %s
  replicas: 2
  proxy:
    port: 8080
  healthcheck:
    path: /up
    interval: 200ms
    threshold: 2
  deploy-timeout: 8s
  drain-timeout: 5s
  stop-timeout: 3s
`, e.service, e.images[v]) + e.hosts
	file := filepath.Join(e.dir, "deploy.yaml")
	if err := os.WriteFile(file, []byte(spec), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return file
}

func (e *deployEnv) args(verb ...string) []string {
	return append(append([]string{"deploy"}, verb...), "-f", filepath.Join(e.dir, "deploy.yaml"), "--state-dir", e.stateDir)
}

func (e *deployEnv) deployArgs(verb ...string) []string {
	return append(e.args(verb...), "--proxy-image", e.proxy, "--proxy-publish", "127.0.0.1:0")
}

// hubctl runs the binary in the test's directory.
func (e *deployEnv) hubctl(args ...string) (string, string, error) {
	e.t.Helper()
	env := cleanEnv("HUBCTL_", "DOCKER_CONFIG=")
	if e.dockerConfig != "" {
		env = append(env, "DOCKER_CONFIG="+e.dockerConfig)
	}
	env = append(env, e.env...)
	return runErr(e.t, e.dir, env, hubctlBin, args...)
}

func (e *deployEnv) mustHubctl(args ...string) string {
	e.t.Helper()
	out, errOut, err := e.hubctl(args...)
	if err != nil {
		e.t.Fatalf("hubctl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

type deployContainer struct {
	Name      string   `json:"name"`
	Role      string   `json:"role"`
	Version   int      `json:"version"`
	State     string   `json:"state"`
	Routed    bool     `json:"routed"`
	Published []string `json:"published"`
}

type deployHostState struct {
	Host       string            `json:"host"`
	Containers []deployContainer `json:"containers"`
}

func (e *deployEnv) status() []deployContainer {
	e.t.Helper()
	var st []deployHostState
	if err := json.Unmarshal([]byte(e.mustHubctl(e.args("status", "-o", "json")...)), &st); err != nil {
		e.t.Fatal(err)
	}
	if len(st) != 1 {
		e.t.Fatalf("status of %d hosts", len(st))
	}
	return st[0].Containers
}

// tasks are the service's task containers as "version:state:routed".
func (e *deployEnv) tasks() []string {
	var out []string
	for _, c := range e.status() {
		if c.Role == "task" {
			out = append(out, fmt.Sprintf("%d:%s:%v", c.Version, c.State, c.Routed))
		}
	}
	slices.Sort(out)
	return out
}

func (e *deployEnv) proxyURL() string {
	e.t.Helper()
	for _, c := range e.status() {
		if c.Role == "proxy" && len(c.Published) > 0 {
			addr, _, _ := strings.Cut(c.Published[0], "->")
			return "http://" + addr + "/"
		}
	}
	e.t.Fatal("no published proxy in status")
	return ""
}

type deployRecord struct {
	Number     int               `json:"Number"`
	Outcome    string            `json:"Outcome"`
	Digests    map[string]string `json:"Digests"`
	RollbackOf int               `json:"RollbackOf"`
	Error      string            `json:"Error"`
	SpecYAML   string            `json:"SpecYAML"`
}

func (e *deployEnv) history() []deployRecord {
	e.t.Helper()
	var recs []deployRecord
	if err := json.Unmarshal([]byte(e.mustHubctl(e.args("history", "-o", "json")...)), &recs); err != nil {
		e.t.Fatal(err)
	}
	return recs
}

// TestDeployDocker is the story on the real engine, without a hub behind
// the deploy: two replicas behind the proxy, v1 → v2 under load with no failed
// request, a v3 that never becomes healthy refused while v2 keeps serving, rollback
// to v1, the history of it all, a dry run, bad input refused with nothing changed,
// a second deploy refused by the lock (and lock break), a deploy killed with SIGKILL converging on
// the next update, and down removing exactly what the deploys made.
func TestDeployDocker(t *testing.T) {
	e := newDeployEnv(t)
	ver := func(v string) string { return v + "-" + e.id }

	// Bad input first: an image that does not exist changes nothing, not even the
	// engine (no network, no proxy, no history).
	e.writeSpec("v1")
	spec := filepath.Join(e.dir, "deploy.yaml")
	bad, _ := os.ReadFile(spec)
	if err := os.WriteFile(spec, bytes.Replace(bad, []byte(":v1\n"), []byte(":v9\n"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, err := e.hubctl(e.deployArgs("up")...)
	if err == nil || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "resolve image") {
		t.Fatalf("up of an unknown image: %v\n%s", err, errOut)
	}
	if left := e.docker("ps", "-aq", "--filter", "label=dev.hubctl.service="+e.service); left != "" {
		t.Fatalf("an unknown image left containers: %s", left)
	}
	if left := e.docker("network", "ls", "-q", "--filter", "label=dev.hubctl.service="+e.service); left != "" {
		t.Fatalf("an unknown image left a network: %s", left)
	}

	// A digest the hub does not hold: refused the same way.
	repo, _, _ := strings.Cut(e.images["v1"], ":v1")
	if err := os.WriteFile(spec, bytes.Replace(bad, []byte(e.images["v1"]), []byte(repo+"@sha256:"+strings.Repeat("0", 64)), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, err = e.hubctl(e.deployArgs("up")...)
	if err == nil || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "resolve image") {
		t.Fatalf("up of a digest the hub does not hold: %v\n%s", err, errOut)
	}
	if _, err := os.Stat(e.stateDir); !os.IsNotExist(err) {
		t.Fatalf("refused deploys wrote history: %v", err)
	}

	// up: v1, two replicas, through the proxy on 127.0.0.1.
	e.writeSpec("v1")
	start := time.Now()
	// Without --proxy-image: hubctl builds the proxy image from its own (static)
	// binary and loads it into the engine under a name carrying its image ID.
	e.mustHubctl(append(e.args("up"), "--proxy-publish", "127.0.0.1:0")...)
	proxyImage := e.docker("inspect", "-f", "{{.Config.Image}}", "hubctl-proxy-"+e.service)
	e.extraImages = append(e.extraImages, proxyImage)
	if !strings.HasPrefix(proxyImage, "hubctl-proxy:") {
		t.Fatalf("proxy runs %q, want the image hubctl built (hubctl-proxy:…)", proxyImage)
	}
	t.Logf("up v1 (image present): %s", time.Since(start).Round(time.Millisecond))
	if got := e.tasks(); !slices.Equal(got, []string{"1:running:true", "1:running:true"}) {
		t.Fatalf("tasks after up = %v", got)
	}
	url := e.proxyURL()
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("proxy published on %s; want 127.0.0.1 only", url)
	}
	if body, err := loadtest.Get(http.DefaultClient, url); err != nil || body != ver("v1") {
		t.Fatalf("GET %s = %q, %v", url, body, err)
	}
	// An unchanged spec changes nothing: the tasks are kept, not restarted.
	e.mustHubctl(e.deployArgs("update")...)
	if got := e.tasks(); !slices.Equal(got, []string{"1:running:true", "1:running:true"}) {
		t.Fatalf("tasks after an unchanged update = %v", got)
	}

	l := loadtest.Start(url, 4)
	defer l.End()
	l.WaitMore(t, 100)

	// v2 under load, pulled from the hub (the engine's copy removed first).
	run(t, e.dir, nil, "docker", "rmi", e.images["v2"])
	e.writeSpec("v2")
	dry := e.mustHubctl(e.deployArgs("update", "--dry-run")...)
	if !strings.Contains(dry, "start hubctl-"+e.service) || !strings.Contains(dry, "stop  hubctl-"+e.service+"-local-1-1") {
		t.Errorf("dry run plan:\n%s", dry)
	}
	if got := e.tasks(); !slices.Equal(got, []string{"1:running:true", "1:running:true"}) {
		t.Fatalf("a dry run changed the tasks: %v", got)
	}
	// logs --follow through the update: the v1 tasks' lines, then the v2 tasks'
	// (started mid-follow), each prefixed with host/task.
	follow := &lockedBuffer{}
	followCmd := exec.Command(hubctlBin, append(e.args("logs", "--follow"), "--tail", "all")...)
	followCmd.Dir, followCmd.Env = e.dir, cleanEnv("HUBCTL_", "DOCKER_CONFIG=")
	followCmd.Stdout, followCmd.Stderr = follow, follow
	if err := followCmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer followCmd.Process.Kill()
	waitDeploy(t, "logs --follow of the v1 tasks", func() bool { return strings.Count(follow.String(), "serving "+ver("v1")) == 2 })
	start = time.Now()
	e.mustHubctl(e.deployArgs("update")...)
	switched := time.Now()
	t.Logf("update to v2 (image pulled): %s", switched.Sub(start).Round(time.Millisecond))
	waitDeploy(t, "logs --follow of the v2 tasks started mid-follow", func() bool { return strings.Count(follow.String(), "serving "+ver("v2")) == 2 })
	_ = followCmd.Process.Signal(os.Interrupt)
	if err := followCmd.Wait(); err != nil {
		t.Errorf("logs --follow ended on Ctrl-C with %v:\n%s", err, follow.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(follow.String()), "\n") {
		if strings.Contains(line, "serving") && !strings.HasPrefix(line, "local/hubctl-"+e.service+"-local-") {
			t.Errorf("logs --follow line without its host/task prefix: %q", line)
		}
	}
	l.WaitMore(t, 200)
	if after := l.Since(switched); len(after) != 1 || after[ver("v2")] == 0 {
		t.Errorf("answers to requests started after the switch: %v; want only v2", after)
	}
	if got := e.tasks(); !slices.Equal(got, []string{"3:running:true", "3:running:true"}) {
		t.Fatalf("tasks after v2 = %v", got)
	}

	// v3 never becomes healthy: refused, its tasks removed, v2 serving throughout.
	e.writeSpec("v3")
	_, errOut, err = e.hubctl(e.deployArgs("update")...)
	refused := time.Now()
	if err == nil || !strings.Contains(errOut, "failed, the tasks before it keep serving") {
		t.Fatalf("update to v3: %v\n%s", err, errOut)
	}
	l.WaitMore(t, 100)
	if after := l.Since(refused); len(after) != 1 || after[ver("v2")] == 0 {
		t.Errorf("answers after v3 was refused: %v; want only v2", after)
	}
	if got := e.tasks(); !slices.Equal(got, []string{"3:running:true", "3:running:true"}) {
		t.Fatalf("tasks after v3 refused = %v", got)
	}

	// rollback to v1 (deploy 2 was the unchanged update, which succeeded too).
	start = time.Now()
	e.mustHubctl(e.deployArgs("rollback", "1")...)
	rolled := time.Now()
	t.Logf("rollback to v1 (image present): %s", rolled.Sub(start).Round(time.Millisecond))
	l.WaitMore(t, 100)
	if after := l.Since(rolled); len(after) != 1 || after[ver("v1")] == 0 {
		t.Errorf("answers after the rollback: %v; want only v1", after)
	}
	recs := e.history()
	var got []string
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		v := "?"
		for name, dg := range e.digests {
			if _, d, _ := strings.Cut(dg, "@"); strings.HasSuffix(r.Digests["service"], "@"+d) {
				v = name
			}
		}
		got = append(got, fmt.Sprintf("%d:%s:%s:%d", r.Number, v, r.Outcome, r.RollbackOf))
	}
	want := []string{"1:v1:succeeded:0", "2:v1:succeeded:0", "3:v2:succeeded:0", "4:v3:failed:0", "5:v1:succeeded:1"}
	if !slices.Equal(got, want) {
		t.Errorf("history = %v; want %v", got, want)
	}
	human := e.mustHubctl(e.args("history")...)
	if !strings.Contains(human, "rollback to 1") || !strings.Contains(human, "failed") {
		t.Errorf("history:\n%s", human)
	}

	// The lock: held by a deploy on another machine (the lock container it would
	// make), a second deploy fails with one line naming the holder and changes
	// nothing; lock break removes it and the deploy goes through.
	e.writeSpec("v2")
	run(t, e.dir, nil, "docker", "create", "--name", "hubctl-lock-"+e.service,
		"--label", "dev.hubctl.service="+e.service, "--label", "dev.hubctl.role=lock",
		"--label", "dev.hubctl.lock.by=someone", "--label", "dev.hubctl.lock.host=elsewhere.example",
		"--label", "dev.hubctl.lock.pid=4242", "--label", "dev.hubctl.lock.number=99",
		"--label", "dev.hubctl.lock.acquired="+time.Now().UTC().Format(time.RFC3339Nano),
		"--label", "dev.hubctl.lock.expires="+time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano),
		"--network", "none", "--entrypoint", "/nonexistent", e.proxy)
	before := e.tasks()
	_, errOut, err = e.hubctl(e.deployArgs("update")...)
	if err == nil || !strings.Contains(errOut, "is locked by someone on elsewhere.example") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("a deploy while another holds the lock: %v\n%s", err, errOut)
	}
	if after := e.tasks(); !slices.Equal(before, after) {
		t.Errorf("the refused deploy changed tasks: %v → %v", before, after)
	}
	if n := len(e.history()); n != 5 {
		t.Errorf("the refused deploy was recorded: %d records", n)
	}
	// down takes the same lock: refused while it is held, nothing removed.
	_, errOut, err = e.hubctl(e.args("down")...)
	if err == nil || !strings.Contains(errOut, "is locked by someone on elsewhere.example") {
		t.Errorf("down while another holds the lock: %v\n%s", err, errOut)
	}
	if after := e.tasks(); !slices.Equal(before, after) {
		t.Errorf("the refused down changed tasks: %v → %v", before, after)
	}
	e.mustHubctl(e.args("lock", "break")...)
	e.mustHubctl(e.deployArgs("update")...)
	if got := e.tasks(); !slices.Equal(got, []string{"6:running:true", "6:running:true"}) {
		t.Fatalf("tasks after the lock was broken and v2 deployed = %v", got)
	}

	// kill -9 of an update mid-way (its new tasks are being made), then update again:
	// it converges, with no orphan.
	e.writeSpec("v1")
	killed := exec.Command(hubctlBin, e.deployArgs("update")...)
	killed.Dir, killed.Env = e.dir, cleanEnv("HUBCTL_", "DOCKER_CONFIG=")
	if err := killed.Start(); err != nil {
		t.Fatal(err)
	}
	waitDeploy(t, "the killed deploy's first new task", func() bool {
		return e.docker("ps", "-aq", "--filter", "label=dev.hubctl.service="+e.service, "--filter", "label=dev.hubctl.version=7") != ""
	})
	_ = killed.Process.Kill()
	_ = killed.Wait()
	e.mustHubctl(e.deployArgs("update")...)
	converged := time.Now()
	// The killed deploy's exec in the proxy may have finished its switch after the
	// kill: its tasks are then kept; else deploy 8's serve.
	if got := e.tasks(); !slices.Equal(got, []string{"8:running:true", "8:running:true"}) && !slices.Equal(got, []string{"7:running:true", "7:running:true"}) {
		t.Errorf("tasks after kill -9 and update = %v; want two of one deploy, routed", got)
	}
	names := strings.Fields(e.docker("ps", "-a", "--format", "{{.Names}}", "--filter", "label=dev.hubctl.service="+e.service))
	if len(names) != 3 {
		t.Errorf("containers after convergence: %v; want 2 tasks and the proxy", names)
	}
	if r := e.history(); r[1].Number != 7 || r[1].Outcome != "failed" || !strings.Contains(r[1].Error, "interrupted") {
		t.Errorf("the killed deploy's record: %+v", r[1])
	}
	l.WaitMore(t, 100)
	if after := l.Since(converged); len(after) != 1 || after[ver("v1")] == 0 {
		t.Errorf("answers after convergence: %v; want only v1", after)
	}

	l.End()
	failures, total := l.Failures()
	l.CheckNoFailure(t, "")
	t.Logf("%d requests through the proxy over 6 deploys, a refused one and a killed one: %d failed", total, len(failures))

	// logs and inspect of what runs now.
	if out := e.mustHubctl(e.args("logs")...); strings.Count(out, "serving "+ver("v1")) != 2 {
		t.Errorf("logs of the two v1 tasks:\n%s", out)
	}
	var ins struct {
		Service string
		Last    deployRecord
		Hosts   []deployHostState
	}
	if err := json.Unmarshal([]byte(e.mustHubctl(e.args("inspect")...)), &ins); err != nil {
		t.Fatal(err)
	}
	if ins.Service != e.service || ins.Last.Outcome != "succeeded" || ins.Last.Number < 8 || len(ins.Hosts) != 1 || len(ins.Hosts[0].Containers) != 3 {
		t.Errorf("inspect = %+v", ins)
	}

	// down removes what the deploys made and nothing else: a bystander named like
	// the service's tasks, without its labels, stays.
	bystander := "hubctl-" + e.service + "-local-99-1"
	run(t, e.dir, nil, "docker", "create", "--name", bystander, "--label", "hubctl.e2e="+e.id, e.images["v1"])
	defer exec.Command("docker", "rm", "-f", bystander).Run()
	e.mustHubctl(e.args("down")...)
	for _, kind := range [][]string{{"ps", "-aq"}, {"network", "ls", "-q"}, {"volume", "ls", "-q"}} {
		if left := e.docker(append(kind, "--filter", "label=dev.hubctl.service="+e.service)...); left != "" {
			t.Errorf("docker %s after down: %s", kind[0], left)
		}
	}
	if e.docker("ps", "-aq", "--filter", "name=^"+bystander+"$") == "" {
		t.Error("down removed a container that is not the service's")
	}

	// A port already taken on the host: the deploy fails, no task is left behind.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	e.writeSpec("v1")
	taken := fmt.Sprintf("  ports: [\"%s:9000\"]\n", ln.Addr())
	withPort, _ := os.ReadFile(spec)
	withPort = bytes.Replace(withPort, []byte("  replicas: 2\n"), []byte("  replicas: 1\n"+taken), 1)
	if err := os.WriteFile(spec, withPort, 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, err = e.hubctl(e.deployArgs("up")...)
	if err == nil || !strings.Contains(errOut, "failed") {
		t.Errorf("up with a port taken: %v\n%s", err, errOut)
	}
	t.Logf("a port taken: %s", strings.TrimSpace(errOut))
	if left := e.docker("ps", "-aq", "--filter", "label=dev.hubctl.service="+e.service, "--filter", "label=dev.hubctl.role=task"); left != "" {
		t.Errorf("tasks left after a port was taken: %s", left)
	}
	e.mustHubctl(e.args("down")...)
}

func waitDeploy(t *testing.T, what string, ok func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
