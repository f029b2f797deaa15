package commands

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// completionShells are the shells `hubctl completion` writes scripts for.
var completionShells = []string{"bash", "zsh", "fish", "powershell"}

// NewCmdCompletion returns `hubctl completion SHELL`, which prints the completion script
// cobra generates for the whole command tree.
func NewCmdCompletion(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print the shell completion script",
		Long: `Print the completion script for a shell. Load it in the current shell or install it
where your shell looks for completions. Release archives ship the same scripts in
completions/.`,
		Example: `  source <(hubctl completion bash)
  hubctl completion zsh > "${fpath[1]}/_hubctl"
  hubctl completion fish > ~/.config/fish/completions/hubctl.fish
  hubctl completion powershell | Out-String | Invoke-Expression`,
		ValidArgs:             completionShells,
		Args:                  checkArgs(cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs)),
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return WriteCompletion(cmd.Root(), args[0], f.IOStreams.Out)
		},
	}
}

// WriteCompletion writes root's completion script for shell (one of bash, zsh, fish,
// powershell) to w. The generator of completions/ uses it too, so the shipped scripts
// are exactly what the command prints.
func WriteCompletion(root *cobra.Command, shell string, w io.Writer) error {
	switch shell {
	case "bash":
		return root.GenBashCompletionV2(w, true)
	case "zsh":
		return root.GenZshCompletion(w)
	case "fish":
		return root.GenFishCompletion(w, true)
	case "powershell":
		return root.GenPowerShellCompletionWithDesc(w)
	}
	return fmt.Errorf("unsupported shell %q", shell)
}

// locationPrefixes are the local location forms, offered when a location is completed.
var locationPrefixes = []string{"oci:", "oci-archive:", "docker-archive:", "docker-daemon:"}

// completeLocations completes image locations: the local form prefixes, and after
// oci:, oci-archive: or docker-archive: the files and directories of the path typed so
// far. Registry references are left to the user (no registry is asked while typing).
func completeLocations(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	for _, p := range locationPrefixes {
		if p == "docker-daemon:" || !strings.HasPrefix(toComplete, p) {
			continue
		}
		var out []string
		for _, entry := range completePath(strings.TrimPrefix(toComplete, p)) {
			out = append(out, p+entry)
		}
		return out, cobra.ShellCompDirectiveNoSpace | cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, p := range locationPrefixes {
		if strings.HasPrefix(p, toComplete) {
			out = append(out, p)
		}
	}
	return out, cobra.ShellCompDirectiveNoSpace | cobra.ShellCompDirectiveNoFileComp
}

// completePath lists the entries of the directory part of partial that start with its
// last element; directories end in '/'.
func completePath(partial string) []string {
	dir, base := filepath.Split(partial)
	entries, err := os.ReadDir(cmpOr(dir, "."))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, base) || (strings.HasPrefix(name, ".") && !strings.HasPrefix(base, ".")) {
			continue
		}
		if e.IsDir() {
			name += "/"
		}
		out = append(out, dir+name)
	}
	return out
}

func cmpOr(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// commonPlatforms are offered for --platform; any os/arch[/variant] is accepted.
var commonPlatforms = []string{"linux/amd64", "linux/arm64", "linux/arm/v7", "linux/386", "linux/ppc64le", "linux/s390x", "linux/riscv64", "windows/amd64"}

func completePlatforms(_ *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	return commonPlatforms, cobra.ShellCompDirectiveNoFileComp
}

// completeFlagValues registers the completions of the flags a command may have: the
// progress and output formats and --platform.
func completeFlagValues(cmd *cobra.Command) {
	fixed := map[string][]string{
		"progress": {"auto", "tty", "plain", "quiet"},
		"output":   {"json"},
	}
	for name, values := range fixed {
		if cmd.Flags().Lookup(name) != nil {
			_ = cmd.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
		}
	}
	if cmd.Flags().Lookup("platform") != nil {
		_ = cmd.RegisterFlagCompletionFunc("platform", completePlatforms)
	}
}
