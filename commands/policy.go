package commands

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hubctl/hubctl/internal/hubclient"
	"github.com/hubctl/hubctl/internal/policy"
)

// NewCmdRepoPolicy returns `hubctl repo policy`.
func NewCmdRepoPolicy(f *Factory) *cobra.Command {
	return groupCommand("policy", "Immutable tags and retention rules of a namespace or repository",
		`Set, show, remove and run the tag policies of a namespace (team) or a repository
(team/app). Immutable tags refuse a push that would move them and their deletion;
retention rules say which tags and untagged manifests a run deletes. The hub runs
retention every retention.interval (6h by default) and on demand ('policy run').

How rules combine: a repository's immutable patterns add to its namespace's; its
retention replaces its namespace's. Retention judges only the tags some rule's
--tags pattern matches (others stay); a judged tag stays when a rule matching it keeps
it (among its newest N, pushed within, or pulled within a span); --always-keep and
immutable tags always stay. --untagged-older-than then deletes manifests left without a
tag and neither pushed nor pulled within it, except index children and referrers of
what stays. See docs/registry.md.`,
		NewCmdPolicySet(f, nil), NewCmdPolicyShow(f, nil), NewCmdPolicyList(f, nil), NewCmdPolicyRemove(f, nil), NewCmdPolicyRun(f, nil))
}

// PolicySetOptions are the inputs of `hubctl repo policy set`.
type PolicySetOptions struct {
	Hub   HubOptions
	Scope string
	// File is a JSON policy document ("-" for stdin); exclusive with the rule flags.
	File string
	// Policy is built from the flags.
	Policy policy.Policy

	immutable, alwaysKeep                  []string
	tags, pushed, pulled, untagged         string
	keepNewest                             int
	ruleFlagsSet, retentionSet, anyFlagSet bool
}

// NewCmdPolicySet returns `hubctl repo policy set`.
func NewCmdPolicySet(f *Factory, runF func(*PolicySetOptions) error) *cobra.Command {
	o := &PolicySetOptions{}
	cmd := &cobra.Command{
		Use:   "set SCOPE",
		Short: "Set the policy of a namespace or repository (admin role on it)",
		Long: `Set the policy of a namespace or repository, replacing the one it had. The flags
make one retention rule; a policy with several rules comes from --file (JSON, the shape
'hubctl repo policy show -o json' prints under "policy"). Durations take d and w
(30d, 2w) as well as Go's units (36h).`,
		Example: `  hubctl repo policy set team --immutable 'v*' --registry hub.example.com
  hubctl repo policy set team/app --tags '*' --keep-newest 10 --pulled-within 30d --always-keep latest --untagged-older-than 7d
  hubctl repo policy set team --file policy.json`,
		Args: checkArgs(cobra.ExactArgs(1)),
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.File, "file", "f", "", "JSON policy `file` ('-' for stdin)")
	fl.StringArrayVar(&o.immutable, "immutable", nil, "Immutable tag `pattern` (glob; repeatable)")
	fl.StringVar(&o.tags, "tags", "", "Tag `pattern` the retention rule judges (default *)")
	fl.IntVar(&o.keepNewest, "keep-newest", 0, "Keep the newest `N` judged tags, by push time")
	fl.StringVar(&o.pushed, "pushed-within", "", "Keep judged tags pushed within this `span` (30d)")
	fl.StringVar(&o.pulled, "pulled-within", "", "Keep judged tags whose image was pulled within this `span`")
	fl.StringArrayVar(&o.alwaysKeep, "always-keep", nil, "Tag `pattern` retention never deletes (repeatable)")
	fl.StringVar(&o.untagged, "untagged-older-than", "", "Delete untagged manifests neither pushed nor pulled within this `span`")
	hubCommand(f, cmd, &o.Hub, func(args []string) error {
		o.Scope = args[0]
		cmd.Flags().Visit(func(fl *pflag.Flag) {
			switch fl.Name {
			case "tags", "keep-newest", "pushed-within", "pulled-within":
				o.ruleFlagsSet, o.retentionSet, o.anyFlagSet = true, true, true
			case "always-keep", "untagged-older-than":
				o.retentionSet, o.anyFlagSet = true, true
			case "immutable":
				o.anyFlagSet = true
			}
		})
		if o.File != "" && o.anyFlagSet {
			return usageErrorf(cmd, "--file and the rule flags are exclusive")
		}
		if o.File == "" && !o.anyFlagSet {
			return usageErrorf(cmd, "give --immutable, a retention rule's flags or --file")
		}
		if o.File != "" {
			var b []byte
			var err error
			if o.File == "-" {
				b, err = io.ReadAll(io.LimitReader(f.IOStreams.In, 1<<20))
			} else {
				b, err = os.ReadFile(o.File)
			}
			if err != nil {
				return err
			}
			o.Policy, err = policy.Parse(b)
			return err
		}
		return o.build(cmd)
	}, hubRun(&o.Hub, o, runF, func(c *hubclient.Client) error {
		st, err := c.SetPolicy(cmd.Context(), o.Scope, o.Policy)
		if err != nil {
			return fmt.Errorf("set policy of %s: %w", o.Scope, err)
		}
		return o.Hub.done(st, "Policy of %s set", o.Scope)
	}))
	return cmd
}

