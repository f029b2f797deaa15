package commands

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hubctl/hubctl/internal/hubclient"
	"github.com/hubctl/hubctl/internal/hubtypes"
)

// NewCmdWebhook returns `hubctl webhook`, the webhooks of a hub.
func NewCmdWebhook(f *Factory) *cobra.Command {
	return groupCommand("webhook", "Manage webhooks: signed HTTP notifications of a hub's events",
		`Manage the webhooks of a hubctl registry. A webhook belongs to a namespace, a repository,
or (site administrators) the whole hub, and receives the events that match its event
types and repository and tag filters as signed POST requests (docs/webhooks.md).
Administrators of a namespace manage its hooks and those of its repositories.`,
		NewCmdWebhookCreate(f, nil),
		NewCmdWebhookLs(f),
		NewCmdWebhookShow(f),
		NewCmdWebhookUpdate(f, nil),
		NewCmdWebhookRotateSecret(f, nil),
		NewCmdWebhookTest(f),
		NewCmdWebhookRm(f),
		NewCmdWebhookEnable(f, true),
		NewCmdWebhookEnable(f, false),
		NewCmdWebhookDeliveries(f),
		NewCmdWebhookRedeliver(f))
}

// webhookFormats are the body formats a hub accepts (internal/webhook.Formats; the
// hub checks the value).
var webhookFormats = []string{"hubctl", "cloudevents", "distribution", "harbor"}

// WebhookCreateOptions are the inputs of `hubctl webhook create`.
type WebhookCreateOptions struct {
	Hub     HubOptions
	Request hubtypes.CreateWebhookRequest
	// Headers are NAME=VALUE pairs of --header.
	Headers []string
	// Dragonfly holds the --dragonfly-* flags of a --kind dragonfly hook.
	Dragonfly hubtypes.WebhookDragonfly
	// DragonflyClusters are the --dragonfly-cluster ids.
	DragonflyClusters []uint
	// DragonflyTimeout is --dragonfly-timeout.
	DragonflyTimeout time.Duration
	// DragonflyTokenStdin reads the manager's personal access token from stdin.
	DragonflyTokenStdin bool
}

