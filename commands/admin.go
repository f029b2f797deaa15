package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hubctl/hubctl/internal/credentials"
	"github.com/hubctl/hubctl/internal/httpdebug"
	"github.com/hubctl/hubctl/internal/hubclient"
	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/internal/safetext"
	"github.com/hubctl/hubctl/internal/tlsconf"
	"github.com/spf13/cobra"
)

// This file holds what the administration commands of a hubctl registry share with each
// other and with `hubctl token`: the connection flags, output and argument helpers. The
// commands themselves are in user.go, org.go (org, team), repo.go (repo, robot) and
// audit.go.

// HubOptions are the flags every hub API command takes.
type HubOptions struct {
	IO *iostreams.IOStreams
	// Registry is the registry host; --registry, else $HUBCTL_REGISTRY.
	Registry string
	// Insecure talks plain HTTP to a non-loopback host.
	Insecure bool
	// Output is "" (human table) or "json".
	Output string
	// ConfigDir is docker's configuration directory ($DOCKER_CONFIG), where `hubctl
	// login` stored the credentials.
	ConfigDir string
	// Trace receives an HTTP trace with --debug; nil otherwise.
	Trace io.Writer
	// Trust verifies the registry's certificate (certs.d, --ca-file).
	Trust *tlsconf.Trust
	// LookupEnv, when set, lets a workflow step's job token ($HUBCTL_HUB with
	// $HUBCTL_TOKEN_FILE or $HUBCTL_TOKEN) sign in to that hub: `hubctl deploy --hub`
	// in a step whose workflow has permissions.deploy.
	LookupEnv func(string) (string, bool)
}

// jobSource answers the job's token for its hub and the stored login for any other.
type jobSource struct {
	job   *credentials.JobTokenResolver
	store *credentials.Store
}

func (s jobSource) Get(host string) (credentials.Credentials, error) {
	if credentials.NormalizeHost(host) == s.job.Hub {
		return s.job.Resolve(host)
	}
	return s.store.Get(host)
}

// hubCommand binds the hub flags to cmd and sets its RunE: complete the shared
// options, let parse check the arguments and command flags, then run.
func hubCommand(f *Factory, cmd *cobra.Command, o *HubOptions, parse func(args []string) error, run func() error) {
	fl := cmd.Flags()
	fl.StringVar(&o.Registry, "registry", "", "Registry `host` to administer (default $HUBCTL_REGISTRY)")
	fl.BoolVar(&o.Insecure, "insecure", false, "Talk plain HTTP to the registry (loopback hosts always do)")
	fl.StringVarP(&o.Output, "output", "o", "", "Output `format`: json (default human-readable)")
	cmd.ValidArgsFunction = cobra.NoFileCompletions
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if o.Output != "" && o.Output != "json" {
			return usageErrorf(cmd, "invalid --output %q: want json", o.Output)
		}
		if o.Registry == "" {
			o.Registry, _ = f.LookupEnv("HUBCTL_REGISTRY")
		}
		if o.Registry == "" {
			return usageErrorf(cmd, "--registry is required (or set HUBCTL_REGISTRY)")
		}
		o.IO = f.IOStreams
		o.ConfigDir, _ = f.LookupEnv("DOCKER_CONFIG")
		o.Trust = f.Trust()
		if f.Debug {
			o.Trace = f.IOStreams.ErrOut
		}
		if parse != nil {
			if err := parse(args); err != nil {
				return err
			}
		}
		return run()
	}
}

// client returns the API client for the registry, with the stored login.
func (o *HubOptions) client() (*hubclient.Client, error) {
	store, err := credentials.Load(o.ConfigDir)
	if err != nil {
		return nil, err
	}
	var hc *http.Client
	if o.Trace != nil {
		base := o.Trust.Transport(http.DefaultTransport.(*http.Transport).Clone())
		hc = &http.Client{Timeout: time.Minute, Transport: &httpdebug.Transport{Base: base, Out: o.Trace}}
	}
	var src hubclient.CredentialSource = store
	if o.LookupEnv != nil {
		if job, ok := credentials.JobTokenFromEnv(store, o.LookupEnv).(*credentials.JobTokenResolver); ok {
			src = jobSource{job: job, store: store}
		}
	}
	return hubclient.New(hubclient.Options{Host: o.Registry, Insecure: o.Insecure, Credentials: src, HTTPClient: hc, Trust: o.Trust})
}

// print writes v as JSON with -o json, else as a table with header whose rows the
// rows function emits. Cells come from the server and, through it, from other users:
// each is escaped (safetext), so a name holding a tab, a newline or a terminal escape
// cannot forge columns or rows or drive the terminal.
func (o *HubOptions) print(v any, header []string, rows func(row func(cells ...string))) error {
	if o.Output == "json" {
		return printJSON(o.IO.Out, v)
	}
	tw := tabwriter.NewWriter(o.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	rows(func(cells ...string) {
		for i, c := range cells {
			cells[i] = safetext.Escape(c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	})
	return tw.Flush()
}

// printJSON writes v as JSON on one line, as every -o json of hubctl does, so output
// can be read line by line (jq, NDJSON readers) whatever the command.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// done reports a mutation: the object as JSON with -o json, else a line on stderr, so
// stdout stays empty for scripts that only check the exit code.
func (o *HubOptions) done(v any, format string, args ...any) error {
	if o.Output == "json" && v != nil {
		return printJSON(o.IO.Out, v)
	}
	for i, a := range args {
		if s, ok := a.(string); ok {
			args[i] = safetext.Escape(s)
		}
	}
	_, err := fmt.Fprintf(o.IO.ErrOut, format+"\n", args...)
	return err
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// groupCommand returns a command that only holds subcommands.
func groupCommand(use, short, long string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  unknownCommand,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(subs...)
	return cmd
}

// simpleCommand builds a hub command whose options are its positional arguments.
// It keeps the many small administration verbs to one declaration each while
// preserving the runF seam: runF receives the parsed options instead of running.
func simpleCommand(f *Factory, cmd *cobra.Command, opts *AdminOptions, runF func(*AdminOptions) error,
	run func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error) *cobra.Command {
	hubCommand(f, cmd, &opts.Hub, func(args []string) error { opts.Args = args; return nil }, hubRun(&opts.Hub, opts, runF, func(c *hubclient.Client) error {
		return run(cmd.Context(), c, opts)
	}))
	return cmd
}

// AdminOptions are the inputs of the administration verbs that take only positional
// arguments (and the hub flags).
type AdminOptions struct {
	Hub  HubOptions
	Args []string
}

// hubRun is the run step of a hub command: runF(opts) when a test injected one, else
// do with a client for the registry and the stored login.
func hubRun[O any](hub *HubOptions, opts O, runF func(O) error, do func(c *hubclient.Client) error) func() error {
	return func() error {
		if runF != nil {
			return runF(opts)
		}
		c, err := hub.client()
		if err != nil {
			return err
		}
		return do(c)
	}
}
