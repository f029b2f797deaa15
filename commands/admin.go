package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/hubctl/hubctl/internal/credentials"
	"github.com/hubctl/hubctl/internal/hubclient"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/spf13/cobra"
)

// This file holds the administration commands of a hubctl registry (user, org, team,
// repo, robot, audit) and the connection flags they share with `hubctl token`.

// HubOptions are the flags every hub API command takes.
type HubOptions struct {
	IO *iostreams.IOStreams
	// Registry is the registry host; --registry, else $HUBCTL_REGISTRY.
	Registry string
	// Insecure talks plain HTTP to a non-loopback host.
	Insecure bool
	// Output is "" (human table) or "json".
	Output string
	// ConfigDir is docker's configuration directory ($DOCKER_CONFIG), where `hubctl
	// login` stored the credentials.
	ConfigDir string
}

// hubCommand binds the hub flags to cmd and sets its RunE: complete the shared
// options, let parse check the arguments and command flags, then run.
func hubCommand(f *Factory, cmd *cobra.Command, o *HubOptions, parse func(args []string) error, run func() error) {
	fl := cmd.Flags()
	fl.StringVar(&o.Registry, "registry", "", "Registry `host` to administer (default $HUBCTL_REGISTRY)")
	fl.BoolVar(&o.Insecure, "insecure", false, "Talk plain HTTP to the registry (loopback hosts always do)")
	fl.StringVarP(&o.Output, "output", "o", "", "Output `format`: json (default human-readable)")
	cmd.ValidArgsFunction = cobra.NoFileCompletions
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if o.Output != "" && o.Output != "json" {
			return usageErrorf(cmd, "invalid --output %q: want json", o.Output)
		}
		if o.Registry == "" {
			o.Registry, _ = f.LookupEnv("HUBCTL_REGISTRY")
		}
		if o.Registry == "" {
			return usageErrorf(cmd, "--registry is required (or set HUBCTL_REGISTRY)")
		}
		o.IO = f.IOStreams
		o.ConfigDir, _ = f.LookupEnv("DOCKER_CONFIG")
		if parse != nil {
			if err := parse(args); err != nil {
				return err
			}
		}
		return run()
	}
}

// client returns the API client for the registry, with the stored login.
func (o *HubOptions) client() (*hubclient.Client, error) {
	store, err := credentials.Load(o.ConfigDir)
	if err != nil {
		return nil, err
	}
	return hubclient.New(hubclient.Options{Host: o.Registry, Insecure: o.Insecure, Credentials: store})
}

