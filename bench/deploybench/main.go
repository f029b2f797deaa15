// Command deploybench measures `hubctl deploy` on Docker hosts (issue 20, slice 6): the
// time of `hubctl deploy update` until both replicas serve the new version (the image
// already on the engine), the time of `hubctl deploy rollback`, and the failed requests
// over all of them under a continuous load on loopback. The peer, in the same run, is
// `docker-compose up -d` of the same two-replica service switching image, with its
// failed requests counted the same way. It uses the real engine and the real hubctl
// binary (static); the service is a tiny static Go HTTP server FROM scratch, pushed to
// a `hubctl serve` the benchmark starts (nothing is pulled from anywhere else).
// bench/README.md says how to read the figures.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/hubctl/hubctl/bench/internal/benchhub"
)

type options struct {
	hubctl    string
	updates   int
	unpulled  int
	rollbacks int
	hub       bool
	rate      int
	workers   int
	keep      bool
	verbose   bool
}

func main() {
	var o options
	flag.StringVar(&o.hubctl, "hubctl", "", "the hubctl `binary`, static (default: CGO_ENABLED=0 go build ./cmd/hubctl into the run's directory)")
	flag.IntVar(&o.updates, "updates", 10, "updates (v1 → v2 → v1 …) of each side under load")
	flag.IntVar(&o.unpulled, "unpulled", 4, "further updates of each side with the new image first removed from the engine (pulled from the hub during the update)")
	flag.IntVar(&o.rollbacks, "rollbacks", 4, "`hubctl deploy rollback`s under load")
	flag.BoolVar(&o.hub, "hub", false, "record and lock hubctl's deploys in the hub (deploy --hub), not in a local state file and a lock container")
	flag.IntVar(&o.rate, "rate", 200, "requests per second of the load, in all")
	flag.IntVar(&o.workers, "workers", 4, "connections of the load")
	flag.BoolVar(&o.keep, "keep", false, "keep the run's directory (hub log, deploy state)")
	flag.BoolVar(&o.verbose, "v", false, "print the output of every timed command, each line with the time since it started")
	flag.Parse()
	if o.updates < 1 || o.unpulled < 0 || o.rollbacks < 0 || o.rate < 1 || o.workers < 1 {
		fmt.Fprintln(os.Stderr, "deploybench: -updates, -rate and -workers ≥ 1, -unpulled and -rollbacks ≥ 0")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "deploybench:", err)
		os.Exit(1)
	}
}

// adminPassword is the admin password of the hub the benchmark starts.
const adminPassword = "deploybench-admin"

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "deploybench: "+format+"\n", args...) }

// webSource is the service: a static HTTP server on :8080 answering its version, /up
// for the health check, a clean shutdown on SIGTERM.
const webSource = `package main

import (
	"context"
	"fmt"
	"net/http"
	"os/signal"
	"syscall"
)

var version = "dev"

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("/up", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, version) })
	srv := &http.Server{Addr: ":8080", Handler: mux}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); srv.Shutdown(context.Background()) }()
	srv.ListenAndServe()
}
`

// bench is one run's world, every Docker object named after id.
type bench struct {
	o       options
	id      string
	work    string
	service string
	proxy   string            // the proxy image
	images  map[string]string // v1, v2 → reference in the hub
	ids     map[string]string // v1, v2 → image id on the engine
	hub     string            // the hub's address with -hub, else ""
	env     []string          // the environment of hubctl, docker push and docker-compose (DOCKER_CONFIG with -hub)
	answers map[string]string // v1, v2 → the body that version answers
	project string            // the compose project
	dockerd int               // the engine's pid, 0 when unknown
}

