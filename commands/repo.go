package commands

import (
	"context"
	"fmt"
	"strings"

	"github.com/hubctl/hubctl/internal/hubclient"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/spf13/cobra"
)

// NewCmdRepo returns `hubctl repo`.
func NewCmdRepo(f *Factory) *cobra.Command {
	return groupCommand("repo", "Show, change and delete repositories on a hubctl registry",
		`Show a repository's settings, make it public (anyone may pull, even anonymously)
or private (only those with a role on it), or delete it whole. Repositories are private
unless their namespace's default says otherwise. A tag's history (who pointed it where,
and when) is listed by 'history', and 'restore' points a tag back at an earlier image.`,
		NewCmdRepoShow(f, nil), NewCmdRepoSetVisibility(f, nil), NewCmdRepoRemove(f, nil), NewCmdRepoPolicy(f),
		NewCmdRepoHistory(f, nil), NewCmdRepoRestore(f, nil))
}

// NewCmdRepoRemove returns `hubctl repo rm`.
func NewCmdRepoRemove(f *Factory, runF func(*AdminOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use: "rm REPOSITORY", Aliases: []string{"remove", "delete"},
		Short: "Delete a whole repository (admin role on it)",
		Long: `Delete a repository with all its tags and manifests, in one step on the hub. Its blobs
go at the next garbage collection unless another repository uses them. To delete one
tag or manifest, use 'hubctl rm'.`,
		Example: `  hubctl repo rm team/old-app --registry hub.example.com`,
		Args:    checkArgs(cobra.ExactArgs(1)),
	}
	return simpleCommand(f, cmd, &AdminOptions{}, runF, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		if err := c.DeleteRepository(ctx, o.Args[0]); err != nil {
			return fmt.Errorf("delete repository %s: %w", o.Args[0], err)
		}
		return o.Hub.done(nil, "Repository %s deleted", o.Args[0])
	})
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

// NewCmdRobot returns `hubctl robot`.
func NewCmdRobot(f *Factory) *cobra.Command {
	return groupCommand("robot", "Manage robot accounts of an organisation",
		`Robot accounts are service accounts of an organisation (for CI, deploy agents). They
have no password and sign in only with their access tokens.`,
		NewCmdRobotCreate(f, nil), NewCmdRobotList(f, nil), NewCmdRobotRemove(f, nil), NewCmdRobotRotate(f, nil))
}

// NewCmdRobotList returns `hubctl robot ls`.
func NewCmdRobotList(f *Factory, runF func(*AdminOptions) error) *cobra.Command {
	cmd := &cobra.Command{Use: "ls ORG", Aliases: []string{"list"}, Short: "List the robots of an organisation and their tokens", Args: checkArgs(cobra.ExactArgs(1))}
	return simpleCommand(f, cmd, &AdminOptions{}, runF, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		robots, err := c.ListRobots(ctx, o.Args[0])
		if err != nil {
			return fmt.Errorf("list robots of %s: %w", o.Args[0], err)
		}
		return o.Hub.print(robots, []string{"NAME", "TOKEN", "SCOPES", "EXPIRES", "LAST USED"}, func(row func(...string)) {
			for _, r := range robots {
				active := 0
				for _, t := range r.Tokens {
					if t.Active {
						active++
						row(r.User.Name, t.Name, strings.Join(t.Scopes, " "), orDash(t.ExpiresAt, "never"), orDash(t.LastUsedAt, "-"))
					}
				}
				if active == 0 {
					row(r.User.Name, "-", "-", "-", "-")
				}
			}
		})
	})
}

// NewCmdRobotRemove returns `hubctl robot rm`.
func NewCmdRobotRemove(f *Factory, runF func(*AdminOptions) error) *cobra.Command {
	cmd := &cobra.Command{Use: "rm ORG NAME", Aliases: []string{"remove"}, Short: "Remove a robot account and its tokens", Args: checkArgs(cobra.ExactArgs(2))}
	return simpleCommand(f, cmd, &AdminOptions{}, runF, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		org, name := o.Args[0], strings.TrimPrefix(o.Args[1], o.Args[0]+".")
		if err := c.DeleteRobot(ctx, org, name); err != nil {
			return fmt.Errorf("remove robot %s.%s: %w", org, name, err)
		}
		return o.Hub.done(nil, "Robot %s.%s removed", org, name)
	})
}

