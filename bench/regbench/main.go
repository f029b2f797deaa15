// Command regbench measures OCI distribution registries side by side: blob push
// (monolithic and chunked) and pull throughput at several parallelisms, and small
// manifest HEAD/GET request rates. It speaks the raw distribution API with net/http, so
// every registry is measured by the same client code, and it alternates between the
// registries operation by operation so that noise on a shared machine hits all alike.
//
// With -pid it measures instead how much memory the registry process (hubctl serve)
// uses while a large blob streams in and out; see rss.go.
//
// It is a benchmark, not a test: bench/run.sh starts the registries and runs it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

type options struct {
	targets  []*target
	blobs    int
	size     int64
	chunk    int64
	parallel []int
	requests int
	workers  int
	rounds   int
	duration time.Duration
	mono     string
	jsonPath string
	check    bool
	goals    string
	sync     bool
	drop     bool

	pid     int
	pids    map[string]int // server process per target name, for CPU accounting
	backend []int          // processes every target relies on (S3 server, database)
	rssSize int64
	every   time.Duration
}

func main() {
	opts, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "regbench:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	if opts.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.duration)
		defer cancel()
	}
	var rep *report
	if opts.pid > 0 {
		rep, err = runRSS(ctx, opts)
	} else {
		rep, err = runThroughput(ctx, opts)
	}
	if rep != nil {
		if werr := rep.write(os.Stdout, opts); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "regbench:", err)
		os.Exit(1)
	}
	if opts.check && rep != nil && !rep.Pass {
		os.Exit(3)
	}
}

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("regbench", flag.ContinueOnError)
	var (
		targets  = fs.String("targets", "", "registries to measure, `name=URL,…`; the first is the candidate, ratios are first/other")
		size     = fs.String("size", "64MiB", "blob `size`")
		chunk    = fs.String("chunk", "8MiB", "PATCH `size` of chunked uploads")
		parallel = fs.String("parallel", "1,4", "parallelisms of push and pull, `list`")
		rssSize  = fs.String("rss-size", "1GiB", "blob `size` streamed in and out with -pid")
		pids     = fs.String("pids", "", "server processes, `name=PID,…` (names as in -targets): report their CPU time per unit of work")
		backend  = fs.String("backend-pids", "", "`PID,…` of processes the targets share (an S3 server, a database): report their CPU time per unit of work of each target")
		o        = &options{}
	)
	fs.IntVar(&o.blobs, "blobs", 8, "blobs pushed and pulled per operation")
	fs.IntVar(&o.requests, "requests", 20000, "requests per small-request operation")
	fs.IntVar(&o.workers, "workers", 8, "concurrent workers of the small-request loop")
	fs.IntVar(&o.rounds, "rounds", 1, "repeat everything this many times and report the median")
	fs.DurationVar(&o.duration, "duration", 30*time.Minute, "stop after this long and report what was measured (0: no cap)")
	fs.StringVar(&o.mono, "mono", "auto", "monolithic push: post (POST ?digest= with the body), put (POST, then PUT ?digest= with the body), auto (post where the registry supports it)")
	fs.StringVar(&o.jsonPath, "json", "", "also write the results as JSON to `file` (- for stdout instead of the table)")
	fs.BoolVar(&o.sync, "sync", true, "sync(2) before each timed operation so no write-back from the previous one overlaps it")
	fs.BoolVar(&o.drop, "drop-caches", true, "with -sync, also drop the clean page cache before each push (Linux, as root) so pushes write into reused memory")
	fs.BoolVar(&o.check, "check", false, "compare with the targets of -goals and exit 3 when one is missed")
	fs.StringVar(&o.goals, "goals", "issue2", "targets -check applies: issue2 (filesystem storage) or issue4 (S3 storage)")
	fs.IntVar(&o.pid, "pid", 0, "measure the memory of process `pid` (the first target) while streaming -rss-size in and out")
	fs.DurationVar(&o.every, "sample", 50*time.Millisecond, "memory sampling `interval` with -pid")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if _, ok := goalSets[o.goals]; !ok {
		return nil, fmt.Errorf("-goals %q: want issue2 or issue4", o.goals)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if o.size, err = parseSize(*size); err != nil {
		return nil, err
	}
	if o.chunk, err = parseSize(*chunk); err != nil {
		return nil, err
	}
	if o.rssSize, err = parseSize(*rssSize); err != nil {
		return nil, err
	}
	for _, p := range strings.Split(*parallel, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 || n > 64 {
			return nil, fmt.Errorf("-parallel: %q is not a count between 1 and 64", p)
		}
		o.parallel = append(o.parallel, n)
	}
	switch {
	case o.blobs < 1 || o.blobs > 1024:
		return nil, errors.New("-blobs must be between 1 and 1024")
	case o.requests < 1 || o.workers < 1 || o.workers > 256:
		return nil, errors.New("-requests must be positive and -workers between 1 and 256")
	case o.rounds < 1 || o.rounds > 100:
		return nil, errors.New("-rounds must be between 1 and 100")
	case o.chunk < 1:
		return nil, errors.New("-chunk must be positive")
	case o.mono != "auto" && o.mono != "post" && o.mono != "put":
		return nil, fmt.Errorf("-mono %q: want auto, post or put", o.mono)
	case o.every <= 0:
		return nil, errors.New("-sample must be positive")
	}
	conns := max(o.workers, slices.Max(o.parallel))
	for _, kv := range strings.Split(*targets, ",") {
		name, raw, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("-targets: %q is not name=URL", kv)
		}
		t, err := newTarget(name, raw, conns)
		if err != nil {
			return nil, err
		}
		o.targets = append(o.targets, t)
	}
	o.pids = map[string]int{}
	if *pids != "" {
		for _, kv := range strings.Split(*pids, ",") {
			name, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			pid, err := strconv.Atoi(v)
			if !ok || err != nil || pid <= 0 {
				return nil, fmt.Errorf("-pids: %q is not name=PID", kv)
			}
			o.pids[name] = pid
		}
	}
	if *backend != "" {
		for _, v := range strings.Split(*backend, ",") {
			pid, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || pid <= 0 {
				return nil, fmt.Errorf("-backend-pids: %q is not a PID", v)
			}
			o.backend = append(o.backend, pid)
		}
	}
	if o.pid == 0 && len(o.targets) < 1 {
		return nil, errors.New("-targets: need at least one registry")
	}
	return o, nil
}