func run(o options) error {
	work, done, err := benchhub.WorkDir("deploybench", o.keep, logf)
	if err != nil {
		return err
	}
	defer done()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	bn := &bench{o: o, id: id, work: work, service: "deploybench-" + id, project: "deploybench" + id,
		images: map[string]string{}, ids: map[string]string{}, answers: map[string]string{}, dockerd: benchhub.PidOf("dockerd")}
	defer bn.cleanup()

	if o.hubctl == "" {
		logf("building hubctl (static)")
		if o.hubctl, err = benchhub.BuildHubctl(work); err != nil {
			return err
		}
		bn.o.hubctl = o.hubctl
	}
	// With -hub, the hub has token auth (its deploy API needs a signed-in deployer),
	// and the docker CLI, docker-compose and hubctl sign in as admin through a
	// docker config of the run's own.
	hubEnv := []string{"HUBCTL_AUTH_MODE=none"}
	if o.hub {
		hubEnv = nil
	}
	h, err := benchhub.Start(o.hubctl, filepath.Join(work, "hub"), adminPassword, hubEnv)
	if err != nil {
		return err
	}
	defer h.Stop()
	if o.hub {
		bn.hub = h.Addr
		bn.env = []string{"DOCKER_CONFIG=" + filepath.Join(work, "docker")}
		login := exec.Command("docker", "login", h.Addr, "-u", "admin", "--password-stdin")
		login.Env = append(os.Environ(), bn.env...)
		login.Stdin = strings.NewReader(adminPassword)
		if out, err := login.CombinedOutput(); err != nil {
			return fmt.Errorf("docker login %s: %w\n%s", h.Addr, err, out)
		}
		if _, err := bn.timed(o.hubctl, "org", "create", "deploybench", "--registry", h.Addr); err != nil {
			return err
		}
	}
	if err := bn.buildImages(h.Addr); err != nil {
		return err
	}
	where := "history and lock in a local state file and a lock container"
	if o.hub {
		where = "history and lock in the hub (deploy --hub), pulls with the hub's pull tokens"
	}
	fmt.Printf("deploybench: 2 replicas of a static Go HTTP server FROM scratch; %s; load %d req/s over %d connections on loopback; CPUs %d\n\n",
		where, o.rate, o.workers, runtime.NumCPU())

	hub, err := bn.hubctlSide()
	if err != nil {
		return err
	}
	// A failed peer still leaves hubctl's figures worth printing.
	compose, composeErr := bn.composeSide()
	if composeErr != nil {
		logf("docker-compose: %v", composeErr)
	}
	fmt.Println()
	fmt.Printf("%-34s %26s %26s %14s %14s\n", "operation", "all serve new: p50 p95 max", "command: p50 p95 max", "client CPU", "engine CPU")
	for _, r := range []result{hub.update, hub.cold, hub.rollback, compose.update, compose.cold} {
		if r.n == 0 {
			continue
		}
		fmt.Println(r.row())
	}
	fmt.Println()
	if compose.update.n > 0 && hub.update.n > 0 {
		fmt.Printf("update p50, hubctl / compose: all serve new %.2f, command %.2f\n",
			ratio(hub.update.serveP(50), compose.update.serveP(50)), ratio(hub.update.p(50), compose.update.p(50)))
	}
	if compose.cold.n > 0 && hub.cold.n > 0 {
		fmt.Printf("update p50 with the image not on the engine, hubctl / compose: all serve new %.2f, command %.2f\n",
			ratio(hub.cold.serveP(50), compose.cold.serveP(50)), ratio(hub.cold.p(50), compose.cold.p(50)))
	}
	fmt.Printf("failed requests: hubctl %d of %d (updates and rollbacks), compose %d of %d\n",
		hub.load.failed, hub.load.total, compose.load.failed, compose.load.total)
	for _, f := range hub.load.samples {
		fmt.Println("  hubctl failure:", f)
	}
	for _, f := range compose.load.samples {
		fmt.Println("  compose failure:", f)
	}
	return composeErr
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// buildImages builds the proxy image and v1, v2 of the service, and pushes the two to
// the hub at addr.
func (bn *bench) buildImages(addr string) error {
	logf("building the images")
	pdir := filepath.Join(bn.work, "proxy")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		return err
	}
	if err := command("", nil, "cp", bn.o.hubctl, filepath.Join(pdir, "hubctl")); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(pdir, "Dockerfile"), []byte("FROM scratch\nCOPY hubctl /hubctl\nENTRYPOINT [\"/hubctl\", \"proxy\", \"run\"]\n"), 0o644); err != nil {
		return err
	}
	bn.proxy = "deploybench-proxy:" + bn.id
	if err := bn.dockerBuild(pdir, bn.proxy); err != nil {
		return err
	}
	src := filepath.Join(bn.work, "web")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	for name, body := range map[string]string{"go.mod": "module web\n\ngo 1.22\n", "main.go": webSource,
		"Dockerfile": "FROM scratch\nCOPY web /web\nENTRYPOINT [\"/web\"]\n"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	env := []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + runtime.GOARCH, "GOWORK=off", "GOFLAGS=-trimpath"}
	for _, v := range []string{"v1", "v2"} {
		bn.answers[v] = v + "-" + bn.id
		if err := command(src, env, "go", "build", "-ldflags", "-X main.version="+bn.answers[v], "-o", "web", "."); err != nil {
			return err
		}
		ref := fmt.Sprintf("%s/deploybench/web-%s:%s", addr, bn.id, v)
		if err := bn.dockerBuild(src, ref); err != nil {
			return err
		}
		if err := command("", bn.env, "docker", "push", "-q", ref); err != nil {
			return err
		}
		bn.images[v] = ref
		if bn.ids[v] = output("docker", "image", "inspect", "-f", "{{.Id}}", ref); bn.ids[v] == "" {
			return fmt.Errorf("no image id of %s", ref)
		}
	}
	return nil
}

