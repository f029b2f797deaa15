// Command loadgen applies the mixed load of package load to one or more registries in
// turn and prints requests/s, p50/p99 per request kind, errors, and — given the server
// process ids — file descriptors, goroutines (hubctl's /metrics) and RSS before and
// after. bench/load.sh runs it against hubctl serve and the CNCF distribution registry.
//
//	go run ./bench/loadgen -target hubctl=http://127.0.0.1:5000 -pid hubctl=1234 \
//	    -metrics hubctl=http://127.0.0.1:9464/metrics -user admin -password-env PW \
//	    -clients 200 -duration 60s
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hubctl/hubctl/bench/loadgen/load"
)

// multi is a repeatable name=value flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func pairs(m multi) (names []string, values map[string]string, err error) {
	values = map[string]string{}
	for _, v := range m {
		k, val, ok := strings.Cut(v, "=")
		if !ok {
			return nil, nil, fmt.Errorf("%q: want NAME=VALUE", v)
		}
		names = append(names, k)
		values[k] = val
	}
	return names, values, nil
}

// report is one target's run.
type report struct {
	load.Result
	Before                load.Proc `json:"before_proc,omitzero"`
	After                 load.Proc `json:"after_proc,omitzero"`
	GoroutinesBefore      int       `json:"goroutines_before,omitempty"`
	GoroutinesAfter       int       `json:"goroutines_after,omitempty"`
	PeakRSSKiBDuringLoad  int64     `json:"peak_rss_kib,omitempty"`
	ScrapeMillis          float64   `json:"metrics_scrape_ms,omitempty"`
	ScrapeBytes           int       `json:"metrics_scrape_bytes,omitempty"`
	Name                  string    `json:"name"`
	LoadAverageAfterwards string    `json:"load_average,omitempty"`
}