// NewCmdWebhookCreate returns `hubctl webhook create`. runF receives the parsed
// options instead of creating the hook.
func NewCmdWebhookCreate(f *Factory, runF func(*WebhookCreateOptions) error) *cobra.Command {
	opts := &WebhookCreateOptions{}
	var namespace, repository string
	var site bool
	cmd := &cobra.Command{
		Use:   "create URL (--namespace NS | --repository NS/NAME | --site)",
		Short: "Create a webhook and print its signing secret",
		Long: `Create a webhook that POSTs the matching events to URL, signed with the Standard
Webhooks headers and GitHub's X-Hub-Signature-256. The signing secret (whsec_…) is
printed on stdout once: the hub stores it sealed and never shows it again.

Custom headers (--header, e.g. an Authorization for the receiver) are stored sealed
and never shown again either; listings show their names only.

--repo-filter and --tag take a glob (Go's path.Match: * does not cross /) or, written
re:EXPR, an RE2 regular expression the whole name must match (at most 256 characters).
An event must match one of each list given; a tag filter drops events without a tag.

--format chooses the body: hubctl (the default; JSON Schema in docs/webhooks.schema.json),
cloudevents (CloudEvents 1.0, structured mode), distribution (the CNCF distribution
registry's notification envelope) or harbor (Harbor's payload). The distribution and
harbor formats carry only the events that have a meaning there (docs/webhooks.md).

With --kind dragonfly, URL is a Dragonfly manager: every image pushed to what the
hook watches makes a preheat job there, pulling the image with a short-lived token
for that repository alone, and the hook follows the job to its end (docs/webhooks.md,
"Dragonfly preheat"). The manager's personal access token is read from stdin
(--dragonfly-token-stdin) and stored sealed; the hook's id is printed on stdout.`,
		Example: `  hubctl webhook create https://ci.example.com/hook --namespace acme --event manifest.pushed --tag 'v*'
  hubctl webhook create https://ci.example.com/hook --namespace acme --tag 're:v[0-9]+\.[0-9]+\.[0-9]+'
  hubctl webhook create https://hooks.example.com/x --repository acme/app --header 'Authorization=Bearer …'
  hubctl webhook create https://events.example.com/in --namespace acme --format cloudevents
  hubctl webhook create https://audit.example.com/in --site -o json
  echo "$DRAGONFLY_PAT" | hubctl webhook create https://dragonfly-manager:8080 --namespace acme \
      --kind dragonfly --dragonfly-scope all_seed_peers --dragonfly-cluster 1 --dragonfly-token-stdin`,
		Args: checkArgs(cobra.ExactArgs(1)),
	}
	hubCommand(f, cmd, &opts.Hub, func(args []string) error {
		r := &opts.Request
		r.URL = args[0]
		n := 0
		if namespace != "" {
			n++
			r.Scope, r.Target = "namespace", namespace
		}
		if repository != "" {
			n++
			r.Scope, r.Target = "repository", repository
		}
		if site {
			n++
			r.Scope, r.Target = "site", ""
		}
		if n != 1 {
			return usageErrorf(cmd, "give exactly one of --namespace, --repository and --site")
		}
		if err := webhookKindFlags(cmd, opts); err != nil {
			return err
		}
		r.Headers = nil
		for _, h := range opts.Headers {
			k, v, ok := strings.Cut(h, "=")
			if !ok || k == "" {
				return usageErrorf(cmd, "invalid --header: want NAME=VALUE")
			}
			if r.Headers == nil {
				r.Headers = map[string]string{}
			}
			r.Headers[k] = v
		}
		return nil
	}, hubRun(&opts.Hub, opts, runF, func(c *hubclient.Client) error {
		return webhookCreateRun(cmd.Context(), c, opts)
	}))
	fl := cmd.Flags()
	fl.StringVar(&namespace, "namespace", "", "Watch the repositories of `NS`")
	fl.StringVar(&repository, "repository", "", "Watch the repository `NS/NAME`")
	fl.BoolVar(&site, "site", false, "Watch the whole hub (site administrators)")
	fl.StringArrayVar(&opts.Request.Events, "event", nil, "Event `type` to send, e.g. manifest.pushed (repeatable; default all)")
	fl.StringArrayVar(&opts.Request.Repositories, "repo-filter", nil, "Only repositories matching `pattern`: a glob, or re:EXPR (RE2, whole name) (repeatable)")
	fl.StringArrayVar(&opts.Request.Tags, "tag", nil, "Only events of tags matching `pattern`: a glob, or re:EXPR (RE2, whole name) (repeatable)")
	fl.StringVar(&opts.Request.Format, "format", "hubctl", "Body `format`: hubctl, cloudevents, distribution or harbor")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions(webhookFormats, cobra.ShellCompDirectiveNoFileComp))
	fl.StringArrayVar(&opts.Headers, "header", nil, "Custom header `NAME=VALUE` sent with every delivery (repeatable; stored sealed)")
	fl.BoolVar(&opts.Request.Disabled, "disabled", false, "Create the webhook turned off")
	fl.StringVar(&opts.Request.Kind, "kind", "", "What a delivery does: `webhook` (POST the event; default) or dragonfly (a preheat job on the Dragonfly manager at URL)")
	fl.StringVar(&opts.Dragonfly.API, "dragonfly-api", "", "Dragonfly manager `API`: oapi (2.1+, the default) or v1 (2.0.x)")
	fl.StringVar(&opts.Dragonfly.Scope, "dragonfly-scope", "", "Peers to preheat: `single_seed_peer` (default), all_seed_peers or all_peers")
	fl.UintSliceVar(&opts.DragonflyClusters, "dragonfly-cluster", nil, "Scheduler cluster `ID` to preheat in (repeatable; default all)")
	fl.StringVar(&opts.Dragonfly.Platform, "dragonfly-platform", "", "Preheat this `platform` of an index, e.g. linux/amd64")
	fl.DurationVar(&opts.DragonflyTimeout, "dragonfly-timeout", 0, "Follow a preheat job this `long` before failing it (default 30m)")
	fl.BoolVar(&opts.DragonflyTokenStdin, "dragonfly-token-stdin", false, "Read the Dragonfly manager's personal access token from stdin (stored sealed)")
	return cmd
}

// webhookKindFlags checks the --kind and --dragonfly-* flags and sets the request's
// kind and Dragonfly settings, reading the personal access token from stdin.
func webhookKindFlags(cmd *cobra.Command, opts *WebhookCreateOptions) error {
	r := &opts.Request
	dragonflyFlag := ""
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if strings.HasPrefix(f.Name, "dragonfly-") && dragonflyFlag == "" {
			dragonflyFlag = f.Name
		}
	})
	switch r.Kind {
	case "", "webhook":
		if dragonflyFlag != "" {
			return usageErrorf(cmd, "--%s is for --kind dragonfly", dragonflyFlag)
		}
		r.Dragonfly = nil
		return nil
	case "dragonfly":
	default:
		return usageErrorf(cmd, "invalid --kind %q: want webhook or dragonfly", r.Kind)
	}
	d := opts.Dragonfly
	d.SchedulerClusterIDs = nil
	for _, id := range opts.DragonflyClusters {
		d.SchedulerClusterIDs = append(d.SchedulerClusterIDs, uint64(id))
	}
	if opts.DragonflyTimeout != 0 {
		d.Timeout = opts.DragonflyTimeout.String()
	}
	if opts.DragonflyTokenStdin {
		b, err := readAll(opts.Hub.IO.In)
		if err != nil {
			return fmt.Errorf("read the personal access token from stdin: %w", err)
		}
		d.Token = strings.TrimSpace(string(b))
		if d.Token == "" || strings.ContainsAny(d.Token, "\r\n") {
			return usageErrorf(cmd, "--dragonfly-token-stdin: want the personal access token on one line")
		}
	}
	r.Dragonfly = &d
	return nil
}

