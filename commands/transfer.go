package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hubctl/hubctl/internal/config"
	"github.com/hubctl/hubctl/internal/credentials"
	"github.com/hubctl/hubctl/internal/distclient"
	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/internal/progress"
	"github.com/hubctl/hubctl/internal/transfer"
	"github.com/hubctl/hubctl/tui"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TransferFlags are the flags shared by push, pull, copy and mirror.
type TransferFlags struct {
	Jobs      int
	Platforms string
	Referrers bool
	Rate      config.Size
	Progress  string
	Output    string
	Insecure  bool
}

func (t *TransferFlags) bind(fl *pflag.FlagSet) {
	fl.IntVarP(&t.Jobs, "jobs", "j", 4, "Blobs moved in parallel")
	fl.StringVar(&t.Platforms, "platform", "", "Keep only these `platforms` of a multi-platform image, like linux/amd64,linux/arm64/v8")
	fl.BoolVar(&t.Referrers, "referrers", false, "Also copy what refers to the image (signatures, SBOMs, attestations)")
	fl.Var(&t.Rate, "rate", "Cap the bytes sent per second, like 50MiB (a `size`); 0 for no cap")
	t.bindOutput(fl)
}

func (t *TransferFlags) bindOutput(fl *pflag.FlagSet) {
	fl.StringVar(&t.Progress, "progress", "auto", "Progress display: auto, tty, plain or quiet")
	fl.StringVarP(&t.Output, "output", "o", "", "Output format: json for one JSON event per line on stdout")
	fl.BoolVar(&t.Insecure, "insecure", false, "Allow plain HTTP to the registries named on the command line (loopback always is)")
}

// validate checks the flag values and returns the progress mode.
func (t *TransferFlags) validate(cmd *cobra.Command) (tui.Mode, error) {
	if t.Jobs < 1 {
		return "", usageErrorf(cmd, "--jobs must be at least 1")
	}
	if _, err := transfer.ParsePlatforms(t.Platforms); err != nil {
		return "", usageErrorf(cmd, "%v", err)
	}
	mode, err := tui.ParseMode(t.Progress)
	if err != nil {
		return "", usageErrorf(cmd, "%v", err)
	}
	switch t.Output {
	case "":
	case "json":
		mode = tui.ModeJSON
	default:
		return "", usageErrorf(cmd, "--output must be json, not %q", t.Output)
	}
	return mode, nil
}

// newEngine returns a transfer engine whose registry client reads docker's credentials
// and reaches the named hosts over plain HTTP when --insecure allows it.
func newEngine(f *Factory, insecure bool, locations ...string) (*transfer.Engine, error) {
	dir, _ := f.LookupEnv("DOCKER_CONFIG")
	store, err := credentials.Load(dir)
	if err != nil {
		return nil, err
	}
	var hosts []string
	if v, ok := f.LookupEnv("HUBCTL_INSECURE_REGISTRIES"); ok {
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hosts = append(hosts, h)
			}
		}
	}
	if insecure {
		for _, l := range locations {
			if loc, err := transfer.ParseLocation(l); err == nil && loc.IsRegistry() {
				hosts = append(hosts, loc.Ref.Host)
			} else if r, err := distclient.ParseRepo(l); err == nil {
				hosts = append(hosts, r.Host)
			}
		}
	}
	engine := &transfer.Engine{}
	engine.Client = distclient.New(distclient.Options{
		// In a workflow step, the job's token for the hub ($HUBCTL_TOKEN_FILE, then
		// $HUBCTL_TOKEN); docker's credentials for every other registry.
		Credentials: credentials.JobTokenFromEnv(store, f.LookupEnv),
		Insecure:    hosts,
		UserAgent:   "hubctl/" + f.Build.Version,
		OnRetry:     engine.ReportRetry,
		Trace:       traceOut(f),
		Trust:       f.Trust(),
	})
	return engine, nil
}

// debugMode keeps the terminal view out of --debug's way: the HTTP trace goes to the
// same stderr, so the progress is shown as plain lines between its requests.
func debugMode(f *Factory, mode tui.Mode) tui.Mode {
	if f.Debug && (mode == tui.ModeAuto || mode == tui.ModeTTY) {
		return tui.ModePlain
	}
	return mode
}

// traceOut is where the HTTP trace of --debug goes: stderr, or nowhere.
func traceOut(f *Factory) io.Writer {
	if f.Debug {
		return f.IOStreams.ErrOut
	}
	return nil
}

