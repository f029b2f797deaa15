package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rssResult is the memory of the registry process while one large blob streams in
// (monolithic, then chunked) and out.
type rssResult struct {
	PID         int       `json:"pid"`
	BaselineMiB float64   `json:"baseline_mib"`
	SampledMiB  float64   `json:"sampled_peak_mib"` // highest VmRSS seen by sampling
	HWMMiB      float64   `json:"hwm_mib"`          // VmHWM at the end: the kernel's own peak
	PeakMiB     float64   `json:"peak_mib"`         // the larger of the two, checked against the goal
	Samples     int       `json:"samples"`
	Steps       []rssStep `json:"steps"`
}

type rssStep struct {
	Op      string  `json:"op"`
	MiBps   float64 `json:"mib_per_s"`
	PeakMiB float64 `json:"peak_mib"`
}

// procMemory reads VmRSS and VmHWM (KiB) of pid from /proc.
func procMemory(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status: %s: %w", pid, key, err)
		}
		if key == "VmRSS" {
			rss = n
		} else {
			hwm = n
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status has no VmRSS (not a user process?)", pid)
	}
	return rss, hwm, nil
}

// sampler polls VmRSS and keeps the peak since the last reset.
type sampler struct {
	mu      sync.Mutex
	peak    int64 // KiB since reset
	overall int64
	samples int
	err     error
}

func (s *sampler) run(ctx context.Context, pid int, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		rss, _, err := procMemory(pid)
		s.mu.Lock()
		if err != nil {
			s.err = err
			s.mu.Unlock()
			return
		}
		s.samples++
		s.peak = max(s.peak, rss)
		s.overall = max(s.overall, rss)
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// reset returns the peak since the previous reset and starts a new interval.
func (s *sampler) reset() (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.peak
	s.peak = 0
	return p, s.err
}

// runRSS streams one -rss-size blob into the first target monolithically, another one
// chunked, and pulls one back, while sampling the memory of process -pid.
func runRSS(ctx context.Context, o *options) (*report, error) {
	if len(o.targets) == 0 {
		return nil, fmt.Errorf("-pid needs -targets with the registry that process serves")
	}
	start := time.Now()
	t := o.targets[0]
	defer t.close()
	rep := &report{Mode: "rss", Targets: []string{t.name}, Size: o.rssSize, Chunk: o.chunk}
	if err := t.ping(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", t.name, err)
	}
	base, _, err := procMemory(o.pid)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "hashing a %s blob prefix …\n", formatSize(o.rssSize))
	cs, err := newContentSet(o.rssSize)
	if err != nil {
		return nil, err
	}
	bs, err := cs.newBlobs(2)
	if err != nil {
		return nil, err
	}
	if o.mono == "post" {
		t.singlePost = true
	} else if o.mono == "auto" {
		tiny, err := newContentSet(1024)
		if err != nil {
			return nil, err
		}
		b, err := tiny.newBlob()
		if err != nil {
			return nil, err
		}
		if err := t.probeSinglePost(ctx, repoBlobs, b); err != nil {
			return nil, err
		}
	}

	sctx, stop := context.WithCancel(ctx)
	s := &sampler{}
	done := make(chan struct{})
	go func() { defer close(done); s.run(sctx, o.pid, o.every) }()
	defer func() { stop(); <-done }()

	res := &rssResult{PID: o.pid, BaselineMiB: float64(base) / 1024}
	rep.RSS = res
	steps := []struct {
		op string
		fn func(ctx context.Context, b *blob) error
		b  *blob
	}{
		{"push monolithic", func(ctx context.Context, b *blob) error { return t.pushMonolithic(ctx, repoBlobs, b) }, bs[0]},
		{"push chunked " + formatSize(o.chunk), func(ctx context.Context, b *blob) error { return t.pushChunked(ctx, repoBlobs, b, o.chunk) }, bs[1]},
		{"pull", func(ctx context.Context, b *blob) error { return t.pull(ctx, repoBlobs, b, make([]byte, 1<<20), true) }, bs[1]},
	}
	for _, st := range steps {
		if o.sync {
			flushDirtyPages(false)
		}
		if _, err := s.reset(); err != nil {
			return rep, err
		}
		m, err := timeBlobs(ctx, []*blob{st.b}, 1, st.fn)
		// One last sample so a step shorter than the interval still has a figure.
		if rss, _, perr := procMemory(o.pid); perr == nil {
			s.mu.Lock()
			s.peak, s.overall = max(s.peak, rss), max(s.overall, rss)
			s.mu.Unlock()
		}
		peak, serr := s.reset()
		if err != nil {
			return rep, fmt.Errorf("%s: %s: %w", t.name, st.op, err)
		}
		if serr != nil {
			return rep, serr
		}
		res.Steps = append(res.Steps, rssStep{Op: st.op, MiBps: m.Value, PeakMiB: float64(peak) / 1024})
		fmt.Fprintf(os.Stderr, "%-22s %9.1f MiB/s  peak RSS %6.1f MiB\n", st.op, m.Value, float64(peak)/1024)
	}
	_, hwm, err := procMemory(o.pid)
	if err != nil {
		return rep, err
	}
	s.mu.Lock()
	res.SampledMiB, res.Samples = float64(s.overall)/1024, s.samples
	s.mu.Unlock()
	res.HWMMiB = float64(hwm) / 1024
	res.PeakMiB = max(res.SampledMiB, res.HWMMiB)
	rep.Seconds = time.Since(start).Seconds()
	if o.check {
		rep.evaluate(o.goals)
	}
	return rep, nil
}

func (r *rssResult) writeTable(w io.Writer, rep *report) {
	fmt.Fprintf(w, "\nmemory of pid %d (%s) streaming a %s blob, VmRSS sampled %d times\n\n", r.PID, rep.Targets[0], formatSize(rep.Size), r.Samples)
	tw := newTable(w)
	fmt.Fprintln(tw, "step\tthroughput\tpeak VmRSS\t")
	fmt.Fprintf(tw, "before\t\t%6.1f MiB\t\n", r.BaselineMiB)
	for _, s := range r.Steps {
		fmt.Fprintf(tw, "%s\t%9.1f MiB/s\t%6.1f MiB\t\n", s.Op, s.MiBps, s.PeakMiB)
	}
	fmt.Fprintf(tw, "VmHWM at the end\t\t%6.1f MiB\t\n", r.HWMMiB)
	_ = tw.Flush()
}
