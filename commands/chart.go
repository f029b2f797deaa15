package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/hubctl/hubctl/internal/charts"
	"github.com/hubctl/hubctl/internal/charts/chartclient"
	"github.com/hubctl/hubctl/internal/credentials"
	"github.com/hubctl/hubctl/internal/hubclient"
	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/internal/progress"
	"github.com/hubctl/hubctl/internal/transfer"
	"github.com/hubctl/hubctl/tui"
)

// NewCmdChart returns `hubctl chart`.
func NewCmdChart(f *Factory) *cobra.Command {
	return groupCommand("chart", "Package, push, pull and find helm charts",
		`Helm charts as OCI artifacts, laid out exactly as 'helm push' stores them, so helm 3,
helm 4 and hubctl read each other's charts. A hubctl hub also serves every namespace
as a classic chart repository (helm repo add NAME https://HOST/charts/NAMESPACE) and
the ChartMuseum API; see docs/charts.md.

Chart versions with build metadata ('1.2.3+build.4') are stored under the tag
'1.2.3_build.4', as helm does; hubctl shows and resolves them as versions, sorted by
semver.`,
		NewCmdChartPackage(f, nil), NewCmdChartPush(f, nil), NewCmdChartPull(f, nil),
		NewCmdChartShow(f, nil), NewCmdChartLs(f, nil), NewCmdChartSearch(f, nil))
}

// ChartPackageOptions are the inputs of `hubctl chart package`.
type ChartPackageOptions struct {
	IO          *iostreams.IOStreams
	Dir         string
	Version     string
	AppVersion  string
	Destination string
	// Sign, Key, Keyring and PassphraseFile sign the archive, as helm package does.
	Sign           bool
	Key            string
	Keyring        string
	PassphraseFile string
}

// NewCmdChartPackage returns `hubctl chart package`.
func NewCmdChartPackage(f *Factory, runF func(*ChartPackageOptions) error) *cobra.Command {
	opts := &ChartPackageOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "package DIR",
		Short: "Archive a chart directory into NAME-VERSION.tgz",
		Long: `Archive the chart in DIR as 'helm package' does (helm's own SDK) and print the
archive's path.

With --sign, also write its provenance file NAME-VERSION.tgz.prov, as 'helm package
--sign' does: a PGP signature of the archive's digest and Chart.yaml by the key --key
names in the secret keyring --keyring (GnuPG 2.1 and later keep secret keys elsewhere:
export them with 'gpg --export-secret-keys > FILE'). An encrypted key's passphrase is
read from --passphrase-file (- for stdin), else asked on the terminal. 'hubctl chart
push' sends the provenance with the chart; 'hubctl chart pull --verify' and 'helm
verify' check it.`,
		Example: `  hubctl chart package ./app
  hubctl chart package ./app --version 1.2.3 --app-version v1.2.3 -d dist/
  hubctl chart package ./app --sign --key 'CI signing' --keyring ~/.gnupg/secring.gpg --passphrase-file - <pass.txt`,
		Args: checkArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dir = args[0]
			if opts.Version != "" {
				if _, err := charts.ParseVersion(opts.Version); err != nil {
					return usageErrorf(cmd, "--version %q is not a semantic version", opts.Version)
				}
			}
			if opts.Sign && opts.Key == "" {
				return usageErrorf(cmd, "--sign needs --key, the signing key's name (or a part of it)")
			}
			if !opts.Sign && (opts.Key != "" || opts.Keyring != "" || opts.PassphraseFile != "") {
				return usageErrorf(cmd, "--key, --keyring and --passphrase-file are for --sign")
			}
			if opts.Sign && opts.Keyring == "" {
				opts.Keyring = defaultKeyring(f, "secring.gpg")
			}
			if runF != nil {
				return runF(opts)
			}
			po := chartclient.PackageOptions{Version: opts.Version, AppVersion: opts.AppVersion, Destination: opts.Destination}
			if opts.Sign {
				po.Sign = &chartclient.SignOptions{Key: opts.Key, Keyring: opts.Keyring, Passphrase: passphraseFetcher(opts.IO, opts.PassphraseFile)}
			}
			p, err := chartclient.Package(opts.Dir, po)
			if err != nil {
				return err
			}
			if opts.Sign {
				fmt.Fprintf(opts.IO.ErrOut, "signed: %s.prov\n", p)
			}
			_, err = fmt.Fprintln(opts.IO.Out, p)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Version, "version", "", "Set the chart's `version` (semver)")
	fl.StringVar(&opts.AppVersion, "app-version", "", "Set the chart's appVersion")
	fl.StringVarP(&opts.Destination, "destination", "d", "", "Write the archive into this `directory` (default: the current one)")
	fl.BoolVar(&opts.Sign, "sign", false, "Sign the archive: write its provenance file (NAME-VERSION.tgz.prov)")
	fl.StringVar(&opts.Key, "key", "", "The signing key: its `name` (user ID) in the keyring, or a part of it")
	fl.StringVar(&opts.Keyring, "keyring", "", "The secret `keyring` holding the signing key (default ~/.gnupg/secring.gpg)")
	fl.StringVar(&opts.PassphraseFile, "passphrase-file", "", "Read the key's passphrase from this `file` (- for stdin)")
	return cmd
}

