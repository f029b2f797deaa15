package commands

import (
	"fmt"
	"io"

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
