package commands

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hubctl/hubctl/internal/auth/token"
	"github.com/hubctl/hubctl/internal/iostreams"
)

// KeysOptions are the inputs of `hubctl keys …`, after the configuration was merged.
type KeysOptions struct {
	IO     *iostreams.IOStreams
	Dir    string // the key directory serve uses (auth.keys_dir)
	Init   bool   // create the directory and a first key when there is none
	Output string
	Action string // ls, rotate, retire
	KeyID  string // for retire
}

// NewCmdKeys returns `hubctl keys`: the token service's signing keys, managed on the
// server host. A running `hubctl serve` picks changes up within a minute.
func NewCmdKeys(f *Factory, runF func(*KeysOptions) error) *cobra.Command {
	opts := &KeysOptions{}
	host := map[string]*hostConfig{}
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage the token service's signing keys (on the server host)",
		Long: `Manage the ES256 keys that sign registry tokens, in the key directory of a hubctl
serve on this host. The directory is the one serve uses, from the same configuration
(--config, HUBCTL_* variables such as HUBCTL_AUTH_KEYS_DIR, --data, --keys-dir); a
directory that does not exist is refused, so a mistyped setting cannot start a new key
set elsewhere, unless --init asks for one.

The newest key signs; every key verifies, so a rotation does not break tokens that are
still live. A running server reads the directory again every minute, and at once when it
meets a token signed by a key it does not know yet (a replica sharing the directory).
Retire an old key only after a token lifetime (auth.token_ttl) has passed since the
rotation: tokens it signed stop verifying at once.`,
		Example: `  hubctl keys ls --data /srv/hub
  hubctl keys rotate --config /etc/hubctl.yaml
  hubctl keys retire --data /srv/hub -- KID   # "--": a key id may start with "-"
  hubctl keys ls --keys-dir /srv/shared-keys --init`,
	}
	add := func(use, short string, args cobra.PositionalArgs) *cobra.Command {
		c := &cobra.Command{
			Use:   use,
			Short: short,
			Args:  checkArgs(args),
			RunE: func(c *cobra.Command, a []string) error {
				if opts.Output != "" && opts.Output != "json" {
					return usageErrorf(c, "invalid --output %q: want json", opts.Output)
				}
				cfg, err := host[c.Name()].load(c)
				if err != nil {
					return err
				}
				opts.IO, opts.Dir = f.IOStreams, cfg.Auth.KeysDir
				opts.Action = c.Name()
				if len(a) > 0 {
					opts.KeyID = a[0]
				}
				if runF != nil {
					return runF(opts)
				}
				return keysRun(opts)
			},
		}
		c.Flags().String("keys-dir", "", "Key `directory` (auth.keys_dir; default <data>/keys)")
		c.Flags().BoolVar(&opts.Init, "init", false, "Create the key directory and a first key when there is none")
		c.Flags().StringVarP(&opts.Output, "output", "o", "", "Output `format`: json (default a table)")
		_ = c.MarkFlagDirname("keys-dir")
		host[c.Name()] = bindHostConfig(f, c, map[string]string{"keys-dir": "auth.keys_dir"})
		return c
	}
	cmd.AddCommand(
		add("ls", "List the signing keys, newest (signing) first", cobra.NoArgs),
		add("rotate", "Create a new key that signs from now on", cobra.NoArgs),
		add("retire KID", "Delete a key: tokens it signed stop verifying", cobra.ExactArgs(1)),
	)
	return cmd
}

func keysRun(opts *KeysOptions) error {
	dir := opts.Dir
	if !opts.Init {
		if entries, err := os.ReadDir(dir); err != nil || !slices.ContainsFunc(entries, func(e os.DirEntry) bool {
			return strings.HasSuffix(e.Name(), ".pem")
		}) {
			return fmt.Errorf("no signing keys in %s (the key directory of this configuration: auth.keys_dir, HUBCTL_AUTH_KEYS_DIR, --keys-dir or <data>/keys); check the setting, or add --init to create a key set there", dir)
		}
	}
	ks, err := token.LoadOrCreateKeySet(dir)
	if err != nil {
		return err
	}
	switch opts.Action {
	case "rotate":
		kid, err := ks.Rotate()
		if err != nil {
			return err
		}
		fmt.Fprintf(opts.IO.ErrOut, "key %s signs new tokens from now on (a running server picks it up within a minute)\n", kid)
	case "retire":
		if err := ks.Retire(opts.KeyID); err != nil {
			return err
		}
		fmt.Fprintf(opts.IO.ErrOut, "key %s retired\n", opts.KeyID)
	}
	keys := ks.Keys()
	if opts.Output == "json" {
		return printJSON(opts.IO.Out, keys)
	}
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tCREATED\tSIGNING")
	for _, k := range keys {
		signing := ""
		if k.Signing {
			signing = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", k.ID, k.Created.UTC().Format(time.RFC3339), signing)
	}
	return tw.Flush()
}