func main() {
	var targets, pids, metricsURLs multi
	clients := flag.Int("clients", 200, "concurrent clients")
	duration := flag.Duration("duration", 60*time.Second, "how long the mixed load runs")
	user := flag.String("user", "", "user to sign in as (a %d in it with -accounts N: one of N accounts per client)")
	accounts := flag.Int("accounts", 1, "number of accounts the clients sign in as")
	pwEnv := flag.String("password-env", "LOADGEN_PASSWORD", "environment variable holding the password")
	caFile := flag.String("ca-file", "", "CA certificate to trust for https targets")
	jsonOut := flag.String("json", "", "write the reports as JSON to this file")
	repos := flag.Int("repos", 0, "repositories shared by the clients (default clients/10+1)")
	namespace := flag.String("namespace", "loadgen", "namespace of the repositories")
	flag.Var(&targets, "target", "NAME=URL of a registry (repeatable; run in turn)")
	flag.Var(&pids, "pid", "NAME=PID of the target's server process, for fds and RSS")
	flag.Var(&metricsURLs, "metrics", "NAME=URL of the target's Prometheus endpoint, for goroutines and the scrape cost")
	flag.Parse()
	if err := run(targets, pids, metricsURLs, *clients, *duration, *user, *accounts, os.Getenv(*pwEnv), *caFile, *jsonOut, *repos, *namespace); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(targets, pids, metricsURLs multi, clients int, duration time.Duration, user string, accounts int, password, caFile, jsonOut string, repos int, namespace string) error {
	names, urls, err := pairs(targets)
	if err != nil || len(names) == 0 {
		return fmt.Errorf("give -target NAME=URL (%v)", err)
	}
	_, pidOf, err := pairs(pids)
	if err != nil {
		return err
	}
	_, metricsOf, err := pairs(metricsURLs)
	if err != nil {
		return err
	}
	var tlsCfg *tls.Config
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(b)
		tlsCfg = &tls.Config{RootCAs: pool}
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	ctx := context.Background()
	var reports []report
	for _, name := range names {
		rep := report{Name: name}
		pid, _ := strconv.Atoi(pidOf[name])
		if pid > 0 {
			rep.Before, _ = load.ReadProc(pid)
		}
		if u := metricsOf[name]; u != "" {
			rep.GoroutinesBefore, _ = load.Goroutines(ctx, hc, u)
		}
		// Sample RSS while the load runs.
		stop := make(chan struct{})
		peak := make(chan int64, 1)
		go func() {
			var max int64
			t := time.NewTicker(250 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					peak <- max
					return
				case <-t.C:
					if pid > 0 {
						if p, err := load.ReadProc(pid); err == nil && p.RSSKiB > max {
							max = p.RSSKiB
						}
					}
				}
			}
		}()
		fmt.Fprintf(os.Stderr, "loadgen: %s: %d clients for %s\n", name, clients, duration)
		res, err := load.Run(ctx, load.Options{Target: urls[name], Clients: clients, Duration: duration, Username: user,
			Password: password, Accounts: accounts, TLS: tlsCfg, Repositories: repos, Namespace: namespace})
		close(stop)
		rep.PeakRSSKiBDuringLoad = <-peak
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		rep.Result = res
		if u := metricsOf[name]; u != "" {
			// The scrape cost on a server that has just served the load.
			const n = 20
			start := time.Now()
			for range n {
				resp, err := hc.Get(u)
				if err != nil {
					return err
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				rep.ScrapeBytes = len(b)
			}
			rep.ScrapeMillis = float64(time.Since(start).Microseconds()) / 1000 / n
			rep.GoroutinesAfter, _ = load.Settle(ctx, 30*time.Second, rep.GoroutinesBefore+8, func() (int, error) { return load.Goroutines(ctx, hc, u) })
		}
		if pid > 0 {
			fds, _ := load.Settle(ctx, 30*time.Second, rep.Before.FDs+8, func() (int, error) {
				p, err := load.ReadProc(pid)
				return p.FDs, err
			})
			rep.After, _ = load.ReadProc(pid)
			rep.After.FDs = fds
		}
		if b, err := os.ReadFile("/proc/loadavg"); err == nil {
			rep.LoadAverageAfterwards = strings.Join(strings.Fields(string(b))[:3], " ")
		}
		reports = append(reports, rep)
		printReport(os.Stdout, rep)
	}
	if len(reports) == 2 && reports[1].RequestsPerSecond > 0 {
		a, b := reports[0], reports[1]
		fmt.Printf("\n%s / %s: requests/s %.2f×, p99 %.1f ms vs %.1f ms\n", a.Name, b.Name,
			a.RequestsPerSecond/b.RequestsPerSecond, a.Overall.P99ms, b.Overall.P99ms)
	}
	if jsonOut != "" {
		b, _ := json.MarshalIndent(reports, "", "  ")
		if err := os.WriteFile(jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	for _, r := range reports {
		if r.Errors > 0 {
			return fmt.Errorf("%s: %d errors: %v", r.Name, r.Errors, r.ErrorSamples)
		}
	}
	return nil
}

func printReport(w io.Writer, r report) {
	fmt.Fprintf(w, "\n%s (%s): %d clients, %.1f s, %d requests, %.0f req/s, p50 %.1f ms, p99 %.1f ms, %d errors; %d pushes, %d pulls\n",
		r.Name, r.Target, r.Clients, r.Seconds, r.Requests, r.RequestsPerSecond, r.Overall.P50ms, r.Overall.P99ms, r.Errors, r.Pushes, r.Pulls)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind\trequests\tp50 ms\tp90 ms\tp99 ms\tmax ms\terrors\t")
	kinds := make([]string, 0, len(r.Kinds))
	for k := range r.Kinds {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		s := r.Kinds[k]
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t\n", k, s.Requests, s.P50ms, s.P90ms, s.P99ms, s.Maxms, s.Errors)
	}
	tw.Flush()
	if r.Before.FDs > 0 {
		fmt.Fprintf(w, "server: fds %d → %d, RSS peak during load %d MiB (VmHWM %d MiB)", r.Before.FDs, r.After.FDs, r.PeakRSSKiBDuringLoad>>10, r.After.HWMKiB>>10)
		if r.GoroutinesBefore > 0 {
			fmt.Fprintf(w, ", goroutines %d → %d", r.GoroutinesBefore, r.GoroutinesAfter)
		}
		fmt.Fprintln(w)
	}
	if r.ScrapeBytes > 0 {
		fmt.Fprintf(w, "/metrics scrape: %.2f ms, %d bytes\n", r.ScrapeMillis, r.ScrapeBytes)
	}
	if r.LoadAverageAfterwards != "" {
		fmt.Fprintf(w, "load average: %s\n", r.LoadAverageAfterwards)
	}
}
