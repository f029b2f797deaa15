package commands

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hubctl/hubctl/internal/hubclient"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/spf13/cobra"
)

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

// RemoveOptions are the inputs of `hubctl user rm` and `hubctl org rm`.
type RemoveOptions struct {
	Hub  HubOptions
	Name string
	// Purge deletes the repositories of the namespace too; without it a namespace
	// holding repositories is refused.
	Purge bool
}

// NewCmdUserRemove returns `hubctl user rm`.
func NewCmdUserRemove(f *Factory, runF func(*RemoveOptions) error) *cobra.Command {
	return removeCommand(f, runF, &cobra.Command{
		Use: "rm NAME", Aliases: []string{"remove"}, Short: "Remove an account (site admins)",
		Long: `Remove an account with its team memberships, access tokens and sessions. An account
whose namespace still holds repositories is refused unless --purge, which deletes those
repositories too (their blobs go at the next garbage collection): a deleted name's
repositories are never left for whoever registers the name next.`,
		Example: `  hubctl user rm carol
  hubctl user rm carol --purge    # and the repositories under carol/`,
	}, "user", (*hubclient.Client).DeleteUser)
}

// removeCommand builds `user rm` and `org rm`.
func removeCommand(f *Factory, runF func(*RemoveOptions) error, cmd *cobra.Command, what string,
	del func(c *hubclient.Client, ctx context.Context, name string, purge bool) (int, error)) *cobra.Command {
	opts := &RemoveOptions{}
	cmd.Args = checkArgs(cobra.ExactArgs(1))
	hubCommand(f, cmd, &opts.Hub, func(args []string) error { opts.Name = args[0]; return nil }, hubRun(&opts.Hub, opts, runF, func(c *hubclient.Client) error {
		n, err := del(c, cmd.Context(), opts.Name, opts.Purge)
		var he *hubclient.Error
		if errors.As(err, &he) && he.Status == http.StatusConflict && !opts.Purge {
			return fmt.Errorf("remove %s %s: %w (add --purge to delete them with it)", what, opts.Name, err)
		} else if err != nil {
			return fmt.Errorf("remove %s %s: %w", what, opts.Name, err)
		}
		if opts.Purge {
			return opts.Hub.done(map[string]any{"name": opts.Name, "purged_repositories": n}, "Removed %s %s and %d repositories", what, opts.Name, n)
		}
		return opts.Hub.done(nil, "Removed %s %s", what, opts.Name)
	}))
	cmd.Flags().BoolVar(&opts.Purge, "purge", false, "Also delete the repositories in the namespace")
	return cmd
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