// print writes v as JSON with -o json, else as a table with header whose rows the
// rows function emits.
func (o *HubOptions) print(v any, header []string, rows func(row func(cells ...string))) error {
	if o.Output == "json" {
		return printJSON(o.IO.Out, v)
	}
	tw := tabwriter.NewWriter(o.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	rows(func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")) })
	return tw.Flush()
}

// printJSON writes v indented, as `version -o json` does.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// done reports a mutation: the object as JSON with -o json, else a line on stderr, so
// stdout stays empty for scripts that only check the exit code.
func (o *HubOptions) done(v any, format string, args ...any) error {
	if o.Output == "json" && v != nil {
		return printJSON(o.IO.Out, v)
	}
	_, err := fmt.Fprintf(o.IO.ErrOut, format+"\n", args...)
	return err
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// groupCommand returns a command that only holds subcommands.
func groupCommand(use, short, long string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  unknownCommand,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(subs...)
	return cmd
}

// simpleCommand builds a hub command whose options are its positional arguments.
// It keeps the many small administration verbs to one declaration each while
// preserving the runF seam: runF receives the parsed options instead of running.
func simpleCommand(f *Factory, cmd *cobra.Command, opts *AdminOptions, runF func(*AdminOptions) error,
	run func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error) *cobra.Command {
	hubCommand(f, cmd, &opts.Hub, func(args []string) error { opts.Args = args; return nil }, func() error {
		if runF != nil {
			return runF(opts)
		}
		c, err := opts.Hub.client()
		if err != nil {
			return err
		}
		return run(cmd.Context(), c, opts)
	})
	return cmd
}

// AdminOptions are the inputs of the administration verbs that take only positional
// arguments (and the hub flags).
type AdminOptions struct {
	Hub  HubOptions
	Args []string
}

// ---- user ----

// NewCmdUser returns `hubctl user`.
func NewCmdUser(f *Factory) *cobra.Command {
	return groupCommand("user", "Manage the accounts of a hubctl registry",
		`Create, list and remove accounts and change passwords on a registry run by 'hubctl
serve'. Creating, listing and removing accounts needs a site administrator; anyone may
change their own password.`,
		NewCmdUserCreate(f, nil), NewCmdUserList(f, nil), NewCmdUserRemove(f, nil), NewCmdUserPasswd(f, nil))
}

// UserCreateOptions are the inputs of `hubctl user create`.
type UserCreateOptions struct {
	Hub           HubOptions
	Name          string
	Email         string
	Admin         bool
	PasswordStdin bool
}

// NewCmdUserCreate returns `hubctl user create`.
func NewCmdUserCreate(f *Factory, runF func(*UserCreateOptions) error) *cobra.Command {
	opts := &UserCreateOptions{}
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an account",
		Long: `Create an account with a password (at least 8 characters), read from stdin with
--password-stdin or prompted for, hidden, on a terminal.`,
		Example: `  hubctl user create carol --email carol@example.com --registry hub.example.com
  echo "$PASSWORD" | hubctl user create ci-admin --admin --password-stdin`,
		Args: checkArgs(cobra.ExactArgs(1)),
	}
	hubCommand(f, cmd, &opts.Hub, func(args []string) error { opts.Name = args[0]; return nil }, func() error {
		if runF != nil {
			return runF(opts)
		}
		return userCreateRun(cmd.Context(), opts)
	})
	cmd.Flags().StringVar(&opts.Email, "email", "", "E-mail `address`")
	cmd.Flags().BoolVar(&opts.Admin, "admin", false, "Make the user a site administrator")
	cmd.Flags().BoolVar(&opts.PasswordStdin, "password-stdin", false, "Read the password from stdin")
	return cmd
}

func userCreateRun(ctx context.Context, opts *UserCreateOptions) error {
	pw, err := readNewPassword(opts.Hub.IO, opts.PasswordStdin)
	if err != nil {
		return err
	}
	c, err := opts.Hub.client()
	if err != nil {
		return err
	}
	u, err := c.CreateUser(ctx, hubtypes.CreateUserRequest{Name: opts.Name, Email: opts.Email, Password: pw, Admin: opts.Admin})
	if err != nil {
		return fmt.Errorf("create user %s: %w", opts.Name, err)
	}
	return opts.Hub.done(u, "User %s created", u.Name)
}

// NewCmdUserList returns `hubctl user ls`.
func NewCmdUserList(f *Factory, runF func(*AdminOptions) error) *cobra.Command {
	cmd := &cobra.Command{Use: "ls", Aliases: []string{"list"}, Short: "List accounts (site admins)", Args: checkArgs(cobra.NoArgs)}
	return simpleCommand(f, cmd, &AdminOptions{}, runF, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		users, err := c.ListUsers(ctx)
		if err != nil {
			return fmt.Errorf("list users: %w", err)
		}
		return o.Hub.print(users, []string{"NAME", "EMAIL", "ADMIN", "ROBOT", "DISABLED"}, func(row func(...string)) {
			for _, u := range users {
				row(u.Name, orDash(u.Email, "-"), yesNo(u.Admin), yesNo(u.Robot), yesNo(u.Disabled))
			}
		})
	})
}

// NewCmdUserRemove returns `hubctl user rm`.
func NewCmdUserRemove(f *Factory, runF func(*AdminOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use: "rm NAME", Aliases: []string{"remove"}, Short: "Remove an account (site admins)",
		Long: "Remove an account with its team memberships and access tokens. Its repositories stay.",
		Args: checkArgs(cobra.ExactArgs(1)),
	}
	return simpleCommand(f, cmd, &AdminOptions{}, runF, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		if err := c.DeleteUser(ctx, o.Args[0]); err != nil {
			return fmt.Errorf("remove user %s: %w", o.Args[0], err)
		}
		return o.Hub.done(nil, "User %s removed", o.Args[0])
	})
}

