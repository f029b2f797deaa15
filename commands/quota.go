package commands

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hubctl/hubctl/internal/config"
	"github.com/hubctl/hubctl/internal/hubclient"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/tui"
)

// NewCmdQuota returns `hubctl quota`.
func NewCmdQuota(f *Factory) *cobra.Command {
	return groupCommand("quota", "Manage the storage quotas of namespaces",
		`Show and set the storage quota of a namespace (a user or an organisation) on a registry
run by 'hubctl serve'. Usage counts each blob once per namespace, however many of its
repositories hold it; a push that would take a namespace over its quota is refused
with DENIED.`,
		NewCmdQuotaSet(f, nil), NewCmdQuotaShow(f, nil))
}

// QuotaSetOptions are the inputs of `hubctl quota set`.
type QuotaSetOptions struct {
	Hub       HubOptions
	Namespace string
	// Bytes is the quota; 0 removes it.
	Bytes int64
}

// NewCmdQuotaSet returns `hubctl quota set`.
func NewCmdQuotaSet(f *Factory, runF func(*QuotaSetOptions) error) *cobra.Command {
	opts := &QuotaSetOptions{}
	cmd := &cobra.Command{
		Use:   "set NAMESPACE SIZE",
		Short: "Set a namespace's storage quota (site admins)",
		Long: `Set the storage quota of a namespace. SIZE is a byte count with an optional unit
(KB, MB, GB, TB in powers of 1000; KiB, MiB, GiB, TiB in powers of 1024); 0 or
"unlimited" removes the quota. Blobs already stored stay when the quota is lowered
below the usage; further pushes of new blobs are refused.`,
		Example: `  hubctl quota set acme 10GiB
  hubctl quota set alice unlimited`,
		Args: checkArgs(cobra.ExactArgs(2)),
	}
	hubCommand(f, cmd, &opts.Hub, func(args []string) error {
		n, err := parseQuota(args[1])
		if err != nil {
			return usageErrorf(cmd, "%v", err)
		}
		opts.Namespace, opts.Bytes = args[0], n
		return nil
	}, hubRun(&opts.Hub, opts, runF, func(c *hubclient.Client) error {
		return quotaSetRun(cmd.Context(), c, opts)
	}))
	return cmd
}

// parseQuota reads a quota argument: a size, or "unlimited"/"none" for no quota.
func parseQuota(s string) (int64, error) {
	switch strings.ToLower(s) {
	case "unlimited", "none":
		return 0, nil
	}
	n, err := config.ParseSize(s)
	return int64(n), err
}

func quotaSetRun(ctx context.Context, c *hubclient.Client, opts *QuotaSetOptions) error {
	u, err := c.SetQuota(ctx, opts.Namespace, opts.Bytes)
	if err != nil {
		return fmt.Errorf("set quota of %s: %w", opts.Namespace, err)
	}
	if u.QuotaBytes == 0 {
		return opts.Hub.done(u, "Namespace %s has no quota (%s used)", u.Namespace, tui.FormatBytes(u.UsedBytes))
	}
	return opts.Hub.done(u, "Quota of %s set to %s (%s used)", u.Namespace, tui.FormatBytes(u.QuotaBytes), tui.FormatBytes(u.UsedBytes))
}

// NewCmdQuotaShow returns `hubctl quota show`.
func NewCmdQuotaShow(f *Factory, runF func(*AdminOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show NAMESPACE",
		Short: "Show a namespace's storage usage and quota",
		Long: `Show the bytes stored in a namespace, each blob counted once however many of its
repositories hold it, and its quota. Shown to the namespace's own user, to
administrators of the organisation and to site administrators.`,
		Example: "  hubctl quota show acme\n  hubctl quota show acme -o json",
		Args:    checkArgs(cobra.ExactArgs(1)),
	}
	return simpleCommand(f, cmd, &AdminOptions{}, runF, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		u, err := c.Usage(ctx, o.Args[0])
		if err != nil {
			return fmt.Errorf("usage of %s: %w", o.Args[0], err)
		}
		return o.Hub.print(u, []string{"NAMESPACE", "USED", "QUOTA", "USE%"}, func(row func(...string)) {
			row(quotaCells(u)...)
		})
	})
}

func quotaCells(u hubtypes.Usage) []string {
	if u.QuotaBytes == 0 {
		return []string{u.Namespace, tui.FormatBytes(u.UsedBytes), "unlimited", "-"}
	}
	pct := strconv.FormatFloat(100*float64(u.UsedBytes)/float64(u.QuotaBytes), 'f', 1, 64) + "%"
	return []string{u.Namespace, tui.FormatBytes(u.UsedBytes), tui.FormatBytes(u.QuotaBytes), pct}
}