// renderOptions are the tui options for the command's streams.
func renderOptions(ios *iostreams.IOStreams, mode tui.Mode, verb string) tui.Options {
	return tui.Options{
		Mode:    mode,
		Out:     ios.Out,
		Err:     ios.ErrOut,
		IsTTY:   ios.IsStderrTTY(),
		NoColor: ios.NoColor(),
		Verb:    verb,
		Input:   ios.In,
	}
}

// runWithProgress runs work with a progress sink while tui renders the events, and
// returns the summary and work's error. Ctrl-C (a signal, or the key in the terminal
// view) cancels work; the terminal is restored before this returns.
func runWithProgress(ctx context.Context, ropts tui.Options, work func(ctx context.Context, sink progress.Sink) error) (progress.Summary, error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := make(chan progress.Event, 1024)
	var werr error
	go func() {
		defer close(events)
		werr = work(ctx, progress.Chan(events))
	}()
	summary := tui.Render(ctx, ropts, events, cancel)
	if werr != nil && errors.Is(werr, context.Canceled) {
		werr = errors.New("cancelled")
	}
	return summary, werr
}

// CopyOptions are the inputs of push, pull and copy.
type CopyOptions struct {
	IO       *iostreams.IOStreams
	Verb     string
	Src, Dst string
	TransferFlags
	Mode tui.Mode
}

func newCopyCommand(f *Factory, runF func(*CopyOptions) error, use, verb, short, long, example string, args cobra.PositionalArgs, fill func(*CopyOptions, []string) error) *cobra.Command {
	opts := &CopyOptions{IO: f.IOStreams, Verb: verb}
	cmd := &cobra.Command{
		Use:     use,
		Aliases: copyAliases[verb],
		Short:   short,
		Long:    long,
		Example: example,
		Args:    checkArgs(args),
		RunE: func(cmd *cobra.Command, args []string) error {
			mode, err := opts.validate(cmd)
			if err != nil {
				return err
			}
			opts.Mode = debugMode(f, mode)
			if err := fill(opts, args); err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			for _, l := range []string{opts.Src, opts.Dst} {
				if _, err := transfer.ParseLocation(l); err != nil {
					return usageErrorf(cmd, "%v", err)
				}
			}
			if runF != nil {
				return runF(opts)
			}
			return copyRun(cmd.Context(), f, opts)
		},
	}
	opts.bind(cmd.Flags())
	cmd.ValidArgsFunction = completeLocations
	return cmd
}

const locationHelp = `A location is a registry reference (host/repo:tag or @digest; "docker://" optional)
or a local form:
  oci:DIR[:TAG]              an OCI image layout directory
  oci-archive:FILE[:TAG]     a tar of an OCI image layout
  docker-archive:FILE[:REF]  the 'docker save' format
  docker-daemon:IMAGE        the local Docker engine, through its API

Only what the destination lacks moves: each blob is checked with HEAD first, mounted
from the source repository when both are on one registry, and otherwise streamed
straight from source to destination (never through a temporary file). A multi-platform
index is copied whole unless --platform keeps some of its platforms; then the digest
changes and hubctl says so. The final reference with its digest goes to stdout; progress
goes to stderr (a live view on a terminal, plain lines otherwise, JSON with -o json).`

// copyAliases are the other names of the transfer verbs.
var copyAliases = map[string][]string{"copy": {"cp"}}

// NewCmdCopy returns `hubctl copy`.
func NewCmdCopy(f *Factory, runF func(*CopyOptions) error) *cobra.Command {
	return newCopyCommand(f, runF, "copy SRC DST", "copy", "Copy an image between registries and local forms",
		"Copy an image (or a multi-platform index) from SRC to DST.\n\n"+locationHelp,
		`  hubctl copy docker.io/library/alpine:3.20 registry.example.com/mirror/alpine:3.20
  hubctl copy --platform linux/amd64 ghcr.io/org/app:1 oci:./app:1
  hubctl copy localhost:5000/app:1 localhost:5000/app-copy:1   # mounts, sends 0 bytes`,
		cobra.ExactArgs(2), func(o *CopyOptions, a []string) error {
			o.Src, o.Dst = a[0], a[1]
			return nil
		})
}