// UserPasswdOptions are the inputs of `hubctl user passwd`.
type UserPasswdOptions struct {
	Hub HubOptions
	// Name is the account; "" is the signed-in user.
	Name          string
	PasswordStdin bool
}

// NewCmdUserPasswd returns `hubctl user passwd`.
func NewCmdUserPasswd(f *Factory, runF func(*UserPasswdOptions) error) *cobra.Command {
	opts := &UserPasswdOptions{}
	cmd := &cobra.Command{
		Use:   "passwd [NAME]",
		Short: "Change a password",
		Long: `Change your own password (without NAME), or, as a site administrator, another
user's. Changing your own password needs the current one.

On a terminal the passwords are prompted for, hidden. With --password-stdin, stdin holds
the new password; for your own account, the current password on the first line and the
new one on the second.`,
		Example: `  hubctl user passwd --registry hub.example.com
  printf '%s\n' "$NEW" | hubctl user passwd carol --password-stdin`,
		Args: checkArgs(cobra.MaximumNArgs(1)),
	}
	hubCommand(f, cmd, &opts.Hub, func(args []string) error {
		if len(args) == 1 {
			opts.Name = args[0]
		}
		return nil
	}, func() error {
		if runF != nil {
			return runF(opts)
		}
		return userPasswdRun(cmd.Context(), opts)
	})
	cmd.Flags().BoolVar(&opts.PasswordStdin, "password-stdin", false, "Read the password(s) from stdin")
	return cmd
}

func userPasswdRun(ctx context.Context, opts *UserPasswdOptions) error {
	c, err := opts.Hub.client()
	if err != nil {
		return err
	}
	me, err := c.Whoami(ctx)
	if err != nil {
		return err
	}
	name := opts.Name
	if name == "" {
		name = me.Name
	}
	ios := opts.Hub.IO
	var change hubtypes.UpdateUserRequest
	if name == me.Name {
		cur, pw, err := readPasswordChange(ios, opts.PasswordStdin)
		if err != nil {
			return err
		}
		change.CurrentPassword, change.Password = &cur, &pw
	} else {
		pw, err := readNewPassword(ios, opts.PasswordStdin)
		if err != nil {
			return err
		}
		change.Password = &pw
	}
	if _, err := c.UpdateUser(ctx, name, change); err != nil {
		return fmt.Errorf("change password of %s: %w", name, err)
	}
	fmt.Fprintf(ios.ErrOut, "Password of %s changed\n", name)
	if name == me.Name {
		fmt.Fprintf(ios.ErrOut, "Log in again if your stored login used the old password: hubctl login %s\n", opts.Hub.Registry)
	}
	return nil
}

// readNewPassword reads a new password from stdin (--password-stdin) or, on a
// terminal, from a hidden prompt typed twice.
func readNewPassword(ios *iostreams.IOStreams, fromStdin bool) (string, error) {
	if fromStdin {
		lines, err := stdinLines(ios, 1)
		if err != nil {
			return "", err
		}
		return lines[0], nil
	}
	if !ios.IsStdinTTY() {
		return "", errors.New("cannot prompt for a password: stdin is not a terminal; use --password-stdin")
	}
	return promptNew(ios)
}

// readPasswordChange reads the current and the new password of the signed-in user.
func readPasswordChange(ios *iostreams.IOStreams, fromStdin bool) (current, next string, err error) {
	if fromStdin {
		lines, err := stdinLines(ios, 2)
		if err != nil {
			return "", "", err
		}
		return lines[0], lines[1], nil
	}
	if !ios.IsStdinTTY() {
		return "", "", errors.New("cannot prompt for passwords: stdin is not a terminal; use --password-stdin (current and new password on two lines)")
	}
	if current, err = prompt(ios, "Current password: "); err != nil {
		return "", "", err
	}
	next, err = promptNew(ios)
	return current, next, err
}

