package commands

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hubctl/hubctl/internal/config"
	"github.com/hubctl/hubctl/internal/deploy/proxy"
	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/internal/safetext"
	"github.com/hubctl/hubctl/internal/tlsconf"
)

// proxySecretEnv holds the control secret when --secret-file is not given.
const proxySecretEnv = "HUBCTL_PROXY_SECRET"

// defaultProxyControl is where `hubctl proxy run` listens for control by default,
// and where the client verbs look: loopback, so inside the proxy's container only.
const defaultProxyControl = "127.0.0.1:8081"

// NewCmdProxy returns `hubctl proxy`, the proxy mode a deploy runs on each Docker host.
func NewCmdProxy(f *Factory) *cobra.Command {
	return groupCommand("proxy", "Proxy mode: the zero-downtime HTTP proxy in front of deployed services",
		`On each Docker host, hubctl deploy runs hubctl itself in proxy mode, in a container
built FROM scratch with the hubctl binary ('proxy run' is its entrypoint). The proxy
routes HTTP requests by host to the healthy tasks of each service, round-robin. A
deploy hands it the new tasks over its control channel ('proxy deploy'); it
health-checks them, switches traffic only once all are healthy, and drains the old
ones before answering. The control channel is a separate listener that needs the
proxy's secret (--secret-file or $HUBCTL_PROXY_SECRET); see docs/deploy.md.`,
		NewCmdProxyRun(f, nil),
		NewCmdProxyDeploy(f, nil),
		NewCmdProxyStatus(f),
		NewCmdProxyRm(f))
}

// ProxyRunOptions are the inputs of `hubctl proxy run`.
type ProxyRunOptions struct {
	IO         *iostreams.IOStreams
	Config     proxy.Config
	SecretFile string
	LogFormat  string
	// ACMEDomains is --acme-domain, comma-separated.
	ACMEDomains string
}

