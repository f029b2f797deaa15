package commands

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/hubctl/hubctl/internal/hubclient"
)

// NewCmdSession returns `hubctl session`.
func NewCmdSession(f *Factory) *cobra.Command {
	return groupCommand("session", "List and end your sign-ins on a hubctl registry",
		`List and end the sessions a sign-in leaves on a registry run by 'hubctl serve': the
refresh sessions that 'docker login' and 'hubctl login' keep as their identity token
(valid for 30 days unless ended). Changing or resetting a password, disabling an account
and 'hubctl session revoke --all' end every session of the account at once, and the
registry tokens issued before stop working in the hub API. A site administrator may
manage anyone's sessions with --user.`,
		NewCmdSessionList(f, nil), NewCmdSessionRevoke(f, nil))
}

// SessionOptions are the inputs of the session verbs.
type SessionOptions struct {
	Hub HubOptions
	// User is the account; "" is the signed-in user.
	User string
	// ID is the session to end (revoke); 0 with All.
	ID  int64
	All bool
}

// sessionUser returns the account the options name, asking the hub who is signed in
// when they name none.
func sessionUser(ctx context.Context, c *hubclient.Client, o *SessionOptions) (string, error) {
	if o.User != "" {
		return o.User, nil
	}
	me, err := c.Whoami(ctx)
	if err != nil {
		return "", err
	}
	return me.Name, nil
}

// NewCmdSessionList returns `hubctl session ls`.
func NewCmdSessionList(f *Factory, runF func(*SessionOptions) error) *cobra.Command {
	opts := &SessionOptions{}
	cmd := &cobra.Command{Use: "ls", Aliases: []string{"list"}, Short: "List sessions, ended ones included", Args: checkArgs(cobra.NoArgs)}
	hubCommand(f, cmd, &opts.Hub, nil, hubRun(&opts.Hub, opts, runF, func(c *hubclient.Client) error {
		ctx := cmd.Context()
		user, err := sessionUser(ctx, c, opts)
		if err != nil {
			return fmt.Errorf("list sessions: %w", err)
		}
		list, err := c.ListSessions(ctx, user)
		if err != nil {
			return fmt.Errorf("list sessions of %s: %w", user, err)
		}
		return opts.Hub.print(list, []string{"ID", "KIND", "CREATED", "LAST USED", "EXPIRES", "ACTIVE", "FROM", "CLIENT"}, func(row func(...string)) {
			for _, s := range list {
				row(strconv.FormatInt(s.ID, 10), s.Kind, s.CreatedAt, orDash(s.LastUsedAt, "-"), s.ExpiresAt, yesNo(s.Active),
					orDash(s.Remote, "-"), orDash(s.Client, "-"))
			}
		})
	}))
	cmd.Flags().StringVar(&opts.User, "user", "", "Whose sessions (site admins); default: yours")
	return cmd
}

// NewCmdSessionRevoke returns `hubctl session revoke`.
func NewCmdSessionRevoke(f *Factory, runF func(*SessionOptions) error) *cobra.Command {
	opts := &SessionOptions{}
	cmd := &cobra.Command{
		Use:   "revoke ID | --all",
		Short: "End a session, or all of them (sign out everywhere)",
		Long: `End one session (its ID from 'hubctl session ls'), or with --all every session of the
account: "sign out everywhere". --all also makes the registry tokens issued before it
unusable for the hub API; at the registry they live out their few minutes.`,
		Example: `  hubctl session revoke 12
  hubctl session revoke --all
  hubctl session revoke --all --user bob    # a site admin, for bob`,
		Args: checkArgs(cobra.MaximumNArgs(1)),
	}
	hubCommand(f, cmd, &opts.Hub, func(args []string) error {
		switch {
		case opts.All && len(args) == 1:
			return fmt.Errorf("give a session ID or --all, not both")
		case !opts.All && len(args) == 0:
			return fmt.Errorf("give a session ID (see 'hubctl session ls') or --all")
		case len(args) == 1:
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return fmt.Errorf("session ID %q: want a positive number from 'hubctl session ls'", args[0])
			}
			opts.ID = id
		}
		return nil
	}, hubRun(&opts.Hub, opts, runF, func(c *hubclient.Client) error {
		ctx := cmd.Context()
		user, err := sessionUser(ctx, c, opts)
		if err != nil {
			return fmt.Errorf("revoke sessions: %w", err)
		}
		if opts.All {
			if err := c.EndSessions(ctx, user); err != nil {
				return fmt.Errorf("end the sessions of %s: %w", user, err)
			}
			return opts.Hub.done(nil, "Every session of %s ended", user)
		}
		if err := c.RevokeSession(ctx, user, opts.ID); err != nil {
			return fmt.Errorf("revoke session %d of %s: %w", opts.ID, user, err)
		}
		return opts.Hub.done(nil, "Session %d of %s ended", opts.ID, user)
	}))
	cmd.Flags().BoolVar(&opts.All, "all", false, "End every session (sign out everywhere)")
	cmd.Flags().StringVar(&opts.User, "user", "", "Whose sessions (site admins); default: yours")
	return cmd
}