// defaultKeyring is helm's default keyring: ~/.gnupg/NAME ($GNUPGHOME/NAME when set).
func defaultKeyring(f *Factory, name string) string {
	if d, ok := f.LookupEnv("GNUPGHOME"); ok && d != "" {
		return filepath.Join(d, name)
	}
	if h, ok := f.LookupEnv("HOME"); ok && h != "" {
		return filepath.Join(h, ".gnupg", name)
	}
	return filepath.Join("~", ".gnupg", name)
}

// passphraseFetcher reads a signing key's passphrase from file ("-": stdin), or,
// without one, asks on the terminal; the passphrase is read once.
func passphraseFetcher(ios *iostreams.IOStreams, file string) func(string) ([]byte, error) {
	return func(keyName string) ([]byte, error) {
		switch {
		case file == "-":
			p, err := readLine(ios.In)
			if err != nil {
				return nil, fmt.Errorf("read the passphrase from stdin: %w", err)
			}
			return []byte(p), nil
		case file != "":
			b, err := os.ReadFile(file)
			if err != nil {
				return nil, fmt.Errorf("read the passphrase: %w", err)
			}
			line, _, _ := strings.Cut(string(b), "\n")
			return []byte(strings.TrimSuffix(line, "\r")), nil
		case ios.IsStdinTTY():
			fmt.Fprintf(ios.ErrOut, "Passphrase of key %q: ", keyName)
			p, err := readSecret(ios.In)
			fmt.Fprintln(ios.ErrOut)
			return []byte(p), err
		}
		return nil, fmt.Errorf("key %q is encrypted: give its passphrase with --passphrase-file FILE (- for stdin)", keyName)
	}
}

// ChartTransferOptions are the inputs of `hubctl chart push` and `pull`.
type ChartTransferOptions struct {
	IO      *iostreams.IOStreams
	Args    []string
	Version string
	Dir     string
	// Verify and Keyring check a pulled chart's provenance, as helm pull --verify.
	Verify  bool
	Keyring string
	TransferFlags
	Mode tui.Mode
}

