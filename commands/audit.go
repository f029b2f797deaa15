package commands

import (
	"errors"
	"fmt"
	"time"

	"github.com/hubctl/hubctl/internal/hubclient"
	"github.com/spf13/cobra"
)

// AuditOptions are the inputs of `hubctl audit`.
type AuditOptions struct {
	Hub    HubOptions
	Actor  string
	Action string
	Since  string
	Until  string
	Before int64
	Limit  int
}

// NewCmdAudit returns `hubctl audit`.
func NewCmdAudit(f *Factory, runF func(*AuditOptions) error) *cobra.Command {
	opts := &AuditOptions{}
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the audit log of a hubctl registry (site admins)",
		Long: `Show who did what, when and from where, newest first: logins, token and account
changes, permission and visibility changes. With -o json the answer carries "next", the
--before of the following page.`,
		Example: `  hubctl audit --action token.create --limit 20
  hubctl audit --since 24h
  hubctl audit --since 2026-12-01 --until 2026-12-02T12:00:00Z
  hubctl audit --actor alice -o json`,
		Args: checkArgs(cobra.NoArgs),
	}
	hubCommand(f, cmd, &opts.Hub, func([]string) error {
		if opts.Limit < 0 || opts.Limit > 1000 {
			return usageErrorf(cmd, "invalid --limit %d: want 1 to 1000", opts.Limit)
		}
		for _, b := range []struct{ flag, v string }{{"since", opts.Since}, {"until", opts.Until}} {
			if _, err := auditTime(b.v, time.Now()); err != nil {
				return usageErrorf(cmd, "invalid --%s %q: %v", b.flag, b.v, err)
			}
		}
		return nil
	}, hubRun(&opts.Hub, opts, runF, func(c *hubclient.Client) error {
		now := time.Now()
		since, _ := auditTime(opts.Since, now)
		until, _ := auditTime(opts.Until, now)
		page, err := c.ListAudit(cmd.Context(), hubclient.AuditQuery{Actor: opts.Actor, Action: opts.Action, Since: since, Until: until, Before: opts.Before, Limit: opts.Limit})
		if err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
		return opts.Hub.print(page, []string{"ID", "TIME", "ACTOR", "ACTION", "TARGET", "REMOTE", "DETAIL"}, func(row func(...string)) {
			for _, e := range page.Entries {
				row(fmt.Sprint(e.ID), e.Time, e.Actor, e.Action, orDash(e.Target, "-"), orDash(e.Remote, "-"), orDash(e.Detail, "-"))
			}
		})
	}))
	cmd.Flags().StringVar(&opts.Actor, "actor", "", "Only entries by this `user`")
	cmd.Flags().StringVar(&opts.Action, "action", "", "Only entries of this `action`, e.g. token.create")
	cmd.Flags().StringVar(&opts.Since, "since", "", "Only entries at or after this `time`: RFC 3339 (2026-12-01T00:00:00Z), a date (2026-12-01, UTC) or a duration ago (24h)")
	cmd.Flags().StringVar(&opts.Until, "until", "", "Only entries at or before this `time`, in the forms --since takes")
	cmd.Flags().Int64Var(&opts.Before, "before", 0, "Only entries older than this entry `id` (the next page)")
	cmd.Flags().IntVar(&opts.Limit, "limit", 0, "At most `n` entries (default 100, at most 1000)")
	return cmd
}

// auditTime reads a --since or --until value as docker logs does: an RFC 3339 time, a
// date (midnight UTC), or a duration before now; "" is no bound.
func auditTime(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		if d < 0 {
			return time.Time{}, errors.New("a duration ago must not be negative")
		}
		return now.Add(-d), nil
	}
	return time.Time{}, errors.New("want an RFC 3339 time (2026-12-01T00:00:00Z), a date (2026-12-01) or a duration ago (24h)")
}
