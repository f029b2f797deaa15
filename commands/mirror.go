package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/hubctl/hubctl/internal/distclient"
	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/internal/mirror"
	"github.com/hubctl/hubctl/internal/progress"
	"github.com/hubctl/hubctl/internal/transfer"
	"github.com/hubctl/hubctl/tui"
	"github.com/spf13/cobra"
)

// MirrorOptions are the inputs of `hubctl mirror`.
type MirrorOptions struct {
	IO     *iostreams.IOStreams
	File   string
	DryRun bool
	Images int
	TransferFlags
	Mode tui.Mode
}

// NewCmdMirror returns `hubctl mirror`.
func NewCmdMirror(f *Factory, runF func(*MirrorOptions) error) *cobra.Command {
	opts := &MirrorOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "mirror -f FILE",
		Short: "Mirror many repositories between registries from a YAML spec",
		Long: `Copy many source repositories to target repositories, as a YAML spec says.

Each entry names a source repository (all its tags, filtered) or one reference, and a
target repository. Tag filters: include and exclude regular expressions, a semver range,
and the newest N (semver order, else version-aware name order). Defaults at the top apply
to every entry; an entry overrides them field by field.

    defaults:
      platforms: [linux/amd64, linux/arm64]
      referrers: true
      tags:
        include: ['^v?\d+\.\d+\.\d+$']
        exclude: ['-rc']
        semver: '>=1.2, <2'
        newest: 3
    mirrors:
      - source: docker.io/library/alpine
        target: registry.example.com/lib/alpine
        tags: {include: ['^3\.']}
      - source: ghcr.io/org/app:1.2.3
        target: registry.example.com/app

Only what a target lacks moves, so a second run moves nothing and says so. A failed image
does not stop the others: the run goes on, prints a summary naming every failure and
exits non-zero. --dry-run prints the plan (copy or up to date) without copying.
Credentials come from docker's config and 'hubctl login'.`,
		Example: `  hubctl mirror -f mirror.yaml --dry-run
  hubctl mirror -f mirror.yaml --rate 50MiB --images 4`,
		Args: checkArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.File == "" {
				return usageErrorf(cmd, "give the spec with -f FILE")
			}
			if opts.Images < 1 || opts.Images > mirror.MaxJobs {
				return usageErrorf(cmd, "--images must be between 1 and %d", mirror.MaxJobs)
			}
			mode, err := opts.validate(cmd)
			if err != nil {
				return err
			}
			if opts.Platforms != "" {
				return usageErrorf(cmd, "set platforms in the spec (defaults.platforms or per entry), not with --platform")
			}
			opts.Mode = debugMode(f, mode)
			if runF != nil {
				return runF(opts)
			}
			return mirrorRun(cmd.Context(), f, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.File, "file", "f", "", "The mirror spec (`YAML file`)")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "Print what would be copied, copy nothing")
	fl.IntVar(&opts.Images, "images", mirror.DefaultJobs, "Images copied at once")
	opts.bind(fl)
	_ = cmd.MarkFlagFilename("file", "yaml", "yml")
	return cmd
}

func mirrorRun(ctx context.Context, f *Factory, o *MirrorOptions) error {
	spec, err := mirror.LoadFile(o.File)
	if err != nil {
		return err
	}
	var hosts []string
	for _, m := range spec.Mirrors {
		hosts = append(hosts, m.Source, m.Target)
	}
	engine, err := newEngine(f, o.Insecure, hosts...)
	if err != nil {
		return err
	}
	limiter := transfer.NewLimiter(int64(o.Rate))
	var rep *mirror.Report
	if o.DryRun {
		rep, err = mirror.Run(ctx, spec, &mirrorEngine{e: engine, jobs: o.Jobs, limiter: limiter, sink: progress.Discard}, mirror.RunOptions{DryRun: true, Jobs: o.Images})
		if rep != nil {
			if o.Mode == tui.ModeJSON {
				if jerr := printPlanJSON(o.IO.Out, rep); jerr != nil {
					return jerr
				}
			} else {
				printPlan(o.IO.Out, rep)
			}
		}
		if err != nil {
			return err
		}
		if rep.Failed() {
			return errors.New("mirror: some sources could not be read (see above)")
		}
		return nil
	}
	_, err = runWithProgress(ctx, renderOptions(o.IO, o.Mode, "mirror"), func(ctx context.Context, sink progress.Sink) error {
		var err error
		rep, err = mirror.Run(ctx, spec, &mirrorEngine{e: engine, jobs: o.Jobs, limiter: limiter, sink: sink}, mirror.RunOptions{Jobs: o.Images, Sink: sink})
		return err
	})
	if rep == nil {
		return err
	}
	if o.Mode != tui.ModeJSON && o.Mode != tui.ModeQuiet {
		printMirrorReport(o.IO.ErrOut, rep)
	}
	if err != nil {
		return err
	}
	if rep.Failed() {
		t := rep.Totals
		return fmt.Errorf("mirror: %d of %d images failed, %d sources could not be listed", t.Failed+t.Canceled, len(rep.Results), t.ListFailed)
	}
	return nil
}