// chartTransferCommand builds push and pull: progress as for images, the reference on
// stdout.
func chartTransferCommand(f *Factory, runF func(*ChartTransferOptions) error, cmd *cobra.Command, verb string,
	work func(ctx context.Context, c *chartclient.Client, o *ChartTransferOptions, to transfer.Options) (any, string, error)) *cobra.Command {
	opts := &ChartTransferOptions{IO: f.IOStreams}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		mode, err := opts.validate(cmd)
		if err != nil {
			return err
		}
		opts.Mode, opts.Args = mode, args
		if verb == "pull" && !opts.Verify && opts.Keyring != "" {
			return usageErrorf(cmd, "--keyring is for --verify")
		}
		if opts.Verify && opts.Keyring == "" {
			opts.Keyring = defaultKeyring(f, "pubring.gpg")
		}
		if runF != nil {
			return runF(opts)
		}
		engine, err := newEngine(f, opts.Insecure, chartHosts(args)...)
		if err != nil {
			return err
		}
		c := &chartclient.Client{Engine: engine}
		var res any
		var line string
		summary, err := runWithProgress(cmd.Context(), renderOptions(opts.IO, opts.Mode, verb), func(ctx context.Context, sink progress.Sink) error {
			var err error
			res, line, err = work(ctx, c, opts, transfer.Options{Jobs: opts.Jobs, Progress: sink, Limiter: transfer.NewLimiter(int64(opts.Rate))})
			return err
		})
		if err != nil {
			return fmt.Errorf("%s %s: %w", verb, args[0], err)
		}
		if opts.Mode == tui.ModeJSON {
			return json.NewEncoder(opts.IO.Out).Encode(map[string]any{"event": "result", "result": res, "summary": summary})
		}
		_, err = fmt.Fprintln(opts.IO.Out, line)
		return err
	}
	fl := cmd.Flags()
	fl.IntVarP(&opts.Jobs, "jobs", "j", 4, "Blobs moved in parallel")
	fl.Var(&opts.Rate, "rate", "Cap the bytes sent per second, like 50MiB (a `size`); 0 for no cap")
	opts.bindOutput(fl)
	if verb == "pull" {
		fl.StringVar(&opts.Version, "version", "", "Chart `version` or semver range (~1.2, ^2, >=1.0 <2.0); default the highest stable version")
		fl.StringVarP(&opts.Dir, "destination", "d", ".", "Write the chart into this `directory`")
		fl.BoolVar(&opts.Verify, "verify", false, "Verify the chart's provenance file; refuse a chart without one or that does not verify")
		fl.StringVar(&opts.Keyring, "keyring", "", "The public `keyring` that --verify trusts (default ~/.gnupg/pubring.gpg)")
	}
	return cmd
}

// chartHosts are the registry hosts named in chart references, for --insecure.
func chartHosts(args []string) []string {
	var out []string
	for _, a := range args {
		if strings.HasPrefix(a, "oci://") || strings.Contains(a, "/") {
			out = append(out, strings.TrimPrefix(a, "oci://"))
		}
	}
	return out
}

// NewCmdChartPush returns `hubctl chart push`.
func NewCmdChartPush(f *Factory, runF func(*ChartTransferOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "push CHART.tgz oci://HOST/NAMESPACE",
		Short: "Push a chart archive to a registry",
		Long: `Push a chart archive to HOST/NAMESPACE/NAME:VERSION ('+' in the version written '_'), as
'helm push' does; CHART.tgz.prov, when it exists, travels with it. The archive is
checked first (a valid chart with a semver version): nothing is sent otherwise. A hub
refuses a version that already exists with other content unless the namespace allows
overwrites. The reference with its digest goes to stdout.`,
		Example: `  hubctl chart push app-1.2.3.tgz oci://hub.example.com/team
  hubctl chart push app-1.2.3.tgz localhost:5000/team -o json`,
		Args: checkArgs(cobra.ExactArgs(2)),
	}
	return chartTransferCommand(f, runF, cmd, "push", func(ctx context.Context, c *chartclient.Client, o *ChartTransferOptions, to transfer.Options) (any, string, error) {
		r, err := c.Push(ctx, o.Args[0], o.Args[1], to)
		return r, r.Reference, err
	})
}

