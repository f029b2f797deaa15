package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hubctl/hubctl/internal/deploy/proxy"
)

// Target is one Docker host as the Deployer drives it (internal/deploy/dockerhost
// implements it with the engine's API). Every call is idempotent against the
// labels, so a deploy killed anywhere converges when it runs again.
type Target interface {
	// Name is the spec's name of the host.
	Name() string
	// Observe lists the service's containers on the host, with Routed set from the
	// proxy's routing.
	Observe(ctx context.Context, service string) (HostState, error)
	// WaitIdle waits until the service's proxy runs no switch (one a killed deploy
	// left running inside it), so what it routes is settled before a plan.
	WaitIdle(ctx context.Context, service string) error
	// Prepare ensures the service's network and, withProxy, its proxy container.
	Prepare(ctx context.Context, service string, withProxy bool) error
	// Pull makes the engine have image (a pinned reference); nothing when it has it.
	Pull(ctx context.Context, image string) error
	// Start creates and starts a task or accessory on the service's network.
	Start(ctx context.Context, t TaskSpec) error
	// Check runs a command health check inside a task: nil when it exits 0.
	Check(ctx context.Context, container string, cmd []string) error
	// Switch hands the proxy the service's new targets: it health-checks them,
	// switches when all pass and drains the old ones (proxy.ErrUnhealthy: nothing
	// changed).
	Switch(ctx context.Context, service string, req proxy.DeployRequest) (proxy.DeployResult, error)
	// Remove stops a container (SIGTERM, timeout, SIGKILL) and removes it.
	Remove(ctx context.Context, container string, timeout time.Duration) error
	// Down removes every object of the service on the host: containers, the
	// network, the proxy's state volume, and the named volumes it made when volumes.
	Down(ctx context.Context, service string, volumes bool) error
}

// Deployer runs plans on Docker hosts, hosts in parallel, recording each deploy in
// a History.
type Deployer struct {
	Targets []Target
	History History
	// Holder says who deploys (By, Host, PID), for the lock and the record.
	Holder LockHolder
	// Log receives one line per step; nil discards them.
	Log io.Writer
	// Now is the clock; nil is time.Now.
	Now func() time.Time

	logMu sync.Mutex
}

// Request is one deploy: a spec, its file as deployed (recorded), the pinned
// images and the secret values.
type Request struct {
	Spec     *Spec
	SpecYAML string
	Digests  map[string]string
	Secrets  map[string]string
	// RollbackOf is the number of the deploy being re-deployed, 0 otherwise.
	RollbackOf int
}

// ErrDeployFailed wraps the error of a deploy that was recorded as failed.
var ErrDeployFailed = errors.New("deploy failed")

func (d *Deployer) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Deployer) logf(format string, args ...any) {
	if d.Log == nil {
		return
	}
	d.logMu.Lock()
	defer d.logMu.Unlock()
	fmt.Fprintf(d.Log, format+"\n", args...)
}

// Observe answers what runs of the service on every host, in the targets' order.
func (d *Deployer) Observe(ctx context.Context, service string) ([]HostState, error) {
	out := make([]HostState, len(d.Targets))
	err := d.each(ctx, func(ctx context.Context, i int, t Target) error {
		st, err := t.Observe(ctx, service)
		if err != nil {
			return fmt.Errorf("host %s: %w", t.Name(), err)
		}
		st.Host = t.Name()
		out[i] = st
		return nil
	})
	return out, err
}

// Plan computes the plan of req against what runs, for version (0 in a dry run).
func (d *Deployer) Plan(ctx context.Context, req Request, version int) (*Plan, error) {
	states, err := d.Observe(ctx, req.Spec.Service.Name)
	if err != nil {
		return nil, err
	}
	byHost := map[string]HostState{}
	for _, s := range states {
		byHost[s.Host] = s
	}
	return NewPlan(PlanInput{Spec: req.Spec, Digests: req.Digests, Secrets: req.Secrets, Version: version, State: byHost})
}

