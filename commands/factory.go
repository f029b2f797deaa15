// Package commands is hubctl's command line: one file per verb group, each command
// built by a constructor that binds flags onto an options struct and hands the work to
// a package below, with IO streams injected so tests run commands in-process.
package commands

import (
	"os"
	"runtime/debug"

	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/internal/tlsconf"
)

// Factory carries what every command needs: IO streams, build information, the
// environment, and the global flags once parsed.
type Factory struct {
	IOStreams *iostreams.IOStreams
	Build     BuildInfo
	// LookupEnv reads the environment; tests replace it instead of mutating the process.
	LookupEnv func(string) (string, bool)

	// Debug is the global --debug flag.
	Debug bool
	// ConfigFile is the global --config flag.
	ConfigFile string
	// CAFiles are the global --ca-file flag: CA certificates trusted for every
	// registry, besides the system roots and the certs.d folders.
	CAFiles []string
}

// Trust is how the command's clients verify registries' certificates: the certs.d
// folders (hubctl's, docker's, podman's) and --ca-file, or $HUBCTL_CA_FILE.
func (f *Factory) Trust() *tlsconf.Trust {
	files := f.CAFiles
	if len(files) == 0 {
		if v, ok := f.LookupEnv("HUBCTL_CA_FILE"); ok && v != "" {
			files = []string{v}
		}
	}
	return &tlsconf.Trust{CertsDirs: tlsconf.DefaultCertsDirs(f.LookupEnv), CAFiles: files}
}

// NewFactory returns a Factory reading the process environment.
func NewFactory(ios *iostreams.IOStreams, build BuildInfo) *Factory {
	return &Factory{IOStreams: ios, Build: build, LookupEnv: os.LookupEnv}
}

// BuildInfo identifies the binary: release builds set it with -ldflags, other builds
// take what the Go toolchain recorded.
type BuildInfo struct {
	Version string
	Commit  string
	Date    string
}

// NewBuildInfo returns the given values, filling empty ones from the build information
// the Go toolchain embeds (module version for `go install …@v1.2.3`, VCS revision and
// time for builds from a checkout).
func NewBuildInfo(version, commit, date string) BuildInfo {
	bi, _ := debug.ReadBuildInfo()
	return fillBuildInfo(BuildInfo{Version: version, Commit: commit, Date: date}, bi)
}

func fillBuildInfo(b BuildInfo, bi *debug.BuildInfo) BuildInfo {
	if bi != nil {
		if b.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.Version = bi.Main.Version
		}
		modified := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if b.Commit == "" {
					b.Commit = s.Value
				}
			case "vcs.time":
				if b.Date == "" {
					b.Date = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		// A dirty tree's revision does not describe the binary; say so.
		if modified && b.Commit != "" && b.Commit == settingValue(bi, "vcs.revision") {
			b.Commit += "-dirty"
		}
	}
	if b.Version == "" {
		b.Version = "dev"
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	if b.Date == "" {
		b.Date = "unknown"
	}
	return b
}

func settingValue(bi *debug.BuildInfo, key string) string {
	for _, s := range bi.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}