// NewCmdProxyRun returns `hubctl proxy run`. runF receives the parsed options
// instead of serving.
func NewCmdProxyRun(f *Factory, runF func(*ProxyRunOptions) error) *cobra.Command {
	opts := &ProxyRunOptions{}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Serve as the proxy (the proxy container's entrypoint)",
		Long: `Serve HTTP (and HTTPS on --tls-listen, with certificate files or ACME) in front
of the services deployed to this host, and the control channel on
--control-listen. The control secret (at least 16 bytes) comes from --secret-file
or $HUBCTL_PROXY_SECRET. Services and their targets are kept in --state-file, so a
restarted proxy serves them at once. SIGTERM stops accepting connections and lets
requests in flight finish. With --acme-domain the certificates come from an ACME
CA (Let's Encrypt by default) as hubctl serve --tls=acme gets them: tls-alpn-01 on
--tls-listen (publish it on 443), http-01 on --listen (port 80), kept in
--acme-cache.`,
		Example: `  hubctl proxy run --listen :80 --state-file /data/state.json --secret-file /run/secrets/proxy
  HUBCTL_PROXY_SECRET=... hubctl proxy run --listen :80 --tls-listen :443 --tls-cert cert.pem --tls-key key.pem
  hubctl proxy run --listen :80 --tls-listen :443 --acme-domain shop.example.com --state-file /data/state.json`,
		Args: checkArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.LogFormat != "text" && opts.LogFormat != "json" {
				return usageErrorf(cmd, "invalid --log-format %q: want text or json", opts.LogFormat)
			}
			if (opts.Config.CertFile == "") != (opts.Config.KeyFile == "") {
				return usageErrorf(cmd, "--tls-cert and --tls-key go together")
			}
			opts.Config.ACME.Domains = config.List(opts.ACMEDomains)
			for _, d := range opts.Config.ACME.Domains {
				if err := tlsconf.CheckACMEDomain(d); err != nil {
					return usageErrorf(cmd, "--acme-domain %v", err)
				}
			}
			if d := opts.Config.ACME.Directory; d != "" {
				if err := tlsconf.CheckACMEDirectory(d); err != nil {
					return usageErrorf(cmd, "--acme-directory %v", err)
				}
			}
			useACME := len(opts.Config.ACME.Domains) > 0
			if opts.Config.CertFile != "" && useACME {
				return usageErrorf(cmd, "--tls-cert and --acme-domain exclude each other: certificate files, or ACME")
			}
			if (opts.Config.TLSListen != "") != (opts.Config.CertFile != "" || useACME) {
				return usageErrorf(cmd, "--tls-listen needs --tls-cert and --tls-key, or --acme-domain, and they need --tls-listen")
			}
			if !useACME && (opts.Config.ACME.Email != "" || opts.Config.ACME.Directory != "" || opts.Config.ACMECacheDir != "") {
				return usageErrorf(cmd, "--acme-email, --acme-directory and --acme-cache need --acme-domain")
			}
			if useACME && opts.Config.ACMECacheDir == "" {
				if opts.Config.StateFile == "" {
					return usageErrorf(cmd, "--acme-domain needs --acme-cache or --state-file (the certificates are kept beside it): they must outlive a restart, ACME CAs rate-limit")
				}
				opts.Config.ACMECacheDir = filepath.Join(filepath.Dir(opts.Config.StateFile), "acme")
			}
			secret, err := readProxySecret(f, opts.SecretFile)
			if err != nil {
				return err
			}
			opts.Config.Secret = secret
			opts.IO = f.IOStreams
			if runF != nil {
				return runF(opts)
			}
			return proxyRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Config.Listen, "listen", ":80", "Plain-HTTP public `address`; empty serves none")
	fl.StringVar(&opts.Config.TLSListen, "tls-listen", "", "HTTPS public `address`, with --tls-cert and --tls-key")
	fl.StringVar(&opts.Config.CertFile, "tls-cert", "", "PEM certificate `file` with its chain")
	fl.StringVar(&opts.Config.KeyFile, "tls-key", "", "PEM private key `file` of --tls-cert")
	fl.StringVar(&opts.ACMEDomains, "acme-domain", "", "Comma-separated domain `names` to get ACME certificates for on --tls-listen (as hubctl serve --tls=acme)")
	fl.StringVar(&opts.Config.ACME.Directory, "acme-directory", "", "ACME directory `URL` (default Let's Encrypt)")
	fl.StringVar(&opts.Config.ACME.Email, "acme-email", "", "Contact `email` for the ACME account")
	fl.StringVar(&opts.Config.ACMECacheDir, "acme-cache", "", "`Directory` keeping the ACME account and certificates (default acme/ beside --state-file)")
	fl.StringVar(&opts.Config.ControlListen, "control-listen", defaultProxyControl, "Control channel `address`; never publish it")
	fl.StringVar(&opts.SecretFile, "secret-file", "", "`File` holding the control secret (default $"+proxySecretEnv+")")
	fl.StringVar(&opts.Config.StateFile, "state-file", "", "`File` keeping services and targets across restarts (default: memory only)")
	fl.StringVar(&opts.LogFormat, "log-format", "text", "Log `format`: text or json")
	_ = cmd.MarkFlagFilename("tls-cert", "pem", "crt")
	_ = cmd.MarkFlagFilename("tls-key", "pem", "key")
	_ = cmd.MarkFlagFilename("secret-file")
	_ = cmd.MarkFlagFilename("state-file", "json")
	_ = cmd.RegisterFlagCompletionFunc("log-format", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func proxyRun(ctx context.Context, opts *ProxyRunOptions) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var h slog.Handler = slog.NewTextHandler(opts.IO.ErrOut, nil)
	if opts.LogFormat == "json" {
		h = slog.NewJSONHandler(opts.IO.ErrOut, nil)
	}
	opts.Config.Logger = slog.New(h)
	return proxy.Run(ctx, opts.Config)
}

// readProxySecret reads the control secret from file, or the environment.
func readProxySecret(f *Factory, file string) ([]byte, error) {
	var secret []byte
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("control secret: %w", err)
		}
		secret = bytes.TrimRight(b, "\r\n")
	} else if v, ok := f.LookupEnv(proxySecretEnv); ok {
		secret = []byte(v)
	}
	if len(secret) == 0 {
		return nil, fmt.Errorf("no control secret: give --secret-file or set $%s (at least %d bytes; e.g. head -c 32 /dev/urandom | base64)", proxySecretEnv, proxy.MinSecretBytes)
	}
	if len(secret) < proxy.MinSecretBytes {
		return nil, fmt.Errorf("the control secret is %d bytes; it must be at least %d", len(secret), proxy.MinSecretBytes)
	}
	return secret, nil
}

