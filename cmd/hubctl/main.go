// Command hubctl builds, moves and serves container images and charts; see package
// commands for the command line.
package main

import (
	"context"
	"os"

	"github.com/hubctl/hubctl/commands"
	"github.com/hubctl/hubctl/internal/iostreams"
)

// Set by release builds: -ldflags "-X main.version=… -X main.commit=… -X main.date=…".
// Empty values are filled from the build information the Go toolchain records.
var (
	version string
	commit  string
	date    string
)

func main() {
	f := commands.NewFactory(iostreams.System(), commands.NewBuildInfo(version, commit, date))
	os.Exit(commands.Execute(context.Background(), f, os.Args[1:]))
}