// build makes the policy of the flags.
func (o *PolicySetOptions) build(cmd *cobra.Command) error {
	o.Policy.ImmutableTags = o.immutable
	if o.retentionSet {
		r := &policy.Retention{AlwaysKeep: o.alwaysKeep}
		var err error
		if r.UntaggedOlderThan, err = policy.ParseDuration(o.untagged); err != nil {
			return usageErrorf(cmd, "--untagged-older-than: %v", err)
		}
		if o.ruleFlagsSet {
			rule := policy.Rule{Tags: o.tags, KeepNewest: o.keepNewest}
			if rule.PushedWithin, err = policy.ParseDuration(o.pushed); err != nil {
				return usageErrorf(cmd, "--pushed-within: %v", err)
			}
			if rule.PulledWithin, err = policy.ParseDuration(o.pulled); err != nil {
				return usageErrorf(cmd, "--pulled-within: %v", err)
			}
			r.Rules = []policy.Rule{rule}
		}
		o.Policy.Retention = r
	}
	if err := o.Policy.Validate(); err != nil {
		return usageErrorf(cmd, "%v", err)
	}
	return nil
}

// NewCmdPolicyShow returns `hubctl repo policy show`.
func NewCmdPolicyShow(f *Factory, runF func(*AdminOptions) error) *cobra.Command {
	cmd := &cobra.Command{Use: "show SCOPE", Short: "Show the policy of a namespace or repository (and what applies to a repository)", Args: checkArgs(cobra.ExactArgs(1))}
	return simpleCommand(f, cmd, &AdminOptions{}, runF, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		doc, err := c.GetPolicy(ctx, o.Args[0])
		if err != nil {
			return fmt.Errorf("policy of %s: %w", o.Args[0], err)
		}
		if o.Hub.Output == "json" {
			return printJSON(o.Hub.IO.Out, doc)
		}
		w := o.Hub.IO.Out
		fmt.Fprintf(w, "Scope:\t%s\n", doc.Scope)
		if doc.UpdatedBy != "" {
			fmt.Fprintf(w, "Set by:\t%s at %s\n", doc.UpdatedBy, doc.UpdatedAt.Format("2006-01-02 15:04:05Z07:00"))
		}
		printPolicy(w, "", doc.Policy)
		if doc.Effective != nil {
			fmt.Fprintln(w, "Effective (with the namespace's):")
			printPolicy(w, "  ", *doc.Effective)
		}
		return nil
	})
}