// ProxyClientOptions are the flags of the control verbs.
type ProxyClientOptions struct {
	IO         *iostreams.IOStreams
	Control    string
	SecretFile string
	Output     string
	Timeout    time.Duration
}

func (o *ProxyClientOptions) bind(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&o.Control, "control", "http://"+defaultProxyControl, "The proxy's control channel `URL`")
	fl.StringVar(&o.SecretFile, "secret-file", "", "`File` holding the control secret (default $"+proxySecretEnv+")")
	fl.StringVarP(&o.Output, "output", "o", "", "Output `format`: json (default a table)")
	_ = cmd.MarkFlagFilename("secret-file")
}

func (o *ProxyClientOptions) client(f *Factory, cmd *cobra.Command) (*proxy.Client, error) {
	if o.Output != "" && o.Output != "json" {
		return nil, usageErrorf(cmd, "invalid --output %q: want json", o.Output)
	}
	secret, err := readProxySecret(f, o.SecretFile)
	if err != nil {
		return nil, err
	}
	o.IO = f.IOStreams
	return proxy.NewClient(o.Control, string(secret), nil)
}

// ProxyDeployOptions are the inputs of `hubctl proxy deploy`.
type ProxyDeployOptions struct {
	ProxyClientOptions
	Service string
	Request proxy.DeployRequest
	Client  *proxy.Client
}

// NewCmdProxyDeploy returns `hubctl proxy deploy`. runF receives the parsed options
// instead of calling the proxy.
func NewCmdProxyDeploy(f *Factory, runF func(*ProxyDeployOptions) error) *cobra.Command {
	opts := &ProxyDeployOptions{}
	var interval, timeout, deployTimeout, drain time.Duration
	cmd := &cobra.Command{
		Use:   "deploy SERVICE --target HOST:PORT...",
		Short: "Switch a service to new targets once they are healthy, draining the old ones",
		Long: `Hand the proxy the service's new targets: it health-checks each (GET --health-path,
--health-threshold passes in a row) and, once all are healthy, routes new requests
to them and drains the old ones, answering when the drain is done (the old tasks may
be stopped then). A target set that does not become healthy within --deploy-timeout
is refused and the old set keeps serving; the command then exits non-zero.`,
		Example: `  hubctl proxy deploy web --target web-v2-1:8080 --target web-v2-2:8080 --health-path /up
  hubctl proxy deploy api --host api.example.com --target api-7:9000`,
		Args: checkArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts.client(f, cmd)
			if err != nil {
				return err
			}
			if len(opts.Request.Targets) == 0 {
				return usageErrorf(cmd, "give the new targets with --target HOST:PORT")
			}
			opts.Client, opts.Service = c, args[0]
			opts.Request.Health.Interval = proxy.Duration(interval)
			opts.Request.Health.Timeout = proxy.Duration(timeout)
			opts.Request.DeployTimeout = proxy.Duration(deployTimeout)
			opts.Request.DrainTimeout = proxy.Duration(drain)
			if runF != nil {
				return runF(opts)
			}
			return proxyDeployRun(cmd.Context(), opts)
		},
	}
	opts.bind(cmd)
	fl := cmd.Flags()
	fl.StringArrayVar(&opts.Request.Targets, "target", nil, "A new task's `HOST:PORT` (repeatable)")
	fl.StringArrayVar(&opts.Request.Hosts, "host", nil, "Request `host` routed to the service (repeatable; none: every host no other service names)")
	fl.StringVar(&opts.Request.Health.Path, "health-path", proxy.DefaultHealthPath, "Health check `path` (GET; 200–399 passes)")
	fl.DurationVar(&interval, "health-interval", proxy.DefaultHealthInterval, "Time between health checks")
	fl.DurationVar(&timeout, "health-timeout", proxy.DefaultHealthTimeout, "Time a health check may take")
	fl.IntVar(&opts.Request.Health.Threshold, "health-threshold", proxy.DefaultHealthThreshold, "Passes in a row that make a target healthy")
	fl.DurationVar(&deployTimeout, "deploy-timeout", proxy.DefaultDeployTimeout, "Time the new targets have to become healthy")
	fl.DurationVar(&drain, "drain-timeout", proxy.DefaultDrainTimeout, "Time requests in flight on the old targets have to finish")
	return cmd
}