// unpull removes version v's image from the engine (every tag and digest of it), so
// the next update to v pulls it from the hub.
func (bn *bench) unpull(v string) error {
	_ = exec.Command("docker", "rmi", "-f", bn.ids[v]).Run()
	if exec.Command("docker", "image", "inspect", bn.ids[v]).Run() == nil {
		return fmt.Errorf("%s (%s) is still on the engine", bn.images[v], bn.ids[v])
	}
	return nil
}

func (bn *bench) dockerBuild(dir, ref string) error {
	return command(dir, []string{"DOCKER_BUILDKIT=0"}, "docker", "build", "-q", "--label", "deploybench="+bn.id, "-t", ref, ".")
}

// cleanup removes every Docker object of the run.
func (bn *bench) cleanup() {
	f := "label=dev.hubctl.service=" + bn.service
	if ids := output("docker", "ps", "-aq", "--filter", f); ids != "" {
		_ = exec.Command("docker", append([]string{"rm", "-f"}, strings.Fields(ids)...)...).Run()
	}
	for _, kind := range []string{"network", "volume"} {
		if ids := output("docker", kind, "ls", "-q", "--filter", f); ids != "" {
			_ = exec.Command("docker", append([]string{kind, "rm"}, strings.Fields(ids)...)...).Run()
		}
	}
	if _, err := os.Stat(filepath.Join(bn.work, "compose", "docker-compose.yml")); err == nil {
		c := exec.Command("docker-compose", "-p", bn.project, "down", "-t", "2")
		c.Dir = filepath.Join(bn.work, "compose")
		c.Env = append(os.Environ(), "WEB_IMAGE="+bn.images["v1"])
		_ = c.Run()
	}
	refs := []string{}
	if bn.proxy != "" {
		refs = append(refs, bn.proxy)
	}
	for _, r := range bn.images {
		refs = append(refs, r)
	}
	if ids := output("docker", "images", "-q", "--filter", "label=deploybench="+bn.id); ids != "" {
		refs = append(refs, strings.Fields(ids)...)
	}
	if len(refs) > 0 {
		_ = exec.Command("docker", append([]string{"rmi", "-f"}, refs...)...).Run()
	}
}

