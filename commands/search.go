package commands

import (
	"fmt"
	"strings"

	"github.com/hubctl/hubctl/internal/hubclient"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/spf13/cobra"
)

// SearchOptions are the inputs of `hubctl search`.
type SearchOptions struct {
	Hub        HubOptions
	Text       string
	Kind       string
	Namespace  string
	Visibility string
	After      string
	Limit      int
	JSON       bool
}

// NewCmdSearch returns `hubctl search`.
func NewCmdSearch(f *Factory, runF func(*SearchOptions) error) *cobra.Command {
	opts := &SearchOptions{}
	cmd := &cobra.Command{
		Use:   "search [TERM...]",
		Short: "Search a hubctl registry's repositories by name, description, label or digest",
		Long: `Find the repositories you may pull: every term must occur (as a substring, any case)
in the repository's name, its description or its labels (those of the image last
pushed under a tag). Each term needs 3 characters or more (the hub's index is of
trigrams). A term of the form sha256:HEX (at least 4 hex digits), or 7 to 64
bare hex digits, finds the manifests whose digest starts with it. Without a login the
search is anonymous: public repositories only. With more results than one page,
stderr names the --after of the next.`,
		Example: `  hubctl search nginx --registry hub.example.com
  hubctl search "acme frontend" --kind image --visibility private
  hubctl search sha256:3f2a9c --json`,
		Args: checkArgs(cobra.ArbitraryArgs),
	}
	hubCommand(f, cmd, &opts.Hub, func(args []string) error {
		opts.Text = strings.Join(args, " ")
		if opts.JSON {
			opts.Hub.Output = "json"
		}
		switch opts.Kind {
		case "", "image", "chart", "artifact":
		default:
			return usageErrorf(cmd, "invalid --kind %q: want image, chart or artifact", opts.Kind)
		}
		switch opts.Visibility {
		case "", "public", "private":
		default:
			return usageErrorf(cmd, "invalid --visibility %q: want public or private", opts.Visibility)
		}
		if opts.Limit < 0 || opts.Limit > 100 {
			return usageErrorf(cmd, "invalid --limit %d: want 1 to 100", opts.Limit)
		}
		return nil
	}, hubRun(&opts.Hub, opts, runF, func(c *hubclient.Client) error {
		page, err := c.Search(cmd.Context(), hubclient.SearchQuery{Text: opts.Text, Kind: opts.Kind, Namespace: opts.Namespace,
			Visibility: opts.Visibility, After: opts.After, Limit: opts.Limit})
		if err != nil {
			return fmt.Errorf("search %q: %w", opts.Text, err)
		}
		if err := opts.Hub.print(page, searchHeader(page), func(row func(...string)) {
			for _, h := range page.Results {
				last := orDash(shorten(h.Description, 60), "-")
				if h.Digest != "" {
					last = h.Digest
				}
				row(h.Repository, orDash(h.Kind, "-"), h.Visibility, last)
			}
		}); err != nil {
			return err
		}
		if page.Next != "" && opts.Hub.Output != "json" {
			fmt.Fprintf(opts.Hub.IO.ErrOut, "more results: add --after %s\n", page.Next)
		}
		return nil
	}))
	fl := cmd.Flags()
	fl.StringVar(&opts.Kind, "kind", "", "Only repositories of this `kind`: image, chart or artifact")
	fl.StringVar(&opts.Namespace, "namespace", "", "Only repositories in this `namespace`")
	fl.StringVar(&opts.Visibility, "visibility", "", "Only public or private repositories")
	fl.StringVar(&opts.After, "after", "", "Start after this `result` (the next page)")
	fl.IntVar(&opts.Limit, "limit", 0, "At most `n` results (default and most 100)")
	fl.BoolVar(&opts.JSON, "json", false, "Print the answer as JSON (same as -o json)")
	return cmd
}

func searchHeader(p hubtypes.SearchPage) []string {
	for _, h := range p.Results {
		if h.Digest != "" {
			return []string{"REPOSITORY", "KIND", "VISIBILITY", "DIGEST"}
		}
	}
	return []string{"REPOSITORY", "KIND", "VISIBILITY", "DESCRIPTION"}
}

// shorten is s on one line, cut to n runes with an ellipsis.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
