package commands

import (
	"fmt"
	"strings"

	"github.com/hubctl/hubctl/internal/hubclient"
	"github.com/hubctl/hubctl/internal/reference"
	"github.com/spf13/cobra"
)

// RepoHistoryOptions are the inputs of `hubctl repo history`.
type RepoHistoryOptions struct {
	Hub             HubOptions
	Repository, Tag string
	Before          int64
	Limit           int
	JSON            bool
}

// NewCmdRepoHistory returns `hubctl repo history`.
func NewCmdRepoHistory(f *Factory, runF func(*RepoHistoryOptions) error) *cobra.Command {
	opts := &RepoHistoryOptions{}
	cmd := &cobra.Command{
		Use:   "history REPOSITORY:TAG",
		Short: "List a tag's moves: when, what, which digest, who (pull right)",
		Long: `List the moves of a tag, newest first: every push or restore that pointed it at a
manifest ("create" for a new tag, "move"), and its deletion ("delete"), with who did it.
The hub keeps the last 100 moves of each tag, and keeps the manifests a tag moved away
from for a while (30 days by default), so 'hubctl repo restore' can point it back.
With more moves than --limit, stderr names the --before of the next page.`,
		Example: `  hubctl repo history team/app:latest --registry hub.example.com
  hubctl repo history team/app:latest --json`,
		Args: checkArgs(cobra.ExactArgs(1)),
	}
	hubCommand(f, cmd, &opts.Hub, func(args []string) error {
		var err error
		if opts.Repository, opts.Tag, err = splitRepoTag(args[0]); err != nil {
			return usageErrorf(cmd, "%v", err)
		}
		if opts.JSON {
			opts.Hub.Output = "json"
		}
		if opts.Limit < 0 || opts.Limit > 100 {
			return usageErrorf(cmd, "invalid --limit %d: want 1 to 100", opts.Limit)
		}
		if opts.Before < 0 {
			return usageErrorf(cmd, "invalid --before %d: want a move id", opts.Before)
		}
		return nil
	}, hubRun(&opts.Hub, opts, runF, func(c *hubclient.Client) error {
		page, err := c.TagHistory(cmd.Context(), opts.Repository, opts.Tag, hubclient.TagHistoryQuery{Before: opts.Before, Limit: opts.Limit})
		if err != nil {
			return fmt.Errorf("history of %s:%s: %w", opts.Repository, opts.Tag, err)
		}
		if err := opts.Hub.print(page, []string{"TIME", "ACTION", "DIGEST", "PREVIOUS", "ACTOR"}, func(row func(...string)) {
			for _, m := range page.Moves {
				row(m.Time, m.Action, orDash(m.Digest, "-"), orDash(m.PreviousDigest, "-"), orDash(m.Actor, "unknown"))
			}
		}); err != nil {
			return err
		}
		if page.Next != 0 && opts.Hub.Output != "json" {
			fmt.Fprintf(opts.Hub.IO.ErrOut, "older moves: add --before %d\n", page.Next)
		}
		return nil
	}))
	fl := cmd.Flags()
	fl.Int64Var(&opts.Before, "before", 0, "Only moves older than this `id` (the next page)")
	fl.IntVar(&opts.Limit, "limit", 0, "At most `n` moves (default and most 100)")
	fl.BoolVar(&opts.JSON, "json", false, "Print the answer as JSON (same as -o json)")
	return cmd
}

// RepoRestoreOptions are the inputs of `hubctl repo restore`.
type RepoRestoreOptions struct {
	Hub                     HubOptions
	Repository, Tag, Digest string
}

// NewCmdRepoRestore returns `hubctl repo restore`.
func NewCmdRepoRestore(f *Factory, runF func(*RepoRestoreOptions) error) *cobra.Command {
	opts := &RepoRestoreOptions{}
	cmd := &cobra.Command{
		Use:   "restore REPOSITORY:TAG DIGEST",
		Short: "Point a tag back at a digest of its history (push right)",
		Long: `Point a tag back at a manifest it named before, as listed by 'hubctl repo history':
the hub pushes the stored manifest under the tag again, so quotas, webhooks, workflow
triggers and the tag's history see it as a push by you. The digest must be in the tag's
history and still in the repository; an immutable tag is refused as a push to it is.`,
		Example: `  hubctl repo restore team/app:latest sha256:3f2a9c… --registry hub.example.com`,
		Args:    checkArgs(cobra.ExactArgs(2)),
	}
	hubCommand(f, cmd, &opts.Hub, func(args []string) error {
		var err error
		if opts.Repository, opts.Tag, err = splitRepoTag(args[0]); err != nil {
			return usageErrorf(cmd, "%v", err)
		}
		d, err := reference.ParseDigest(args[1])
		if err != nil {
			return usageErrorf(cmd, "invalid digest %q: %v", args[1], err)
		}
		opts.Digest = d.String()
		return nil
	}, hubRun(&opts.Hub, opts, runF, func(c *hubclient.Client) error {
		res, err := c.RestoreTag(cmd.Context(), opts.Repository, opts.Tag, opts.Digest)
		if err != nil {
			return fmt.Errorf("restore %s:%s to %s: %w", opts.Repository, opts.Tag, opts.Digest, err)
		}
		return opts.Hub.done(res, "%s:%s now points at %s (was %s)", res.Repository, res.Tag, res.Digest, orDash(res.PreviousDigest, "-"))
	}))
	return cmd
}

// splitRepoTag cuts REPOSITORY:TAG: the tag follows the last colon after the last
// slash, since a repository name holds none.
func splitRepoTag(s string) (repo, tag string, err error) {
	i := strings.LastIndex(s, ":")
	if i < 0 || strings.Contains(s[i:], "/") {
		return "", "", fmt.Errorf("%q: want REPOSITORY:TAG (the registry goes in --registry)", s)
	}
	repo, tag = s[:i], s[i+1:]
	if err := reference.ValidateRepository(repo); err != nil {
		return "", "", fmt.Errorf("%q: %v (the registry goes in --registry)", s, err)
	}
	if !reference.IsTag(tag) {
		return "", "", fmt.Errorf("%q: invalid tag %q", s, tag)
	}
	return repo, tag, nil
}