// Deploy records a running deploy (taking the service's lock), runs its plan on
// every host and records the outcome. A host whose new tasks never become healthy
// removes them and keeps the old ones serving; the deploy is then failed
// (ErrDeployFailed) and the other hosts are left as they ended.
func (d *Deployer) Deploy(ctx context.Context, req Request) (Record, error) {
	s := req.Spec
	if s == nil || s.Kubernetes != nil {
		return Record{}, errors.New("deploy: not a Docker hosts spec")
	}
	if len(d.Targets) != len(s.Hosts) {
		return Record{}, fmt.Errorf("deploy: %d targets for %d hosts", len(d.Targets), len(s.Hosts))
	}
	// Everything that can be refused before a lock is taken is: secrets, digests.
	if _, err := NewPlan(PlanInput{Spec: s, Digests: req.Digests, Secrets: req.Secrets, Version: 1}); err != nil {
		return Record{}, err
	}
	rec := Record{
		Service: s.Service.Name, SpecYAML: req.SpecYAML, Digests: req.Digests,
		Target: "docker", By: d.Holder.By, Started: d.now(), Outcome: OutcomeRunning,
		RollbackOf: req.RollbackOf,
	}
	for _, h := range s.Hosts {
		rec.Hosts = append(rec.Hosts, h.Name)
	}
	rec, err := d.History.Begin(ctx, rec, d.Holder)
	if err != nil {
		return Record{}, err
	}
	stopRenew := RenewEvery(ctx, LockRenew, func(err error) { d.logf("renew lock: %v", err) }, func(ctx context.Context) error {
		return d.History.Renew(ctx, s.Service.Name, rec.Number)
	})
	runErr := d.run(ctx, req, rec.Number)
	stopRenew()

	outcome, msg := OutcomeSucceeded, ""
	if runErr != nil {
		outcome, msg = OutcomeFailed, runErr.Error()
	}
	// The outcome is recorded even when ctx was cancelled (Ctrl-C).
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := d.History.Finish(fctx, s.Service.Name, rec.Number, outcome, msg); err != nil {
		return rec, errors.Join(runErr, fmt.Errorf("record the outcome of deploy %d: %w", rec.Number, err))
	}
	rec.Outcome, rec.Error, rec.Finished = outcome, msg, d.now()
	if runErr != nil {
		return rec, fmt.Errorf("%w: %w", ErrDeployFailed, runErr)
	}
	return rec, nil
}

func (d *Deployer) run(ctx context.Context, req Request, version int) error {
	if err := d.each(ctx, func(ctx context.Context, _ int, t Target) error {
		if err := t.WaitIdle(ctx, req.Spec.Service.Name); err != nil {
			return fmt.Errorf("host %s: %w", t.Name(), err)
		}
		return nil
	}); err != nil {
		return err
	}
	plan, err := d.Plan(ctx, req, version)
	if err != nil {
		return err
	}
	return d.each(ctx, func(ctx context.Context, i int, t Target) error {
		if err := d.runHost(ctx, req.Spec, t, plan.Hosts[i]); err != nil {
			return fmt.Errorf("host %s: %w", t.Name(), err)
		}
		return nil
	})
}