// NewCmdChartPull returns `hubctl chart pull`.
func NewCmdChartPull(f *Factory, runF func(*ChartTransferOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pull oci://HOST/NAMESPACE/NAME",
		Short: "Pull a chart version (or the highest of a semver range)",
		Long: `Pull a chart into NAME-VERSION.tgz (with NAME-VERSION.tgz.prov when it has one). --version
takes a version or a semver range: the highest version matching it is pulled, in semver
order ('1.10.0' is newer than '1.9.0'). The archive's path goes to stdout.

With --verify, the chart's provenance file must be signed by a key of --keyring (a
public keyring: 'gpg --export KEY > FILE') and hold the archive's digest, as 'helm pull
--verify' checks; otherwise the pull fails and leaves no file behind.`,
		Example: `  hubctl chart pull oci://hub.example.com/team/app --version 1.2.3
  hubctl chart pull oci://hub.example.com/team/app --version '~1.2' -d charts/
  hubctl chart pull oci://hub.example.com/team/app --verify --keyring ci-signing.pub`,
		Args: checkArgs(cobra.ExactArgs(1)),
	}
	return chartTransferCommand(f, runF, cmd, "pull", func(ctx context.Context, c *chartclient.Client, o *ChartTransferOptions, to transfer.Options) (any, string, error) {
		var po chartclient.PullOptions
		if o.Verify {
			po.VerifyKeyring = o.Keyring
		}
		r, err := c.Pull(ctx, o.Args[0], o.Version, o.Dir, po, to)
		return r, r.Path, err
	})
}

// ChartShowOptions are the inputs of `hubctl chart show`.
type ChartShowOptions struct {
	IO       *iostreams.IOStreams
	Ref      string
	Version  string
	Insecure bool
	Output   string
}

// NewCmdChartShow returns `hubctl chart show`.
func NewCmdChartShow(f *Factory, runF func(*ChartShowOptions) error) *cobra.Command {
	opts := &ChartShowOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "show oci://HOST/NAMESPACE/NAME",
		Short: "Show a chart's Chart.yaml, values and README",
		Example: `  hubctl chart show oci://hub.example.com/team/app
  hubctl chart show oci://hub.example.com/team/app --version '^1' -o json`,
		Args: checkArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ref = args[0]
			if opts.Output != "" && opts.Output != "json" {
				return usageErrorf(cmd, "--output must be json, not %q", opts.Output)
			}
			if runF != nil {
				return runF(opts)
			}
			engine, err := newEngine(f, opts.Insecure, chartHosts(args)...)
			if err != nil {
				return err
			}
			res, err := (&chartclient.Client{Engine: engine}).Show(cmd.Context(), opts.Ref, opts.Version)
			if err != nil {
				return fmt.Errorf("show %s: %w", opts.Ref, err)
			}
			if opts.Output == "json" {
				return printJSON(opts.IO.Out, map[string]string{"reference": res.Reference, "version": res.Version,
					"chart": string(res.ChartYAML), "values": string(res.Values), "readme": string(res.Readme)})
			}
			w := opts.IO.Out
			fmt.Fprintf(w, "# %s\n\n## Chart.yaml\n\n%s\n", res.Reference, strings.TrimRight(string(res.ChartYAML), "\n"))
			if res.Values != nil {
				fmt.Fprintf(w, "\n## values.yaml\n\n%s\n", strings.TrimRight(string(res.Values), "\n"))
			}
			if res.Readme != nil {
				fmt.Fprintf(w, "\n## README\n\n%s\n", strings.TrimRight(string(res.Readme), "\n"))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Version, "version", "", "Chart `version` or semver range; default the highest stable version")
	cmd.Flags().BoolVar(&opts.Insecure, "insecure", false, "Allow plain HTTP to the registry (loopback always is)")
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "Output format: json")
	return cmd
}

// ChartFindOptions are the inputs of `hubctl chart ls` and `search`.
type ChartFindOptions struct {
	IO        *iostreams.IOStreams
	Host      string
	Namespace string
	Term      string
	Versions  bool
	Insecure  bool
	Output    string
}

