package commands

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hubctl/hubctl/internal/hubclient"
	"github.com/hubctl/hubctl/internal/hubtypes"
)

// WebhookUpdateOptions are the inputs of `hubctl webhook update`.
type WebhookUpdateOptions struct {
	Hub     HubOptions
	ID      string
	Request hubtypes.UpdateWebhookRequest
}

// NewCmdWebhookUpdate returns `hubctl webhook update ID`. runF receives the parsed
// options instead of changing the hook.
func NewCmdWebhookUpdate(f *Factory, runF func(*WebhookUpdateOptions) error) *cobra.Command {
	opts := &WebhookUpdateOptions{}
	var url, format string
	var evs, repos, tags, headers []string
	var clearEvents, clearRepos, clearTags, clearHeaders bool
	cmd := &cobra.Command{
		Use:   "update ID [flags]",
		Short: "Change a webhook's URL, event types, filters, format or custom headers",
		Long: `Change a webhook. What no flag names stays as it was; a list flag given replaces
that whole list (--event, --repo-filter, --tag), and --header replaces all the custom
headers (stored sealed, as at creation). The scope and what the hook watches cannot
change: create another hook for that. The secret changes with 'hubctl webhook
rotate-secret'.`,
		Example: `  hubctl webhook update ID --url https://ci.example.com/new-hook
  hubctl webhook update ID --event manifest.pushed --event tag.deleted --tag 'v*'
  hubctl webhook update ID --header 'Authorization=Bearer …'
  hubctl webhook update ID --clear-tags --clear-headers`,
		Args: checkArgs(cobra.ExactArgs(1)),
	}
	hubCommand(f, cmd, &opts.Hub, func(args []string) error {
		opts.ID = args[0]
		r := &opts.Request
		*r = hubtypes.UpdateWebhookRequest{}
		fl := cmd.Flags()
		list := func(flag, clearFlag string, v []string, clear bool, into *hubtypes.Optional[[]string]) error {
			switch {
			case fl.Changed(flag) && clear:
				return usageErrorf(cmd, "give --%s or --%s, not both", flag, clearFlag)
			case clear:
				*into = hubtypes.Some([]string{})
			case fl.Changed(flag):
				*into = hubtypes.Some(v)
			}
			return nil
		}
		if err := list("event", "clear-events", evs, clearEvents, &r.Events); err != nil {
			return err
		}
		if err := list("repo-filter", "clear-repo-filters", repos, clearRepos, &r.Repositories); err != nil {
			return err
		}
		if err := list("tag", "clear-tags", tags, clearTags, &r.Tags); err != nil {
			return err
		}
		if fl.Changed("url") {
			r.URL = hubtypes.Some(url)
		}
		if fl.Changed("format") {
			r.Format = hubtypes.Some(format)
		}
		switch {
		case fl.Changed("header") && clearHeaders:
			return usageErrorf(cmd, "give --header or --clear-headers, not both")
		case clearHeaders:
			r.Headers = hubtypes.Some(map[string]string{})
		case fl.Changed("header"):
			m := map[string]string{}
			for _, h := range headers {
				k, v, ok := strings.Cut(h, "=")
				if !ok || k == "" {
					return usageErrorf(cmd, "invalid --header: want NAME=VALUE")
				}
				m[k] = v
			}
			r.Headers = hubtypes.Some(m)
		}
		if !r.URL.Set && !r.Events.Set && !r.Repositories.Set && !r.Tags.Set && !r.Format.Set && !r.Headers.Set {
			return usageErrorf(cmd, "nothing to change: give --url, --event, --repo-filter, --tag, --format, --header or a --clear- flag")
		}
		return nil
	}, hubRun(&opts.Hub, opts, runF, func(c *hubclient.Client) error {
		h, err := c.UpdateWebhook(cmd.Context(), opts.ID, opts.Request)
		if err != nil {
			return fmt.Errorf("update webhook %s: %w", opts.ID, err)
		}
		return opts.Hub.done(h, "Webhook %s updated", h.ID)
	}))
	fl := cmd.Flags()
	fl.StringVar(&url, "url", "", "Send to `URL` from now on")
	fl.StringArrayVar(&evs, "event", nil, "Event `type` to send (repeatable; replaces the list)")
	fl.StringArrayVar(&repos, "repo-filter", nil, "Only repositories matching this glob `pattern` (repeatable; replaces the list)")
	fl.StringArrayVar(&tags, "tag", nil, "Only events of tags matching this glob `pattern` (repeatable; replaces the list)")
	fl.StringVar(&format, "format", "", "Body `format` of the deliveries")
	fl.StringArrayVar(&headers, "header", nil, "Custom header `NAME=VALUE` (repeatable; replaces all custom headers; stored sealed)")
	fl.BoolVar(&clearEvents, "clear-events", false, "Send every event type")
	fl.BoolVar(&clearRepos, "clear-repo-filters", false, "Drop the repository filters")
	fl.BoolVar(&clearTags, "clear-tags", false, "Drop the tag filters")
	fl.BoolVar(&clearHeaders, "clear-headers", false, "Remove every custom header")
	return cmd
}

