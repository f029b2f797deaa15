package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hubctl/hubctl/internal/hubclient"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/safetext"
)

// EventsListOptions are the inputs of `hubctl events ls`.
type EventsListOptions struct {
	Hub        HubOptions
	Types      []string
	Repository string
	Namespace  string
	Since      string
	Limit      int
	// Follow keeps listing new events until interrupted.
	Follow bool
	// PollWait is how long each request of --follow lets the hub wait for an event.
	PollWait time.Duration
}

// NewCmdEvents returns `hubctl events` and its verbs.
func NewCmdEvents(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events",
		Short: "List and follow the events of a hubctl registry",
		Long: `Events are what happened in the hub — manifests pushed, tags moved and deleted,
repositories created, deleted or made public, charts pushed, garbage collections —
written in the same transaction as the change, so none is lost. You see the events of
the repositories you may pull; site admins see all.`,
		Args: checkArgs(cobra.NoArgs),
	}
	cmd.AddCommand(NewCmdEventsList(f, nil))
	return cmd
}

// NewCmdEventsList returns `hubctl events ls`.
func NewCmdEventsList(f *Factory, runF func(*EventsListOptions) error) *cobra.Command {
	opts := &EventsListOptions{PollWait: 25 * time.Second}
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List events, oldest first; --follow streams new ones",
		Long: `List events after --since (an event's SEQ or CURSOR), oldest first. With --follow,
keep waiting for new events and print each as it arrives until interrupted (from now,
unless --since says where to start); with
-o json each event is one line of JSON (NDJSON), carrying its "id" (dedupe on it: a
consumer restarted from an older cursor sees events again) and its "cursor" (the
--since that continues after it).`,
		Example: `  hubctl events ls --repo team/app --type manifest.pushed
  hubctl events ls --since 1200 --limit 50
  hubctl events ls --follow -o json | jq .`,
		Args: checkArgs(cobra.NoArgs),
	}
	hubCommand(f, cmd, &opts.Hub, func([]string) error {
		if opts.Limit < 0 || opts.Limit > 1000 {
			return usageErrorf(cmd, "invalid --limit %d: want 1 to 1000", opts.Limit)
		}
		if opts.Repository != "" && opts.Namespace != "" {
			return usageErrorf(cmd, "--repo and --namespace cannot be used together")
		}
		return nil
	}, hubRun(&opts.Hub, opts, runF, func(c *hubclient.Client) error {
		return runEventsList(cmd.Context(), c, opts)
	}))
	fl := cmd.Flags()
	fl.StringSliceVar(&opts.Types, "type", nil, "Only events of this `type` (repeatable or comma-separated), e.g. manifest.pushed")
	fl.StringVar(&opts.Repository, "repo", "", "Only events of this `repository`")
	fl.StringVar(&opts.Namespace, "namespace", "", "Only events of repositories under this `namespace`")
	fl.StringVar(&opts.Since, "since", "", "Only events after this event `seq` or cursor (\"now\": none before now)")
	fl.IntVar(&opts.Limit, "limit", 0, "At most `n` events per request (default 100, at most 1000)")
	fl.BoolVarP(&opts.Follow, "follow", "f", false, "Keep printing new events until interrupted")
	return cmd
}

// runEventsList prints one page, or with Follow every page until ctx ends.
func runEventsList(ctx context.Context, c *hubclient.Client, opts *EventsListOptions) error {
	q := hubclient.EventQuery{Since: opts.Since, Types: opts.Types, Repository: opts.Repository, Namespace: opts.Namespace, Limit: opts.Limit}
	if !opts.Follow {
		page, err := c.ListEvents(ctx, q)
		if err != nil {
			return fmt.Errorf("events: %w", err)
		}
		return opts.Hub.print(page, eventHeader, func(row func(...string)) {
			for _, e := range page.Events {
				row(eventRow(e)...)
			}
		})
	}
	if q.Since == "" {
		// Follow from now, as docker events does: history is what ls without
		// --follow (or --since) is for.
		q.Since = "now"
	}
	q.Wait = int(opts.PollWait / time.Second)
	header := opts.Hub.Output != "json"
	for {
		page, err := c.ListEvents(ctx, q)
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted: the normal end of --follow
			}
			return fmt.Errorf("events: %w", err)
		}
		if len(page.Events) > 0 {
			if err := printEvents(&opts.Hub, page.Events, header); err != nil {
				return err
			}
			header = false
		}
		q.Since = page.Next
		if len(page.Events) == 0 && q.Wait == 0 {
			// A hub answering at once with nothing: do not spin.
			t := time.NewTimer(time.Second)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil
		}
	}
}

var eventHeader = []string{"SEQ", "TIME", "TYPE", "REPOSITORY", "WHAT", "ACTOR"}

// printEvents writes events as NDJSON with -o json, else as table rows (the header
// first when header).
func printEvents(o *HubOptions, es []hubtypes.Event, header bool) error {
	if o.Output == "json" {
		for _, e := range es {
			if err := printJSON(o.IO.Out, e); err != nil {
				return err
			}
		}
		return nil
	}
	// Fixed widths rather than a tabwriter: rows arrive a few at a time and must line
	// up with the header printed before them.
	line := func(cells []string) {
		for i, c := range cells {
			cells[i] = safetext.Escape(c)
		}
		fmt.Fprintf(o.IO.Out, "%-8s  %-20s  %-29s  %-24s  %-40s  %s\n", cells[0], cells[1], cells[2], cells[3], cells[4], cells[5])
	}
	if header {
		line(slices.Clone(eventHeader))
	}
	for _, e := range es {
		line(eventRow(e))
	}
	return nil
}

func eventRow(e hubtypes.Event) []string {
	var what []string
	switch {
	case e.Chart != "":
		what = append(what, e.Chart+" "+e.Version)
	case e.Tag != "":
		what = append(what, ":"+e.Tag)
	}
	if e.Digest != "" {
		what = append(what, shortDigest(e.Digest))
	}
	if e.PreviousDigest != "" {
		what = append(what, "(was "+shortDigest(e.PreviousDigest)+")")
	}
	if e.Kind != "" && e.Type == "manifest.pushed" {
		what = append(what, e.Kind)
	}
	if len(e.Platforms) > 0 {
		what = append(what, strings.Join(e.Platforms, ","))
	}
	if e.Visibility != "" {
		what = append(what, e.Visibility)
	}
	when := e.Time
	if t, err := time.Parse(time.RFC3339Nano, e.Time); err == nil {
		when = t.UTC().Format(time.RFC3339) // whole seconds in a table; -o json keeps all
	}
	return []string{fmt.Sprint(e.Seq), when, e.Type, orDash(e.Repository, "-"), orDash(strings.Join(what, " "), "-"), orDash(e.Actor, "system")}
}

// shortDigest is "sha256:0123456789ab", enough to tell digests apart in a table.
func shortDigest(d string) string {
	if i := strings.IndexByte(d, ':'); i >= 0 && len(d) > i+13 {
		return d[:i+13]
	}
	return d
}
