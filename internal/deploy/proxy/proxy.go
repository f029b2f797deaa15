// Package proxy is hubctl's proxy mode (`hubctl proxy run`): an HTTP reverse proxy in
// front of a service's tasks on one Docker host, switched from one set of tasks to
// the next without failing a request. A deploy hands it the new targets over an
// authenticated control channel; the proxy health-checks them, routes new requests to
// them only once they are all healthy, and drains the old ones (requests in flight
// finish, no new ones reach them) before the deploy is told it may stop them. A new
// set that never becomes healthy is refused and the old set keeps serving.
//
// Routing is by the request's Host: each service names the hosts it answers for, and
// at most one service (no hosts) takes every other request. Within a service requests
// go round-robin to the healthy targets. The current targets are written to a state
// file after every change, so a restarted proxy container serves at once.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Sentinel errors of the proxy's operations; the control channel maps them to HTTP
// statuses and the Client maps those back, so errors.Is works on both sides.
var (
	// ErrUnhealthy: the new targets did not all pass their health check in time; the
	// old targets keep serving.
	ErrUnhealthy = errors.New("the new targets did not become healthy")
	// ErrBusy: another deploy or removal of the same service is running.
	ErrBusy = errors.New("another deploy of this service is in progress")
	// ErrNotFound: no service of that name.
	ErrNotFound = errors.New("no such service")
	// ErrInvalid: the request is malformed or out of bounds.
	ErrInvalid = errors.New("invalid request")
	// ErrConflict: a host is already routed to another service.
	ErrConflict = errors.New("conflict")
)

// Options configure a Proxy.
type Options struct {
	// StateFile keeps the services and their targets across restarts; empty keeps
	// them in memory only.
	StateFile string
	// Logger receives one line per change and per proxying error; nil discards.
	Logger *slog.Logger
	// Transport carries requests to the targets; nil means a transport tuned for
	// many keep-alive connections to few hosts.
	Transport http.RoundTripper
}

// Proxy routes requests to services' targets and changes them on request. It is an
// http.Handler for the public listener; Control returns the handler of the control
// channel.
type Proxy struct {
	log       *slog.Logger
	stateFile string
	rp        *httputil.ReverseProxy
	checker   *http.Client

	mu       sync.Mutex // guards services and stateMu ordering; never held while waiting on targets
	services map[string]*service
	routes   atomic.Pointer[routeTable]
	stateMu  sync.Mutex // serialises state file writes
	closed   bool
}

// routeTable maps a request's host to its service; replaced whole on every change so
// the request path reads it without a lock.
type routeTable struct {
	byHost map[string]*service
	def    *service
}

type service struct {
	name string
	mu   sync.Mutex // held by a deploy or removal of this service
	cfg  atomic.Pointer[serviceConfig]
	pool atomic.Pointer[pool]
	rr   atomic.Uint64
}

// serviceConfig is what a deploy set, besides the targets.
type serviceConfig struct {
	hosts        []string
	health       HealthCheck
	drainTimeout time.Duration
	generation   int64
}

// pool is one generation of a service's targets.
type pool struct {
	backends []*backend
}

// backend is one target: its address, health, and the requests it is serving.
type backend struct {
	addr     string
	url      *url.URL
	healthy  atomic.Bool
	closed   atomic.Bool // draining or gone: no new request may start on it
	inflight atomic.Int64
	stop     chan struct{}
	stopOnce sync.Once
}

func (b *backend) release() { b.inflight.Add(-1) }

func (b *backend) stopMonitor() { b.stopOnce.Do(func() { close(b.stop) }) }

type backendKey struct{}

// New returns a Proxy, serving the services of the state file if it names one that
// exists.
func New(opts Options) (*Proxy, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := opts.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = nil // the targets are on this host's networks, never behind an HTTP proxy
		t.MaxIdleConns = 1024
		t.MaxIdleConnsPerHost = 256
		t.IdleConnTimeout = 90 * time.Second
		tr = t
	}
	p := &Proxy{
		log:       log,
		stateFile: opts.StateFile,
		services:  map[string]*service{},
		checker: &http.Client{
			Transport: tr,
			// A redirect is an answer: the target is up.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			b := pr.In.Context().Value(backendKey{}).(*backend)
			pr.SetURL(b.url)
			pr.Out.Host = pr.In.Host // the service sees the name it was asked by
			pr.SetXForwarded()
		},
		Transport: tr,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			b := r.Context().Value(backendKey{}).(*backend)
			if !errors.Is(err, context.Canceled) {
				p.log.Warn("proxy: target failed", "target", b.addr, "method", r.Method, "path", r.URL.Path, "error", err)
			}
			http.Error(w, "bad gateway: the service's task did not answer", http.StatusBadGateway)
		},
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	p.routes.Store(&routeTable{byHost: map[string]*service{}})
	if err := p.loadState(); err != nil {
		return nil, err
	}
	return p, nil
}

