package commands

import (
	"fmt"
	"runtime"

	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/spf13/cobra"
)

// VersionOptions are the inputs of `hubctl version`.
type VersionOptions struct {
	IO     *iostreams.IOStreams
	Build  BuildInfo
	Output string
}

// Version is what `hubctl version -o json` prints.
type Version struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// NewCmdVersion returns `hubctl version`. runF replaces the printing in tests.
func NewCmdVersion(f *Factory, runF func(*VersionOptions) error) *cobra.Command {
	opts := &VersionOptions{}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of hubctl",
		Example: `  hubctl version
  hubctl version -o json`,
		Args: checkArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Output != "" && opts.Output != "json" {
				return usageErrorf(cmd, "invalid --output %q: want json", opts.Output)
			}
			opts.IO = f.IOStreams
			opts.Build = f.Build
			if runF != nil {
				return runF(opts)
			}
			return versionRun(opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "Output `format`: json (default human-readable)")
	return cmd
}

func versionRun(opts *VersionOptions) error {
	v := Version{
		Version:   opts.Build.Version,
		Commit:    opts.Build.Commit,
		Date:      opts.Build.Date,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if opts.Output == "json" {
		return printJSON(opts.IO.Out, v)
	}
	_, err := fmt.Fprintf(opts.IO.Out, "hubctl %s (commit %s, built %s) %s %s\n",
		v.Version, v.Commit, v.Date, v.GoVersion, v.Platform)
	return err
}