func promptNew(ios *iostreams.IOStreams) (string, error) {
	pw, err := prompt(ios, "New password: ")
	if err != nil {
		return "", err
	}
	again, err := prompt(ios, "Retype new password: ")
	if err != nil {
		return "", err
	}
	if pw != again {
		return "", errors.New("the passwords do not match")
	}
	return pw, nil
}

func prompt(ios *iostreams.IOStreams, label string) (string, error) {
	fmt.Fprint(ios.ErrOut, label)
	s, err := readSecret(ios.In)
	fmt.Fprintln(ios.ErrOut)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if s == "" {
		return "", errors.New("empty password")
	}
	return s, nil
}

// stdinLines reads n non-empty lines from stdin, the last of which may lack its newline.
func stdinLines(ios *iostreams.IOStreams, n int) ([]string, error) {
	b, err := readAll(ios.In)
	if err != nil {
		return nil, fmt.Errorf("read password from stdin: %w", err)
	}
	lines := strings.Split(strings.TrimSuffix(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n"), "\n")
	if len(lines) != n || slicesContainsEmpty(lines) {
		if n == 1 {
			return nil, errors.New("--password-stdin: want the password on one line")
		}
		return nil, fmt.Errorf("--password-stdin: want %d non-empty lines (current password, then the new one)", n)
	}
	return lines, nil
}

func slicesContainsEmpty(ss []string) bool {
	for _, s := range ss {
		if s == "" {
			return true
		}
	}
	return false
}

// ---- org ----

// NewCmdOrg returns `hubctl org`.
func NewCmdOrg(f *Factory) *cobra.Command {
	return groupCommand("org", "Manage the organisations of a hubctl registry",
		`Create, list and remove organisations: namespaces whose repositories belong to teams
rather than to one user. Any user may create one and becomes its owner (a member of its
"owners" team, admin of the whole organisation).`,
		NewCmdOrgCreate(f, nil), NewCmdOrgList(f, nil), NewCmdOrgRemove(f, nil), NewCmdOrgSetVisibility(f, nil))
}

// OrgCreateOptions are the inputs of `hubctl org create`.
type OrgCreateOptions struct {
	Hub        HubOptions
	Name       string
	Visibility string
}

// NewCmdOrgCreate returns `hubctl org create`.
func NewCmdOrgCreate(f *Factory, runF func(*OrgCreateOptions) error) *cobra.Command {
	opts := &OrgCreateOptions{}
	cmd := &cobra.Command{
		Use:     "create NAME",
		Short:   "Create an organisation owned by you",
		Example: `  hubctl org create team --registry hub.example.com`,
		Args:    checkArgs(cobra.ExactArgs(1)),
	}
	hubCommand(f, cmd, &opts.Hub, func(args []string) error {
		opts.Name = args[0]
		if opts.Visibility != "" {
			return checkVisibility(cmd, opts.Visibility)
		}
		return nil
	}, func() error {
		if runF != nil {
			return runF(opts)
		}
		c, err := opts.Hub.client()
		if err != nil {
			return err
		}
		org, err := c.CreateOrg(cmd.Context(), opts.Name, opts.Visibility)
		if err != nil {
			return fmt.Errorf("create organisation %s: %w", opts.Name, err)
		}
		return opts.Hub.done(org, "Organisation %s created", org.Name)
	})
	cmd.Flags().StringVar(&opts.Visibility, "visibility", "", "Default `visibility` of new repositories: public or private (default private)")
	_ = cmd.RegisterFlagCompletionFunc("visibility", cobra.FixedCompletions([]string{"public", "private"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func checkVisibility(cmd *cobra.Command, v string) error {
	if v != "public" && v != "private" {
		return usageErrorf(cmd, "invalid visibility %q: want public or private", v)
	}
	return nil
}

// NewCmdOrgList returns `hubctl org ls`.
func NewCmdOrgList(f *Factory, runF func(*AdminOptions) error) *cobra.Command {
	cmd := &cobra.Command{Use: "ls", Aliases: []string{"list"}, Short: "List organisations", Args: checkArgs(cobra.NoArgs)}
	return simpleCommand(f, cmd, &AdminOptions{}, runF, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		orgs, err := c.ListOrgs(ctx)
		if err != nil {
			return fmt.Errorf("list organisations: %w", err)
		}
		return o.Hub.print(orgs, []string{"NAME", "DEFAULT VISIBILITY"}, func(row func(...string)) {
			for _, org := range orgs {
				row(org.Name, org.DefaultVisibility)
			}
		})
	})
}

// NewCmdOrgRemove returns `hubctl org rm`.
func NewCmdOrgRemove(f *Factory, runF func(*AdminOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use: "rm ORG", Aliases: []string{"remove"}, Short: "Remove an organisation (org admins)",
		Long: "Remove an organisation with its teams, grants and robots. Its repositories stay.",
		Args: checkArgs(cobra.ExactArgs(1)),
	}
	return simpleCommand(f, cmd, &AdminOptions{}, runF, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		if err := c.DeleteOrg(ctx, o.Args[0]); err != nil {
			return fmt.Errorf("remove organisation %s: %w", o.Args[0], err)
		}
		return o.Hub.done(nil, "Organisation %s removed", o.Args[0])
	})
}

// NewCmdOrgSetVisibility returns `hubctl org set-visibility`.
func NewCmdOrgSetVisibility(f *Factory, runF func(*AdminOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "set-visibility ORG public|private",
		Short: "Set the default visibility of new repositories in an organisation",
		Long:  "Set the visibility that repositories created by a push into ORG get. Existing repositories keep theirs.",
		Args:  checkArgs(cobra.ExactArgs(2)),
	}
	opts := &AdminOptions{}
	simpleCommand(f, cmd, opts, runF, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		org, err := c.SetOrgVisibility(ctx, o.Args[0], o.Args[1])
		if err != nil {
			return fmt.Errorf("set visibility of %s: %w", o.Args[0], err)
		}
		return o.Hub.done(org, "New repositories in %s are now %s", org.Name, org.DefaultVisibility)
	})
	withVisibilityArg(cmd, 1)
	return cmd
}

// withVisibilityArg checks that positional argument i is a visibility before the
// command runs, so a typo is a usage error rather than a server round trip.
func withVisibilityArg(cmd *cobra.Command, i int) {
	args := cmd.Args
	cmd.Args = func(cmd *cobra.Command, a []string) error {
		if err := args(cmd, a); err != nil {
			return err
		}
		return checkVisibility(cmd, a[i])
	}
	cmd.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) == i {
			return []string{"public", "private"}, cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}

// ---- team ----

// NewCmdTeam returns `hubctl team`.
func NewCmdTeam(f *Factory) *cobra.Command {
	return groupCommand("team", "Manage the teams of an organisation",
		`Create and remove teams, add and remove members, and grant a team a role on the whole
organisation or on one repository: read (pull), write (pull, push) or admin (also delete
and settings). Needs admin rights on the organisation.`,
		NewCmdTeamCreate(f, nil), NewCmdTeamList(f, nil), NewCmdTeamRemove(f, nil),
		NewCmdTeamAddMember(f, nil), NewCmdTeamRemoveMember(f, nil), NewCmdTeamGrant(f, nil))
}

// TeamCreateOptions are the inputs of `hubctl team create`.
type TeamCreateOptions struct {
	Hub         HubOptions
	Org, Team   string
	Description string
}

// NewCmdTeamCreate returns `hubctl team create`.
func NewCmdTeamCreate(f *Factory, runF func(*TeamCreateOptions) error) *cobra.Command {
	opts := &TeamCreateOptions{}
	cmd := &cobra.Command{
		Use:     "create ORG TEAM",
		Short:   "Create a team",
		Example: `  hubctl team create team devs --description "Developers"`,
		Args:    checkArgs(cobra.ExactArgs(2)),
	}
	hubCommand(f, cmd, &opts.Hub, func(args []string) error { opts.Org, opts.Team = args[0], args[1]; return nil }, func() error {
		if runF != nil {
			return runF(opts)
		}
		c, err := opts.Hub.client()
		if err != nil {
			return err
		}
		t, err := c.CreateTeam(cmd.Context(), opts.Org, opts.Team, opts.Description)
		if err != nil {
			return fmt.Errorf("create team %s/%s: %w", opts.Org, opts.Team, err)
		}
		return opts.Hub.done(t, "Team %s/%s created", t.Org, t.Name)
	})
	cmd.Flags().StringVar(&opts.Description, "description", "", "What the team is for")
	return cmd
}

// NewCmdTeamList returns `hubctl team ls`.
func NewCmdTeamList(f *Factory, runF func(*AdminOptions) error) *cobra.Command {
	cmd := &cobra.Command{Use: "ls ORG", Aliases: []string{"list"}, Short: "List the teams of an organisation", Args: checkArgs(cobra.ExactArgs(1))}
	return simpleCommand(f, cmd, &AdminOptions{}, runF, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		teams, err := c.ListTeams(ctx, o.Args[0])
		if err != nil {
			return fmt.Errorf("list teams of %s: %w", o.Args[0], err)
		}
		return o.Hub.print(teams, []string{"NAME", "DESCRIPTION"}, func(row func(...string)) {
			for _, t := range teams {
				row(t.Name, orDash(t.Description, "-"))
			}
		})
	})
}

// NewCmdTeamRemove returns `hubctl team rm`.
func NewCmdTeamRemove(f *Factory, runF func(*AdminOptions) error) *cobra.Command {
	cmd := &cobra.Command{Use: "rm ORG TEAM", Aliases: []string{"remove"}, Short: "Remove a team with its grants", Args: checkArgs(cobra.ExactArgs(2))}
	return simpleCommand(f, cmd, &AdminOptions{}, runF, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		if err := c.DeleteTeam(ctx, o.Args[0], o.Args[1]); err != nil {
			return fmt.Errorf("remove team %s/%s: %w", o.Args[0], o.Args[1], err)
		}
		return o.Hub.done(nil, "Team %s/%s removed", o.Args[0], o.Args[1])
	})
}

// NewCmdTeamAddMember returns `hubctl team add-member`.
func NewCmdTeamAddMember(f *Factory, runF func(*AdminOptions) error) *cobra.Command {
	cmd := &cobra.Command{Use: "add-member ORG TEAM USER", Short: "Add a user to a team", Args: checkArgs(cobra.ExactArgs(3))}
	return simpleCommand(f, cmd, &AdminOptions{}, runF, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		if err := c.AddMember(ctx, o.Args[0], o.Args[1], o.Args[2]); err != nil {
			return fmt.Errorf("add %s to team %s/%s: %w", o.Args[2], o.Args[0], o.Args[1], err)
		}
		return o.Hub.done(nil, "%s added to team %s/%s", o.Args[2], o.Args[0], o.Args[1])
	})
}

