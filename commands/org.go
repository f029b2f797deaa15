package commands

import (
	"context"
	"fmt"

	"github.com/hubctl/hubctl/internal/hubclient"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/spf13/cobra"
)

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
	}, hubRun(&opts.Hub, opts, runF, func(c *hubclient.Client) error {
		org, err := c.CreateOrg(cmd.Context(), opts.Name, opts.Visibility)
		if err != nil {
			return fmt.Errorf("create organisation %s: %w", opts.Name, err)
		}
		return opts.Hub.done(org, "Organisation %s created", org.Name)
	}))
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
func NewCmdOrgRemove(f *Factory, runF func(*RemoveOptions) error) *cobra.Command {
	return removeCommand(f, runF, &cobra.Command{
		Use: "rm ORG", Aliases: []string{"remove"}, Short: "Remove an organisation (org admins)",
		Long: `Remove an organisation with its teams, grants and robots. An organisation that still
holds repositories is refused unless --purge, which deletes those repositories too
(their blobs go at the next garbage collection).`,
		Example: `  hubctl org rm acme --purge`,
	}, "organisation", (*hubclient.Client).DeleteOrg)
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
	hubCommand(f, cmd, &opts.Hub, func(args []string) error { opts.Org, opts.Team = args[0], args[1]; return nil }, hubRun(&opts.Hub, opts, runF, func(c *hubclient.Client) error {
		t, err := c.CreateTeam(cmd.Context(), opts.Org, opts.Team, opts.Description)
		if err != nil {
			return fmt.Errorf("create team %s/%s: %w", opts.Org, opts.Team, err)
		}
		return opts.Hub.done(t, "Team %s/%s created", t.Org, t.Name)
	}))
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
	}, hubRun(&opts.Hub, opts, runF, func(c *hubclient.Client) error {
		g := hubtypes.Grant{Repository: opts.Repository, Role: opts.Role}
		on := opts.Repository
		if on == "" {
			on = "organisation " + opts.Org
		}
		if err := c.SetGrant(cmd.Context(), opts.Org, opts.Team, g); err != nil {
			return fmt.Errorf("grant %s on %s to team %s/%s: %w", opts.Role, on, opts.Org, opts.Team, err)
		}
		return opts.Hub.done(g, "Team %s/%s has role %s on %s", opts.Org, opts.Team, opts.Role, on)
	}))
	return cmd
}