func webhookCreateRun(ctx context.Context, c *hubclient.Client, opts *WebhookCreateOptions) error {
	h, err := c.CreateWebhook(ctx, opts.Request)
	if err != nil {
		return fmt.Errorf("create webhook: %w", err)
	}
	if h.Kind == "dragonfly" {
		fmt.Fprintf(opts.Hub.IO.ErrOut, "Webhook %s created: image pushes make preheat jobs on %s.\n", h.ID, h.URL)
		if opts.Hub.Output == "json" {
			return printJSON(opts.Hub.IO.Out, h)
		}
		_, err = fmt.Fprintln(opts.Hub.IO.Out, h.ID)
		return err
	}
	fmt.Fprintf(opts.Hub.IO.ErrOut, "Webhook %s created. Copy its signing secret now: it is shown only once.\n", h.ID)
	if opts.Hub.Output == "json" {
		return printJSON(opts.Hub.IO.Out, h)
	}
	_, err = fmt.Fprintln(opts.Hub.IO.Out, h.Secret)
	return err
}

func webhookRows(hooks []hubtypes.Webhook) func(row func(cells ...string)) {
	return func(row func(cells ...string)) {
		for _, h := range hooks {
			target := h.Target
			if h.Scope == "site" {
				target = "(site)"
			}
			evs := strings.Join(h.Events, ",")
			if evs == "" {
				evs = "*"
			}
			state := yesNo(h.Enabled)
			if h.DisabledReason != "" {
				state = "no: " + h.DisabledReason
			}
			row(h.ID, target, h.URL, evs, state)
		}
	}
}

var webhookHeader = []string{"ID", "WATCHES", "URL", "EVENTS", "ENABLED"}

// NewCmdWebhookLs returns `hubctl webhook ls`.
func NewCmdWebhookLs(f *Factory) *cobra.Command {
	opts := &AdminOptions{}
	var namespace string
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the webhooks you manage (yours, or --namespace's; every one for site admins)",
		Args:  checkArgs(cobra.NoArgs),
	}
	simpleCommand(f, cmd, opts, nil, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		hooks, err := c.ListWebhooks(ctx, namespace)
		if err != nil {
			return fmt.Errorf("list webhooks: %w", err)
		}
		return o.Hub.print(hooks, webhookHeader, webhookRows(hooks))
	})
	cmd.Flags().StringVar(&namespace, "namespace", "", "The webhooks of namespace `NS` and its repositories")
	return cmd
}

// NewCmdWebhookShow returns `hubctl webhook show ID`.
func NewCmdWebhookShow(f *Factory) *cobra.Command {
	return simpleCommand(f, &cobra.Command{
		Use: "show ID", Short: "Show a webhook (never its secret or header values)", Args: checkArgs(cobra.ExactArgs(1)),
	}, &AdminOptions{}, nil, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		h, err := c.GetWebhook(ctx, o.Args[0])
		if err != nil {
			return fmt.Errorf("webhook %s: %w", o.Args[0], err)
		}
		if o.Hub.Output == "json" {
			return printJSON(o.Hub.IO.Out, h)
		}
		return o.Hub.print(h, []string{"FIELD", "VALUE"}, func(row func(cells ...string)) {
			row("id", h.ID)
			row("scope", h.Scope)
			row("target", h.Target)
			row("url", h.URL)
			row("events", strings.Join(h.Events, ","))
			row("repositories", strings.Join(h.Repositories, ","))
			row("tags", strings.Join(h.Tags, ","))
			if h.Kind == "dragonfly" && h.Dragonfly != nil {
				d := h.Dragonfly
				row("kind", "dragonfly (preheat jobs on the manager at url)")
				row("dragonfly api", d.API)
				row("dragonfly scope", d.Scope)
				clusters := "all"
				if len(d.SchedulerClusterIDs) > 0 {
					clusters = strings.Trim(strings.Join(strings.Fields(fmt.Sprint(d.SchedulerClusterIDs)), ","), "[]")
				}
				row("dragonfly clusters", clusters)
				if d.Platform != "" {
					row("dragonfly platform", d.Platform)
				}
				row("dragonfly timeout", d.Timeout)
				row("dragonfly token", map[bool]string{true: "stored (sealed)", false: "none"}[d.HasToken])
			} else {
				row("format", h.Format)
			}
			row("headers", strings.Join(h.Headers, ","))
			row("enabled", yesNo(h.Enabled))
			if h.DisabledReason != "" {
				row("disabled because", h.DisabledReason)
			}
			if h.PreviousSecretExpiresAt != "" {
				row("previous secret until", h.PreviousSecretExpiresAt)
			}
			row("failures", fmt.Sprint(h.Failures))
			row("created by", h.CreatedBy)
			row("created", h.CreatedAt)
		})
	})
}

