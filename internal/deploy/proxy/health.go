package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// check sends one health check to b.
func (p *Proxy) check(ctx context.Context, b *backend, hc HealthCheck) error {
	ctx, cancel := context.WithTimeout(ctx, hc.Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.addr+hc.Path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "hubctl-proxy/health")
	resp, err := p.checker.Do(req)
	if err != nil {
		return err
	}
	// Read a little so the connection can be reused; a large body is not waited for.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return fmt.Errorf("GET %s answered %d", hc.Path, resp.StatusCode)
	}
	return nil
}

// gate health-checks the targets until each has passed hc.Threshold checks in a row,
// all within timeout; it returns ErrUnhealthy naming the first target that did not.
func (p *Proxy) gate(ctx context.Context, bs []*backend, hc HealthCheck, timeout time.Duration) error {
	if len(bs) == 0 {
		return nil
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	errs := make([]error, len(bs))
	var wg sync.WaitGroup
	for i, b := range bs {
		wg.Go(func() {
			errs[i] = p.passes(ctx, b, hc)
			if errs[i] != nil {
				cancel() // one target failing fails the deploy: stop checking the others
			}
		})
	}
	wg.Wait()
	if err := parent.Err(); err != nil {
		return fmt.Errorf("deploy abandoned before the new targets were healthy: %w", err)
	}
	var bad []string
	var first error
	for i, err := range errs {
		if err != nil {
			bad = append(bad, bs[i].addr)
			if first == nil {
				first = err
			}
		}
	}
	if len(bad) == 0 {
		for _, b := range bs {
			b.healthy.Store(true)
		}
		return nil
	}
	return fmt.Errorf("%w within %s: %s: %v", ErrUnhealthy, timeout, strings.Join(bad, ", "), first)
}

// passes checks b until hc.Threshold checks in a row succeed or ctx ends; it returns
// the last check's error then.
func (p *Proxy) passes(ctx context.Context, b *backend, hc HealthCheck) error {
	ok := 0
	var last error
	t := time.NewTicker(hc.Interval.D())
	defer t.Stop()
	for {
		if err := p.check(ctx, b, hc); err != nil {
			ok, last = 0, err
		} else if ok++; ok >= hc.Threshold {
			return nil
		}
		select {
		case <-ctx.Done():
			if last == nil {
				last = fmt.Errorf("%d of %d checks passed", ok, hc.Threshold)
			}
			return last
		case <-t.C:
		}
	}
}

// monitor keeps checking a serving target: hc.Threshold failures in a row take it
// out of rotation, as many successes put it back. It ends when the target is
// drained or the proxy closes.
func (p *Proxy) monitor(b *backend, hc HealthCheck) {
	t := time.NewTicker(hc.Interval.D())
	defer t.Stop()
	fails, oks := 0, 0
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-b.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		err := p.check(ctx, b, hc)
		cancel()
		if err != nil {
			oks = 0
			if fails++; fails >= hc.Threshold && b.healthy.Swap(false) {
				p.log.Warn("proxy: target unhealthy, out of rotation", "target", b.addr, "error", err)
			}
			continue
		}
		fails = 0
		if oks++; oks >= hc.Threshold && !b.healthy.Swap(true) {
			p.log.Info("proxy: target healthy again", "target", b.addr)
		}
	}
}