// NewCmdTeamRemoveMember returns `hubctl team rm-member`.
func NewCmdTeamRemoveMember(f *Factory, runF func(*AdminOptions) error) *cobra.Command {
	cmd := &cobra.Command{Use: "rm-member ORG TEAM USER", Short: "Remove a user from a team", Args: checkArgs(cobra.ExactArgs(3))}
	return simpleCommand(f, cmd, &AdminOptions{}, runF, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		if err := c.RemoveMember(ctx, o.Args[0], o.Args[1], o.Args[2]); err != nil {
			return fmt.Errorf("remove %s from team %s/%s: %w", o.Args[2], o.Args[0], o.Args[1], err)
		}
		return o.Hub.done(nil, "%s removed from team %s/%s", o.Args[2], o.Args[0], o.Args[1])
	})
}

// TeamGrantOptions are the inputs of `hubctl team grant`.
type TeamGrantOptions struct {
	Hub       HubOptions
	Org, Team string
	// Repository is "" for the whole organisation.
	Repository string
	Role       string
}

// NewCmdTeamGrant returns `hubctl team grant`.
func NewCmdTeamGrant(f *Factory, runF func(*TeamGrantOptions) error) *cobra.Command {
	opts := &TeamGrantOptions{}
	cmd := &cobra.Command{
		Use:   "grant ORG TEAM [REPOSITORY] ROLE",
		Short: "Give a team a role on an organisation or one of its repositories",
		Long: `Give a team a role on the whole organisation (without REPOSITORY) or on one repository
of it (its full name, ORG/…). ROLE is read (pull), write (pull, push), admin (also delete
and settings; on the whole organisation: administer the organisation), or none to take
the grant away.`,
		Example: `  hubctl team grant team devs write
  hubctl team grant team ops team/infra/agent admin
  hubctl team grant team devs team/app none`,
		Args: checkArgs(cobra.RangeArgs(3, 4)),
	}
	hubCommand(f, cmd, &opts.Hub, func(args []string) error {
		opts.Org, opts.Team, opts.Role = args[0], args[1], args[len(args)-1]
		if len(args) == 4 {
			opts.Repository = args[2]
		}
		switch opts.Role {
		case "read", "write", "admin", "none":
		default:
			return usageErrorf(cmd, "invalid role %q: want read, write, admin or none", opts.Role)
		}
		return nil
	}, func() error {
		if runF != nil {
			return runF(opts)
		}
		c, err := opts.Hub.client()
		if err != nil {
			return err
		}
		g := hubtypes.Grant{Repository: opts.Repository, Role: opts.Role}
		on := opts.Repository
		if on == "" {
			on = "organisation " + opts.Org
		}
		if err := c.SetGrant(cmd.Context(), opts.Org, opts.Team, g); err != nil {
			return fmt.Errorf("grant %s on %s to team %s/%s: %w", opts.Role, on, opts.Org, opts.Team, err)
		}
		return opts.Hub.done(g, "Team %s/%s has role %s on %s", opts.Org, opts.Team, opts.Role, on)
	})
	return cmd
}