func proxyDeployRun(ctx context.Context, opts *ProxyDeployOptions) error {
	res, err := opts.Client.Deploy(ctx, opts.Service, opts.Request)
	if err != nil {
		return fmt.Errorf("proxy deploy %s: %w", opts.Service, err)
	}
	if opts.Output == "json" {
		return printJSON(opts.IO.Out, res)
	}
	fmt.Fprintf(opts.IO.Out, "%s: generation %d serving %s\n", safetext.Escape(res.Service), res.Generation, safetext.Escape(strings.Join(res.Targets, ", ")))
	if len(res.Drained) > 0 {
		note := "drained"
		if res.DrainTimedOut {
			note = "drain timed out with requests in flight"
		}
		fmt.Fprintf(opts.IO.ErrOut, "%s: %s\n", note, safetext.Escape(strings.Join(res.Drained, ", ")))
	}
	return nil
}

// NewCmdProxyStatus returns `hubctl proxy status`.
func NewCmdProxyStatus(f *Factory) *cobra.Command {
	opts := &ProxyClientOptions{}
	cmd := &cobra.Command{
		Use:   "status [SERVICE]",
		Short: "Show the services a proxy routes, their targets and health",
		Args:  checkArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts.client(f, cmd)
			if err != nil {
				return err
			}
			var sts []proxy.Status
			if len(args) == 1 {
				st, err := c.Status(cmd.Context(), args[0])
				if err != nil {
					return fmt.Errorf("proxy status %s: %w", args[0], err)
				}
				sts = []proxy.Status{st}
			} else if sts, err = c.List(cmd.Context()); err != nil {
				return fmt.Errorf("proxy status: %w", err)
			}
			if opts.Output == "json" {
				return printJSON(opts.IO.Out, sts)
			}
			return printProxyStatus(opts.IO.Out, sts)
		},
	}
	opts.bind(cmd)
	return cmd
}

func printProxyStatus(w io.Writer, sts []proxy.Status) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tGENERATION\tHOSTS\tTARGET\tHEALTHY\tIN FLIGHT")
	for _, st := range sts {
		hosts := strings.Join(st.Hosts, ",")
		if hosts == "" {
			hosts = "*"
		}
		for _, t := range st.Targets {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\n", safetext.Escape(st.Service), st.Generation, safetext.Escape(hosts), safetext.Escape(t.Address), yesNo(t.Healthy), t.InFlight)
		}
	}
	return tw.Flush()
}

// NewCmdProxyRm returns `hubctl proxy rm`.
func NewCmdProxyRm(f *Factory) *cobra.Command {
	opts := &ProxyClientOptions{}
	cmd := &cobra.Command{
		Use:   "rm SERVICE",
		Short: "Stop routing a service and drain its targets",
		Args:  checkArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts.client(f, cmd)
			if err != nil {
				return err
			}
			res, err := c.Remove(cmd.Context(), args[0])
			if errors.Is(err, proxy.ErrNotFound) {
				return fmt.Errorf("proxy rm %s: the proxy routes no service of that name", args[0])
			}
			if err != nil {
				return fmt.Errorf("proxy rm %s: %w", args[0], err)
			}
			if opts.Output == "json" {
				return printJSON(opts.IO.Out, res)
			}
			fmt.Fprintf(opts.IO.ErrOut, "removed %s (drained %s)\n", safetext.Escape(res.Service), safetext.Escape(strings.Join(res.Drained, ", ")))
			return nil
		},
	}
	opts.bind(cmd)
	return cmd
}
