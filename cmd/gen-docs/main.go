// Command gen-docs regenerates the completion scripts in completions/ and the command
// reference in docs/cli and docs/man from hubctl's command tree. Run it through
// `go generate ./...` (see docs/generate.go) or `make generate`.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/hubctl/hubctl/commands"
	"github.com/hubctl/hubctl/internal/gendocs"
	"github.com/hubctl/hubctl/internal/iostreams"
)

func main() {
	out := flag.String("out", ".", "repository root to write completions/ and docs/ under")
	flag.Parse()
	ios, _, _, _ := iostreams.Test()
	root := commands.NewCmdRoot(commands.NewFactory(ios, commands.BuildInfo{}))
	if err := gendocs.Generate(root, *out, commands.WriteCompletion); err != nil {
		fmt.Fprintln(os.Stderr, "gen-docs:", err)
		os.Exit(1)
	}
}