// parseSize reads 1234, 64KiB, 8MiB, 1GiB (K/M/G and KB/MB/GB are read as binary too).
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mul    int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}}
	mul := int64(1)
	num := strings.TrimSpace(s)
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, mul = strings.TrimSuffix(num, u.suffix), u.mul
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/mul {
		return 0, fmt.Errorf("%q is not a size like 64MiB", s)
	}
	return n * mul, nil
}

// measurement is one operation on one target in one round.
type measurement struct {
	Op      string  `json:"op"`
	Target  string  `json:"target"`
	Round   int     `json:"round"`
	Unit    string  `json:"unit"` // MiB/s or req/s
	Value   float64 `json:"value"`
	Bytes   int64   `json:"bytes,omitempty"`
	Count   int     `json:"count"`
	Seconds float64 `json:"seconds"`
	Method  string  `json:"method,omitempty"`
	P50ms   float64 `json:"p50_ms,omitempty"`
	P99ms   float64 `json:"p99_ms,omitempty"`
	// ServerCPU is the CPU seconds the target's server process used during the
	// operation (with -pids).
	ServerCPU float64 `json:"server_cpu_s,omitempty"`
	// BackendCPU is the CPU seconds the shared processes used during the operation
	// (with -backend-pids): what serving this target cost the S3 server and database.
	BackendCPU float64 `json:"backend_cpu_s,omitempty"`
	// ClientCPU is the CPU seconds regbench itself used during the operation: on a
	// machine the client shares with the servers, its cost bounds the ratios too.
	ClientCPU float64 `json:"client_cpu_s,omitempty"`
}

const repoBlobs, repoSmall, smallTag = "regbench/blobs", "regbench/small", "bench"

