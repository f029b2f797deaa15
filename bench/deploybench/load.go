package main

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/hubctl/hubctl/bench/internal/benchhub"
)

// load sends GETs at a fixed total rate over a few keep-alive connections, spread over
// urls in turn, and counts every request that failed: a transport error, a status
// other than 200, or a body that is neither version's answer. Both sides are counted by
// this same code.
type load struct {
	stop chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	total   int
	failed  int
	samples []string
}

// loadResult is what a load counted.
type loadResult struct {
	total, failed int
	samples       []string // the first few failures
}

func startLoad(urls []string, rate, workers int, answers map[string]string) *load {
	l := &load{stop: make(chan struct{})}
	valid := map[string]bool{}
	for _, a := range answers {
		valid[a] = true
	}
	every := time.Duration(workers) * time.Second / time.Duration(rate)
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c := &http.Client{Timeout: 10 * time.Second}
			tick := time.NewTicker(every)
			defer tick.Stop()
			for i := w; ; i++ {
				select {
				case <-l.stop:
					return
				case <-tick.C:
				}
				u := urls[i%len(urls)]
				why := ""
				resp, err := c.Get(u)
				if err != nil {
					why = err.Error()
				} else {
					body, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
					resp.Body.Close()
					switch {
					case err != nil:
						why = err.Error()
					case resp.StatusCode != http.StatusOK:
						why = resp.Status
					case !valid[string(body)]:
						why = fmt.Sprintf("unexpected body %q", body)
					}
				}
				l.mu.Lock()
				l.total++
				if why != "" {
					l.failed++
					if len(l.samples) < 3 {
						l.samples = append(l.samples, time.Now().UTC().Format("15:04:05.000")+" "+u+": "+why)
					}
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// finish stops the load and returns its counts.
func (l *load) finish() loadResult {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return loadResult{total: l.total, failed: l.failed, samples: l.samples}
}

// waitServing waits until each url has answered want four times in a row, on fresh
// connections (so a replica behind a kept-alive one is not missed).
func waitServing(urls []string, want string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for _, u := range urls {
		streak := 0
		last := ""
		for streak < 4 {
			if time.Now().After(deadline) {
				return fmt.Errorf("%s did not serve %s within %v (last: %s)", u, want, limit, last)
			}
			c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			resp, err := c.Get(u)
			if err != nil {
				last, streak = err.Error(), 0
				time.Sleep(10 * time.Millisecond)
				continue
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && string(body) == want {
				streak++
			} else {
				last, streak = fmt.Sprintf("%s %q", resp.Status, body), 0
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	return nil
}

// result gathers one operation's measures.
type result struct {
	name  string
	n     int
	wall  []time.Duration
	serve []time.Duration
	cpu   time.Duration // the client's, in all
	eng   time.Duration // the engine's, in all
}

func (r *result) add(m measure) {
	r.n++
	r.wall = append(r.wall, m.wall)
	r.serve = append(r.serve, m.serve)
	r.cpu += m.clientCPU
	r.eng += m.engineCPU
}

// p is the q-th percentile of the commands' wall times (nearest rank).
func (r *result) p(q int) time.Duration { return benchhub.Percentile(r.wall, q) }

// serveP is the q-th percentile of the times until every replica served the new version.
func (r *result) serveP(q int) time.Duration { return benchhub.Percentile(r.serve, q) }

func (r *result) row() string {
	ms := func(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }
	per := func(d time.Duration) string { return ms(d/time.Duration(r.n)) + "/op" }
	three := func(f func(int) time.Duration) string {
		return fmt.Sprintf("%.2f %.2f %.2f s", f(50).Seconds(), f(95).Seconds(), f(100).Seconds())
	}
	return fmt.Sprintf("%-34s %26s %26s %14s %14s", fmt.Sprintf("%s ×%d", r.name, r.n),
		three(r.serveP), three(r.p), per(r.cpu), per(r.eng))
}