// ---- repo ----

// NewCmdRepo returns `hubctl repo`.
func NewCmdRepo(f *Factory) *cobra.Command {
	return groupCommand("repo", "Show and change repository settings on a hubctl registry",
		`Show a repository's settings and make it public (anyone may pull, even anonymously)
or private (only those with a role on it). Repositories are private unless their
namespace's default says otherwise.`,
		NewCmdRepoShow(f, nil), NewCmdRepoSetVisibility(f, nil))
}

// NewCmdRepoShow returns `hubctl repo show`.
func NewCmdRepoShow(f *Factory, runF func(*AdminOptions) error) *cobra.Command {
	cmd := &cobra.Command{Use: "show REPOSITORY", Short: "Show a repository's settings", Args: checkArgs(cobra.ExactArgs(1))}
	return simpleCommand(f, cmd, &AdminOptions{}, runF, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		r, err := c.GetRepository(ctx, o.Args[0])
		if err != nil {
			return fmt.Errorf("repository %s: %w", o.Args[0], err)
		}
		return o.Hub.print(r, []string{"NAME", "VISIBILITY"}, func(row func(...string)) { row(r.Name, r.Visibility) })
	})
}

// NewCmdRepoSetVisibility returns `hubctl repo set-visibility`.
func NewCmdRepoSetVisibility(f *Factory, runF func(*AdminOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "set-visibility REPOSITORY public|private",
		Short:   "Make a repository public or private (admin role on it)",
		Example: `  hubctl repo set-visibility team/app public --registry hub.example.com`,
		Args:    checkArgs(cobra.ExactArgs(2)),
	}
	simpleCommand(f, cmd, &AdminOptions{}, runF, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		r, err := c.SetRepositoryVisibility(ctx, o.Args[0], o.Args[1])
		if err != nil {
			return fmt.Errorf("set visibility of %s: %w", o.Args[0], err)
		}
		return o.Hub.done(r, "%s is now %s", r.Name, r.Visibility)
	})
	withVisibilityArg(cmd, 1)
	return cmd
}

