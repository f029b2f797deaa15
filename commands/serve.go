package commands

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hubctl/hubctl/internal/config"
	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/internal/server"
	"github.com/hubctl/hubctl/internal/workflow/executor/docker"
	"github.com/hubctl/hubctl/internal/workflow/executor/kube"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// ServeOptions are the inputs of `hubctl serve`, after the configuration file,
// environment and flags were merged.
type ServeOptions struct {
	IO     *iostreams.IOStreams
	Config config.Config
	// CheckConfig validates the configuration and exits (--check-config).
	CheckConfig bool
}

// serveFlagKeys maps each `hubctl serve` flag to the configuration key it sets, so flags
// override exactly the settings the YAML file and HUBCTL_* variables name.
var serveFlagKeys = map[string]string{
	"addr":               "addr",
	"data":               "data",
	"db":                 "db.path",
	"max-manifest-size":  "max_manifest_size",
	"upload-max-age":     "uploads.max_age",
	"gc-interval":        "gc.interval",
	"log-format":         "log.format",
	"log-level":          "log.level",
	"auth":               "auth.mode",
	"storage":            "storage.driver",
	"s3-endpoint":        "storage.s3.endpoint",
	"s3-region":          "storage.s3.region",
	"s3-bucket":          "storage.s3.bucket",
	"s3-prefix":          "storage.s3.prefix",
	"s3-path-style":      "storage.s3.path_style",
	"s3-redirect":        "storage.s3.redirect",
	"cos-region":         "storage.s3.region",
	"cos-bucket":         "storage.s3.bucket",
	"external-url":       "external_url",
	"tls":                "tls.mode",
	"tls-cert":           "tls.cert",
	"tls-key":            "tls.key",
	"tls-names":          "tls.names",
	"tls-redirect-addr":  "tls.redirect_addr",
	"acme-domain":        "tls.acme_domain",
	"acme-directory":     "tls.acme_directory",
	"acme-email":         "tls.acme_email",
	"metrics-addr":       "metrics.addr",
	"retention-interval": "retention.interval",
	"events-retention":   "events.retention",
	"trusted-proxies":    "trusted_proxies",
	"workflow-executor":  "workflows.executor",
}

