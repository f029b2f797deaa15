// Command webbench measures the web UI's pages at scale (issue 21, "Benchmark"): a real
// `hubctl serve` process on a store seeded with sqlstore's SeedScale (100,000
// repositories, 1,010,000 tags, ns1/web-1 holding 10,010), on SQLite and on
// PostgreSQL. For each page it reports time to first byte and total time (p50/p95),
// the page's HTML weight, and the CPU the hub (and PostgreSQL) spent per request beside
// the wall time. bench/README.md says how to read the figures.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hubctl/hubctl/bench/internal/benchhub"
	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/password"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
)

type options struct {
	hubctl   string
	requests int
	setups   []string
	pg       string
	keep     bool
}

func main() {
	o := options{}
	var setups string
	flag.StringVar(&o.hubctl, "hubctl", "", "the hubctl `binary` (default: go build ./cmd/hubctl into the run's directory)")
	flag.IntVar(&o.requests, "requests", 40, "timed requests per page (after 3 untimed)")
	flag.StringVar(&setups, "setups", "sqlite,postgres", "`list` of setups: sqlite, postgres")
	flag.StringVar(&o.pg, "pg", "", "a postgres:// `URL` of a server to create the database on (default: a throwaway cluster)")
	flag.BoolVar(&o.keep, "keep", false, "keep the run's directory (hub logs)")
	flag.Parse()
	o.setups = strings.Split(setups, ",")
	if o.requests < 2 {
		fmt.Fprintln(os.Stderr, "webbench: -requests ≥ 2")
		os.Exit(2)
	}
	// An interrupt stops the run between steps, so the hub and the cluster it started
	// are stopped and the run's directory removed.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "webbench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "webbench: "+format+"\n", args...) }

const (
	adminPassword = "webbench-admin-password"
	// user owns namespace ns1 (a hundred seeded repositories, ns1/web-1 among them),
	// so signed in it sees its own private repositories and the public tenth of the hub.
	user         = "ns1"
	userPassword = "webbench-ns1-password"
	repo         = "ns1/web-1"
)

func run(ctx context.Context, o options) error {
	work, done, err := benchhub.WorkDir("webbench", o.keep, logf)
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
	for _, setup := range o.setups {
		if err := runSetup(ctx, o, work, setup); err != nil {
			return fmt.Errorf("%s: %w", setup, err)
		}
	}
	return nil
}

func runSetup(ctx context.Context, o options, work, setup string) error {
	data := filepath.Join(work, setup)
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	var (
		st    *sqlstore.Store
		env   []string
		pgPID int
		err   error
	)
	switch setup {
	case "sqlite":
		st, err = sqlstore.OpenSQLite(ctx, filepath.Join(data, "hubctl.db"))
	case "postgres":
		server := o.pg
		if server == "" {
			pg, err := benchhub.StartPostgres("webbench")
			if err != nil {
				return err
			}
			defer pg.Stop()
			server, pgPID = pg.URL("postgres"), pg.PID
		}
		url, err := benchhub.CreateDatabase(server, fmt.Sprintf("webbench_%d", time.Now().UnixNano()))
		if err != nil {
			return err
		}
		env = []string{"HUBCTL_DB_PATH=" + url}
		st, err = sqlstore.OpenPostgres(ctx, url)
		if err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown setup %q (want sqlite or postgres)", setup)
	}
	if err != nil {
		return err
	}
	// The namespace's owner, made through the accounts store as `hubctl serve` makes
	// users, before the seed (a name that holds repositories is not given to a new
	// user); it signs in through the sign-in form below.
	hash, err := password.Hash(userPassword)
	if err == nil {
		_, err = st.CreateUser(ctx, accounts.User{Name: user, PasswordHash: hash})
	}
	if err != nil {
		st.Close()
		return fmt.Errorf("create user %s: %w", user, err)
	}
	logf("%s: seeding 100,000 repositories and 1,010,000 tags", setup)
	start := time.Now()
	_, err = st.SeedScale(ctx)
	st.Close()
	if err != nil {
		return err
	}
	seeded := time.Since(start)
	logf("%s: seeded in %s; starting hubctl serve", setup, seeded.Round(time.Second))
	start = time.Now()
	hub, err := benchhub.Start(o.hubctl, data, adminPassword, env)
	if err != nil {
		return err
	}
	defer hub.Stop()
	ready := time.Since(start)
	base := "http://" + hub.Addr

	index, child, err := pushIndex(base, user, userPassword, repo, "release")
	if err != nil {
		return fmt.Errorf("push the image: %w", err)
	}
	anon := newBrowser(base)
	owner := newBrowser(base)
	if err := owner.login(user, userPassword); err != nil {
		return err
	}
	admin := newBrowser(base)
	if err := admin.login("admin", adminPassword); err != nil {
		return err
	}
	pages := []struct {
		name string
		b    *browser
		path string
	}{
		{"sign-in page", anon, "/login"},
		{"explore, anonymous", anon, "/explore"},
		{"explore, signed in (ns1)", owner, "/explore"},
		{"explore, site admin", admin, "/explore"},
		{"explore ?q=billing, anonymous", anon, "/explore?q=billing"},
		{"explore ?q=web-1, signed in", owner, "/explore?q=web-1"},
		{"explore ?q=web&kind=chart, admin", admin, "/explore?q=web&kind=chart"},
		{"namespace ns1", owner, "/ns1"},
		{"ns1/web-1, by push time", owner, "/" + repo},
		{"ns1/web-1, by name", owner, "/" + repo + "?sort=name&order=asc"},
		{"ns1/web-1, by pull time", owner, "/" + repo + "?sort=pulled&order=desc"},
		{"ns1/web-1, by push time, page 2", owner, "/" + repo + "?sort=pushed&order=desc&page=2"},
		{"ns1/web-1, by name, page 100", owner, "/" + repo + "?sort=name&order=asc&page=100"},
		{"ns1/web-1, by pull time, last page", owner, "/" + repo + "?sort=pulled&order=desc&page=201"},
		{"ns1/web-1, glob build-99*", owner, "/" + repo + "?glob=build-99*"},
		{"tag page (index, 2 platforms)", owner, "/" + repo + "/-/tags/release"},
		{"manifest page (1 platform, layers)", owner, "/" + repo + "/-/manifests/" + child},
		{"tag page (seeded, {} payload)", owner, "/" + repo + "/-/tags/build-5000"},
		{"admin: audit log", admin, "/settings/admin/audit"},
		{"admin: users", admin, "/settings/admin/users"},
	}
	fmt.Printf("\n%s: seeded in %s, hub ready in %s, pushed %s:release (%s); %d timed requests a page, one at a time\n",
		setup, seeded.Round(time.Second), ready.Round(10*time.Millisecond), repo, index[:19], o.requests)
	cpuHeader := "hub CPU/req"
	if pgPID != 0 {
		cpuHeader = "hub+pg CPU/req"
	}
	fmt.Printf("| page | HTML | first byte p50 | p95 | total p50 | p95 | wall/req | %s | load (1 min) |\n|---|---|---|---|---|---|---|---|---|\n", cpuHeader)
	for _, p := range pages {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := p.b.measure(p.path, o.requests, hub.PID(), pgPID)
		if err != nil {
			return fmt.Errorf("%s (%s): %w", p.name, p.path, err)
		}
		fmt.Printf("| %s | %.1f KiB | %s | %s | %s | %s | %s | %s | %s |\n", p.name, float64(r.size)/1024,
			ms(benchhub.Percentile(r.ttfb, 50)), ms(benchhub.Percentile(r.ttfb, 95)),
			ms(benchhub.Percentile(r.total, 50)), ms(benchhub.Percentile(r.total, 95)),
			ms(r.wall/time.Duration(o.requests)), ms(r.cpu/time.Duration(o.requests)), loadavg())
	}
	for _, p := range []string{"/" + repo + "/-/tags/release", "/" + repo + "/-/manifests/" + child, "/" + repo} {
		page, total, err := owner.weight(p)
		if err != nil {
			return err
		}
		fmt.Printf("weight of %s: HTML %.1f KiB, with CSS and JS %.1f KiB (target under 100 KiB for the tag page)\n", p, float64(page)/1024, float64(total)/1024)
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// loadavg is the one-minute load average (the machine is shared: read every figure
// beside it).
func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

// result is one page's measurements.
type result struct {
	ttfb, total []time.Duration
	size        int
	wall, cpu   time.Duration // of all timed requests; cpu: the hub's, and PostgreSQL's when known
}

// measure GETs path 3 times untimed (caches, connections), then n times one after the
// other, each wanting 200.
func (b *browser) measure(path string, n, hubPID, pgPID int) (result, error) {
	var r result
	for range 3 {
		if _, _, _, _, err := b.get(path); err != nil {
			return r, err
		}
	}
	cpu := func() time.Duration { return benchhub.CPU(hubPID) + benchhub.TreeCPU(pgPID) }
	c0, w0 := cpu(), time.Now()
	for range n {
		ttfb, total, size, _, err := b.get(path)
		if err != nil {
			return r, err
		}
		r.ttfb, r.total, r.size = append(r.ttfb, ttfb), append(r.total, total), size
	}
	r.wall, r.cpu = time.Since(w0), cpu()-c0
	return r, nil
}

// get GETs path, wanting 200, and answers its time to first byte, total time (body
// read) and body.
func (b *browser) get(path string) (ttfb, total time.Duration, size int, body string, err error) {
	var first time.Time
	trace := &httptrace.ClientTrace{GotFirstResponseByte: func() { first = time.Now() }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", b.base+path, nil)
	if err != nil {
		return 0, 0, 0, "", err
	}
	start := time.Now()
	resp, err := b.c.Do(req)
	if err != nil {
		return 0, 0, 0, "", err
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	total = time.Since(start)
	if err != nil {
		return 0, 0, 0, "", err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, 0, 0, "", fmt.Errorf("GET %s: %s\n%.2000s", path, resp.Status, raw)
	}
	return first.Sub(start), total, len(raw), string(raw), nil
}