// spec writes the deploy file for version v.
func (bn *bench) spec(v string) error {
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
  deploy-timeout: 20s
  drain-timeout: 5s
  stop-timeout: 3s
`, bn.service, bn.images[v])
	return os.WriteFile(filepath.Join(bn.work, "deploy.yaml"), []byte(spec), 0o644)
}

// args are `hubctl deploy VERB` with the run's deploy file, state and hub.
func (bn *bench) args(verb ...string) []string {
	return append(append([]string{"deploy"}, verb...), "-f", filepath.Join(bn.work, "deploy.yaml"),
		"--state-dir", filepath.Join(bn.work, "state"), "--hub="+bn.hub)
}

func (bn *bench) deployArgs(verb ...string) []string {
	return append(bn.args(verb...), "--proxy-image", bn.proxy, "--proxy-publish", "127.0.0.1:0")
}

// side is one tool's figures.
type side struct {
	// cold are the updates whose image was not on the engine.
	update, cold, rollback result
	load                   loadResult
}

func other(v string) string {
	if v == "v1" {
		return "v2"
	}
	return "v1"
}

func (bn *bench) hubctlSide() (side, error) {
	s := side{update: result{name: "hubctl deploy update"}, cold: result{name: "hubctl deploy update, not pulled"},
		rollback: result{name: "hubctl deploy rollback"}}
	if err := bn.spec("v1"); err != nil {
		return s, err
	}
	logf("hubctl deploy up (v1)")
	if _, err := bn.timed(bn.o.hubctl, bn.deployArgs("up")...); err != nil {
		return s, err
	}
	defer func() {
		if _, err := bn.timed(bn.o.hubctl, bn.args("down")...); err != nil {
			logf("hubctl deploy down: %v", err)
		}
	}()
	url, err := bn.proxyURL()
	if err != nil {
		return s, err
	}
	urls := []string{url}
	if err := waitServing(urls, bn.answers["v1"], 30*time.Second); err != nil {
		return s, err
	}
	l := startLoad(urls, bn.o.rate, bn.o.workers, bn.answers)
	v := "v1"
	for i := range bn.o.updates {
		v = other(v)
		if err := bn.spec(v); err != nil {
			l.finish()
			return s, err
		}
		m, err := bn.switchTo(urls, v, bn.hubctlCmd(bn.o.hubctl, bn.deployArgs("update")...))
		if err != nil {
			l.finish()
			return s, fmt.Errorf("update %d: %w", i+1, err)
		}
		s.update.add(m)
		logf("hubctl update %d → %s: serving %v, done %v", i+1, v, m.serve.Round(time.Millisecond), m.wall.Round(time.Millisecond))
	}
	for i := range bn.o.unpulled {
		v = other(v)
		if err := bn.spec(v); err != nil {
			l.finish()
			return s, err
		}
		if err := bn.unpull(v); err != nil {
			l.finish()
			return s, err
		}
		m, err := bn.switchTo(urls, v, bn.hubctlCmd(bn.o.hubctl, bn.deployArgs("update")...))
		if err != nil {
			l.finish()
			return s, fmt.Errorf("update %d, not pulled: %w", i+1, err)
		}
		s.cold.add(m)
		logf("hubctl update %d → %s, not pulled: serving %v, done %v", i+1, v, m.serve.Round(time.Millisecond), m.wall.Round(time.Millisecond))
	}
	for i := range bn.o.rollbacks {
		// The default rollback target is the succeeded deploy before the last one:
		// the other version.
		v = other(v)
		m, err := bn.switchTo(urls, v, bn.hubctlCmd(bn.o.hubctl, bn.deployArgs("rollback")...))
		if err != nil {
			l.finish()
			return s, fmt.Errorf("rollback %d: %w", i+1, err)
		}
		s.rollback.add(m)
		logf("hubctl rollback %d → %s: serving %v, done %v", i+1, v, m.serve.Round(time.Millisecond), m.wall.Round(time.Millisecond))
	}
	s.load = l.finish()
	return s, nil
}

// proxyURL reads the published address of the service's proxy from `deploy status`.
func (bn *bench) proxyURL() (string, error) {
	out, err := bn.hubctlCmd(bn.o.hubctl, bn.args("status", "-o", "json")...).Output()
	if err != nil {
		return "", fmt.Errorf("hubctl deploy status: %w", err)
	}
	var st []struct {
		Containers []struct {
			Role      string   `json:"role"`
			Published []string `json:"published"`
		} `json:"containers"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return "", fmt.Errorf("hubctl deploy status: %w", err)
	}
	for _, h := range st {
		for _, c := range h.Containers {
			if c.Role == "proxy" && len(c.Published) > 0 {
				addr, _, _ := strings.Cut(c.Published[0], "->")
				return "http://" + addr + "/", nil
			}
		}
	}
	return "", fmt.Errorf("no published proxy in hubctl deploy status: %s", out)
}

// composeFile is the peer: the same two replicas, each published on its own loopback
// port (compose has no proxy in front of them), the image from $WEB_IMAGE.
const composeFile = `version: "2.4"
services:
  web1:
    image: ${WEB_IMAGE}
    ports: ["127.0.0.1:%d:8080"]
    stop_grace_period: 3s
    labels: {deploybench: "%s"}
  web2:
    image: ${WEB_IMAGE}
    ports: ["127.0.0.1:%d:8080"]
    stop_grace_period: 3s
    labels: {deploybench: "%s"}
`