func printPolicy(w io.Writer, indent string, p policy.Policy) {
	fmt.Fprintf(w, "%sImmutable tags:\t%s\n", indent, orNone(strings.Join(p.ImmutableTags, ", ")))
	if p.Retention == nil {
		fmt.Fprintf(w, "%sRetention:\tnone\n", indent)
		return
	}
	r := p.Retention
	for i, rule := range r.Rules {
		var keep []string
		if rule.KeepNewest > 0 {
			keep = append(keep, "newest "+strconv.Itoa(rule.KeepNewest))
		}
		if rule.PushedWithin > 0 {
			keep = append(keep, "pushed within "+rule.PushedWithin.String())
		}
		if rule.PulledWithin > 0 {
			keep = append(keep, "pulled within "+rule.PulledWithin.String())
		}
		fmt.Fprintf(w, "%sRule %d:\ttags %s: keep %s\n", indent, i+1, rule.Pattern(), strings.Join(keep, " or "))
	}
	fmt.Fprintf(w, "%sAlways keep:\t%s\n", indent, orNone(strings.Join(r.AlwaysKeep, ", ")))
	untagged := "kept"
	if r.UntaggedOlderThan > 0 {
		untagged = "deleted when neither pushed nor pulled within " + r.UntaggedOlderThan.String()
	}
	fmt.Fprintf(w, "%sUntagged:\t%s\n", indent, untagged)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// NewCmdPolicyList returns `hubctl repo policy ls`.
func NewCmdPolicyList(f *Factory, runF func(*AdminOptions) error) *cobra.Command {
	cmd := &cobra.Command{Use: "ls", Aliases: []string{"list"}, Short: "List the policies you may read", Args: checkArgs(cobra.NoArgs)}
	return simpleCommand(f, cmd, &AdminOptions{}, runF, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		all, err := c.ListPolicies(ctx)
		if err != nil {
			return fmt.Errorf("list policies: %w", err)
		}
		return o.Hub.print(all, []string{"SCOPE", "IMMUTABLE", "RETENTION", "SET BY"}, func(row func(...string)) {
			for _, s := range all {
				ret := "-"
				if s.Policy.Retention != nil {
					ret = fmt.Sprintf("%d rules", len(s.Policy.Retention.Rules))
				}
				row(s.Scope, orDash(strings.Join(s.Policy.ImmutableTags, ","), "-"), ret, s.UpdatedBy)
			}
		})
	})
}

// NewCmdPolicyRemove returns `hubctl repo policy rm`.
func NewCmdPolicyRemove(f *Factory, runF func(*AdminOptions) error) *cobra.Command {
	cmd := &cobra.Command{Use: "rm SCOPE", Aliases: []string{"remove"}, Short: "Remove the policy of a namespace or repository (admin role on it)", Args: checkArgs(cobra.ExactArgs(1))}
	return simpleCommand(f, cmd, &AdminOptions{}, runF, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		if err := c.DeletePolicy(ctx, o.Args[0]); err != nil {
			return fmt.Errorf("remove policy of %s: %w", o.Args[0], err)
		}
		return o.Hub.done(nil, "Policy of %s removed", o.Args[0])
	})
}

// PolicyRunOptions are the inputs of `hubctl repo policy run`.
type PolicyRunOptions struct {
	Hub    HubOptions
	Scope  string
	DryRun bool
}

// NewCmdPolicyRun returns `hubctl repo policy run`.
func NewCmdPolicyRun(f *Factory, runF func(*PolicyRunOptions) error) *cobra.Command {
	o := &PolicyRunOptions{}
	cmd := &cobra.Command{
		Use:   "run [SCOPE]",
		Short: "Apply retention now, or list what it would delete (--dry-run)",
		Long: `Apply the retention rules of a namespace or repository now (every scope, for a site
admin, without SCOPE). Each deletion is audited and sent to webhooks as the registry's
deletes are, by the actor "retention". Blobs go at the next garbage collection.`,
		Example: `  hubctl repo policy run team --dry-run --registry hub.example.com
  hubctl repo policy run team/app`,
		Args: checkArgs(cobra.MaximumNArgs(1)),
	}
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "List what would be deleted; delete nothing")
	hubCommand(f, cmd, &o.Hub, func(args []string) error {
		if len(args) == 1 {
			o.Scope = args[0]
		}
		return nil
	}, hubRun(&o.Hub, o, runF, func(c *hubclient.Client) error {
		rep, err := c.RunRetention(cmd.Context(), o.Scope, o.DryRun)
		if err != nil {
			return fmt.Errorf("retention of %s: %w", orDash(o.Scope, "every scope"), err)
		}
		if o.Hub.Output == "json" {
			return printJSON(o.Hub.IO.Out, rep)
		}
		verb := "deleted"
		if o.DryRun {
			verb = "would delete"
		}
		err = o.Hub.print(rep, []string{"REPOSITORY", "KIND", strings.ToUpper(verb)}, func(row func(...string)) {
			for _, p := range rep.Plans {
				for _, t := range p.Tags {
					row(p.Repository, "tag", t.Name)
				}
				for _, d := range p.Manifests {
					row(p.Repository, "manifest", d.String())
				}
			}
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(o.Hub.IO.ErrOut, "%s %d tags and %d manifests\n", strings.ToUpper(verb[:1])+verb[1:], rep.DeletedTags, rep.DeletedManifests)
		for _, e := range rep.Errors {
			fmt.Fprintf(o.Hub.IO.ErrOut, "error: %s\n", e)
		}
		return nil
	}))
	return cmd
}
