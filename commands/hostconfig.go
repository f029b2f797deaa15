package commands

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hubctl/hubctl/internal/config"
)

// The host commands (gc, keys, admin reset-password) act on a hub's storage on its host.
// They read the configuration exactly as `hubctl serve` does — the YAML file of
// --config, the HUBCTL_* variables, then their own flags, which set the same keys as
// serve's flags of the same names — so an operator's setup names the same data
// directory, database, object store and key directory for both.

// hostConfig binds a host command's configuration flags and merges them with the file
// and environment when the command runs.
type hostConfig struct {
	f *Factory
	// keys maps each bound flag to the configuration key it sets.
	keys map[string]string
}

// bindHostConfig adds --data and --db, and the extra flags given (flag name → key;
// the caller defines those flags itself), to cmd.
func bindHostConfig(f *Factory, cmd *cobra.Command, extra map[string]string) *hostConfig {
	h := &hostConfig{f: f, keys: map[string]string{"data": "data", "db": "db.path"}}
	for flag, key := range extra {
		h.keys[flag] = key
	}
	def := config.Default()
	fl := cmd.Flags()
	fl.String("data", def.Data, "Data `directory` of the server")
	fl.String("db", "", "SQLite database `file` (default <data>/hubctl.db), or a postgres:// URL")
	_ = cmd.MarkFlagDirname("data")
	_ = cmd.MarkFlagFilename("db")
	return h
}

// load merges the configuration: file, environment, then the flags the user set.
func (h *hostConfig) load(cmd *cobra.Command) (config.Config, error) {
	overrides := map[string]string{}
	cmd.Flags().Visit(func(fl *pflag.Flag) {
		if key, ok := h.keys[fl.Name]; ok {
			overrides[key] = fl.Value.String()
		}
	})
	return config.Load(config.Sources{File: h.f.ConfigFile, LookupEnv: h.f.LookupEnv, Flags: overrides})
}