// runThroughput runs every operation on every target, round by round. Within an
// operation the targets take turns, and the first to go rotates, so a slow spell of
// the machine does not always fall on the same registry.
func runThroughput(ctx context.Context, o *options) (*report, error) {
	start := time.Now()
	rep := &report{Mode: "throughput", Blobs: o.blobs, Size: o.size, Chunk: o.chunk, Requests: o.requests, Workers: o.workers, Rounds: o.rounds}
	for _, t := range o.targets {
		rep.Targets = append(rep.Targets, t.name)
		defer t.close()
	}
	cs, err := newContentSet(o.size)
	if err != nil {
		return nil, err
	}
	tiny, err := newContentSet(1024)
	if err != nil {
		return nil, err
	}
	manifestSize := map[string]int{}
	for _, t := range o.targets {
		if err := t.ping(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		switch o.mono {
		case "post":
			t.singlePost = true
		case "auto":
			b, err := tiny.newBlob()
			if err != nil {
				return nil, err
			}
			if err := t.probeSinglePost(ctx, repoBlobs, b); err != nil {
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
		}
		n, err := t.pushSmallImage(ctx, repoSmall, smallTag, tiny)
		if err != nil {
			return nil, fmt.Errorf("%s: push the small image: %w", t.name, err)
		}
		manifestSize[t.name] = n
	}

	type op struct {
		name string
		// prepare, if set, runs before the operation, outside its timing and CPU accounting.
		prepare func(ctx context.Context, t *target) error
		run     func(ctx context.Context, t *target) (measurement, error)
	}
	pushed := map[string][]*blob{}
	var ops []op
	for _, kind := range []string{"monolithic", "chunked"} {
		for _, p := range o.parallel {
			ops = append(ops, op{name: fmt.Sprintf("push %s ×%d", kind, p), run: func(ctx context.Context, t *target) (measurement, error) {
				bs, err := cs.newBlobs(o.blobs)
				if err != nil {
					return measurement{}, err
				}
				push := func(ctx context.Context, b *blob) error { return t.pushMonolithic(ctx, repoBlobs, b) }
				method := "POST ?digest="
				if !t.singlePost {
					method = "POST + PUT ?digest="
				}
				if kind == "chunked" {
					push = func(ctx context.Context, b *blob) error { return t.pushChunked(ctx, repoBlobs, b, o.chunk) }
					method = fmt.Sprintf("PATCH %s", formatSize(o.chunk))
				}
				m, err := timeBlobs(ctx, bs, p, push)
				m.Method = method
				pushed[t.name] = bs
				return m, err
			}})
		}
	}
	for _, p := range o.parallel {
		ops = append(ops, op{
			name: fmt.Sprintf("pull ×%d", p),
			// Read every blob once, verifying one blob's digest (hashing would slow the
			// client in the timed part). Only then are both registries' blobs in the page
			// cache: it was dropped before each push, so the blobs of whichever registry
			// pushed first would otherwise come from the disk.
			prepare: func(ctx context.Context, t *target) error {
				buf := make([]byte, 1<<20)
				for i, b := range pushed[t.name] {
					if err := t.pull(ctx, repoBlobs, b, buf, i == 0); err != nil {
						return err
					}
				}
				return nil
			},
			run: func(ctx context.Context, t *target) (measurement, error) {
				var bufs sync.Pool
				bufs.New = func() any { return make([]byte, 1<<20) }
				return timeBlobs(ctx, pushed[t.name], p, func(ctx context.Context, b *blob) error {
					buf := bufs.Get().([]byte)
					defer bufs.Put(buf)
					return t.pull(ctx, repoBlobs, b, buf, false)
				})
			},
		})
	}
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		ops = append(ops, op{name: fmt.Sprintf("manifest %s ×%d", method, o.workers), run: func(ctx context.Context, t *target) (measurement, error) {
			size := manifestSize[t.name]
			return timeRequests(ctx, o.requests, o.workers, func(ctx context.Context, buf []byte) error {
				return t.manifestRequest(ctx, method, repoSmall, smallTag, size, buf)
			})
		}})
	}

	for round := range o.rounds {
		for i, op := range ops {
			for j := range o.targets {
				t := o.targets[(i+round+j)%len(o.targets)]
				if err := ctx.Err(); err != nil {
					rep.finish(o, start)
					return rep, fmt.Errorf("stopped after %s (-duration): results are partial", time.Since(start).Round(time.Second))
				}
				if op.prepare != nil {
					if err := op.prepare(ctx, t); err != nil {
						rep.finish(o, start)
						return rep, fmt.Errorf("%s: %s: %w", t.name, op.name, err)
					}
				}
				if o.sync {
					// Only pushes recycle the cache: pulls read what prepare left there.
					flushDirtyPages(o.drop && strings.HasPrefix(op.name, "push "))
				}
				pid, cpuBefore := o.pids[t.name], 0.0
				if pid > 0 {
					if cpuBefore, err = procCPU(pid); err != nil {
						return rep, fmt.Errorf("%s: %w", t.name, err)
					}
				}
				backendBefore, err := backendCPU(o.backend)
				if err != nil {
					return rep, err
				}
				clientBefore, err := procCPU(os.Getpid())
				if err != nil {
					return rep, err
				}
				m, err := op.run(ctx, t)
				if err != nil {
					rep.finish(o, start)
					return rep, fmt.Errorf("%s: %s: %w", t.name, op.name, err)
				}
				if pid > 0 {
					cpuAfter, err := procCPU(pid)
					if err != nil {
						return rep, fmt.Errorf("%s: %w", t.name, err)
					}
					m.ServerCPU = cpuAfter - cpuBefore
				}
				if len(o.backend) > 0 {
					backendAfter, err := backendCPU(o.backend)
					if err != nil {
						return rep, err
					}
					m.BackendCPU = backendAfter - backendBefore
				}
				clientAfter, err := procCPU(os.Getpid())
				if err != nil {
					return rep, err
				}
				m.ClientCPU = clientAfter - clientBefore
				m.Op, m.Target, m.Round = op.name, t.name, round+1
				fmt.Fprintf(os.Stderr, "round %d  %-24s %-14s %9.1f %s\n", round+1, op.name, t.name, m.Value, m.Unit)
				rep.Measurements = append(rep.Measurements, m)
			}
		}
	}
	rep.finish(o, start)
	return rep, nil
}

// timeBlobs runs fn over the blobs with p workers and reports MiB/s over the wall time.
func timeBlobs(ctx context.Context, bs []*blob, p int, fn func(context.Context, *blob) error) (measurement, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	start := time.Now()
	for range min(p, len(bs)) {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(bs)) && ctx.Err() == nil; i = next.Add(1) - 1 {
				if err := fn(ctx, bs[i]); err != nil {
					errOnce.Do(func() { first = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	total := int64(len(bs)) * bs[0].c.size
	return measurement{Unit: "MiB/s", Value: float64(total) / (1 << 20) / secs, Bytes: total, Count: len(bs), Seconds: secs}, first
}

// timeRequests runs n small requests on w workers and reports requests/s and latency.
func timeRequests(ctx context.Context, n, w int, fn func(context.Context, []byte) error) (measurement, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		mu      sync.Mutex
		lat     = make([]time.Duration, 0, n)
		errOnce sync.Once
		first   error
	)
	start := time.Now()
	for range w {
		wg.Go(func() {
			buf := make([]byte, 64<<10)
			mine := make([]time.Duration, 0, n/w+1)
			defer func() { mu.Lock(); lat = append(lat, mine...); mu.Unlock() }()
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				t0 := time.Now()
				if err := fn(ctx, buf); err != nil {
					errOnce.Do(func() { first = err; cancel() })
					return
				}
				mine = append(mine, time.Since(t0))
			}
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	m := measurement{Unit: "req/s", Value: float64(len(lat)) / secs, Count: len(lat), Seconds: secs}
	if len(lat) > 0 {
		slices.Sort(lat)
		m.P50ms = float64(lat[len(lat)/2]) / 1e6
		m.P99ms = float64(lat[min(len(lat)-1, len(lat)*99/100)]) / 1e6
	}
	return m, first
}

func formatSize(n int64) string {
	switch {
	case n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// writeJSON writes v as indented JSON to path ("-" is stdout).
func writeJSON(stdout io.Writer, path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if path == "-" {
		_, err = stdout.Write(data)
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// backendCPU sums the CPU seconds of the shared processes and their children so far.
func backendCPU(pids []int) (float64, error) {
	var sum float64
	for _, pid := range pids {
		c, err := procTreeCPU(pid)
		if err != nil {
			return 0, fmt.Errorf("backend process %d: %w", pid, err)
		}
		sum += c
	}
	return sum, nil
}
