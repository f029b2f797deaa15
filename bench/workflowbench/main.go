// Command workflowbench measures hubctl's workflow engine (issue 19, slice 5): the
// time from a push's 201 to the first step of the run it triggers being marked
// running, the runs per minute of a 3-job workflow (a → b → c), and the hub's RSS with
// 100 runs queued; the hub's CPU time is reported beside the wall time of each phase.
// It runs a real `hubctl serve` (SQLite, filesystem, token auth) with the Docker
// executor against the local Docker engine; the steps' image is busybox FROM scratch,
// built once (no image is pulled from anywhere). bench/README.md says how to read the
// figures.
package main

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hubctl/hubctl/bench/internal/benchhub"
)

const adminPassword = "workflowbench-admin"

type options struct {
	hubctl   string
	pushes   int
	runs     int
	queued   int
	network  string
	interval time.Duration
	keep     bool
	phases   string
	pg       string
}

func main() {
	var o options
	flag.StringVar(&o.hubctl, "hubctl", "", "the hubctl `binary` (default: go build ./cmd/hubctl into the run's directory)")
	flag.IntVar(&o.pushes, "pushes", 50, "pushes of the latency phase (one at a time)")
	flag.IntVar(&o.runs, "runs", 20, "runs of the 3-job workflow in the throughput phase")
	flag.IntVar(&o.queued, "queued", 100, "runs queued for the memory phase")
	flag.StringVar(&o.network, "network", "bridge", "workflows.docker.network of the hub: bridge (a network per job) or host")
	flag.DurationVar(&o.interval, "interval", time.Second, "workflows.interval of the hub (its default is 1s)")
	flag.BoolVar(&o.keep, "keep", false, "keep the run's directory (hub log)")
	flag.StringVar(&o.phases, "phases", "latency,throughput,memory,replicas", "`list` of phases to run")
	flag.StringVar(&o.pg, "pg", "", "a postgres:// `URL` of a server for the replicas phase (default: start a throwaway cluster)")
	flag.Parse()
	if o.pushes < 5 || o.runs < 1 || o.queued < 1 {
		fmt.Fprintln(os.Stderr, "workflowbench: -pushes ≥ 5, -runs and -queued ≥ 1")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "workflowbench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "workflowbench: "+format+"\n", args...) }

func run(o options) error {
	work, done, err := benchhub.WorkDir("workflowbench", o.keep, logf)
	if err != nil {
		return err
	}
	defer done()
	if o.hubctl == "" {
		logf("building hubctl")
		if o.hubctl, err = benchhub.BuildHubctl(work); err != nil {
			return err
		}
	}
	image, err := buildImage(work)
	if err != nil {
		return err
	}
	if strings.Contains(o.phases, "latency") || strings.Contains(o.phases, "throughput") || strings.Contains(o.phases, "memory") {
		if err := oneHub(o, work, image); err != nil {
			return err
		}
	}
	if strings.Contains(o.phases, "replicas") {
		return replicas(o, work, image)
	}
	return nil
}

// hubEnv is the workflow settings of every hub the benchmark starts.
func hubEnv(o options) []string {
	return []string{"HUBCTL_WORKFLOWS_EXECUTOR=docker", "HUBCTL_WORKFLOWS_DOCKER_NETWORK=" + o.network,
		"HUBCTL_WORKFLOWS_INTERVAL=" + o.interval.String(), "HUBCTL_WORKFLOWS_MAX_JOBS=4"}
}

// oneHub runs the latency, throughput and memory phases on one hub (SQLite).
func oneHub(o options, work, image string) error {
	h, err := startHub(o.hubctl, filepath.Join(work, "hub"), hubEnv(o))
	if err != nil {
		return err
	}
	defer h.Stop()
	c := &client{base: "http://" + h.Addr}
	fmt.Printf("workflowbench: hubctl serve (SQLite, Docker executor, network %s, workflows.interval %s, max_jobs 4), CPUs %d\n\n",
		o.network, o.interval, runtime.NumCPU())

	if strings.Contains(o.phases, "latency") {
		if err := latency(o, c, h, image); err != nil {
			return err
		}
	}
	if strings.Contains(o.phases, "throughput") {
		if err := throughput(o, c, h, image); err != nil {
			return err
		}
	}
	if strings.Contains(o.phases, "memory") {
		return memory(o, c, h, image)
	}
	return nil
}

// replicas runs two hubs on one PostgreSQL (and one blob directory, one key
// directory): pushes alternate between them; the latency of push → first step
// running, one at a time, and the throughput of the 3-job chain, pushed at once,
// with how many jobs each replica's engine ran.
func replicas(o options, work, image string) error {
	server := o.pg
	if server == "" {
		pg, err := benchhub.StartPostgres("workflowbench")
		if err != nil {
			return err
		}
		defer pg.Stop()
		server = pg.URL("postgres")
	}
	dsn, err := benchhub.CreateDatabase(server, fmt.Sprintf("workflowbench_%d", time.Now().UnixNano()))
	if err != nil {
		return err
	}
	shared := filepath.Join(work, "replicas-shared")
	env := append(hubEnv(o), "HUBCTL_DB_PATH="+dsn, "HUBCTL_AUTH_KEYS_DIR="+filepath.Join(shared, "keys"),
		"HUBCTL_STORAGE_FILESYSTEM_ROOT="+filepath.Join(shared, "blobs"),
		"HUBCTL_SECRETS_KEY=bench=d29ya2Zsb3diZW5jaC1zZWNyZXRzLWtleS0zMmJ5dGU=")
	var hubs [2]*hub
	var cs [2]*client
	for i := range hubs {
		// One at a time: the first migrates the database and makes the admin.
		if hubs[i], err = startHub(o.hubctl, filepath.Join(work, fmt.Sprint("replica", i)), env); err != nil {
			return err
		}
		defer hubs[i].Stop()
		cs[i] = &client{base: "http://" + hubs[i].Addr}
	}
	fmt.Printf("workflowbench: 2 × hubctl serve on one PostgreSQL (Docker executor, network %s, workflows.interval %s, max_jobs 4 each)\n\n",
		o.network, o.interval)
	cpu := func() float64 { return benchhub.CPU(hubs[0].PID()).Seconds() + benchhub.CPU(hubs[1].PID()).Seconds() }

	if err := cs[0].apply("lat", fmt.Sprintf(latencyFlow, image)); err != nil {
		return err
	}
	n := max(o.pushes/2, 5)
	cpu0, wall0 := cpu(), time.Now()
	lat, err := pushLatencies(cs[:], n)
	if err != nil {
		return err
	}
	used, wall := cpu()-cpu0, time.Since(wall0)
	slices.Sort(lat)
	fmt.Printf("replicas: push 201 → first step running (%d pushes alternating, one at a time): p50 %s  p95 %s  max %s\n",
		n, ms(benchhub.Percentile(lat, 50)), ms(benchhub.Percentile(lat, 95)), ms(lat[len(lat)-1]))
	fmt.Printf("  phase: wall %.1f s, hubs' CPU %.2f s (%.1f ms per run)\n\n", wall.Seconds(), used, used*1000/float64(n))

	if err := cs[0].apply("chain", fmt.Sprintf(chainFlow, image)); err != nil {
		return err
	}
	cpu0, wall0 = cpu(), time.Now()
	for i := range o.runs {
		if _, err := cs[i%2].push(fmt.Sprintf("chain-%d", i), 1000+i); err != nil {
			return err
		}
	}
	if err := cs[1].waitFinished("chain", o.runs, 30*time.Minute); err != nil {
		return err
	}
	used, wall = cpu()-cpu0, time.Since(wall0)
	owners, err := jobOwners(dsn, "chain")
	if err != nil {
		return err
	}
	fmt.Printf("replicas: 3-job workflow, %d runs pushed at once (alternating): %.1f runs/min (%.1f jobs/min); jobs run per replica: %s\n",
		o.runs, float64(o.runs)/wall.Minutes(), 3*float64(o.runs)/wall.Minutes(), owners)
	fmt.Printf("  phase: wall %.1f s, hubs' CPU %.2f s (%.1f ms per run)\n\n", wall.Seconds(), used, used*1000/float64(o.runs))
	return nil
}

// pushLatencies pushes n tags one at a time, to the hubs of clients in turn, each
// once the run before has finished (so every push finds a free job slot), and
// answers each push's time until its run's first step ran, in push order.
func pushLatencies(clients []*client, n int) ([]time.Duration, error) {
	var lat []time.Duration
	for i := range n {
		c := clients[i%len(clients)]
		at, err := c.push(fmt.Sprintf("lat-%d", i), i)
		if err != nil {
			return nil, err
		}
		started, err := c.firstStepStarted("lat", i+1, 60*time.Second)
		if err != nil {
			return nil, err
		}
		lat = append(lat, started.Sub(at))
		if err := c.waitIdle("lat", i+1, 120*time.Second); err != nil {
			return nil, err
		}
	}
	return lat, nil
}

func latency(o options, c *client, h *hub, image string) error {
	// Latency: one push at a time on an idle hub; the next once the run has finished,
	// so every push finds a free job slot.
	if err := c.apply("lat", fmt.Sprintf(latencyFlow, image)); err != nil {
		return err
	}
	cpu0, wall0 := benchhub.CPU(h.PID()).Seconds(), time.Now()
	lat, err := pushLatencies([]*client{c}, o.pushes)
	if err != nil {
		return err
	}
	cpu, wall := benchhub.CPU(h.PID()).Seconds()-cpu0, time.Since(wall0)
	slices.Sort(lat)
	fmt.Printf("push 201 → first step running (%d pushes, one at a time): p50 %s  p95 %s  max %s\n",
		o.pushes, ms(benchhub.Percentile(lat, 50)), ms(benchhub.Percentile(lat, 95)), ms(lat[len(lat)-1]))
	fmt.Printf("  phase: wall %.1f s, hub CPU %.2f s (%.1f ms per run)\n\n", wall.Seconds(), cpu, cpu*1000/float64(o.pushes))
	return nil
}

func throughput(o options, c *client, h *hub, image string) error {
	// Throughput: runs of a 3-job chain, all pushed at once.
	if err := c.apply("chain", fmt.Sprintf(chainFlow, image)); err != nil {
		return err
	}
	cpu0, wall0 := benchhub.CPU(h.PID()).Seconds(), time.Now()
	for i := range o.runs {
		if _, err := c.push(fmt.Sprintf("chain-%d", i), 1000+i); err != nil {
			return err
		}
	}
	if err := c.waitFinished("chain", o.runs, 30*time.Minute); err != nil {
		return err
	}
	cpu, wall := benchhub.CPU(h.PID()).Seconds()-cpu0, time.Since(wall0)
	fmt.Printf("3-job workflow (a → b → c, one step each), %d runs pushed at once: %.1f runs/min (%.1f jobs/min)\n",
		o.runs, float64(o.runs)/wall.Minutes(), 3*float64(o.runs)/wall.Minutes())
	fmt.Printf("  phase: wall %.1f s, hub CPU %.2f s (%.1f ms per run)\n\n", wall.Seconds(), cpu, cpu*1000/float64(o.runs))
	return nil
}

func memory(o options, c *client, h *hub, image string) error {
	// Memory: one job runs (sleep), the rest wait in the queue.
	if err := c.apply("slow", fmt.Sprintf(slowFlow, image)); err != nil {
		return err
	}
	rss0 := benchhub.RSS(h.PID())
	cpu0, wall0 := benchhub.CPU(h.PID()).Seconds(), time.Now()
	for i := range o.queued {
		if _, err := c.push(fmt.Sprintf("slow-%d", i), 5000+i); err != nil {
			return err
		}
	}
	if err := c.waitCount("slow", o.queued, 120*time.Second); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	rss1 := benchhub.RSS(h.PID())
	cpu, wall := benchhub.CPU(h.PID()).Seconds()-cpu0, time.Since(wall0)
	fmt.Printf("%d runs queued (4 running, the rest queued): hub RSS %.1f MiB, %.1f MiB before the pushes\n",
		o.queued, rss1/1024, rss0/1024)
	fmt.Printf("  phase: wall %.1f s, hub CPU %.2f s\n", wall.Seconds(), cpu)
	logf("cancelling the queued runs")
	return c.cancelAll("slow")
}

const latencyFlow = `name: lat
on:
  push:
    repositories: [admin/bench]
    tags: ["lat-*"]
jobs:
  a:
    image: %s
    steps:
      - run: "true"
`

const chainFlow = `name: chain
on:
  push:
    repositories: [admin/bench]
    tags: ["chain-*"]
jobs:
  a:
    image: %[1]s
    steps:
      - run: "true"
  b:
    image: %[1]s
    needs: [a]
    steps:
      - run: "true"
  c:
    image: %[1]s
    needs: [b]
    steps:
      - run: "true"
`

const slowFlow = `name: slow
on:
  push:
    repositories: [admin/bench]
    tags: ["slow-*"]
jobs:
  a:
    image: %s
    steps:
      - run: sleep 600
`

// buildImage builds busybox FROM scratch with the classic builder, once per busybox.
func buildImage(work string) (string, error) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return "", fmt.Errorf("busybox not found (apt-get install -y busybox-static): %w", err)
	}
	bin, err := os.ReadFile(bb)
	if err != nil {
		return "", err
	}
	dockerfile := "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"
	sum := sha256.Sum256(append(bin, dockerfile...))
	ref := "hubctl-bench/busybox:" + hex.EncodeToString(sum[:])[:16]
	if exec.Command("docker", "image", "inspect", ref).Run() == nil {
		return ref, nil
	}
	dir := filepath.Join(work, "image")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "busybox"), bin, 0o755); err != nil {
		return "", err
	}
	cmd := exec.Command("docker", "build", "-q", "-t", ref, dir)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("docker build: %v: %s", err, out)
	}
	return ref, nil
}

