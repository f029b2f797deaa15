package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/policy"
	"github.com/hubctl/hubctl/internal/policy/policyapi"

	"github.com/hubctl/hubctl/internal/config"
	"github.com/hubctl/hubctl/internal/metrics"
)

// metricsOnMain serves /metrics on the main listener to requests bearing the token
// (metrics.token); others get 401, as if the route needed a login.
func metricsOnMain(m *metrics.Metrics, token string) http.Handler {
	h := m.Handler()
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			http.Error(w, "metrics need the metrics token", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// listenMetrics binds the separate metrics listener of cfg.Metrics.Addr, or returns
// nil when it is off. The default address, taken by another hub on the host, is
// skipped with a warning; an address the operator chose must bind.
func listenMetrics(cfg config.Config, log *slog.Logger) (net.Listener, error) {
	if cfg.Metrics.Addr == "off" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.Metrics.Addr)
	if err != nil {
		if cfg.Metrics.Addr == config.DefaultMetricsAddr && errors.Is(err, syscall.EADDRINUSE) {
			log.Warn("metrics listener not started: the default address is taken (set --metrics-addr, or off)", "addr", cfg.Metrics.Addr)
			return nil, nil
		}
		return nil, fmt.Errorf("metrics listener on %s: %w", cfg.Metrics.Addr, err)
	}
	return ln, nil
}

// serveSide runs a small plain-HTTP server (metrics, redirect) on ln until ctx ends,
// tracked by wg.
func serveSide(ctx context.Context, wg *sync.WaitGroup, log *slog.Logger, name string, ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	wg.Go(func() {
		<-ctx.Done()
		_ = srv.Close()
	})
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn(name+" listener stopped", "err", err)
		}
	})
	log.Info("serving "+name, "addr", ln.Addr().String())
}

// metricsMux is the separate metrics listener's handler.
func metricsMux(m *metrics.Metrics) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	return mux
}

// startSideListeners starts the metrics listener and the HTTP→HTTPS redirect listener
// when configured. Both bind before the main listener serves, so a taken port fails
// the start.
func startSideListeners(ctx context.Context, wg *sync.WaitGroup, cfg config.Config, log *slog.Logger, mx *metrics.Metrics, ts *tlsSetup, mainAddr net.Addr) error {
	mln, err := listenMetrics(cfg, log)
	if err != nil {
		return err
	}
	if mln != nil {
		serveSide(ctx, wg, log, "metrics", mln, metricsMux(mx))
	}
	if cfg.TLS.RedirectAddr == "" || ts == nil {
		return nil
	}
	rln, err := net.Listen("tcp", cfg.TLS.RedirectAddr)
	if err != nil {
		return fmt.Errorf("redirect listener on %s: %w", cfg.TLS.RedirectAddr, err)
	}
	h := redirectHandler(cfg, mainAddr)
	if ts.acme != nil {
		h = ts.acme.HTTPHandler(h)
	}
	serveSide(ctx, wg, log, "HTTP redirect", rln, h)
	return nil
}

// pullFlushInterval is how often pull times are written when pull events are off
// (events.pull_interval 0): one transaction per interval per replica, whatever the
// pull rate.
const pullFlushInterval = 30 * time.Second

// pullFlushEvery is how often a replica writes what it noted of pulls: with pull
// events on, their interval (the pull times go in the same transaction).
func pullFlushEvery(cfg config.Events) time.Duration {
	if cfg.PullInterval > 0 {
		return cfg.PullInterval
	}
	return pullFlushInterval
}

// newPolicyEngine returns the engine of immutable tags, pull times, pull counts and
// retention.
func newPolicyEngine(meta metaStore, bus *events.Bus, log *slog.Logger, mx *metrics.Metrics, cfg config.Events) *policy.Engine {
	return &policy.Engine{Store: meta, Meta: meta, Events: bus, Log: log, OnRun: mx.Retention, OnFlush: mx.PullsFlushed,
		PullEvents: cfg.PullInterval > 0}
}

// policyAPI is the policy API, signed in as the hub API is (nil ap: --auth=none).
func policyAPI(e *policy.Engine, ap *authParts, store accounts.Store) *policyapi.API {
	api := &policyapi.API{Engine: e, Audit: store.Audit}
	if ap != nil {
		api.Principal, api.Authz = ap.charts.Principal, ap.policy
	}
	return api
}
