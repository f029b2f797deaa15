// Package server runs the `hubctl serve` process: it opens the stores, mounts the
// registry and health endpoints behind request-id, access-log and panic middleware,
// listens, cleans stale uploads in the background and shuts down gracefully.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/blobstore/s3store"
	"github.com/hubctl/hubctl/internal/charts/chartrepo"
	"github.com/hubctl/hubctl/internal/charts/chartstore"
	"github.com/hubctl/hubctl/internal/config"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/gc"
	"github.com/hubctl/hubctl/internal/hubapi"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/metrics"
	"github.com/hubctl/hubctl/internal/policy"
	"github.com/hubctl/hubctl/internal/registry"
	"github.com/hubctl/hubctl/internal/searchindex"
	"github.com/hubctl/hubctl/internal/secrets"
	"github.com/hubctl/hubctl/internal/tracing"
	"github.com/hubctl/hubctl/internal/web"
	"github.com/hubctl/hubctl/internal/webhook"
	"github.com/hubctl/hubctl/internal/workflow/engine"
)

// readHeaderTimeout bounds how long a client may take to send request headers (slowloris).
// There is deliberately no ReadTimeout or WriteTimeout: a multi-GiB blob upload or
// download must not be cut off by a whole-request deadline.
const readHeaderTimeout = 30 * time.Second

// idleTimeout closes keep-alive connections nobody uses.
const idleTimeout = 2 * time.Minute

// NewLogger returns the server's logger writing to w in the configured format and level.
// The configuration must have been validated.
func NewLogger(w io.Writer, l config.Log) *slog.Logger {
	level, err := l.SlogLevel()
	if err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Routes are the handlers the server mounts; nil ones are left out.
type Routes struct {
	// V2 serves the distribution API under /v2/.
	V2 http.Handler
	// Tokens serves /token and /token/jwks.json (nil without auth).
	Tokens http.Handler
	// API serves the hub API under /api/v1/ (nil without auth).
	API http.Handler
	// Charts serves the chart repositories under /charts/ and the ChartMuseum API
	// under the rest of /api/.
	Charts http.Handler
	// Limits, when set, bound what each client may hold (limits.go).
	Limits *Limits
	// Metrics, when set, counts and times every request; with MetricsToken it is also
	// served at /metrics to requests bearing that token (ops.go).
	Metrics      *metrics.Metrics
	MetricsToken string
	// Policies serves the tag and retention policy API (internal/policy).
	Policies http.Handler
	// Tracing, when set, makes a span of every request but probes and scrapes.
	Tracing *tracing.Tracer
	// Web serves the web UI on every path no other route takes (internal/web); the
	// names it serves at the top level are reserved namespaces
	// (accounts.ReservedNames).
	Web http.Handler
}

// NewHandler returns the HTTP handler of the server: the routes, /healthz and /readyz
// probing checks, all behind the tracing, request-id, access-log and panic-recovery
// middleware.
func NewHandler(log *slog.Logger, rt Routes, checks []Check) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /readyz", readyz(log, checks))
	if rt.Tokens != nil {
		mux.Handle("/token", rt.Tokens)
		mux.Handle("/token/", rt.Tokens)
	}
	if rt.API != nil {
		mux.Handle("/api/v1/", rt.API)
	}
	if rt.Policies != nil {
		mux.Handle("/api/v1/policies", rt.Policies)
		mux.Handle("/api/v1/policies/", rt.Policies)
		mux.Handle("/api/v1/retention", rt.Policies)
	}
	if rt.Metrics != nil && rt.MetricsToken != "" {
		mux.Handle("GET /metrics", metricsOnMain(rt.Metrics, rt.MetricsToken))
	}
	if rt.Web != nil {
		// The least specific pattern: every route above wins over it.
		mux.Handle("/", rt.Web)
	}
	if rt.Charts != nil {
		mux.Handle("/charts/", rt.Charts)
		// ChartMuseum's API is /api/NAMESPACE/…; no namespace may be called v1
		// (accounts.CheckNamespaceName), so it never meets the hub API.
		mux.Handle("/api/", rt.Charts)
	}
	// /v2 bypasses ServeMux: the mux would answer "a/../b" or "a//b" with a redirect to
	// a cleaned path, i.e. to another repository. The registry refuses such names with
	// NAME_INVALID instead.
	routes := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2" || strings.HasPrefix(r.URL.Path, "/v2/") {
			rt.V2.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
	var h http.Handler = routes
	if rt.Limits != nil {
		h = rt.Limits.Wrap(h)
	}
	return rt.Tracing.Middleware(withRequestID(rt.Metrics.Middleware(accessLog(log, recoverPanics(log, h)))))
}