// NewCmdWebhookRm returns `hubctl webhook rm ID`.
func NewCmdWebhookRm(f *Factory) *cobra.Command {
	return simpleCommand(f, &cobra.Command{
		Use: "rm ID", Short: "Delete a webhook", Args: checkArgs(cobra.ExactArgs(1)),
	}, &AdminOptions{}, nil, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		if err := c.DeleteWebhook(ctx, o.Args[0]); err != nil {
			return fmt.Errorf("delete webhook %s: %w", o.Args[0], err)
		}
		return o.Hub.done(nil, "Webhook %s deleted", o.Args[0])
	})
}

// NewCmdWebhookDeliveries returns `hubctl webhook deliveries ID`.
func NewCmdWebhookDeliveries(f *Factory) *cobra.Command {
	opts := &AdminOptions{}
	var limit int
	cmd := &cobra.Command{
		Use:   "deliveries ID",
		Short: "List a webhook's newest deliveries and their attempts (-o json for headers and answers)",
		Args:  checkArgs(cobra.ExactArgs(1)),
	}
	simpleCommand(f, cmd, opts, nil, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		ds, err := c.ListWebhookDeliveries(ctx, o.Args[0], limit)
		if err != nil {
			return fmt.Errorf("webhook %s deliveries: %w", o.Args[0], err)
		}
		return o.Hub.print(ds, []string{"DELIVERY", "EVENT", "TYPE", "REPOSITORY", "STATE", "ATTEMPTS", "LAST", "NEXT"}, func(row func(cells ...string)) {
			for _, d := range ds {
				last := d.LastError
				if d.LastStatus != 0 {
					last = fmt.Sprint(d.LastStatus)
				}
				row(fmt.Sprint(d.ID), d.Event, d.Type, d.Repository, d.State, fmt.Sprint(d.Attempts), last, d.NextAt)
			}
		})
	})
	cmd.Flags().IntVar(&limit, "limit", 0, "At most `N` deliveries (default 50, up to 1000)")
	return cmd
}

// NewCmdWebhookRedeliver returns `hubctl webhook redeliver ID DELIVERY`.
func NewCmdWebhookRedeliver(f *Factory) *cobra.Command {
	return simpleCommand(f, &cobra.Command{
		Use: "redeliver ID DELIVERY", Short: "Send a delivery's event to the webhook again (same event id)",
		Args: checkArgs(cobra.ExactArgs(2)),
	}, &AdminOptions{}, nil, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		n, err := strconv.ParseInt(o.Args[1], 10, 64)
		if err != nil {
			return fmt.Errorf("delivery %q: want the number 'hubctl webhook deliveries' shows", o.Args[1])
		}
		d, err := c.RedeliverWebhook(ctx, o.Args[0], n)
		if err != nil {
			return fmt.Errorf("redeliver: %w", err)
		}
		return o.Hub.done(d, "Event %s queued again for webhook %s (delivery %s)", d.Event, o.Args[0], fmt.Sprint(d.ID))
	})
}

// NewCmdWebhookEnable returns `hubctl webhook enable ID` (or disable).
func NewCmdWebhookEnable(f *Factory, enable bool) *cobra.Command {
	use, short, verb := "enable ID", "Turn a webhook on again (after a pause or a 410), clearing its failures", "enabled"
	if !enable {
		use, short, verb = "disable ID", "Turn a webhook off: its events are no longer fanned out to it", "disabled"
	}
	return simpleCommand(f, &cobra.Command{Use: use, Short: short, Args: checkArgs(cobra.ExactArgs(1))}, &AdminOptions{}, nil,
		func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
			h, err := c.SetWebhookEnabled(ctx, o.Args[0], enable)
			if err != nil {
				return fmt.Errorf("webhook %s: %w", o.Args[0], err)
			}
			return o.Hub.done(h, "Webhook %s "+verb, h.ID)
		})
}
