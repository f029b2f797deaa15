package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hubctl/hubctl/internal/hubclient"
	"github.com/hubctl/hubctl/internal/hubtypes"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

// The commands of this file manage a namespace's workflow secrets and a workflow's
// webhook signing secret (docs/workflows.md, "Secrets" and "Triggers"). A secret's
// value is read from a file or stdin, never from a flag: a flag shows in `ps`.

// NewCmdWorkflowSecret returns `hubctl workflow secret`.
func NewCmdWorkflowSecret(f *Factory) *cobra.Command {
	return groupCommand("secret", "Set, list and delete a namespace's workflow secrets",
		`A namespace's secrets are the values its workflows' steps name in secrets: (given to
the step as variables of those names, masked in logs). The hub seals them at rest and
never shows a value again. Only the namespace's administrators manage them.`,
		NewCmdWorkflowSecretSet(f, nil), NewCmdWorkflowSecretLs(f), NewCmdWorkflowSecretRm(f))
}

// WorkflowSecretSetOptions are the inputs of `hubctl workflow secret set`.
type WorkflowSecretSetOptions struct {
	Hub       HubOptions
	Namespace string
	Name      string
	// FromFile is the file holding the value; "" reads stdin.
	FromFile string
}

// NewCmdWorkflowSecretSet returns `hubctl workflow secret set NS/NAME`.
func NewCmdWorkflowSecretSet(f *Factory, runF func(*WorkflowSecretSetOptions) error) *cobra.Command {
	opts := &WorkflowSecretSetOptions{}
	var cmd *cobra.Command
	cmd = &cobra.Command{
		Use:   "set NS/NAME [--from-file FILE]",
		Short: "Set a workflow secret of a namespace (the value from a file or stdin)",
		Long: `Set the secret NAME of namespace NS to the content of FILE, or of stdin (one trailing
newline removed, so 'echo value | hubctl workflow secret set ...' works). The value is
never taken from a flag or an argument, which would show in the process list.`,
		Example: `  hubctl workflow secret set acme/DEPLOY_KEY --from-file deploy.key
  printf %s "$TOKEN" | hubctl workflow secret set acme/API_TOKEN`,
		Args: checkArgs(cobra.ExactArgs(1)),
	}
	hubCommand(f, cmd, &opts.Hub, func(args []string) error {
		ns, name, err := splitWorkflow(cmd, args[0])
		if err != nil {
			return usageErrorf(cmd, "secret %q: want NAMESPACE/NAME", args[0])
		}
		opts.Namespace, opts.Name = ns, name
		return nil
	}, hubRun(&opts.Hub, opts, runF, func(c *hubclient.Client) error {
		return workflowSecretSetRun(cmd.Context(), c, opts)
	}))
	cmd.Flags().StringVar(&opts.FromFile, "from-file", "", "Read the value from `FILE` (default: stdin)")
	return cmd
}

func workflowSecretSetRun(ctx context.Context, c *hubclient.Client, opts *WorkflowSecretSetOptions) error {
	value, err := readSecretValue(opts.FromFile, opts.Hub.IO.In)
	if err != nil {
		return err
	}
	if err := wfengine.CheckSecret(opts.Name, value); err != nil {
		return fmt.Errorf("set secret %s/%s: %s", opts.Namespace, opts.Name, strings.TrimPrefix(err.Error(), wfengine.ErrInvalid.Error()+": "))
	}
	if err := c.SetWorkflowSecret(ctx, opts.Namespace, opts.Name, value); err != nil {
		return fmt.Errorf("set secret %s/%s: %w", opts.Namespace, opts.Name, err)
	}
	return opts.Hub.done(nil, "Secret %s set", opts.Namespace+"/"+opts.Name)
}

// readSecretValue reads a value from file, or from in when file is "": at most
// MaxSecretValue bytes (and a trailing newline).
func readSecretValue(file string, in io.Reader) (string, error) {
	from := "stdin"
	if file != "" {
		from = file
		fh, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("read the secret's value: %w", err)
		}
		defer fh.Close()
		in = fh
	}
	if in == nil {
		return "", errors.New("read the secret's value: no stdin: give --from-file FILE")
	}
	b, err := io.ReadAll(io.LimitReader(in, wfengine.MaxSecretValue+3))
	if err != nil {
		return "", fmt.Errorf("read the secret's value from %s: %w", from, err)
	}
	v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if len(v) > wfengine.MaxSecretValue {
		return "", fmt.Errorf("the secret's value from %s exceeds %d bytes", from, wfengine.MaxSecretValue)
	}
	if v == "" {
		return "", fmt.Errorf("the secret's value from %s is empty", from)
	}
	return v, nil
}