// ---- robot ----

// NewCmdRobot returns `hubctl robot`.
func NewCmdRobot(f *Factory) *cobra.Command {
	return groupCommand("robot", "Manage robot accounts of an organisation",
		`Robot accounts are service accounts of an organisation (for CI, deploy agents). They
have no password and sign in only with their access tokens.`,
		NewCmdRobotCreate(f, nil))
}

// RobotCreateOptions are the inputs of `hubctl robot create`.
type RobotCreateOptions struct {
	Hub           HubOptions
	Org, Name     string
	Scopes        []string
	Expires       string
	ExpiresInDays int
}

// NewCmdRobotCreate returns `hubctl robot create`.
func NewCmdRobotCreate(f *Factory, runF func(*RobotCreateOptions) error) *cobra.Command {
	opts := &RobotCreateOptions{}
	cmd := &cobra.Command{
		Use:   "create ORG NAME --scope SCOPE...",
		Short: "Create a robot account with an access token",
		Long: `Create the robot account ORG.NAME and an access token for it, printed on stdout. The
token is shown only once. Needs admin rights on the organisation and a password login
(an access token cannot create robots).`,
		Example: `  hubctl robot create team ci --scope 'repository:team/*:pull,push' --expires 365d`,
		Args:    checkArgs(cobra.ExactArgs(2)),
	}
	hubCommand(f, cmd, &opts.Hub, func(args []string) error {
		opts.Org, opts.Name = args[0], args[1]
		if len(opts.Scopes) == 0 {
			return usageErrorf(cmd, "at least one --scope is required")
		}
		days, err := parseExpiry(opts.Expires)
		if err != nil {
			return usageErrorf(cmd, "%v", err)
		}
		opts.ExpiresInDays = days
		return nil
	}, func() error {
		if runF != nil {
			return runF(opts)
		}
		c, err := opts.Hub.client()
		if err != nil {
			return err
		}
		r, err := c.CreateRobot(cmd.Context(), opts.Org, hubtypes.CreateRobotRequest{Name: opts.Name, Scopes: opts.Scopes, ExpiresInDays: opts.ExpiresInDays})
		if err != nil {
			return fmt.Errorf("create robot %s.%s: %w", opts.Org, opts.Name, err)
		}
		fmt.Fprintf(opts.Hub.IO.ErrOut, "Robot %s created; sign in with: docker login -u %s --password-stdin. Copy the token now: it is shown only once.\n", r.User.Name, r.User.Name)
		if opts.Hub.Output == "json" {
			return printJSON(opts.Hub.IO.Out, r)
		}
		_, err = fmt.Fprintln(opts.Hub.IO.Out, r.Token.Token)
		return err
	})
	cmd.Flags().StringArrayVar(&opts.Scopes, "scope", nil, "Token `scope`, e.g. repository:team/*:pull,push (repeatable)")
	cmd.Flags().StringVar(&opts.Expires, "expires", "never", "Token lifetime in days (`Nd`, e.g. 365d) or never")
	return cmd
}

// ---- audit ----

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
	}, func() error {
		if runF != nil {
			return runF(opts)
		}
		c, err := opts.Hub.client()
		if err != nil {
			return err
		}
		page, err := c.ListAudit(cmd.Context(), hubclient.AuditQuery{Actor: opts.Actor, Action: opts.Action, Before: opts.Before, Limit: opts.Limit})
		if err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
		return opts.Hub.print(page, []string{"ID", "TIME", "ACTOR", "ACTION", "TARGET", "REMOTE", "DETAIL"}, func(row func(...string)) {
			for _, e := range page.Entries {
				row(fmt.Sprint(e.ID), e.Time, e.Actor, e.Action, orDash(e.Target, "-"), orDash(e.Remote, "-"), orDash(e.Detail, "-"))
			}
		})
	})
	cmd.Flags().StringVar(&opts.Actor, "actor", "", "Only entries by this `user`")
	cmd.Flags().StringVar(&opts.Action, "action", "", "Only entries of this `action`, e.g. token.create")
	cmd.Flags().Int64Var(&opts.Before, "before", 0, "Only entries older than this entry `id` (the next page)")
	cmd.Flags().IntVar(&opts.Limit, "limit", 0, "At most `n` entries (default 100, at most 1000)")
	return cmd
}
