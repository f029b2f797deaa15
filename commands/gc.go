package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hubctl/hubctl/internal/events"

	"github.com/spf13/cobra"

	"github.com/hubctl/hubctl/internal/config"
	"github.com/hubctl/hubctl/internal/gc"
	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/internal/server"
)

// GCOptions are the inputs of `hubctl gc`, after the configuration was merged.
type GCOptions struct {
	IO       *iostreams.IOStreams
	Config   config.Config
	Untagged bool
	DryRun   bool
	Wait     bool
	Output   string
}

// NewCmdGC returns `hubctl gc`: one garbage collection of the hub's storage, run on the
// server host with the configuration serve uses. runF receives the merged options.
func NewCmdGC(f *Factory, runF func(*GCOptions) error) *cobra.Command {
	opts := &GCOptions{}
	def := config.Default()
	var grace time.Duration
	var host *hostConfig
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Delete blobs no manifest references (on the server host)",
		Long: `Collect garbage in the storage of a hub, while it serves: repository links that no
manifest references, then the blobs linked nowhere, and with --untagged first the
manifests that no tag, index or subject keeps, nor tag history (a manifest a tag moved
away from is kept for retention.tag_history_hold, 30 days, so the web UI can restore
the tag).

It opens the blob store and database that 'hubctl serve' would with the same
configuration (--config, HUBCTL_* variables, --data, --db). Only what is older than the
grace period is collected, so pushes in flight keep their blobs. A blob is marked by one
run and deleted by a run at least a grace later (by the same run when --grace 0).
'hubctl serve' runs it on its own every gc.interval (1h unless set; 0 turns it off).

One collection runs at a time across every replica and 'hubctl gc': a lease in the
database says who collects. A run that finds it taken exits 1 naming the holder, or
with --wait waits for its turn; a replica's schedule skips that tick.`,
		Example: `  hubctl gc --data /srv/hub --dry-run
  hubctl gc --data /srv/hub --untagged
  hubctl gc --config /etc/hubctl.yaml --grace 24h -o json`,
		Args: checkArgs(cobra.NoArgs),
		RunE: func(c *cobra.Command, args []string) error {
			if opts.Output != "" && opts.Output != "json" {
				return usageErrorf(c, "invalid --output %q: want json", opts.Output)
			}
			cfg, err := host.load(c)
			if err != nil {
				return err
			}
			opts.IO = f.IOStreams
			opts.Config = cfg
			if runF != nil {
				return runF(opts)
			}
			return gcRun(c.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.Untagged, "untagged", false, "Also delete manifests no tag, index or subject keeps")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "Report what would be deleted and the bytes freed, and change nothing")
	fl.BoolVar(&opts.Wait, "wait", false, "When another collection is running (a replica's schedule), wait for it to end instead of giving up")
	fl.DurationVar(&grace, "grace", def.GC.Grace, "Collect only what is older than this (gc.grace)")
	fl.StringVarP(&opts.Output, "output", "o", "", "Output `format`: json (default text)")
	host = bindHostConfig(f, cmd, map[string]string{"grace": "gc.grace"})
	return cmd
}

func gcRun(ctx context.Context, opts *GCOptions) error {
	blobs, meta, err := server.OpenStores(ctx, opts.Config)
	if err != nil {
		return err
	}
	defer meta.Close()
	// The manifests it deletes get their events and audit entries from the store, in
	// the deleting transaction (docs/design/events.md); the run its gc.completed.
	outbox, _ := meta.(events.Store)
	rep, err := gc.Run(ctx, gc.Options{
		Meta: meta, Blobs: blobs, Grace: opts.Config.GC.Grace,
		Untagged: opts.Untagged, DryRun: opts.DryRun, Wait: opts.Wait,
		Log:    server.NewLogger(opts.IO.ErrOut, opts.Config.Log),
		Holder: "hubctl gc",
		Outbox: outbox,
	})
	if errors.Is(err, gc.ErrBusy) {
		// A replica's schedule or another hubctl gc is collecting: nothing was done.
		return fmt.Errorf("%w; run it again when that one is done, or give --wait", err)
	}
	if err != nil {
		return err
	}
	if opts.Output == "json" {
		return printJSON(opts.IO.Out, struct {
			gc.Report
			DryRun bool `json:"dry_run"`
		}{rep, opts.DryRun})
	}
	w := opts.IO.Out
	if opts.DryRun {
		fmt.Fprintln(w, "dry run: nothing was deleted")
		for _, m := range rep.DeletedManifests {
			fmt.Fprintf(w, "would delete manifest %s\n", m)
		}
		fmt.Fprintf(w, "manifests: %d\nlinks: %d\nblobs: %d\nbytes freed: %d\n", rep.Manifests, rep.Links, rep.Swept, rep.BytesFreed)
		return nil
	}
	for _, m := range rep.DeletedManifests {
		fmt.Fprintf(w, "deleted manifest %s\n", m)
	}
	fmt.Fprintf(w, "manifests: %d\nlinks: %d\nmarked: %d\nswept: %d\nbytes freed: %d\n", rep.Manifests, rep.Links, rep.Marked, rep.Swept, rep.BytesFreed)
	return nil
}