// runHost is the zero-downtime sequence on one host: prepare, pull, start the new
// tasks, health gate and switch in the proxy, stop what was drained.
func (d *Deployer) runHost(ctx context.Context, s *Spec, t Target, hp HostPlan) error {
	svc := s.Service
	if err := t.Prepare(ctx, svc.Name, svc.Proxy != nil); err != nil {
		return err
	}
	for _, a := range hp.Accessories {
		if err := t.Pull(ctx, a.Image); err != nil {
			return err
		}
		d.logf("%s: start accessory %s", t.Name(), a.Accessory)
		if err := t.Start(ctx, a); err != nil {
			return fmt.Errorf("accessory %s: %w", a.Accessory, err)
		}
	}
	// What no proxy routes (a deploy killed before its switch) goes first: it serves
	// nobody, and it may hold a port a new task needs.
	var stopAfter, stopNow []Container
	for _, c := range hp.Stop {
		if svc.Proxy != nil && !c.Routed || svc.Proxy == nil && !c.Running() {
			stopNow = append(stopNow, c)
			continue
		}
		stopAfter = append(stopAfter, c)
	}
	if err := d.removeAll(ctx, t, stopNow, svc.StopTimeout, "not serving"); err != nil {
		return err
	}
	if len(hp.Start) == 0 && len(stopAfter) == 0 {
		d.logf("%s: %d tasks up to date", t.Name(), len(hp.Keep))
		return nil
	}
	if len(hp.Start) > 0 {
		if err := t.Pull(ctx, hp.Start[0].Image); err != nil {
			return err
		}
	}
	// The new tasks start together (a bounded few at a time): with the image on
	// the engine, creating and starting containers is most of a deploy's time.
	startErrs := make([]error, len(hp.Start))
	_ = bounded(ctx, len(hp.Start), func(ctx context.Context, i int) error {
		n := hp.Start[i]
		d.logf("%s: start %s", t.Name(), n.Name)
		startErrs[i] = t.Start(ctx, n)
		return startErrs[i]
	})
	undo := func(cause error) error {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		errs := []error{cause}
		// Only what started is removed: a start that failed removed what it made, or
		// failed on a name another container holds, which is not ours to remove.
		errs = append(errs, bounded(cctx, len(hp.Start), func(ctx context.Context, i int) error {
			n := hp.Start[i]
			if startErrs[i] != nil {
				return nil
			}
			d.logf("%s: remove %s (deploy refused)", t.Name(), n.Name)
			return t.Remove(ctx, n.Name, 0)
		}))
		return errors.Join(errs...)
	}
	if err := errors.Join(startErrs...); err != nil {
		return undo(err)
	}
	if len(svc.Health.Command) > 0 {
		if err := d.commandGate(ctx, t, svc, hp.Start); err != nil {
			return undo(err)
		}
	}
	if svc.Proxy != nil {
		var targets []string
		for _, c := range hp.Keep {
			targets = append(targets, c.Name+":"+strconv.Itoa(svc.Proxy.Port))
		}
		for _, n := range hp.Start {
			targets = append(targets, n.Name+":"+strconv.Itoa(svc.Proxy.Port))
		}
		path := svc.Health.Path
		if path == "" {
			path = DefaultHealthPath // a command check was run above; the proxy still watches
		}
		preq := proxy.DeployRequest{
			Hosts:   svc.Proxy.Hosts,
			Targets: targets,
			Health: proxy.HealthCheck{
				Path: path, Interval: proxy.Duration(svc.Health.Interval),
				Timeout: proxy.Duration(svc.Health.Timeout), Threshold: svc.Health.Threshold,
			},
			DeployTimeout: proxy.Duration(svc.DeployTimeout),
			DrainTimeout:  proxy.Duration(svc.DrainTimeout),
		}
		d.logf("%s: health gate and switch (%s)", t.Name(), strings.Join(targets, ", "))
		res, err := d.switchWhenFree(ctx, t, svc, preq)
		if err != nil {
			return undo(fmt.Errorf("switch: %w", err))
		}
		if res.DrainTimedOut {
			d.logf("%s: drain timed out with requests in flight", t.Name())
		}
	}
	return d.removeAll(ctx, t, stopAfter, svc.StopTimeout, "drained")
}

// removeAll stops and removes cs on t together (a bounded few at a time): each
// waits up to its stop timeout, so one after the other would add them up.
func (d *Deployer) removeAll(ctx context.Context, t Target, cs []Container, timeout time.Duration, why string) error {
	return bounded(ctx, len(cs), func(ctx context.Context, i int) error {
		c := cs[i]
		d.logf("%s: remove %s (version %d, %s)", t.Name(), c.Name, c.Version, why)
		return t.Remove(ctx, c.ID, timeout)
	})
}

