package commands

import (
	"fmt"

	"github.com/hubctl/hubctl/internal/hubclient"
	"github.com/spf13/cobra"
)

// AuditOptions are the inputs of `hubctl audit`.
type AuditOptions struct {
	Hub    HubOptions
	Actor  string
	Action string
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
  hubctl audit --actor alice -o json`,
		Args: checkArgs(cobra.NoArgs),
	}
	hubCommand(f, cmd, &opts.Hub, func([]string) error {
		if opts.Limit < 0 || opts.Limit > 1000 {
			return usageErrorf(cmd, "invalid --limit %d: want 1 to 1000", opts.Limit)
		}
		return nil
	}, hubRun(&opts.Hub, opts, runF, func(c *hubclient.Client) error {
		page, err := c.ListAudit(cmd.Context(), hubclient.AuditQuery{Actor: opts.Actor, Action: opts.Action, Before: opts.Before, Limit: opts.Limit})
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
	cmd.Flags().Int64Var(&opts.Before, "before", 0, "Only entries older than this entry `id` (the next page)")
	cmd.Flags().IntVar(&opts.Limit, "limit", 0, "At most `n` entries (default 100, at most 1000)")
	return cmd
}