// hub is one `hubctl serve` process.
type hub = benchhub.Hub

func startHub(bin, data string, env []string) (*hub, error) {
	return benchhub.Start(bin, data, adminPassword, env)
}

// client talks to the hub: the registry with a token, the hub API as admin.
type client struct {
	base  string
	tok   string
	tokAt time.Time
}

func (c *client) api(method, path string, body []byte, out any) error {
	// A bearer token, not the password: a password check costs the hub tens of
	// milliseconds of CPU, which the polling would add to every figure.
	tok, err := c.token()
	if err != nil {
		return err
	}
	req, _ := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/yaml")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s %s", method, path, resp.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func (c *client) apply(name, yaml string) error {
	return c.api("PUT", "/api/v1/workflows/admin/"+name, []byte(yaml), nil)
}

type runView struct {
	ID         int64  `json:"id"`
	Number     int    `json:"number"`
	State      string `json:"state"`
	FinishedAt string `json:"finishedAt"`
	Jobs       []struct {
		State string `json:"state"`
		Steps []struct {
			StartedAt string `json:"startedAt"`
		} `json:"steps"`
	} `json:"jobs"`
}

func (c *client) runs(wf string, limit int) ([]runView, error) {
	var out []runView
	err := c.api("GET", fmt.Sprintf("/api/v1/runs?workflow=admin/%s&limit=%d", wf, limit), nil, &out)
	return out, err
}

// firstStepStarted waits for the n-th run of wf and returns when its first step was
// marked running (the database's clock, the same host's).
func (c *client) firstStepStarted(wf string, n int, limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		rs, err := c.runs(wf, 1)
		if err != nil {
			return time.Time{}, err
		}
		if len(rs) == 1 && rs[0].Number >= n {
			var r runView
			if err := c.api("GET", "/api/v1/runs/"+strconv.FormatInt(rs[0].ID, 10), nil, &r); err != nil {
				return time.Time{}, err
			}
			if len(r.Jobs) > 0 && len(r.Jobs[0].Steps) > 0 && r.Jobs[0].Steps[0].StartedAt != "" {
				return time.Parse(time.RFC3339Nano, r.Jobs[0].Steps[0].StartedAt)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("run %d of %s: no step started within %s", n, wf, limit)
}

// jobOwners counts the jobs of workflow wf by the engine that ran them, from the
// database (the API does not show a job's owner).
func jobOwners(dsn, wf string) (string, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return "", err
	}
	defer db.Close()
	rows, err := db.Query(`SELECT j.owner, count(*) FROM workflow_jobs j JOIN workflow_runs r ON r.id = j.run_id
		JOIN workflows w ON w.id = r.workflow_id WHERE w.name = $1 GROUP BY j.owner ORDER BY j.owner`, wf)
	if err != nil {
		return "", fmt.Errorf("jobs per replica: %w", err)
	}
	defer rows.Close()
	var parts []string
	for rows.Next() {
		var owner string
		var n int
		if err := rows.Scan(&owner, &n); err != nil {
			return "", err
		}
		parts = append(parts, fmt.Sprintf("%s %d", owner, n))
	}
	return strings.Join(parts, ", "), rows.Err()
}

func finished(r runView) bool { return r.FinishedAt != "" }

func (c *client) waitFinished(wf string, n int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		rs, err := c.runs(wf, n)
		if err != nil {
			return err
		}
		done := 0
		for _, r := range rs {
			if finished(r) {
				if r.State != "succeeded" {
					return fmt.Errorf("run %d of %s ended %s", r.ID, wf, r.State)
				}
				done++
			}
		}
		if done >= n {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s: %d runs not finished within %s", wf, n, limit)
}

// waitIdle waits for the n runs of wf to finish, so the next phase starts on an idle hub.
func (c *client) waitIdle(wf string, n int, limit time.Duration) error {
	return c.waitFinished(wf, n, limit)
}

func (c *client) waitCount(wf string, n int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		rs, err := c.runs(wf, n)
		if err != nil {
			return err
		}
		if len(rs) >= n {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s: fewer than %d runs within %s", wf, n, limit)
}

func (c *client) cancelAll(wf string) error {
	rs, err := c.runs(wf, 200)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if !finished(r) {
			_ = c.api("POST", "/api/v1/runs/"+strconv.FormatInt(r.ID, 10)+"/cancel", nil, nil)
		}
	}
	// Wait until every run has ended, so the engine has removed the jobs' containers:
	// a hub stopped gracefully leaves a running job's containers for the next engine
	// to re-attach to, which here would be none.
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		rs, err := c.runs(wf, 200)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(rs, func(r runView) bool { return !finished(r) }) {
			return nil
		}
	}
	return fmt.Errorf("%s: runs still not finished 2 minutes after their cancel", wf)
}

// push pushes a distinct small image (config, 1 KiB layer, manifest by tag) to
// admin/bench and returns when the manifest PUT's 201 arrived.
func (c *client) push(tag string, n int) (time.Time, error) {
	if _, err := c.token(); err != nil {
		return time.Time{}, err
	}
	digest := func(b []byte) string { s := sha256.Sum256(b); return "sha256:" + hex.EncodeToString(s[:]) }
	layer := bytes.Repeat([]byte{byte(n)}, 1024)
	cfg := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{"Labels":{"tag":%q,"n":"%d"}}}`, tag, n)
	mf := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}]}`,
		digest(cfg), len(cfg), digest(layer), len(layer))
	send := func(method, url, ct string, body []byte) error {
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+c.tok)
		req.Header.Set("Content-Type", ct)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("%s %s: %s %s", method, url, resp.Status, b)
		}
		return nil
	}
	for _, b := range [][]byte{cfg, layer} {
		if err := send("POST", c.base+"/v2/admin/bench/blobs/uploads/?digest="+digest(b), "application/octet-stream", b); err != nil {
			return time.Time{}, err
		}
	}
	if err := send("PUT", c.base+"/v2/admin/bench/manifests/"+tag, "application/vnd.oci.image.manifest.v1+json", mf); err != nil {
		return time.Time{}, err
	}
	return time.Now(), nil
}

// token is a registry token of admin (pull and push on admin/bench), which the hub
// API takes too, fetched again before the hub's 5-minute lifetime ends.
func (c *client) token() (string, error) {
	if c.tok != "" && time.Since(c.tokAt) < 2*time.Minute {
		return c.tok, nil
	}
	req, _ := http.NewRequest("GET", c.base+"/token?service=hubctl&scope=repository:admin/bench:pull,push", nil)
	req.SetBasicAuth("admin", adminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	var t struct {
		Token string `json:"token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&t)
	resp.Body.Close()
	if err != nil || t.Token == "" {
		return "", fmt.Errorf("token: %s: %v", resp.Status, err)
	}
	c.tok, c.tokAt = t.Token, time.Now()
	return c.tok, nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }
