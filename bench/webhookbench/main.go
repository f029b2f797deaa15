// Command webhookbench measures hubctl's webhooks (issue 18, "Benchmark"): the time
// from a push's 201 to its manifest.pushed event reaching a fast receiver, on one hub
// (SQLite) and on three replicas (PostgreSQL, one shared blob directory); the events
// per second a backlog drains at; and what an enabled hook costs a push, against the
// same hubs with the hook turned off, in the same run. bench/README.md says how to
// read the figures.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hubctl/hubctl/bench/internal/benchhub"
)

type options struct {
	hubctl   string
	pushes   int
	workers  int
	rounds   int
	replicas int
	setups   []string
	interval time.Duration
	pg       string
	keep     bool
}

func main() {
	o := options{}
	var setups string
	flag.StringVar(&o.hubctl, "hubctl", "", "the hubctl `binary` (default: go build ./cmd/hubctl into the run's directory)")
	flag.IntVar(&o.pushes, "pushes", 300, "pushes per phase")
	flag.IntVar(&o.workers, "workers", 4, "pushes in flight")
	flag.IntVar(&o.rounds, "rounds", 2, "rounds of the hook-off and hook-on phases (their order alternates)")
	flag.IntVar(&o.replicas, "replicas", 3, "replicas of the postgres setup")
	flag.StringVar(&setups, "setups", "sqlite,postgres", "`list` of setups: sqlite (one hub), postgres (replicas)")
	flag.DurationVar(&o.interval, "interval", time.Second, "webhooks.interval of the hubs (the hub's default is 1s)")
	flag.StringVar(&o.pg, "pg", "", "a postgres:// `URL` of a server to create the database on (default: a throwaway cluster)")
	flag.BoolVar(&o.keep, "keep", false, "keep the run's directory (hub logs)")
	flag.Parse()
	o.setups = strings.Split(setups, ",")
	if o.pushes < 10 || o.workers < 1 || o.rounds < 1 || o.replicas < 1 {
		fmt.Fprintln(os.Stderr, "webhookbench: -pushes ≥ 10, -workers, -rounds and -replicas ≥ 1")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "webhookbench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "webhookbench: "+format+"\n", args...) }

func run(o options) error {
	work, done, err := benchhub.WorkDir("webhookbench", o.keep, logf)
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
	rc, err := startReceiver()
	if err != nil {
		return err
	}
	fmt.Printf("webhookbench: %d pushes per phase, %d in flight, %d rounds, webhooks.interval %s, CPUs %d\n\n",
		o.pushes, o.workers, o.rounds, o.interval, runtime.NumCPU())
	for _, s := range o.setups {
		var err error
		switch s {
		case "sqlite":
			err = runSetup(o, rc, work, "sqlite", "sqlite, 1 hub", 1, nil, nil)
		case "postgres":
			var pg *pgCluster
			server := o.pg
			if server == "" {
				if pg, err = startPostgres(); err != nil {
					return err
				}
				server = pg.URL("postgres")
			}
			dsn, err2 := createDatabase(server, fmt.Sprintf("webhookbench_%d", time.Now().UnixNano()))
			if err2 != nil {
				if pg != nil {
					pg.Stop()
				}
				return err2
			}
			shared := filepath.Join(work, "postgres-shared")
			env := []string{"HUBCTL_DB_PATH=" + dsn, "HUBCTL_AUTH_KEYS_DIR=" + filepath.Join(shared, "keys"),
				"HUBCTL_STORAGE_FILESYSTEM_ROOT=" + filepath.Join(shared, "blobs"),
				"HUBCTL_SECRETS_KEY=bench=d2ViaG9va2JlbmNoLXNlY3JldHMta2V5LTMyYnl0ZXM="}
			name := fmt.Sprintf("postgres, %d replicas", o.replicas)
			err = runSetup(o, rc, work, "postgres", name, o.replicas, env, pg)
			if pg != nil {
				pg.Stop()
			}
		default:
			err = fmt.Errorf("-setups: unknown setup %q (sqlite or postgres)", s)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// phase is what one phase measured.
type phase struct {
	push, put []time.Duration // whole push; the manifest PUT alone
	deliver   []time.Duration // 201 of the manifest PUT → arrival at the receiver
	wall      time.Duration
	hubCPU    float64 // seconds, every replica
	pgCPU     float64
	n         int
}

func (p *phase) add(q phase) {
	p.push = append(p.push, q.push...)
	p.put = append(p.put, q.put...)
	p.deliver = append(p.deliver, q.deliver...)
	p.wall += q.wall
	p.hubCPU += q.hubCPU
	p.pgCPU += q.pgCPU
	p.n += q.n
}

func runSetup(o options, rc *receiver, work, key, name string, n int, env []string, pg *pgCluster) error {
	logf("%s: starting", name)
	env = append(env, "HUBCTL_WEBHOOKS_ALLOW_ADDRESSES=127.0.0.1", "HUBCTL_WEBHOOKS_INTERVAL="+o.interval.String())
	dir := filepath.Join(work, key)
	hubs := make([]*hub, n)
	for i := range hubs {
		h, err := startHub(o.hubctl, filepath.Join(dir, fmt.Sprint("hub", i)), env)
		if err != nil {
			return err
		}
		hubs[i] = h
	}
	defer func() {
		for _, h := range hubs {
			h.Stop()
		}
	}()
	cli, err := newCLI(o.hubctl, filepath.Join(dir, "client"), hubs[0].Addr)
	if err != nil {
		return err
	}
	hook, err := cli.createHook(rc.url)
	if err != nil {
		return err
	}
	pgPID := 0
	if pg != nil {
		pgPID = pg.PID
	}
	layer := bytes.Repeat([]byte("webhookbench layer "), 64)
	var off, on phase
	for r := range o.rounds {
		for k := range 2 {
			hooked := (r+k)%2 == 1
			// The dispatcher fans an event out to the hooks enabled when it reads the
			// event (up to one interval after the push), not when it happened: let it
			// pass the previous phase's events before the hook is switched.
			time.Sleep(2*o.interval + 500*time.Millisecond)
			if err := cli.run("webhook", map[bool]string{true: "enable", false: "disable"}[hooked], hook); err != nil {
				return err
			}
			tag := fmt.Sprintf("%s-r%d-%s", key, r, map[bool]string{true: "on", false: "off"}[hooked])
			p, err := pushPhase(o, rc, hubs, pgPID, layer, tag, hooked)
			if err != nil {
				return err
			}
			if hooked {
				on.add(p)
			} else {
				off.add(p)
			}
			logf("%s: round %d, hook %s: push p50 %s", name, r+1, map[bool]string{true: "on", false: "off"}[hooked], benchhub.Percentile(p.push, 50))
		}
	}

	// A backlog: the hubs restarted with a one-hour interval dispatch nothing after
	// their first idle look; the pushes' events wait in the outbox until the hubs are
	// restarted with the normal interval, all at once, and drain it.
	time.Sleep(2*o.interval + 500*time.Millisecond)
	if err := cli.run("webhook", "enable", hook); err != nil {
		return err
	}
	slow := append(slices.Clone(env), "HUBCTL_WEBHOOKS_INTERVAL=1h")
	for i, h := range hubs {
		if hubs[i], err = h.Restart(o.hubctl, slow); err != nil {
			return err
		}
	}
	time.Sleep(2 * time.Second) // the first, idle, look of each deliverer
	if _, err := pushPhase(o, rc, hubs, pgPID, layer, key+"-backlog", false); err != nil {
		return err
	}
	early := rc.count(key + "-backlog")
	for _, h := range hubs {
		h.Stop()
	}
	cpu0 := pgCPU(pgPID)
	var wg sync.WaitGroup
	errs := make([]error, len(hubs))
	for i, h := range hubs {
		wg.Go(func() { hubs[i], errs[i] = startHub(o.hubctl, h.Data, env) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	ready := time.Now()
	hubCPU0 := 0.0
	for _, h := range hubs {
		hubCPU0 += benchhub.TreeCPU(h.PID()).Seconds()
	}
	if err := rc.wait(key+"-backlog", o.pushes, 5*time.Minute); err != nil {
		return err
	}
	first, last := rc.span(key + "-backlog")
	hubCPU := -hubCPU0
	for _, h := range hubs {
		hubCPU += benchhub.TreeCPU(h.PID()).Seconds()
	}
	drainPG := pgCPU(pgPID) - cpu0

	report(name, o, off, on)
	drained := o.pushes - early
	fmt.Printf("  backlog of %d events (%d arrived before the restart): drained at %.0f events/s first→last arrival "+
		"(%s from the replicas' readiness to the last); hub CPU %.2f ms/event, PostgreSQL %.2f ms/event\n\n",
		drained, early, float64(drained-1)/last.Sub(first).Seconds(), last.Sub(ready).Round(time.Millisecond),
		1000*hubCPU/float64(drained), 1000*drainPG/float64(drained))
	return nil
}

func pgCPU(pid int) float64 {
	if pid == 0 {
		return 0
	}
	return benchhub.TreeCPU(pid).Seconds()
}

// pushPhase pushes o.pushes distinct small images tagged tag-N from o.workers workers
// across hubs, and with hooked waits for their events at the receiver.
func pushPhase(o options, rc *receiver, hubs []*hub, pgPID int, layer []byte, tag string, hooked bool) (phase, error) {
	tok, err := token(hubs[0].Addr)
	if err != nil {
		return phase{}, err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.workers}}
	defer client.CloseIdleConnections()
	var (
		mu   sync.Mutex
		p    = phase{n: o.pushes}
		done = map[string]time.Time{}
		next atomic.Int64
		errc = make(chan error, o.workers)
		wg   sync.WaitGroup
	)
	cpu0 := 0.0
	for _, h := range hubs {
		cpu0 += benchhub.TreeCPU(h.PID()).Seconds()
	}
	pg0 := pgCPU(pgPID)
	start := time.Now()
	for range o.workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= o.pushes {
					return
				}
				t := fmt.Sprintf("%s-%d", tag, i)
				push, put, at, err := pushImage(client, "http://"+hubs[i%len(hubs)].Addr, tok, t, i, layer)
				if err != nil {
					errc <- err
					return
				}
				mu.Lock()
				p.push, p.put = append(p.push, push), append(p.put, put)
				done[t] = at
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	p.wall = time.Since(start)
	for _, h := range hubs {
		p.hubCPU += benchhub.TreeCPU(h.PID()).Seconds()
	}
	p.hubCPU -= cpu0
	p.pgCPU = pgCPU(pgPID) - pg0
	select {
	case err := <-errc:
		return p, err
	default:
	}
	if hooked {
		if err := rc.wait(tag, o.pushes, 2*time.Minute); err != nil {
			return p, err
		}
		for t, at := range done {
			p.deliver = append(p.deliver, rc.arrival(t).Sub(at))
		}
	}
	return p, nil
}

// pushImage pushes a distinct small image (its config names it) as admin/bench:tag:
// config, layer, manifest. It returns the whole push's time, the manifest PUT's, and
// when the PUT's 201 arrived.
func pushImage(c *http.Client, base, tok, tag string, n int, layer []byte) (time.Duration, time.Duration, time.Time, error) {
	digest := func(b []byte) string { s := sha256.Sum256(b); return "sha256:" + hex.EncodeToString(s[:]) }
	cfg := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{"Labels":{"tag":%q,"n":"%d"}}}`, tag, n)
	mf := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}]}`,
		digest(cfg), len(cfg), digest(layer), len(layer))
	send := func(method, url, ct string, body []byte) error {
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", ct)
		resp, err := c.Do(req)
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
	start := time.Now()
	for _, b := range [][]byte{cfg, layer} {
		if err := send("POST", base+"/v2/admin/bench/blobs/uploads/?digest="+digest(b), "application/octet-stream", b); err != nil {
			return 0, 0, time.Time{}, err
		}
	}
	putStart := time.Now()
	if err := send("PUT", base+"/v2/admin/bench/manifests/"+tag, "application/vnd.oci.image.manifest.v1+json", mf); err != nil {
		return 0, 0, time.Time{}, err
	}
	end := time.Now()
	return end.Sub(start), end.Sub(putStart), end, nil
}

// token gets a registry token for admin/bench from the hub's token service.
func token(addr string) (string, error) {
	req, _ := http.NewRequest("GET", "http://"+addr+"/token?service=hubctl&scope=repository:admin/bench:pull,push", nil)
	req.SetBasicAuth("admin", adminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var t struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&t); err != nil || t.Token == "" {
		return "", fmt.Errorf("token: %s: %v", resp.Status, err)
	}
	return t.Token, nil
}

// cli runs the hubctl client logged in as admin, in its own docker config directory.
type cli struct {
	bin, registry string
	env           []string
}

func newCLI(bin, dir, registry string) (*cli, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HUBCTL_") && !strings.HasPrefix(kv, "DOCKER_CONFIG=") {
			env = append(env, kv)
		}
	}
	c := &cli{bin: bin, registry: registry, env: append(env, "DOCKER_CONFIG="+dir)}
	cmd := exec.Command(bin, "login", registry, "-u", "admin", "--password-stdin")
	cmd.Env, cmd.Stdin = c.env, strings.NewReader(adminPassword+"\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("hubctl login: %v: %s", err, out)
	}
	return c, nil
}

func (c *cli) output(args ...string) ([]byte, error) {
	cmd := exec.Command(c.bin, append(args, "--registry", c.registry)...)
	cmd.Env = c.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("hubctl %s: %v: %s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out, nil
}

func (c *cli) run(args ...string) error { _, err := c.output(args...); return err }

func (c *cli) createHook(url string) (string, error) {
	out, err := c.output("webhook", "create", url, "--namespace", "admin", "--event", "manifest.pushed", "-o", "json")
	if err != nil {
		return "", err
	}
	var h struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(out, &h); err != nil || h.ID == "" {
		return "", fmt.Errorf("webhook create: %q", out)
	}
	return h.ID, nil
}

// receiver is a fast webhook receiver: it reads the body, notes when each tag's
// manifest.pushed first arrived, and answers 204 at once.
type receiver struct {
	url     string
	mu      sync.Mutex
	arrived map[string]time.Time
}

func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rc := &receiver{url: "http://" + ln.Addr().String() + "/hook", arrived: map[string]time.Time{}}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Type string `json:"type"`
			Data struct {
				Tag string `json:"tag"`
			} `json:"data"`
		}
		err := json.NewDecoder(r.Body).Decode(&b)
		now := time.Now()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		if _, ok := rc.arrived[b.Data.Tag]; !ok && b.Type == "manifest.pushed" {
			rc.arrived[b.Data.Tag] = now
		}
		rc.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	return rc, nil
}

func (rc *receiver) arrival(tag string) time.Time {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.arrived[tag]
}

// count is how many tags prefix-N arrived.
func (rc *receiver) count(prefix string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	n := 0
	for t := range rc.arrived {
		if strings.HasPrefix(t, prefix+"-") {
			n++
		}
	}
	return n
}

// span is the first and last arrival of the tags prefix-N.
func (rc *receiver) span(prefix string) (first, last time.Time) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for t, at := range rc.arrived {
		if !strings.HasPrefix(t, prefix+"-") {
			continue
		}
		if first.IsZero() || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	return first, last
}

func (rc *receiver) wait(prefix string, n int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for rc.count(prefix) < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d events %s-* arrived within %s", rc.count(prefix), n, prefix, limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func report(name string, o options, off, on phase) {
	fmt.Printf("%s (%d pushes per phase × %d rounds, %d in flight)\n", name, o.pushes, o.rounds, o.workers)
	fmt.Printf("  %-34s %14s %14s %8s\n", "", "hook off", "hook on", "on/off")
	row := func(what string, a, b float64) {
		fmt.Printf("  %-34s %14.2f %14.2f %8.3f\n", what, a, b, b/a)
	}
	f := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	row("push p50 (ms)", f(benchhub.Percentile(off.push, 50)), f(benchhub.Percentile(on.push, 50)))
	row("push p99 (ms)", f(benchhub.Percentile(off.push, 99)), f(benchhub.Percentile(on.push, 99)))
	row("manifest PUT p50 (ms)", f(benchhub.Percentile(off.put, 50)), f(benchhub.Percentile(on.put, 50)))
	row("manifest PUT p99 (ms)", f(benchhub.Percentile(off.put, 99)), f(benchhub.Percentile(on.put, 99)))
	row("pushes/s", float64(off.n)/off.wall.Seconds(), float64(on.n)/on.wall.Seconds())
	row("hub CPU per push (ms)", 1000*off.hubCPU/float64(off.n), 1000*on.hubCPU/float64(on.n))
	if off.pgCPU > 0 {
		row("PostgreSQL CPU per push (ms)", 1000*off.pgCPU/float64(off.n), 1000*on.pgCPU/float64(on.n))
	}
	fmt.Printf("  push 201 → event at the receiver: p50 %s ms, p99 %s ms, max %s ms (%d events)\n",
		ms(benchhub.Percentile(on.deliver, 50)), ms(benchhub.Percentile(on.deliver, 99)), ms(benchhub.Percentile(on.deliver, 100)), len(on.deliver))
}