// printPlan is the --dry-run output on stdout: one line per image.
func printPlan(w io.Writer, rep *mirror.Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tSOURCE\tTARGET")
	for _, r := range rep.Results {
		fmt.Fprintf(tw, "%s\t%s\t%s", r.Status, r.Source, r.Target)
		if r.Err != nil {
			fmt.Fprintf(tw, "\t%v", r.Err)
		}
		fmt.Fprintln(tw)
	}
	for _, e := range rep.Entries {
		if e.Err != nil {
			fmt.Fprintf(tw, "failed\t%s\t(cannot list: %v)\n", e.Source, e.Err)
		}
	}
	tw.Flush()
	t := rep.Totals
	fmt.Fprintf(w, "\n%d to copy, %d up to date, %d failed\n", t.WouldCopy, t.UpToDate, t.Failed+t.ListFailed)
}

// planLine is one image of `mirror --dry-run -o json`.
type planLine struct {
	Time   time.Time `json:"time"`
	Event  string    `json:"event"`
	Status string    `json:"status"`
	Source string    `json:"source"`
	Target string    `json:"target,omitempty"`
	Digest string    `json:"digest,omitempty"`
	Error  string    `json:"error,omitempty"`
}

// printPlanJSON is the --dry-run plan as one JSON object per line.
func printPlanJSON(w io.Writer, rep *mirror.Report) error {
	enc := json.NewEncoder(w)
	for _, r := range rep.Results {
		l := planLine{Time: time.Now(), Event: "plan", Status: string(r.Status), Source: r.Source, Target: r.Target, Digest: r.Digest}
		if r.Err != nil {
			l.Error = r.Err.Error()
		}
		if err := enc.Encode(l); err != nil {
			return err
		}
	}
	for _, e := range rep.Entries {
		if e.Err != nil {
			if err := enc.Encode(planLine{Time: time.Now(), Event: "plan", Status: string(mirror.StatusFailed), Source: e.Source, Error: e.Err.Error()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// printMirrorReport is the end of a run on stderr: the totals, then every failure.
func printMirrorReport(w io.Writer, rep *mirror.Report) {
	t := rep.Totals
	if t.Bytes == 0 && t.Failed == 0 && t.ListFailed == 0 {
		fmt.Fprintf(w, "mirror: everything up to date (%d images), 0 bytes moved\n", t.UpToDate)
	} else {
		fmt.Fprintf(w, "mirror: %d copied, %d up to date, %d failed, %s moved\n", t.Copied, t.UpToDate, t.Failed+t.Canceled+t.ListFailed, tui.FormatBytes(t.Bytes))
	}
	for _, e := range rep.Entries {
		if e.Err != nil {
			fmt.Fprintf(w, "  failed: %s: %v\n", e.Source, e.Err)
		}
	}
	for _, r := range rep.Results {
		if r.Err != nil {
			fmt.Fprintf(w, "  %s: %s → %s: %v\n", r.Status, r.Source, r.Target, r.Err)
		}
	}
}

// mirrorEngine adapts the transfer engine to what the mirror needs.
type mirrorEngine struct {
	e       *transfer.Engine
	jobs    int
	limiter *transfer.Limiter
	sink    progress.Sink
}

func (m *mirrorEngine) Tags(ctx context.Context, repo string) ([]string, error) {
	r, err := distclient.ParseRepo(repo)
	if err != nil {
		return nil, err
	}
	return m.e.Client.Tags(ctx, r)
}

func (m *mirrorEngine) Digest(ctx context.Context, ref string) (string, error) {
	r, err := distclient.ParseRef(ref)
	if err != nil {
		return "", err
	}
	desc, err := m.e.Client.HeadManifest(ctx, r)
	if errors.Is(err, distclient.ErrNotFound) {
		return "", fmt.Errorf("%s: %w", ref, mirror.ErrNotFound)
	}
	if err != nil {
		return "", err
	}
	return desc.Digest.String(), nil
}

func (m *mirrorEngine) Copy(ctx context.Context, src, dst string, o mirror.CopyOptions) (mirror.CopyResult, error) {
	platforms, err := transfer.ParsePlatforms(strings.Join(o.Platforms, ","))
	if err != nil {
		return mirror.CopyResult{}, err
	}
	var sent atomic.Int64
	res, err := m.e.Copy(ctx, src, dst, transfer.Options{
		Jobs: m.jobs, Platforms: platforms, Referrers: o.Referrers, Limiter: m.limiter, Label: o.Image,
		Progress: func(ev progress.Event) {
			switch ev.Kind {
			case progress.ImageStarted, progress.ImageDone, progress.ImageFailed:
				// The mirror reports images itself.
				return
			case progress.BlobDone:
				sent.Add(ev.Bytes)
			}
			m.sink(ev)
		},
	})
	if err != nil {
		return mirror.CopyResult{}, err
	}
	return mirror.CopyResult{Digest: res.Digest.String(), Bytes: sent.Load(), UpToDate: res.UpToDate}, nil
}
