package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/password"
	"github.com/hubctl/hubctl/internal/config"
	"github.com/hubctl/hubctl/internal/hubapi"
	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/internal/server"
)

// NewCmdAdmin returns `hubctl admin`, the account repairs done on the server host
// itself, without the hub API (and so without a login).
func NewCmdAdmin(f *Factory) *cobra.Command {
	return groupCommand("admin", "Repair accounts on the server host (no login needed)",
		`Change accounts directly in the hub's database, on the host that runs 'hubctl serve',
with the configuration serve reads (--config, HUBCTL_* variables, --data, --db). For
when nobody can log in any more, e.g. the admin password is lost.`,
		NewCmdAdminResetPassword(f, nil), NewCmdAdminSecrets(f, nil))
}

// ResetPasswordOptions are the inputs of `hubctl admin reset-password`, after the
// configuration was merged.
type ResetPasswordOptions struct {
	IO     *iostreams.IOStreams
	Config config.Config
	// User is the account; default admin.
	User string
}

// NewCmdAdminResetPassword returns `hubctl admin reset-password`. runF receives the
// merged options instead of changing the database.
func NewCmdAdminResetPassword(f *Factory, runF func(*ResetPasswordOptions) error) *cobra.Command {
	opts := &ResetPasswordOptions{}
	var host *hostConfig
	cmd := &cobra.Command{
		Use:   "reset-password [USER]",
		Short: "Set a user's password in the hub's database (default user: admin)",
		Long: `Set the password of USER (default admin) directly in the database of a hub, on its
host, whether or not it is serving. It opens the database 'hubctl serve' would with the
same configuration (--config, HUBCTL_* variables, --data, --db), so it works for SQLite
and PostgreSQL alike.

The new password is read from stdin (one line), or prompted for twice on a terminal.
HUBCTL_ADMIN_PASSWORD only sets the admin password at the very first start; this is the
way to change it afterwards without a login. Existing logins keep their registry tokens
until these expire (minutes).`,
		Example: `  echo "$NEW_PASSWORD" | hubctl admin reset-password --data ./hubctl-data
  hubctl admin reset-password alice --config /etc/hubctl.yaml`,
		Args: checkArgs(cobra.MaximumNArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			cfg, err := host.load(c)
			if err != nil {
				return err
			}
			opts.IO, opts.Config, opts.User = f.IOStreams, cfg, server.AdminUser
			if len(args) == 1 {
				opts.User = args[0]
			}
			if runF != nil {
				return runF(opts)
			}
			return resetPasswordRun(c.Context(), opts)
		},
	}
	host = bindHostConfig(f, cmd, nil)
	return cmd
}

func resetPasswordRun(ctx context.Context, opts *ResetPasswordOptions) error {
	pw, err := readResetPassword(opts.IO)
	if err != nil {
		return err
	}
	if len(pw) < hubapi.MinPasswordLength {
		return fmt.Errorf("the password must be at least %d characters", hubapi.MinPasswordLength)
	}
	db, err := server.OpenDatabase(ctx, opts.Config)
	if err != nil {
		return err
	}
	defer db.Close()
	u, err := db.GetUser(ctx, opts.User)
	if errors.Is(err, accounts.ErrNotFound) {
		return fmt.Errorf("no user %s in this hub's database", opts.User)
	}
	if err != nil {
		return err
	}
	if u.Robot {
		return fmt.Errorf("%s is a robot account: robots have no password, only access tokens", u.Name)
	}
	if u.PasswordHash, err = password.Hash(pw); err != nil {
		return err
	}
	// Audited in the change's transaction: no reset without its entry.
	audit := accounts.WithAudit(ctx, accounts.AuditEntry{Time: time.Now(), Actor: "system", Action: "password.reset",
		Target: u.Name, Detail: "hubctl admin reset-password on the host"})
	if err := db.UpdateUser(audit, u); err != nil {
		return fmt.Errorf("set the password of %s: %w", u.Name, err)
	}
	fmt.Fprintf(opts.IO.ErrOut, "Password of %s reset\n", u.Name)
	if u.Disabled {
		fmt.Fprintf(opts.IO.ErrOut, "Note: %s is disabled and cannot log in until an administrator enables the account\n", u.Name)
	}
	return nil
}

// readResetPassword reads the new password: prompted twice on a terminal, else one
// line of stdin.
func readResetPassword(ios *iostreams.IOStreams) (string, error) {
	if ios.IsStdinTTY() {
		return promptNew(ios)
	}
	lines, err := stdinLines(ios, 1)
	if err != nil {
		return "", errors.New("reset-password reads the new password from stdin: want it on one line")
	}
	return lines[0], nil
}