// NewCmdPush returns `hubctl push`.
func NewCmdPush(f *Factory, runF func(*CopyOptions) error) *cobra.Command {
	return newCopyCommand(f, runF, "push SRC [DST]", "push", "Push an image to a registry",
		"Push an image from a local form (or another registry) to a registry. With one\nargument, pushes docker-daemon:IMAGE to IMAGE, as 'docker push' does.\n\n"+locationHelp,
		`  hubctl push app:1 registry.example.com/team/app:1     # app:1 from the Docker engine
  hubctl push registry.example.com/team/app:1             # the engine's image of that name
  hubctl push oci:./build/app:1 registry.example.com/team/app:1`,
		cobra.RangeArgs(1, 2), func(o *CopyOptions, a []string) error {
			if len(a) == 1 {
				o.Src, o.Dst = "docker-daemon:"+a[0], a[0]
			} else {
				o.Src, o.Dst = a[0], a[1]
				if !transfer.IsLocalForm(o.Src) && !hasRegistryHost(o.Src) {
					// "hubctl push app:1 DST": a name without a registry host is the
					// engine's image, as docker push reads it.
					o.Src = "docker-daemon:" + o.Src
				}
			}
			l, err := transfer.ParseLocation(o.Dst)
			if err != nil {
				return err
			}
			if !l.IsRegistry() {
				return fmt.Errorf("push writes to a registry; to write %s use 'hubctl copy' or 'hubctl pull'", o.Dst)
			}
			return nil
		})
}

// NewCmdPull returns `hubctl pull`.
func NewCmdPull(f *Factory, runF func(*CopyOptions) error) *cobra.Command {
	return newCopyCommand(f, runF, "pull SRC [DST]", "pull", "Pull an image from a registry",
		"Pull an image from a registry into a local form. With one argument, pulls into the\nDocker engine (docker-daemon:SRC), as 'docker pull' does.\n\n"+locationHelp,
		`  hubctl pull registry.example.com/team/app:1              # into the Docker engine
  hubctl pull registry.example.com/team/app:1 oci:./app:1
  hubctl pull --platform linux/arm64 ghcr.io/org/app:1 docker-archive:app.tar`,
		cobra.RangeArgs(1, 2), func(o *CopyOptions, a []string) error {
			o.Src = a[0]
			if len(a) == 1 {
				o.Dst = "docker-daemon:" + a[0]
			} else {
				o.Dst = a[1]
			}
			l, err := transfer.ParseLocation(o.Src)
			if err != nil {
				return err
			}
			if !l.IsRegistry() {
				return fmt.Errorf("pull reads from a registry; to read %s use 'hubctl copy' or 'hubctl push'", o.Src)
			}
			return nil
		})
}

// hasRegistryHost applies docker's rule: the first path component names a registry
// when it has a dot or a port, or is localhost.
func hasRegistryHost(s string) bool {
	s = strings.TrimPrefix(s, "docker://")
	first, _, ok := strings.Cut(s, "/")
	return ok && (strings.ContainsAny(first, ".:") || first == "localhost")
}

// copyResult is the final JSON line of -o json.
type copyResult struct {
	Time          time.Time        `json:"time"`
	Event         string           `json:"event"`
	Reference     string           `json:"reference"`
	Digest        string           `json:"digest"`
	DigestChanged bool             `json:"digestChanged,omitempty"`
	UpToDate      bool             `json:"upToDate,omitempty"`
	Summary       progress.Summary `json:"summary"`
}

func copyRun(ctx context.Context, f *Factory, o *CopyOptions) error {
	engine, err := newEngine(f, o.Insecure, o.Src, o.Dst)
	if err != nil {
		return err
	}
	platforms, _ := transfer.ParsePlatforms(o.Platforms)
	var res transfer.Result
	summary, err := runWithProgress(ctx, renderOptions(o.IO, o.Mode, o.Verb), func(ctx context.Context, sink progress.Sink) error {
		var err error
		res, err = engine.Copy(ctx, o.Src, o.Dst, transfer.Options{
			Jobs: o.Jobs, Platforms: platforms, Referrers: o.Referrers, Progress: sink,
			Limiter: transfer.NewLimiter(int64(o.Rate)),
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("%s %s to %s: %w", o.Verb, o.Src, o.Dst, err)
	}
	if o.Mode == tui.ModeJSON {
		return json.NewEncoder(o.IO.Out).Encode(copyResult{Time: time.Now(), Event: "result", Reference: res.Reference,
			Digest: res.Digest.String(), DigestChanged: res.DigestChanged, UpToDate: res.UpToDate, Summary: summary})
	}
	fmt.Fprintln(o.IO.Out, res.Reference)
	return nil
}
