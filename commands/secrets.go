package commands

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/hubctl/hubctl/internal/config"
	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/internal/secrets"
	"github.com/hubctl/hubctl/internal/server"
)

// SecretsOptions are the inputs of `hubctl admin secrets …`, after the configuration
// was merged.
type SecretsOptions struct {
	IO     *iostreams.IOStreams
	Config config.Config
	Action string // ls, add-key, rotate
}

// NewCmdAdminSecrets returns `hubctl admin secrets`: the keys that seal secrets stored
// in the hub's database (webhook secrets and headers), managed on the host.
func NewCmdAdminSecrets(f *Factory, runF func(*SecretsOptions) error) *cobra.Command {
	opts := &SecretsOptions{}
	host := map[string]*hostConfig{}
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Manage the keys that seal secrets stored by the hub",
		Long: `Manage the AES-256 keys that seal the secrets the hub stores in its database (webhook
secrets and headers), with the configuration serve reads (--config, HUBCTL_* variables,
--data, --db, --keys-file). The keys are secrets.keys_file (HUBCTL_SECRETS_KEYS_FILE),
or HUBCTL_SECRETS_KEY, or on SQLite with neither <data>/secrets.keys.

The last key of the file seals; every key opens. To rotate: 'add-key' (a running serve
meets the new key id and reads the file again; replicas must share the file or be
given the same new line), then 'rotate' to reseal every stored secret with it, then
remove the old line from the file.`,
		Example: `  hubctl admin secrets ls --data /srv/hub
  hubctl admin secrets add-key --config /etc/hubctl.yaml
  hubctl admin secrets rotate --config /etc/hubctl.yaml`,
	}
	add := func(use, short string) *cobra.Command {
		c := &cobra.Command{
			Use:   use,
			Short: short,
			Args:  checkArgs(cobra.NoArgs),
			RunE: func(c *cobra.Command, a []string) error {
				cfg, err := host[c.Name()].load(c)
				if err != nil {
					return err
				}
				opts.IO, opts.Config, opts.Action = f.IOStreams, cfg, c.Name()
				if runF != nil {
					return runF(opts)
				}
				return secretsRun(c.Context(), opts)
			},
		}
		c.Flags().String("keys-file", "", "Keys `file` (secrets.keys_file; default <data>/secrets.keys on SQLite)")
		_ = c.MarkFlagFilename("keys-file")
		host[c.Name()] = bindHostConfig(f, c, map[string]string{"keys-file": "secrets.keys_file"})
		return c
	}
	cmd.AddCommand(
		add("ls", "List the key ids, the sealing one last"),
		add("add-key", "Add a new key that seals from now on (creating the keys file if needed)"),
		add("rotate", "Reseal every stored secret with the newest key"),
	)
	return cmd
}

func secretsRun(ctx context.Context, opts *SecretsOptions) error {
	cfg := opts.Config
	if opts.Action == "add-key" {
		path := server.SecretsKeysFile(cfg)
		if path == "" {
			return fmt.Errorf("the keys come from %s, not a file: append a new ID=BASE64 to it (a 32-byte key: openssl rand -base64 32) on every replica, restart them, then run 'hubctl admin secrets rotate'", config.EnvSecretsKey)
		}
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			r, err := secrets.FileKeyring(path, true)
			if err != nil {
				return err
			}
			fmt.Fprintf(opts.IO.ErrOut, "created %s with key %s\n", path, r.Newest())
			return nil
		}
		id, err := secrets.AddKey(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(opts.IO.ErrOut, "key %s seals from now on; run 'hubctl admin secrets rotate' to reseal the stored secrets with it\n", id)
		return nil
	}
	ring, err := server.OpenKeyring(cfg, false)
	if err != nil {
		return err
	}
	if opts.Action == "ls" {
		for _, id := range ring.IDs() {
			fmt.Fprintln(opts.IO.Out, id)
		}
		return nil
	}
	db, err := server.OpenDatabase(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	n, err := db.ResealSecrets(ctx, ring)
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.ErrOut, "resealed %d secrets with key %s\n", n, ring.Newest())
	return nil
}