// WebhookRotateOptions are the inputs of `hubctl webhook rotate-secret`.
type WebhookRotateOptions struct {
	Hub HubOptions
	ID  string
	// KeepPrevious is how long deliveries stay signed with the old secret too.
	KeepPrevious time.Duration
}

// NewCmdWebhookRotateSecret returns `hubctl webhook rotate-secret ID`. runF receives
// the parsed options instead of rotating.
func NewCmdWebhookRotateSecret(f *Factory, runF func(*WebhookRotateOptions) error) *cobra.Command {
	opts := &WebhookRotateOptions{}
	cmd := &cobra.Command{
		Use:   "rotate-secret ID [--keep-previous 24h]",
		Short: "Give a webhook a new signing secret and print it",
		Long: `Give a webhook a new signing secret, printed on stdout once: the hub stores it sealed
and never shows it again. Until --keep-previous has passed (default 24h, at most
168h; 0 drops the old secret at once) every delivery carries two Standard Webhooks
signatures, by the new and by the old secret, so receivers keep verifying while
they are given the new one. X-Hub-Signature-256 uses the new secret at once.`,
		Example: `  hubctl webhook rotate-secret ID
  hubctl webhook rotate-secret ID --keep-previous 2h
  hubctl webhook rotate-secret ID --keep-previous 0   # the old secret stops working now`,
		Args: checkArgs(cobra.ExactArgs(1)),
	}
	hubCommand(f, cmd, &opts.Hub, func(args []string) error {
		opts.ID = args[0]
		if opts.KeepPrevious < 0 || opts.KeepPrevious > 7*24*time.Hour {
			return usageErrorf(cmd, "invalid --keep-previous %s: want 0 to 168h", opts.KeepPrevious)
		}
		return nil
	}, hubRun(&opts.Hub, opts, runF, func(c *hubclient.Client) error {
		return webhookRotateRun(cmd.Context(), c, opts)
	}))
	cmd.Flags().DurationVar(&opts.KeepPrevious, "keep-previous", 24*time.Hour,
		"How long deliveries are signed with the old secret too (`duration`, at most 168h; 0 drops it now)")
	return cmd
}

func webhookRotateRun(ctx context.Context, c *hubclient.Client, opts *WebhookRotateOptions) error {
	h, err := c.RotateWebhookSecret(ctx, opts.ID, hubtypes.RotateWebhookSecretRequest{ExpirePreviousIn: opts.KeepPrevious.String()})
	if err != nil {
		return fmt.Errorf("rotate the secret of webhook %s: %w", opts.ID, err)
	}
	old := "The old secret no longer signs."
	if h.PreviousSecretExpiresAt != "" {
		old = "The old secret signs too until " + h.PreviousSecretExpiresAt + "."
	}
	fmt.Fprintf(opts.Hub.IO.ErrOut, "Webhook %s has a new signing secret. Copy it now: it is shown only once. %s\n", h.ID, old)
	if opts.Hub.Output == "json" {
		return printJSON(opts.Hub.IO.Out, h)
	}
	_, err = fmt.Fprintln(opts.Hub.IO.Out, h.Secret)
	return err
}

// NewCmdWebhookTest returns `hubctl webhook test ID`.
func NewCmdWebhookTest(f *Factory) *cobra.Command {
	return simpleCommand(f, &cobra.Command{
		Use:   "test ID",
		Short: "Send a webhook a test event now and show the answer",
		Long: `Send the webhook a synthetic webhook.test event now, signed and sent as deliveries
are (through the same address checks), and show the receiver's status, the time it
took and the head of its answer. The test is stored with the webhook's deliveries.
The command fails when the receiver did not answer 2xx.`,
		Args: checkArgs(cobra.ExactArgs(1)),
	}, &AdminOptions{}, nil, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		d, err := c.TestWebhook(ctx, o.Args[0])
		if err != nil {
			return fmt.Errorf("test webhook %s: %w", o.Args[0], err)
		}
		var a hubtypes.WebhookAttempt
		if len(d.Log) > 0 {
			a = d.Log[len(d.Log)-1]
		}
		err = o.Hub.print(d, []string{"FIELD", "VALUE"}, func(row func(cells ...string)) {
			row("delivery", fmt.Sprint(d.ID))
			row("event", d.Event)
			if a.Status != 0 {
				row("status", fmt.Sprint(a.Status))
			} else {
				row("status", "no answer")
			}
			row("duration", (time.Duration(a.DurationMillis) * time.Millisecond).String())
			if a.Error != "" {
				row("error", a.Error)
			}
			row("body", truncateRunes(a.ResponseBody, 200))
		})
		if err != nil {
			return err
		}
		if a.Status < 200 || a.Status > 299 {
			why := d.LastError
			if why == "" {
				why = a.Error
			}
			return fmt.Errorf("test webhook %s: the receiver did not answer 2xx: %s", o.Args[0], why)
		}
		return nil
	})
}

// truncateRunes cuts s to at most n runes, marking the cut.
func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