// maxParallel bounds the container operations one host runs at once.
const maxParallel = 4

// bounded runs fn(0) … fn(n-1), at most maxParallel at a time, every one of them
// (an error does not cancel the others: each leaves its container in a known
// state), and joins their errors.
func bounded(ctx context.Context, n int, fn func(context.Context, int) error) error {
	if n == 1 {
		return fn(ctx, 0)
	}
	errs := make([]error, n)
	sem := make(chan struct{}, maxParallel)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = fn(ctx, i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// switchWhenFree switches, waiting while the proxy runs another switch of the
// service (one a killed deploy left running in the proxy ends within its timeouts).
func (d *Deployer) switchWhenFree(ctx context.Context, t Target, svc Service, req proxy.DeployRequest) (proxy.DeployResult, error) {
	deadline := d.now().Add(svc.DeployTimeout + svc.DrainTimeout)
	for {
		res, err := t.Switch(ctx, svc.Name, req)
		if !errors.Is(err, proxy.ErrBusy) || d.now().After(deadline) {
			return res, err
		}
		d.logf("%s: the proxy is busy with another switch of %s; waiting", t.Name(), svc.Name)
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// commandGate runs the command health check in each new task until it passes
// Threshold times in a row, within DeployTimeout.
func (d *Deployer) commandGate(ctx context.Context, t Target, svc Service, tasks []TaskSpec) error {
	ctx, cancel := context.WithTimeout(ctx, svc.DeployTimeout)
	defer cancel()
	// The tasks are checked together: one slow to start does not delay the others'
	// checks, and the gate takes as long as the slowest task, not their sum.
	return bounded(ctx, len(tasks), func(ctx context.Context, i int) error {
		n := tasks[i]
		passes := 0
		var last error
		for passes < svc.Health.Threshold {
			cctx, ccancel := context.WithTimeout(ctx, svc.Health.Timeout)
			err := t.Check(cctx, n.Name, svc.Health.Command)
			ccancel()
			if err == nil {
				passes++
			} else {
				passes, last = 0, err
			}
			if passes >= svc.Health.Threshold {
				break
			}
			select {
			case <-ctx.Done():
				if last == nil {
					last = ctx.Err()
				}
				return fmt.Errorf("%s did not become healthy within %s: %w", n.Name, svc.DeployTimeout, last)
			case <-time.After(svc.Health.Interval):
			}
		}
		return nil
	})
}

// Down removes the service from every host.
func (d *Deployer) Down(ctx context.Context, service string, volumes bool) error {
	return d.each(ctx, func(ctx context.Context, _ int, t Target) error {
		d.logf("%s: remove %s", t.Name(), service)
		if err := t.Down(ctx, service, volumes); err != nil {
			return fmt.Errorf("host %s: %w", t.Name(), err)
		}
		return nil
	})
}

// each runs fn for every target in parallel and joins their errors.
func (d *Deployer) each(ctx context.Context, fn func(context.Context, int, Target) error) error {
	errs := make([]error, len(d.Targets))
	var wg sync.WaitGroup
	for i, t := range d.Targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(ctx, i, t)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// RenewEvery calls renew every period until the answered stop is called (stop
// waits for a renewal under way); a failed renewal goes to report, and the deploy
// goes on: a holder that lost its lock learns it at its next write.
func RenewEvery(ctx context.Context, period time.Duration, report func(error), renew func(context.Context) error) (stop func()) {
	renewCtx, cancel := context.WithCancel(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-renewCtx.Done():
				return
			case <-tick.C:
				if err := renew(renewCtx); err != nil && renewCtx.Err() == nil {
					report(err)
				}
			}
		}
	}()
	return func() {
		cancel()
		<-renewed
	}
}