// RobotRotateOptions are the inputs of `hubctl robot rotate`.
type RobotRotateOptions struct {
	Hub       HubOptions
	Org, Name string
	Scopes    []string
	Expires   string
	Expiry    expiry
}

// NewCmdRobotRotate returns `hubctl robot rotate`.
func NewCmdRobotRotate(f *Factory, runF func(*RobotRotateOptions) error) *cobra.Command {
	opts := &RobotRotateOptions{}
	cmd := &cobra.Command{
		Use:   "rotate ORG NAME",
		Short: "Replace a robot's token with a new one",
		Long: `Revoke every active token of the robot ORG.NAME and print a new one on stdout, shown
only once. The new token keeps the scopes of the one it replaces unless --scope gives
others. Needs admin rights on the organisation and a password login.`,
		Example: `  hubctl robot rotate team ci --expires 90d`,
		Args:    checkArgs(cobra.ExactArgs(2)),
	}
	hubCommand(f, cmd, &opts.Hub, func(args []string) error {
		opts.Org, opts.Name = args[0], strings.TrimPrefix(args[1], args[0]+".")
		e, err := parseExpiry(opts.Expires)
		if err != nil {
			return usageErrorf(cmd, "%v", err)
		}
		opts.Expiry = e
		return nil
	}, hubRun(&opts.Hub, opts, runF, func(c *hubclient.Client) error {
		r, err := c.RotateRobot(cmd.Context(), opts.Org, opts.Name, hubtypes.RotateRobotRequest{Scopes: opts.Scopes,
			ExpiresInDays: opts.Expiry.days, ExpiresInHours: opts.Expiry.hours})
		if err != nil {
			return fmt.Errorf("rotate the token of robot %s.%s: %w", opts.Org, opts.Name, err)
		}
		fmt.Fprintf(opts.Hub.IO.ErrOut, "Robot %s has a new token; the old ones are revoked. Copy it now: it is shown only once.\n", r.User.Name)
		if opts.Hub.Output == "json" {
			return printJSON(opts.Hub.IO.Out, r)
		}
		_, err = fmt.Fprintln(opts.Hub.IO.Out, r.Token.Token)
		return err
	}))
	cmd.Flags().StringArrayVar(&opts.Scopes, "scope", nil, "Token `scope` (repeatable; default: the scopes of the token replaced)")
	cmd.Flags().StringVar(&opts.Expires, "expires", "never", "Token lifetime in days or hours (`Nd|Nh`, e.g. 365d, 12h) or never")
	return cmd
}

// RobotCreateOptions are the inputs of `hubctl robot create`.
type RobotCreateOptions struct {
	Hub       HubOptions
	Org, Name string
	Scopes    []string
	Expires   string
	Expiry    expiry
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
		var err error
		opts.Expiry, err = scopedExpiry(cmd, opts.Scopes, opts.Expires)
		return err
	}, hubRun(&opts.Hub, opts, runF, func(c *hubclient.Client) error {
		r, err := c.CreateRobot(cmd.Context(), opts.Org, hubtypes.CreateRobotRequest{Name: opts.Name, Scopes: opts.Scopes, ExpiresInDays: opts.Expiry.days, ExpiresInHours: opts.Expiry.hours})
		if err != nil {
			return fmt.Errorf("create robot %s.%s: %w", opts.Org, opts.Name, err)
		}
		fmt.Fprintf(opts.Hub.IO.ErrOut, "Robot %s created; sign in with: docker login -u %s --password-stdin. Copy the token now: it is shown only once.\n", r.User.Name, r.User.Name)
		if opts.Hub.Output == "json" {
			return printJSON(opts.Hub.IO.Out, r)
		}
		_, err = fmt.Fprintln(opts.Hub.IO.Out, r.Token.Token)
		return err
	}))
	cmd.Flags().StringArrayVar(&opts.Scopes, "scope", nil, "Token `scope`, e.g. repository:team/*:pull,push (repeatable)")
	cmd.Flags().StringVar(&opts.Expires, "expires", "never", "Token lifetime in days or hours (`Nd|Nh`, e.g. 365d, 12h) or never")
	return cmd
}