func (bn *bench) composeSide() (side, error) {
	s := side{update: result{name: "docker-compose up -d"}, cold: result{name: "docker-compose up -d, not pulled"}}
	if _, err := exec.LookPath("docker-compose"); err != nil {
		logf("docker-compose is not installed (apt-get install -y docker-compose): no peer")
		return s, nil
	}
	dir := filepath.Join(bn.work, "compose")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return s, err
	}
	p1, p2 := freePort(), freePort()
	if p1 == 0 || p2 == 0 || p1 == p2 {
		return s, fmt.Errorf("no free loopback ports")
	}
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(fmt.Sprintf(composeFile, p1, bn.id, p2, bn.id)), 0o644); err != nil {
		return s, err
	}
	up := func(v string) *exec.Cmd {
		c := exec.Command("docker-compose", "-p", bn.project, "up", "-d", "--no-build")
		c.Dir = dir
		c.Env = append(append(os.Environ(), bn.env...), "WEB_IMAGE="+bn.images[v])
		return c
	}
	logf("docker-compose up -d (v1)")
	if _, err := bn.timedCmd(up("v1")); err != nil {
		return s, err
	}
	urls := []string{fmt.Sprintf("http://127.0.0.1:%d/", p1), fmt.Sprintf("http://127.0.0.1:%d/", p2)}
	if err := waitServing(urls, bn.answers["v1"], 30*time.Second); err != nil {
		return s, err
	}
	l := startLoad(urls, bn.o.rate, bn.o.workers, bn.answers)
	v := "v1"
	for i := range bn.o.updates {
		v = other(v)
		m, err := bn.switchTo(urls, v, up(v))
		if err != nil {
			l.finish()
			return s, fmt.Errorf("compose update %d: %w", i+1, err)
		}
		s.update.add(m)
		logf("compose update %d → %s: serving %v, done %v", i+1, v, m.serve.Round(time.Millisecond), m.wall.Round(time.Millisecond))
	}
	for i := range bn.o.unpulled {
		v = other(v)
		if err := bn.unpull(v); err != nil {
			l.finish()
			return s, err
		}
		m, err := bn.switchTo(urls, v, up(v))
		if err != nil {
			l.finish()
			return s, fmt.Errorf("compose update %d, not pulled: %w", i+1, err)
		}
		s.cold.add(m)
		logf("compose update %d → %s, not pulled: serving %v, done %v", i+1, v, m.serve.Round(time.Millisecond), m.wall.Round(time.Millisecond))
	}
	s.load = l.finish()
	return s, nil
}

// switchTo runs a command that moves the service to version v and measures both when
// every replica serves v (polled from the start, in parallel: hubctl's proxy switches
// before the old tasks are stopped, compose's containers serve once started) and when
// the command has returned.
func (bn *bench) switchTo(urls []string, v string, c *exec.Cmd) (measure, error) {
	start := time.Now()
	served := make(chan error, 1)
	var serve time.Duration
	go func() {
		err := waitServing(urls, bn.answers[v], 60*time.Second)
		serve = time.Since(start)
		served <- err
	}()
	m, err := bn.timedCmd(c)
	if err != nil {
		<-served
		return m, err
	}
	if err := <-served; err != nil {
		return m, err
	}
	m.serve = serve
	return m, nil
}

// measure is one timed operation: wall time, the client's CPU and the engine's.
type measure struct {
	wall, serve, clientCPU, engineCPU time.Duration
}

func (bn *bench) timed(name string, args ...string) (measure, error) {
	return bn.timedCmd(bn.hubctlCmd(name, args...))
}

// hubctlCmd is a command in the run's directory without the caller's HUBCTL_ variables.
func (bn *bench) hubctlCmd(name string, args ...string) *exec.Cmd {
	c := exec.Command(name, args...)
	c.Dir = bn.work
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HUBCTL_") {
			env = append(env, kv)
		}
	}
	c.Env = append(env, bn.env...)
	return c
}

func (bn *bench) timedCmd(c *exec.Cmd) (measure, error) {
	start := time.Now()
	out := &stampWriter{start: start, echo: bn.o.verbose}
	c.Stdout, c.Stderr = out, out
	e0 := benchhub.CPU(bn.dockerd)
	err := c.Run()
	m := measure{wall: time.Since(start), engineCPU: benchhub.CPU(bn.dockerd) - e0}
	if c.ProcessState != nil {
		m.clientCPU = c.ProcessState.UserTime() + c.ProcessState.SystemTime()
	}
	if err != nil {
		return m, fmt.Errorf("%s: %w\n%s", strings.Join(c.Args, " "), err, out.String())
	}
	return m, nil
}

// stampWriter keeps a command's output, each line prefixed with the time since start,
// and echoes it to stderr when echo is set.
type stampWriter struct {
	start time.Time
	echo  bool
	mu    sync.Mutex
	b     strings.Builder
	mid   bool
}

func (w *stampWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var s strings.Builder
	for _, line := range strings.SplitAfter(string(p), "\n") {
		if line == "" {
			continue
		}
		if !w.mid {
			fmt.Fprintf(&s, "%8.3fs  ", time.Since(w.start).Seconds())
		}
		s.WriteString(line)
		w.mid = !strings.HasSuffix(line, "\n")
	}
	w.b.WriteString(s.String())
	if w.echo {
		os.Stderr.WriteString(s.String())
	}
	return len(p), nil
}

func (w *stampWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// command runs a command with extra environment.
func command(dir string, env []string, name string, args ...string) error {
	c := exec.Command(name, args...)
	c.Dir = dir
	c.Env = append(os.Environ(), env...)
	// The output only matters when the command fails.
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func output(name string, args ...string) string {
	out, _ := exec.Command(name, args...).Output()
	return strings.TrimSpace(string(out))
}