func chartFindCommand(f *Factory, runF func(*ChartFindOptions) error, cmd *cobra.Command, fill func(o *ChartFindOptions, args []string) error) *cobra.Command {
	opts := &ChartFindOptions{IO: f.IOStreams}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := fill(opts, args); err != nil {
			return usageErrorf(cmd, "%v", err)
		}
		if opts.Output != "" && opts.Output != "json" {
			return usageErrorf(cmd, "--output must be json, not %q", opts.Output)
		}
		if runF != nil {
			return runF(opts)
		}
		dir, _ := f.LookupEnv("DOCKER_CONFIG")
		store, err := credentials.Load(dir)
		if err != nil {
			return err
		}
		c := &chartclient.Client{Hub: func(host string) (*hubclient.Client, error) {
			return hubclient.New(hubclient.Options{Host: host, Insecure: opts.Insecure, Credentials: store, Trust: f.Trust()})
		}}
		res, err := c.Search(cmd.Context(), opts.Host, opts.Namespace, opts.Term)
		if err != nil {
			return err
		}
		return printCharts(opts, res)
	}
	cmd.Flags().BoolVar(&opts.Versions, "versions", false, "List every version, not only the newest")
	cmd.Flags().BoolVar(&opts.Insecure, "insecure", false, "Allow plain HTTP to the hub (loopback always is)")
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "Output format: json")
	return cmd
}

func printCharts(o *ChartFindOptions, cs []charts.Summary) error {
	if o.Output == "json" {
		return printJSON(o.IO.Out, cs)
	}
	tw := tabwriter.NewWriter(o.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHART\tVERSION\tAPP VERSION\tDESCRIPTION")
	for _, c := range cs {
		desc := c.Description
		if c.Deprecated {
			desc = "DEPRECATED " + desc
		}
		if !o.Versions {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Repository, c.Version, c.AppVersion, desc)
			continue
		}
		for i, v := range c.Versions {
			if i > 0 {
				desc = ""
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Repository, v.Version, v.AppVersion, desc)
		}
	}
	return tw.Flush()
}

// NewCmdChartLs returns `hubctl chart ls`.
func NewCmdChartLs(f *Factory, runF func(*ChartFindOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ls HOST[/NAMESPACE]",
		Short: "List the charts of a hub, or of one namespace",
		Long: `List the charts of a hubctl hub that you may pull (anonymously: the public ones), with
their newest version (--versions: every version, newest first by semver).`,
		Example: `  hubctl chart ls hub.example.com/team
  hubctl chart ls hub.example.com --versions -o json`,
		Args: checkArgs(cobra.ExactArgs(1)),
	}
	return chartFindCommand(f, runF, cmd, func(o *ChartFindOptions, args []string) error {
		host, ns, _ := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(args[0], "oci://"), "/"), "/")
		if strings.Contains(ns, "/") {
			return fmt.Errorf("%s: give a host or host/namespace", args[0])
		}
		o.Host, o.Namespace = host, ns
		return nil
	})
}

// NewCmdChartSearch returns `hubctl chart search`.
func NewCmdChartSearch(f *Factory, runF func(*ChartFindOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "search TERM --registry HOST",
		Short: "Search the charts of a hub by name, description and keywords",
		Example: `  hubctl chart search nginx --registry hub.example.com
  hubctl chart search 'web proxy' --registry hub.example.com --versions`,
		Args: checkArgs(cobra.ExactArgs(1)),
	}
	var registry string
	cmd.Flags().StringVar(&registry, "registry", "", "The hub to search (`host[:port]`); default $HUBCTL_REGISTRY")
	return chartFindCommand(f, runF, cmd, func(o *ChartFindOptions, args []string) error {
		o.Term, o.Host = args[0], registry
		if o.Host == "" {
			o.Host, _ = f.LookupEnv("HUBCTL_REGISTRY")
		}
		if o.Host == "" {
			return fmt.Errorf("which hub? give --registry HOST")
		}
		return nil
	})
}