// NewCmdServe returns `hubctl serve`. runF receives the merged configuration instead of
// starting the server, so tests can check flag and configuration handling.
func NewCmdServe(f *Factory, runF func(*ServeOptions) error) *cobra.Command {
	// Flags are bound to a scratch Config only to parse and show defaults; which of them
	// count is decided by Changed, because an unset flag must not mask file or env.
	def := config.Default()
	flagCfg := config.Default()
	checkConfig := false
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the hub: an OCI distribution registry",
		Long: `Run an OCI distribution v1.1 registry.

With no configuration it listens on :5000 and keeps everything in the data directory
./hubctl-data: blobs on the filesystem (its blobs/, uploads/ and tmp/) and metadata in
SQLite (its hubctl.db).

Settings come from, lowest precedence first: built-in defaults, a YAML file (--config or
$HUBCTL_CONFIG), HUBCTL_* environment variables, then the flags below. Each YAML key has
an environment variable named after its path, e.g. uploads.max_age is
HUBCTL_UPLOADS_MAX_AGE and max_manifest_size is HUBCTL_MAX_MANIFEST_SIZE.

Clients authenticate with the Docker token service on the same listener (/token):
repositories are private unless made public, and only an explicit --auth=none opens the
registry to everyone. At first start an admin account is created; its password comes
from HUBCTL_ADMIN_PASSWORD or is generated and printed once on stderr. Later starts
ignore HUBCTL_ADMIN_PASSWORD (and say so): change the password with 'hubctl user
passwd', or on the host with 'hubctl admin reset-password'.

On an address others can reach, set --external-url to the URL clients use: without it
the token realm follows each request's Host header, and serve warns at start.

Each client (the account of a registry token, else its address) may hold at most
limits.requests_per_client requests and limits.uploads_per_client uploads in flight;
bodies and responses slower than limits.min_body_rate are cut once limits.slow_timeout
is spent.

TLS: --tls-cert and --tls-key serve HTTPS (TLS 1.2 or newer, HTTP/2) and the files are
re-read when they change; --tls=self-signed makes a CA and a certificate under
<data>/tls once and prints the line that makes clients trust it; --tls=acme with
--acme-domain gets certificates from Let's Encrypt (or --acme-directory) and keeps them
in the database, so replicas share them. --tls-redirect-addr :80 redirects plain HTTP.

Metrics: GET /metrics (Prometheus) on --metrics-addr, 127.0.0.1:9464 by default; with
HUBCTL_METRICS_TOKEN set, also on the main listener to requests bearing that token.

Traces: off unless OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
is set; then a span per request, named by its route template, is sent over OTLP
(OTEL_EXPORTER_OTLP_PROTOCOL http/protobuf or grpc), configured by the standard OTEL_*
variables: OTEL_SERVICE_NAME (hubctl), OTEL_TRACES_SAMPLER, OTEL_SDK_DISABLED, …
(docs/registry.md#traces).

Tag policies ('hubctl repo policy'): immutable tags are enforced on every push and
delete; retention runs every --retention-interval (6h) and on demand.

--check-config checks the configuration without starting (docs/operating.md).

It binds its address before it creates anything, so a taken port fails first. Once
bound, it prints "listening on ADDR" on stderr. SIGINT or SIGTERM stops accepting
connections and lets in-flight requests finish for up to shutdown_timeout.`,
		Example: `  hubctl serve
  hubctl serve --addr 127.0.0.1:0 --data /tmp/hub
  HUBCTL_MAX_MANIFEST_SIZE=8MiB hubctl serve --log-format json
  hubctl serve --addr :443 --tls-cert /etc/hubctl/tls.crt --tls-key /etc/hubctl/tls.key --external-url https://hub.example.com
  hubctl serve --addr :443 --tls=acme --acme-domain hub.example.com --tls-redirect-addr :80`,
		Args: checkArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			overrides := map[string]string{}
			cmd.Flags().Visit(func(fl *pflag.Flag) {
				if key, ok := serveFlagKeys[fl.Name]; ok {
					overrides[key] = fl.Value.String()
				}
			})
			if _, set := overrides["log.level"]; f.Debug && !set {
				overrides["log.level"] = "debug"
			}
			cfg, err := config.Load(config.Sources{File: f.ConfigFile, LookupEnv: f.LookupEnv, Flags: overrides})
			if err != nil {
				return err
			}
			opts := &ServeOptions{IO: f.IOStreams, Config: cfg, CheckConfig: checkConfig}
			if runF != nil {
				return runF(opts)
			}
			if checkConfig {
				return serveCheckConfig(opts)
			}
			return serveRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&flagCfg.Addr, "addr", def.Addr, "TCP `address` to listen on (port 0 picks a free port)")
	fl.StringVar(&flagCfg.Data, "data", def.Data, "Data `directory` for blobs and the database")
	fl.StringVar(&flagCfg.DB.Path, "db", "", "SQLite database `file` (default <data>/hubctl.db), or a postgres:// URL")
	fl.Var(&flagCfg.MaxManifestSize, "max-manifest-size", "Largest manifest accepted, e.g. 4MiB")
	fl.DurationVar(&flagCfg.Uploads.MaxAge, "upload-max-age", def.Uploads.MaxAge, "Remove upload sessions idle for longer than this")
	fl.DurationVar(&flagCfg.GC.Interval, "gc-interval", def.GC.Interval, "Collect unreferenced blobs this often (0 turns it off)")
	fl.StringVar(&flagCfg.Workflows.Executor, "workflow-executor", def.Workflows.Executor, "What runs workflow jobs: `docker` (skipped with a warning when Docker does not answer), kubernetes (workflows.kube.*) or none")
	fl.StringVar(&flagCfg.Log.Format, "log-format", def.Log.Format, "Log `format`: text or json")
	fl.StringVar(&flagCfg.Log.Level, "log-level", def.Log.Level, "Log `level`: debug, info, warn or error")
	fl.StringVar(&flagCfg.Storage.Driver, "storage", def.Storage.Driver, "Blob `store`: filesystem, s3 or cos")
	fl.StringVar(&flagCfg.Storage.S3.Endpoint, "s3-endpoint", "", "S3 API `URL` (--storage s3)")
	fl.StringVar(&flagCfg.Storage.S3.Region, "s3-region", "", "S3 `region` (--storage s3)")
	fl.StringVar(&flagCfg.Storage.S3.Bucket, "s3-bucket", "", "S3 `bucket` (--storage s3)")
	fl.StringVar(&flagCfg.Storage.S3.Prefix, "s3-prefix", "", "Key `prefix` inside the bucket (s3 and cos)")
	fl.BoolVar(&flagCfg.Storage.S3.PathStyle, "s3-path-style", false, "Path-style bucket addressing (MinIO, versitygw, Ceph)")
	fl.BoolVar(&flagCfg.Storage.S3.Redirect, "s3-redirect", def.Storage.S3.Redirect, "Answer blob pulls with 307 to a presigned URL (s3 and cos); false streams them through")
	fl.StringVar(&flagCfg.Storage.S3.Region, "cos-region", "", "COS `region`, e.g. ap-guangzhou (--storage cos)")
	fl.StringVar(&flagCfg.Storage.S3.Bucket, "cos-bucket", "", "COS `bucket`, name-APPID (--storage cos)")
	fl.StringVar(&flagCfg.Auth.Mode, "auth", def.Auth.Mode, "Authentication `mode`: token (Docker token auth) or none (anyone may do anything)")
	fl.StringVar(&flagCfg.ExternalURL, "external-url", "", "Base `URL` clients reach the hub at, and the token realm's; set it on any non-loopback address (default: each request's own host)")
	fl.StringVar(&flagCfg.TrustedProxies, "trusted-proxies", "", "Comma-separated `CIDRs` of reverse proxies whose X-Forwarded-For (trusted_proxy_header) names the client's address, for rate limits, logs and the audit log (default: none; the TCP peer is the client)")
	fl.StringVar(&flagCfg.TLS.Mode, "tls", "", "TLS `mode`: off, files (--tls-cert/--tls-key), self-signed or acme (default off, files when --tls-cert is set)")
	fl.StringVar(&flagCfg.TLS.Cert, "tls-cert", "", "PEM certificate `file` with its chain; re-read when it changes")
	fl.StringVar(&flagCfg.TLS.Key, "tls-key", "", "PEM private key `file` of --tls-cert")
	fl.StringVar(&flagCfg.TLS.Names, "tls-names", "", "Comma-separated DNS `names` and IPs of the self-signed certificate (default: host name, localhost, loopback)")
	fl.StringVar(&flagCfg.TLS.RedirectAddr, "tls-redirect-addr", "", "Also listen on this plain-HTTP `address` and redirect to HTTPS (and answer ACME http-01), e.g. :80")
	fl.StringVar(&flagCfg.TLS.ACMEDomain, "acme-domain", "", "Comma-separated domain `names` to get ACME certificates for (--tls=acme)")
	fl.StringVar(&flagCfg.TLS.ACMEDirectory, "acme-directory", def.TLS.ACMEDirectory, "ACME directory `URL` (a private CA, or Let's Encrypt staging)")
	fl.StringVar(&flagCfg.TLS.ACMEEmail, "acme-email", "", "Contact `address` given to the ACME CA")
	fl.StringVar(&flagCfg.Metrics.Addr, "metrics-addr", def.Metrics.Addr, "Serve GET /metrics on this `address`, or off")
	fl.DurationVar(&flagCfg.Retention.Interval, "retention-interval", def.Retention.Interval, "Apply retention policies this often (0: only on demand)")
	fl.DurationVar(&flagCfg.Events.Retention, "events-retention", def.Events.Retention, "Keep events (hubctl events ls, webhooks) this long (0: forever)")
	fl.BoolVar(&checkConfig, "check-config", false, "Check the configuration (file, environment, flags) and exit: 0 when serve could start with it")
	_ = cmd.MarkFlagFilename("tls-cert", "pem", "crt")
	_ = cmd.MarkFlagFilename("tls-key", "pem", "key")
	_ = cmd.RegisterFlagCompletionFunc("tls", cobra.FixedCompletions([]string{"off", "files", "self-signed", "acme"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.MarkFlagDirname("data")
	_ = cmd.MarkFlagFilename("db")
	_ = cmd.RegisterFlagCompletionFunc("log-format", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("storage", cobra.FixedCompletions([]string{"filesystem", "s3", "cos"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("auth", cobra.FixedCompletions([]string{"token", "none"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("log-level", cobra.FixedCompletions([]string{"debug", "info", "warn", "error"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func serveRun(ctx context.Context, opts *ServeOptions) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := server.NewLogger(opts.IO.ErrOut, opts.Config.Log)
	return server.Run(ctx, opts.Config, log, opts.IO.ErrOut)
}

// serveCheckConfig prints what serve would do with the configuration, and fails with
// what would stop it.
func serveCheckConfig(opts *ServeOptions) error {
	notes, err := server.CheckConfig(opts.Config)
	for _, n := range notes {
		fmt.Fprintln(opts.IO.Out, n)
	}
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	fmt.Fprintln(opts.IO.Out, "configuration OK")
	return nil
}

func init() {
	// hubctl serve runs workflow jobs with the Docker executor (internal/server cannot
	// import it: see server.DockerExecutor).
	server.DockerExecutor = func(hostNetwork bool) (server.WorkflowExecutor, error) {
		var opts []docker.Option
		if hostNetwork {
			opts = append(opts, docker.WithHostNetwork())
		}
		return docker.New(opts...)
	}
	// … and with the Kubernetes executor (workflows.executor: kubernetes), whose
	// hub refuses at apply what it cannot run.
	server.KubeCheckWorkflow = kube.CheckWorkflowWith
	// … and with the Kubernetes executor (workflows.executor: kubernetes).
	server.KubeExecutor = func(cfg config.WorkflowsKube) (server.WorkflowExecutor, error) {
		rc, err := kube.RESTConfig(cfg.Kubeconfig)
		if err != nil {
			return nil, err
		}
		opts := []kube.Option{kube.WithAgentImage(cfg.AgentImage)}
		if cfg.WorkspaceSize > 0 {
			opts = append(opts, kube.WithWorkspaceClaim(cfg.WorkspaceClass, int64(cfg.WorkspaceSize)))
		}
		return kube.NewFromConfig(rc, cfg.Namespace, opts...)
	}
}