// Close stops the health monitors. Requests in flight are not cut; the listeners
// are the caller's.
func (p *Proxy) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, s := range p.services {
		if pl := s.pool.Load(); pl != nil {
			for _, b := range pl.backends {
				b.stopMonitor()
			}
		}
	}
}

// ServeHTTP proxies one request to a healthy target of the service of its host.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := p.route(r.Host)
	if s == nil {
		http.Error(w, "no service answers for this host", http.StatusNotFound)
		return
	}
	b := s.acquire()
	if b == nil {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "service unavailable: no healthy task", http.StatusServiceUnavailable)
		return
	}
	defer b.release()
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), backendKey{}, b)))
}

func (p *Proxy) route(host string) *service {
	rt := p.routes.Load()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if s, ok := rt.byHost[strings.ToLower(strings.TrimSuffix(host, "."))]; ok {
		return s
	}
	return rt.def
}

// acquire picks the next healthy target round-robin and counts the request on it.
// A target being drained is skipped: the count is raised before the closed flag is
// read, and the drain sets the flag before it reads the count, so either the request
// sees the flag or the drain sees the request.
func (s *service) acquire() *backend {
	for range 4 {
		pl := s.pool.Load()
		if pl == nil {
			return nil
		}
		n := uint64(len(pl.backends))
		start := s.rr.Add(1)
		for i := range n {
			b := pl.backends[(start+i)%n]
			if !b.healthy.Load() {
				continue
			}
			b.inflight.Add(1)
			if b.closed.Load() {
				b.release()
				continue
			}
			return b
		}
		if s.pool.Load() == pl {
			return nil
		}
		// The pool was switched while we looked: look at the new one.
	}
	return nil
}

