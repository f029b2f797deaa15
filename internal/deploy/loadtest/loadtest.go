// Package loadtest sends HTTP requests to a URL continuously from a few workers and
// keeps every outcome with its start time: the "zero failed requests, and every
// answer after the switch from the new version" checks of the proxy's and the
// deploy's tests (unit and end to end) share it.
package loadtest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// Load is a running load; End stops it.
type Load struct {
	url  string
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup

	mu       sync.Mutex
	total    int
	failures []string
	answers  []answer
}

type answer struct {
	started time.Time
	body    string
}

// Start sends GET url from workers goroutines, each on its own kept-alive
// connection, one request after another, until End.
func Start(url string, workers int) *Load {
	l := &Load{url: url, stop: make(chan struct{})}
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 10 * time.Second}
	for range workers {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				start := time.Now()
				body, err := Get(c, l.url)
				l.mu.Lock()
				l.total++
				if err != nil {
					l.failures = append(l.failures, fmt.Sprintf("%s: %v", start.Format("15:04:05.000"), err))
				} else {
					l.answers = append(l.answers, answer{start, body})
				}
				l.mu.Unlock()
			}
		})
	}
	return l
}

// End stops the load and waits for the requests in flight; it may be called again.
func (l *Load) End() {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// Count is the number of requests that ended so far.
func (l *Load) Count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// Failures are the failed requests so far (when, and why), and the number of all.
func (l *Load) Failures() (failures []string, total int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.failures), l.total
}

// Since counts the answers of the requests started after t, by body.
func (l *Load) Since(t time.Time) map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := map[string]int{}
	for _, a := range l.answers {
		if a.started.After(t) {
			m[a.body]++
		}
	}
	return m
}

// WaitMore waits until n more requests have ended; after 30 s (a hang guard) it
// fails the test.
func (l *Load) WaitMore(t testing.TB, n int) {
	t.Helper()
	want := l.Count() + n
	deadline := time.Now().Add(30 * time.Second)
	for l.Count() < want {
		if time.Now().After(deadline) {
			t.Fatalf("the load made %d requests, waiting for %d", l.Count(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// CheckNoFailure fails the test when a request failed, with the first failure.
func (l *Load) CheckNoFailure(t testing.TB, during string) {
	t.Helper()
	if f, total := l.Failures(); len(f) > 0 {
		t.Errorf("%d of %d requests failed %s; first: %s", len(f), total, during, f[0])
	}
}

// Get fetches url and answers the body; a status other than 200 is an error.
func Get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return string(b), nil
}
