package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// NewCmdRoot returns the `hubctl` command with every subcommand attached.
func NewCmdRoot(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hubctl",
		Short: "Build and move container images, and serve a registry",
		Long: `hubctl builds OCI images without a daemon, pushes, pulls, copies, mirrors and
inspects them between any registries and local forms (OCI layouts, archives, the Docker
engine), and with 'hubctl serve' runs an OCI distribution registry with accounts and
access tokens.`,
		Version:       f.Build.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          unknownCommand,
		// Runnable so that unknownCommand sees a mistyped subcommand; cobra would
		// otherwise print help and exit 0.
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.CompletionOptions.DisableDefaultCmd = true
	// --version prints what 'hubctl version' prints first.
	cmd.SetVersionTemplate(fmt.Sprintf("hubctl %s (commit %s, built %s)\n", f.Build.Version, f.Build.Commit, f.Build.Date))
	cmd.Flags().BoolP("version", "", false, "Print the version of hubctl")
	cmd.PersistentFlags().BoolVarP(&f.Debug, "debug", "v", false, "Show debug details: an HTTP trace (secrets redacted), debug-level logs and full error chains")
	cmd.PersistentFlags().StringVar(&f.ConfigFile, "config", "", "Configuration `file` (YAML); default $HUBCTL_CONFIG")
	_ = cmd.MarkPersistentFlagFilename("config", "yaml", "yml")
	cmd.PersistentFlags().StringArrayVar(&f.CAFiles, "ca-file", nil, "Trust the CA certificates in this PEM `file` for every registry (repeatable; default $HUBCTL_CA_FILE); per registry: ~/.config/hubctl/certs.d/HOST:PORT/ca.crt")
	_ = cmd.MarkPersistentFlagFilename("ca-file", "pem", "crt")
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{err: err, cmd: c}
	})

	// Groups as gh and kubectl show them: what a developer runs daily first, the
	// host's commands last.
	groups := []struct {
		id, title string
		cmds      []*cobra.Command
	}{
		{"images", "Building, moving and inspecting images:", []*cobra.Command{
			NewCmdBuild(f, nil), NewCmdPush(f, nil), NewCmdPull(f, nil), NewCmdCopy(f, nil), NewCmdMirror(f, nil),
			NewCmdInspect(f), NewCmdDigest(f), NewCmdTags(f), NewCmdLs(f), NewCmdTag(f), NewCmdRm(f),
		}},
		{"artifacts", "Charts and other artifacts:", []*cobra.Command{
			NewCmdChart(f), NewCmdArtifact(f),
		}},
		{"workflows", "Workflows:", []*cobra.Command{
			NewCmdWorkflow(f),
		}},
		{"deploy", "Deploying:", []*cobra.Command{
			NewCmdDeploy(f), NewCmdProxy(f),
		}},
		{"access", "Logins and access tokens:", []*cobra.Command{
			NewCmdLogin(f, nil), NewCmdLogout(f, nil), NewCmdToken(f), NewCmdSession(f), NewCmdDoctor(f, nil),
		}},
		{"admin", "Administering a hub (its API):", []*cobra.Command{
			NewCmdUser(f), NewCmdOrg(f), NewCmdTeam(f), NewCmdRobot(f), NewCmdRepo(f), NewCmdQuota(f), NewCmdAudit(f, nil), NewCmdSearch(f, nil), NewCmdEvents(f), NewCmdWebhook(f),
		}},
		{"server", "Running a hub (on its host):", []*cobra.Command{
			NewCmdServe(f, nil), NewCmdAdmin(f), NewCmdGC(f, nil), NewCmdKeys(f, nil),
		}},
	}
	for _, g := range groups {
		cmd.AddGroup(&cobra.Group{ID: g.id, Title: g.title})
		for _, c := range g.cmds {
			c.GroupID = g.id
			cmd.AddCommand(c)
		}
	}
	cmd.AddCommand(NewCmdVersion(f, nil), NewCmdCompletion(f), NewCmdWorkflowAgent(f))
	forEachCommand(cmd, completeFlagValues)
	return cmd
}

// forEachCommand calls fn on cmd and every command below it.
func forEachCommand(cmd *cobra.Command, fn func(*cobra.Command)) {
	fn(cmd)
	for _, c := range cmd.Commands() {
		forEachCommand(c, fn)
	}
}

// Execute runs the command line args (without the program name) and returns the process
// exit code. Errors are printed as one line, "hubctl: <error>", on stderr.
func Execute(ctx context.Context, f *Factory, args []string) int {
	root := NewCmdRoot(f)
	root.SetArgs(args)
	root.SetIn(f.IOStreams.In)
	root.SetOut(f.IOStreams.Out)
	root.SetErr(f.IOStreams.ErrOut)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	msg := err.Error()
	if !f.Debug {
		msg = errorLine(err)
	}
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		msg += fmt.Sprintf(" (see '%s --help')", ue.cmd.CommandPath())
	case strings.HasPrefix(msg, "unknown command "):
		// cobra reports unknown subcommands as plain errors from the nearest parent.
		msg = strings.TrimSuffix(msg, "\n") + fmt.Sprintf(" (see '%s --help')", cmd.CommandPath())
	}
	fmt.Fprintf(f.IOStreams.ErrOut, "hubctl: %s\n", oneLine(msg))
	if f.Debug {
		for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
			fmt.Fprintf(f.IOStreams.ErrOut, "  caused by (%T): %s\n", e, oneLine(e.Error()))
		}
	}
	return 1
}

// oneLine keeps the error to a single line so scripts can rely on the format.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

// usageError is a mistake in how a command was invoked (bad flag, wrong arguments);
// the message points at the command's --help.
type usageError struct {
	err error
	cmd *cobra.Command
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usageErrorf returns a usageError for cmd.
func usageErrorf(cmd *cobra.Command, format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...), cmd: cmd}
}

// checkArgs wraps a cobra argument validator so its errors are usage errors.
func checkArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return &usageError{err: err, cmd: cmd}
		}
		return nil
	}
}

// unknownCommand rejects arguments to a command that only groups subcommands, with
// cobra's suggestion folded into the one error line.
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return &usageError{err: errors.New(msg), cmd: cmd}
}