// Run serves the registry configured by cfg until ctx is cancelled, then stops accepting
// connections, lets in-flight requests finish for up to cfg.ShutdownTimeout and closes
// the stores. Once listening it prints "listening on ADDR" to stderr. cfg must come from
// config.Load (paths resolved, values validated).
func Run(ctx context.Context, cfg config.Config, log *slog.Logger, stderr io.Writer) error {
	return run(ctx, cfg, log, stderr, nil)
}

// run is Run with an optional wrapper around the HTTP handler, which tests use to learn
// when a request is in flight.
func run(ctx context.Context, cfg config.Config, log *slog.Logger, stderr io.Writer, wrap func(http.Handler) http.Handler) error {
	// Only what lives on this host gets a directory: the blob root on the filesystem
	// driver, the database's on SQLite. A postgres:// URL is not a path (made one, it
	// would leave its password in a directory name).
	dirs := []string{cfg.Data}
	if cfg.Storage.Driver == "filesystem" {
		dirs = append(dirs, cfg.Storage.Filesystem.Root)
	}
	if cfg.DB.Driver == "sqlite" {
		dirs = append(dirs, filepath.Dir(cfg.DB.Path))
	}
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create data directory: %w", err)
		}
	}
	unlock, err := lockDataDir(cfg.Data)
	if err != nil {
		return err
	}
	defer unlock()
	tr, err := tracing.Start(ctx, log)
	if err != nil {
		return err
	}
	defer func() {
		// Last, once the server stopped: flush the spans of the last requests.
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracingFlushTimeout)
		defer cancel()
		if err := tr.Shutdown(flushCtx); err != nil {
			log.Warn("tracing: flush spans at exit", "err", err)
		}
	}()
	blobs, err := openBlobStore(ctx, cfg)
	if err != nil {
		return err
	}
	meta, err := openMetaStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("open database %s: %w", databaseName(cfg), err)
	}
	meta.SetRepositoryLimits(metadata.RepositoryLimits{Manifests: cfg.Limits.ManifestsPerRepository, Tags: cfg.Limits.TagsPerRepository})
	meta.SetTagHistoryHold(cfg.Retention.TagHistoryHold)
	mx := metrics.New()
	blobs = mx.Blobs(blobs)
	observeStores(mx, tr, meta, cfg.DB.Driver)
	defer func() {
		if err := meta.Close(); err != nil {
			log.Error("close database", "err", err)
		}
		if c, ok := any(blobs).(io.Closer); ok {
			if err := c.Close(); err != nil {
				log.Error("close blob store", "err", err)
			}
		}
	}()

	// Bind before anything is created for a first start (the admin account and its
	// one-time password): a taken port must fail before a password is shown that the
	// next start would not show again.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	serving := false
	defer func() {
		if !serving {
			_ = ln.Close()
		}
	}()

	keyring, err := OpenKeyring(cfg, true)
	if errors.Is(err, ErrNoSecretsKey) {
		// A hub upgraded on PostgreSQL keeps serving; only what needs sealed secrets
		// (webhooks) waits for the keys, and says so where it is asked for.
		log.Warn("webhooks are off until every replica is given the same secret keys", "why", err.Error())
		keyring = nil
	} else if err != nil {
		return err
	}
	allow, err := config.ParseTrustedProxies(cfg.Webhooks.AllowAddresses)
	if err != nil {
		return err
	}
	// Every replica dispatches and delivers webhooks; the store's cursor lock and
	// claims share the work (docs/webhooks.md). The hub API sends test deliveries
	// through the same deliverer.
	maxFailures := cfg.Webhooks.MaxFailures
	if maxFailures == 0 {
		maxFailures = -1 // never pause
	}
	deliverer := &webhook.Deliverer{Store: meta, Keyring: keyring, MayPull: (&authz.Policy{Store: meta}).MayPull,
		Client: webhook.NewClient(webhook.Guard{Allow: allow}), Log: log.With("component", "webhooks"), MaxFailures: maxFailures,
		ExternalURL: cfg.ExternalURL}
	// The store writes events, and the audit entries of pushes and deletes, in the
	// changes' own transactions (docs/design/events.md); the bus is the in-process
	// stream that some packages still publish to.
	bus := events.NewBus(log)
	// The policy engine's immutable tags bind the registry, and the hub API's and
	// web UI's tag restore.
	pol := newPolicyEngine(meta, bus, log, mx, cfg.Events)
	// The hub publishes its own agent image (workflows on Kubernetes) into its stores
	// before the hub API and the executor read workflows.kube.agent_image.
	cfg.Workflows.Kube.AgentImage = agentImage(ctx, cfg, meta, blobs, log)
	ap, err := setupAuth(ctx, cfg, meta, blobs, keyring, deliverer, pol, log, stderr)
	if err != nil {
		return err
	}
	charts := &chartrepo.Hook{Store: meta, Blobs: blobs, Log: log}
	search := &searchindex.Indexer{Store: meta, Blobs: blobs, Log: log.With("component", "search")}
	ro := registry.Options{
		Blobs:           blobs,
		Meta:            meta,
		Events:          bus,
		Log:             log,
		MaxManifestSize: int64(cfg.MaxManifestSize),
		Artifacts:       artifactHooks{charts, search},
		Outbox:          meta,
	}
	ro.Policy = pol
	if cfg.Storage.Driver != "filesystem" && cfg.Storage.S3.Redirect {
		ro.RedirectTTL = cfg.Storage.S3.RedirectTTL
	}
	routes := Routes{}
	if ap != nil {
		ro.Auth = ap.registry
		routes.Tokens = ap.tokens
		routes.API = ap.api
	}
	reg := registry.New(ro)
	routes.V2 = reg
	co := chartrepo.Options{Store: meta, Blobs: blobs, Registry: reg, Log: log}
	if ap != nil {
		co.Auth = ap.charts
	}
	routes.Charts = chartrepo.New(co)
	routes.Limits = newLimits(cfg.Limits, log, ap)
	routes.Metrics, routes.MetricsToken = mx, cfg.Metrics.Token
	papi := policyAPI(pol, ap, meta)
	routes.Policies = papi
	routes.Tracing = tr
	if ap != nil {
		w, err := web.New(web.Options{Accounts: meta, Meta: meta, Search: meta, Views: meta, Blobs: blobs, Policy: ap.policy, Guard: ap.guard,
			History: meta, TagRules: pol, ExternalURL: cfg.ExternalURL, Log: log.With("component", "web"), Workflows: meta, Webhooks: meta, Keyring: keyring, Deploys: meta, Charts: meta, Policies: meta,
			PolicyEdit: papi})
		if err != nil {
			return err
		}
		routes.Web = w
	}
	handler := NewHandler(log, routes, []Check{
		{Name: "storage", Ping: blobs.Ping},
		{Name: "database", Ping: meta.Ping},
	})

	proxies, err := config.ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return err
	}
	handler = clientAddress(proxies, cfg.TrustedProxyHeader, handler)
	if wrap != nil {
		handler = wrap(handler)
	}

	// Requests run under a context of their own, cancelled when the shutdown timeout
	// passes, so that uploads still running then stop and abort what they were writing.
	reqCtx, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRequests()
	srv := &http.Server{
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
		Handler:           handler,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ts, err := setupTLS(cfg, meta, log, stderr, ln.Addr())
	if err != nil {
		return err
	}
	// Dragonfly preheats need the hub's address as the manager reaches it, known once
	// TLS is; set before the listener serves, as the hub API's test deliveries read
	// the deliverer too.
	deliverer.RegistryURL, deliverer.PollInterval = registryURL(cfg, ln.Addr(), ts != nil), cfg.Webhooks.Interval
	if m := newPullMinter(cfg, ap, meta); m != nil {
		deliverer.Minter = m
	}
	sideCtx, stopSide := context.WithCancel(context.WithoutCancel(ctx))
	var sideDone sync.WaitGroup
	defer func() {
		stopSide()
		sideDone.Wait()
	}()
	if err := startSideListeners(sideCtx, &sideDone, cfg, log, mx, ts, ln.Addr()); err != nil {
		return err
	}
	serveErr := make(chan error, 1)
	serving = true // Serve owns the listener now and closes it
	if ts != nil {
		srv.TLSConfig = ts.config
		go func() { serveErr <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { serveErr <- srv.Serve(ln) }()
	}
	fmt.Fprintf(stderr, "listening on %s\n", ln.Addr())
	log.Info("serving", "addr", ln.Addr().String(), "tls", cfg.TLS.Mode, "storage", storageName(cfg), "database", databaseName(cfg), "tracing", tr.Settings().String())
	warnHostRealm(log, cfg, ln.Addr())

	janitorCtx, stopJanitor := context.WithCancel(context.WithoutCancel(ctx))
	var janitorDone sync.WaitGroup
	janitorDone.Go(func() {
		runJanitor(janitorCtx, log, cfg.Uploads.CleanupInterval, func(ctx context.Context) (int, error) {
			return reg.CleanStaleUploads(ctx, cfg.Uploads.MaxAge)
		})
	})
	if ap != nil {
		janitorDone.Go(func() { reloadKeys(janitorCtx, log, ap.keys, keyReloadInterval) })
	}
	janitorDone.Go(func() {
		// Charts pushed before this version knew charts, or whose record a crash
		// left out, get their records.
		if n, err := charts.Backfill(janitorCtx); err != nil && janitorCtx.Err() == nil {
			log.Warn("record chart manifests", "err", err, "recorded", n)
		} else if n > 0 {
			log.Info("recorded chart manifests pushed before", "count", n)
		}
	})
	// Repositories stored before search existed get their labels read (searchindex).
	janitorDone.Go(func() { search.RunBackfill(janitorCtx) })
	// Pull times and counts are flushed on the way out too (Schedule), before the
	// database closes.
	janitorDone.Go(func() { pol.Schedule(janitorCtx, cfg.Retention.Interval, pullFlushEvery(cfg.Events)) })
	if cfg.GC.Interval > 0 {
		janitorDone.Go(func() { runGC(janitorCtx, log, cfg.GC, meta, blobs, bus, meta, mx) })
	}
	if cfg.Events.Retention > 0 {
		janitorDone.Go(func() { runEventPurge(janitorCtx, log, meta, cfg.Events.Retention, cfg.Events.PurgeInterval) })
	}
	if keyring != nil {
		janitorDone.Go(func() { deliverer.Run(janitorCtx, cfg.Webhooks.Interval) })
	}
	// Every replica runs an engine; the store's claims and leases share the jobs
	// (docs/workflows.md). Its jobs stop with the janitors and are taken up again,
	// when their leases run out, by this or another replica.
	wfe, err := newWorkflowEngine(janitorCtx, cfg, meta, blobs, hubURL(cfg, ln.Addr(), ts != nil),
		jobCredentials{tokens: jobTokens(newMachineMinter(cfg, ap, meta)), secrets: jobSecrets(meta, keyring)}, log)
	if err != nil {
		stopJanitor()
		janitorDone.Wait()
		return err
	}
	if wfe != nil {
		wakeOnEvents(janitorCtx, &janitorDone, bus, wfe.Engine)
		janitorDone.Go(func() {
			_ = wfe.Run(janitorCtx)
			_ = wfe.close()
		})
	} else {
		// No engine here: the retention of finished runs still holds on this replica.
		janitorDone.Go(func() {
			engine.RunRetention(janitorCtx, artifactOptions(cfg.Workflows, meta, blobs), nil, log.With("component", "workflows"))
		})
	}
	defer func() {
		stopJanitor()
		janitorDone.Wait()
	}()

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	log.Info("shutting down: waiting for in-flight requests", "timeout", cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("shutdown timeout reached: closing remaining connections", "err", err)
		cancelRequests()
		_ = srv.Close()
		// Uploads cut off abort their multipart uploads and sessions before the stores
		// close; what a further hang leaves, the stale-session purge removes.
		waitCtx, cancelWait := context.WithTimeout(context.WithoutCancel(ctx), uploadAbortTimeout)
		if err := reg.WaitUploads(waitCtx); err != nil {
			log.Warn("uploads still running at exit; the stale-session purge removes what they leave", "err", err)
		}
		cancelWait()
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}

// tracingFlushTimeout bounds the export of the last spans at exit, so that a collector
// that does not answer cannot hold the shutdown.
const tracingFlushTimeout = 5 * time.Second

// observeStores times every blob store call and database transaction for the metrics
// and, with tracing on, records each as a span of the request it serves.
func observeStores(mx *metrics.Metrics, tr *tracing.Tracer, meta metaStore, dbDriver string) {
	if tr == nil {
		meta.SetObserver(func(_ context.Context, kind string, start time.Time, failed bool) {
			mx.DB(kind, time.Since(start), failed)
		})
		return
	}
	mx.ObserveBlobCalls(func(ctx context.Context, op string, start time.Time, failed bool) {
		tr.Record(ctx, "blobstore."+op, start, failed)
	})
	system := tracing.DBSystem(dbDriver)
	meta.SetObserver(func(ctx context.Context, kind string, start time.Time, failed bool) {
		mx.DB(kind, time.Since(start), failed)
		tr.Record(ctx, "db."+kind, start, failed, system)
	})
}

// uploadAbortTimeout bounds the wait, after the shutdown timeout, for cut-off uploads
// to abort what they were writing.
const uploadAbortTimeout = 15 * time.Second

// runJanitor calls clean once at start (sessions may have gone stale while the server
// was down) and then every interval until ctx ends.
func runJanitor(ctx context.Context, log *slog.Logger, interval time.Duration, clean func(context.Context) (int, error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		// A tick and the end can be ready at once, and select picks either: never
		// start a pass once the context has ended.
		if ctx.Err() != nil {
			return
		}
		n, err := clean(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("clean stale uploads", "err", err)
		case n > 0:
			log.Info("cleaned stale uploads", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// runEventPurge deletes, every interval until ctx ends, the events older than
// retention and the finished webhook deliveries last touched before then (with their
// attempts), so neither the outbox nor the delivery log grows without bound. Every
// replica runs it; deleting is idempotent.
func runEventPurge(ctx context.Context, log *slog.Logger, store eventPurger, retention, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		before := time.Now().Add(-retention)
		n, err := store.PurgeEvents(ctx, before, 0)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("purge old events", "err", err, "purged", n)
		case n > 0:
			log.Info("purged old events", "count", n, "retention", retention)
		}
		n, err = store.PurgeWebhookDeliveries(ctx, before, 0)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("purge old webhook deliveries", "err", err, "purged", n)
		case n > 0:
			log.Info("purged old webhook deliveries", "count", n, "retention", retention)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// eventPurger is what runEventPurge deletes from.
type eventPurger interface {
	PurgeEvents(ctx context.Context, before time.Time, batch int) (int, error)
	PurgeWebhookDeliveries(ctx context.Context, before time.Time, batch int) (int, error)
}

// runGC runs a garbage collection every cfg.Interval (the first one after an interval,
// not at start) until ctx ends. Untagged manifests are left alone: deleting them is an
// explicit decision (hubctl gc --untagged). Every replica may run the schedule: a run
// that finds another collection holding the lease (another replica's, or a hubctl gc)
// is skipped and logged, and the next tick tries again. What a run deletes is
// published on bus as the registry's deletes are.
func runGC(ctx context.Context, log *slog.Logger, cfg config.GC, meta metadata.Store, blobs blobstore.Store, bus *events.Bus, outbox events.Store, mx *metrics.Metrics) {
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rep, err := gc.Run(ctx, gc.Options{Meta: meta, Blobs: blobs, Grace: cfg.Grace, Log: log, Events: bus, Outbox: outbox, Holder: "serve"})
		var busy *gc.BusyError
		switch {
		case errors.As(err, &busy):
			mx.GC("busy", 0, 0)
			log.Info("garbage collection skipped: another collection is running", "holder", busy.Lease.Holder, "expires", busy.Lease.ExpiresAt)
		case err != nil && ctx.Err() == nil:
			mx.GC("error", rep.Swept, rep.BytesFreed)
			log.Warn("garbage collection", "err", err, "links", rep.Links, "marked", rep.Marked, "swept", rep.Swept)
		case err == nil:
			mx.GC("ok", rep.Swept, rep.BytesFreed)
		}
	}
}

// OpenStores opens the blob store and the database the configuration names, as serve
// does (for hubctl gc and other commands run on the server host). The caller closes
// the database.
func OpenStores(ctx context.Context, cfg config.Config) (blobstore.Store, metadata.Store, error) {
	// Do not create a hub where there is none: a mistyped --data must not look empty.
	var dirs []string
	if cfg.Storage.Driver == "filesystem" {
		dirs = append(dirs, cfg.Storage.Filesystem.Root)
	}
	if cfg.DB.Driver == "sqlite" {
		dirs = append(dirs, cfg.DB.Path)
	}
	for _, p := range dirs {
		if _, err := os.Stat(p); err != nil {
			return nil, nil, fmt.Errorf("no hub here: %w", err)
		}
	}
	blobs, err := openBlobStore(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	meta, err := openMetaStore(ctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("open metadata database %s: %w", databaseName(cfg), err)
	}
	// `hubctl gc` keeps what tag history holds as serve does.
	meta.SetTagHistoryHold(cfg.Retention.TagHistoryHold)
	return blobs, meta, nil
}

// Database is the hub's database: registry metadata and accounts in one.
type Database interface {
	metadata.Store
	accounts.Store
	// ResealSecrets rewrites every stored secret with the keyring's newest key.
	ResealSecrets(ctx context.Context, ring *secrets.Keyring) (int, error)
}

// OpenDatabase opens the database the configuration names, as serve does, for commands
// run on the server host that need no blob store (hubctl admin reset-password). Like
// OpenStores it refuses a SQLite file that does not exist. The caller closes it.
func OpenDatabase(ctx context.Context, cfg config.Config) (Database, error) {
	if cfg.DB.Driver == "sqlite" {
		if _, err := os.Stat(cfg.DB.Path); err != nil {
			return nil, fmt.Errorf("no hub here: %w", err)
		}
	}
	db, err := openMetaStore(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", databaseName(cfg), err)
	}
	return db, nil
}

// openBlobStore opens the configured blob store.
func openBlobStore(ctx context.Context, cfg config.Config) (blobstore.Store, error) {
	switch cfg.Storage.Driver {
	case "s3", "cos":
		c := cfg.Storage.S3
		st, err := s3store.New(ctx, s3store.Options{
			Preset: cfg.Storage.Driver, Endpoint: c.Endpoint, Region: c.Region, Bucket: c.Bucket, Prefix: c.Prefix,
			PathStyle: c.PathStyle, AccessKey: c.AccessKey, SecretKey: c.SecretKey,
			PresignEndpoint: c.PresignEndpoint, PresignAccessKey: c.PresignAccessKey, PresignSecretKey: c.PresignSecretKey,
		})
		if err != nil {
			return nil, fmt.Errorf("open blob store %s: %w", storageName(cfg), err)
		}
		return st, nil
	}
	fs, err := blobstore.NewFS(cfg.Storage.Filesystem.Root)
	if err != nil {
		return nil, fmt.Errorf("open blob store %s: %w", cfg.Storage.Filesystem.Root, err)
	}
	return fs, nil
}

// storageName describes the blob store for logs and errors, without credentials.
func storageName(cfg config.Config) string {
	if cfg.Storage.Driver == "filesystem" {
		return cfg.Storage.Filesystem.Root
	}
	return cfg.Storage.Driver + "://" + cfg.Storage.S3.Bucket + "/" + cfg.Storage.S3.Prefix
}

// metaStore is the database: registry metadata, accounts and chart records in one,
// and the login limits every replica shares.
type metaStore interface {
	metadata.Store
	metadata.Searcher
	accounts.Store
	chartstore.Store
	LoginFailures(kind string, max int, window time.Duration) *sqlstore.LoginFailures
	KnownLogins(ttl time.Duration) *sqlstore.KnownLogins
	ActionRates(kind string, max int, window time.Duration) *sqlstore.ActionRates
	ACMECache
	policy.Store
	events.Store
	webhook.DeliveryStore
	engine.Store
	engine.ArtifactStore
	hubapi.WorkflowStore
	hubapi.WorkflowApprovalStore
	hubapi.DeployStore
	secretResolver
	ResealSecrets(ctx context.Context, ring *secrets.Keyring) (int, error)
	SetObserver(func(ctx context.Context, kind string, start time.Time, failed bool))
	SetTagHistoryHold(time.Duration)
	web.History
	web.DeployHistory
}

// openMetaStore opens the configured database and runs its migrations.
func openMetaStore(ctx context.Context, cfg config.Config) (metaStore, error) {
	if cfg.DB.Driver == "postgres" {
		return sqlstore.OpenPostgres(ctx, cfg.DB.Path)
	}
	return sqlstore.OpenSQLite(ctx, cfg.DB.Path)
}

// databaseName describes the database for logs and errors, without its password.
func databaseName(cfg config.Config) string {
	if cfg.DB.Driver != "postgres" {
		return cfg.DB.Path
	}
	u, err := url.Parse(cfg.DB.Path)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	return u.Redacted()
}