// NewCmdWorkflowSecretLs returns `hubctl workflow secret ls NS`.
func NewCmdWorkflowSecretLs(f *Factory) *cobra.Command {
	return simpleCommand(f, &cobra.Command{
		Use: "ls NS", Short: "List a namespace's workflow secrets (names, never values)",
		Args: checkArgs(cobra.ExactArgs(1)),
	}, &AdminOptions{}, nil, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		list, err := c.ListWorkflowSecrets(ctx, o.Args[0])
		if err != nil {
			return fmt.Errorf("list secrets of %s: %w", o.Args[0], err)
		}
		if list == nil {
			list = []hubtypes.WorkflowSecret{}
		}
		return o.Hub.print(list, []string{"SECRET", "UPDATED BY", "UPDATED"}, func(row func(cells ...string)) {
			for _, s := range list {
				row(s.Namespace+"/"+s.Name, s.UpdatedBy, s.UpdatedAt)
			}
		})
	})
}

// NewCmdWorkflowSecretRm returns `hubctl workflow secret rm NS/NAME`.
func NewCmdWorkflowSecretRm(f *Factory) *cobra.Command {
	var cmd *cobra.Command
	cmd = simpleCommand(f, &cobra.Command{
		Use: "rm NS/NAME", Short: "Delete a workflow secret of a namespace",
		Args: checkArgs(cobra.ExactArgs(1)),
	}, &AdminOptions{}, nil, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		ns, name, err := splitWorkflow(cmd, o.Args[0])
		if err != nil {
			return usageErrorf(cmd, "secret %q: want NAMESPACE/NAME", o.Args[0])
		}
		if err := c.DeleteWorkflowSecret(ctx, ns, name); err != nil {
			return fmt.Errorf("delete secret %s/%s: %w", ns, name, err)
		}
		return o.Hub.done(nil, "Secret %s deleted", ns+"/"+name)
	})
	return cmd
}

// NewCmdWorkflowHookSecret returns `hubctl workflow hook-secret NS/NAME --rotate`.
func NewCmdWorkflowHookSecret(f *Factory) *cobra.Command {
	var rotate bool
	var cmd *cobra.Command
	cmd = simpleCommand(f, &cobra.Command{
		Use:   "hook-secret NS/NAME --rotate",
		Short: "Make a new signing secret for a workflow's incoming webhook URL and print it",
		Long: `A workflow with on: webhook (and no secret: of its own) gets a signing secret at its
first apply, shown once. --rotate makes a new one, which replaces the old at once, and
prints it on stdout: the hub never shows a secret again.`,
		Args: checkArgs(cobra.ExactArgs(1)),
	}, &AdminOptions{}, nil, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		ns, name, err := splitWorkflow(cmd, o.Args[0])
		if err != nil {
			return err
		}
		if !rotate {
			return usageErrorf(cmd, "the hub shows a signing secret only when it makes one: add --rotate to replace it with a new one")
		}
		got, err := c.RotateWorkflowHookSecret(ctx, ns, name)
		if err != nil {
			return fmt.Errorf("rotate the webhook secret of %s/%s: %w", ns, name, err)
		}
		return printHookSecret(&o.Hub, got)
	})
	cmd.Flags().BoolVar(&rotate, "rotate", false, "Replace the signing secret with a new one")
	return cmd
}

// printHookSecret prints the signing secret of a workflow's incoming URL the hub just
// made: the secret alone on stdout (or the workflow as JSON), where to call on stderr.
func printHookSecret(o *HubOptions, w hubtypes.Workflow) error {
	if w.HookSecret == "" {
		return nil
	}
	if o.Output == "json" {
		return nil // the workflow printed as JSON holds it
	}
	fmt.Fprintf(o.IO.ErrOut, "Webhook: POST %s on %s, signed as Standard Webhooks says; its signing secret, shown once:\n",
		w.HookURL, o.Registry)
	_, err := fmt.Fprintln(o.IO.Out, w.HookSecret)
	return err
}