// drain closes the backends to new requests and waits until their requests in flight
// finish or the timeout passes; it reports whether they all finished.
func drain(bs []*backend, timeout time.Duration) bool {
	for _, b := range bs {
		b.closed.Store(true)
		b.stopMonitor()
	}
	deadline := time.Now().Add(timeout)
	for {
		busy := false
		for _, b := range bs {
			if b.inflight.Load() > 0 {
				busy = true
				break
			}
		}
		if !busy {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// DeployResult reports a deploy that switched traffic.
type DeployResult struct {
	Service    string   `json:"service"`
	Generation int64    `json:"generation"`
	Targets    []string `json:"targets"`
	// Drained are the old targets that no longer receive requests: the deployer may
	// stop them now.
	Drained []string `json:"drained"`
	// DrainTimedOut: some requests were still in flight on a drained target when the
	// drain timeout passed; stopping it now cuts them.
	DrainTimedOut bool `json:"drain_timed_out,omitempty"`
}

// Deploy sets the targets of the service (created if new): targets not yet serving
// are health-checked until each passes Health.Threshold checks in a row, then traffic
// switches to the new set at once and the targets left out are drained. If a new
// target does not become healthy within DeployTimeout, or ctx ends first, nothing
// changes and the error wraps ErrUnhealthy (or ctx's error). Once traffic has
// switched, the drain runs to its end even if ctx ends.
func (p *Proxy) Deploy(ctx context.Context, name string, req DeployRequest) (DeployResult, error) {
	req, err := req.normalize(name)
	if err != nil {
		return DeployResult{}, err
	}
	s, err := p.serviceFor(name, req.Hosts)
	if err != nil {
		return DeployResult{}, err
	}
	if !s.mu.TryLock() {
		return DeployResult{}, fmt.Errorf("service %s: %w", name, ErrBusy)
	}
	defer s.mu.Unlock()

	old := s.pool.Load()
	var oldBackends []*backend
	if old != nil {
		oldBackends = old.backends
	}
	next := &pool{}
	var fresh []*backend
	for _, addr := range req.Targets {
		if i := slices.IndexFunc(oldBackends, func(b *backend) bool { return b.addr == addr }); i >= 0 && oldBackends[i].healthy.Load() {
			next.backends = append(next.backends, oldBackends[i])
			continue
		}
		b := newBackend(addr)
		next.backends = append(next.backends, b)
		fresh = append(fresh, b)
	}

	if err := p.gate(ctx, fresh, req.Health, req.DeployTimeout.D()); err != nil {
		if old == nil {
			p.forgetIfEmpty(s)
		}
		p.log.Warn("proxy: deploy refused", "service", name, "error", err)
		return DeployResult{}, fmt.Errorf("service %s: %w", name, err)
	}

	var leaving []*backend
	for _, b := range oldBackends {
		if !slices.Contains(next.backends, b) {
			leaving = append(leaving, b)
		}
	}
	cfg := &serviceConfig{hosts: req.Hosts, health: req.Health, drainTimeout: req.DrainTimeout.D(), generation: 1}
	if c := s.cfg.Load(); c != nil {
		cfg.generation = c.generation + 1
	}
	p.mu.Lock()
	if p.services[name] != s {
		p.mu.Unlock()
		stopAll(fresh)
		return DeployResult{}, fmt.Errorf("service %s was removed during the deploy: %w", name, ErrConflict)
	}
	// Another new service may have claimed a host while this one was health-checked.
	if err := p.conflictLocked(name, req.Hosts); err != nil {
		p.mu.Unlock()
		stopAll(fresh)
		if old == nil {
			p.forgetIfEmpty(s)
		}
		return DeployResult{}, err
	}
	s.cfg.Store(cfg)
	s.pool.Store(next)
	p.rebuildRoutesLocked()
	closed := p.closed
	p.mu.Unlock()
	for _, b := range fresh {
		if !closed {
			go p.monitor(b, req.Health)
		}
	}
	if err := p.saveState(); err != nil {
		p.log.Error("proxy: state file not written; a restart would lose this deploy", "error", err)
	}
	p.log.Info("proxy: switched", "service", name, "generation", cfg.generation, "targets", strings.Join(req.Targets, ","))

	res := DeployResult{Service: name, Generation: cfg.generation, Targets: req.Targets, Drained: []string{}}
	for _, b := range leaving {
		res.Drained = append(res.Drained, b.addr)
	}
	res.DrainTimedOut = !drain(leaving, req.DrainTimeout.D())
	if res.DrainTimedOut {
		p.log.Warn("proxy: drain timed out with requests in flight", "service", name)
	}
	return res, nil
}

func stopAll(bs []*backend) {
	for _, b := range bs {
		b.stopMonitor()
	}
}

func newBackend(addr string) *backend {
	return &backend{addr: addr, url: &url.URL{Scheme: "http", Host: addr}, stop: make(chan struct{})}
}

// serviceFor returns the service of that name, made (without targets, so it routes
// nothing yet) if new, after checking that no other service holds its hosts.
func (p *Proxy) serviceFor(name string, hosts []string) (*service, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.conflictLocked(name, hosts); err != nil {
		return nil, err
	}
	s, ok := p.services[name]
	if !ok {
		s = &service{name: name}
		p.services[name] = s
	}
	return s, nil
}

// conflictLocked reports another service holding one of hosts, or the default
// route when hosts is empty; p.mu is held.
func (p *Proxy) conflictLocked(name string, hosts []string) error {
	for other, s := range p.services {
		if other == name {
			continue
		}
		c := s.cfg.Load()
		if c == nil {
			continue
		}
		if len(hosts) == 0 && len(c.hosts) == 0 {
			return fmt.Errorf("service %s already takes the requests of every other host; give %s hosts: %w", other, name, ErrConflict)
		}
		for _, h := range hosts {
			if slices.Contains(c.hosts, h) {
				return fmt.Errorf("host %s is routed to service %s: %w", h, other, ErrConflict)
			}
		}
	}
	return nil
}

// forgetIfEmpty drops a service that a refused first deploy made.
func (p *Proxy) forgetIfEmpty(s *service) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.services[s.name] == s && s.pool.Load() == nil {
		delete(p.services, s.name)
	}
}

// rebuildRoutesLocked publishes a new route table; p.mu is held.
func (p *Proxy) rebuildRoutesLocked() {
	rt := &routeTable{byHost: map[string]*service{}}
	for _, s := range p.services {
		c := s.cfg.Load()
		if c == nil || s.pool.Load() == nil {
			continue
		}
		if len(c.hosts) == 0 {
			rt.def = s
		}
		for _, h := range c.hosts {
			rt.byHost[h] = s
		}
	}
	p.routes.Store(rt)
}

// RemoveResult reports a removed service.
type RemoveResult struct {
	Service       string   `json:"service"`
	Drained       []string `json:"drained"`
	DrainTimedOut bool     `json:"drain_timed_out,omitempty"`
}

// Remove stops routing to the service: its hosts answer 404 from now on, and its
// targets are drained before Remove returns.
func (p *Proxy) Remove(name string) (RemoveResult, error) {
	p.mu.Lock()
	s, ok := p.services[name]
	p.mu.Unlock()
	if !ok {
		return RemoveResult{}, fmt.Errorf("service %s: %w", name, ErrNotFound)
	}
	if !s.mu.TryLock() {
		return RemoveResult{}, fmt.Errorf("service %s: %w", name, ErrBusy)
	}
	defer s.mu.Unlock()
	p.mu.Lock()
	delete(p.services, name)
	p.rebuildRoutesLocked()
	p.mu.Unlock()
	if err := p.saveState(); err != nil {
		p.log.Error("proxy: state file not written; a restart would bring the service back", "error", err)
	}
	res := RemoveResult{Service: name, Drained: []string{}}
	var bs []*backend
	if pl := s.pool.Load(); pl != nil {
		bs = pl.backends
	}
	var timeout time.Duration
	if c := s.cfg.Load(); c != nil {
		timeout = c.drainTimeout
	}
	for _, b := range bs {
		res.Drained = append(res.Drained, b.addr)
	}
	res.DrainTimedOut = !drain(bs, timeout)
	p.log.Info("proxy: removed", "service", name)
	return res, nil
}

// TargetStatus is one target as the proxy sees it.
type TargetStatus struct {
	Address  string `json:"address"`
	Healthy  bool   `json:"healthy"`
	InFlight int64  `json:"in_flight"`
}

// Status is a service as the proxy routes it.
type Status struct {
	Service      string         `json:"service"`
	Hosts        []string       `json:"hosts"`
	Generation   int64          `json:"generation"`
	Health       HealthCheck    `json:"health"`
	DrainTimeout Duration       `json:"drain_timeout"`
	Targets      []TargetStatus `json:"targets"`
	Deploying    bool           `json:"deploying"`
}

// Status returns the service's routing.
func (p *Proxy) Status(name string) (Status, error) {
	p.mu.Lock()
	s, ok := p.services[name]
	p.mu.Unlock()
	if !ok || s.pool.Load() == nil {
		return Status{}, fmt.Errorf("service %s: %w", name, ErrNotFound)
	}
	return s.status(), nil
}

// List returns every service, by name.
func (p *Proxy) List() []Status {
	p.mu.Lock()
	var ss []*service
	for _, s := range p.services {
		if s.pool.Load() != nil {
			ss = append(ss, s)
		}
	}
	p.mu.Unlock()
	out := make([]Status, 0, len(ss))
	for _, s := range ss {
		out = append(out, s.status())
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Service, b.Service) })
	return out
}

func (s *service) status() Status {
	st := Status{Service: s.name, Hosts: []string{}, Targets: []TargetStatus{}}
	if c := s.cfg.Load(); c != nil {
		st.Hosts = append(st.Hosts, c.hosts...)
		st.Generation = c.generation
		st.Health = c.health
		st.DrainTimeout = Duration(c.drainTimeout)
	}
	if pl := s.pool.Load(); pl != nil {
		for _, b := range pl.backends {
			st.Targets = append(st.Targets, TargetStatus{Address: b.addr, Healthy: b.healthy.Load(), InFlight: b.inflight.Load()})
		}
	}
	if s.mu.TryLock() {
		s.mu.Unlock()
	} else {
		st.Deploying = true
	}
	return st
}
