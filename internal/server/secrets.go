package server

import (
	"errors"
	"fmt"

	"github.com/hubctl/hubctl/internal/config"
	"github.com/hubctl/hubctl/internal/secrets"
)

// ErrNoSecretsKey: a hub on PostgreSQL was given no key to seal secrets with.
var ErrNoSecretsKey = errors.New("secrets at rest: a hub on PostgreSQL needs secrets.keys_file (HUBCTL_SECRETS_KEYS_FILE) or " +
	config.EnvSecretsKey + " set, the same keys on every replica; a key made by one replica alone would leave the others " +
	"unable to read what it sealed (docs/operating.md, Secrets at rest)")

// OpenKeyring opens the keys that seal secrets at rest (webhook secrets and headers),
// from where cfg says: $HUBCTL_SECRETS_KEY, secrets.keys_file, or, on SQLite with
// neither, <data>/secrets.keys, which create makes at first start (0600) as the token
// signing keys are made. On PostgreSQL one of the two settings is required.
func OpenKeyring(cfg config.Config, create bool) (*secrets.Keyring, error) {
	switch {
	case cfg.Secrets.Key != "":
		keys, err := secrets.ParseKeys(cfg.Secrets.Key)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", config.EnvSecretsKey, err)
		}
		return secrets.NewKeyring(keys...)
	case cfg.Secrets.KeysFile != "":
		return secrets.FileKeyring(cfg.Secrets.KeysFile, false)
	case cfg.DB.Driver == "postgres":
		return nil, ErrNoSecretsKey
	}
	return secrets.FileKeyring(cfg.DefaultSecretsKeysFile(), create)
}

// SecretsKeysFile is the keys file cfg names, or "" when the keys come from
// $HUBCTL_SECRETS_KEY (or, on PostgreSQL, from nowhere yet).
func SecretsKeysFile(cfg config.Config) string {
	switch {
	case cfg.Secrets.Key != "":
		return ""
	case cfg.Secrets.KeysFile != "":
		return cfg.Secrets.KeysFile
	case cfg.DB.Driver == "postgres":
		return ""
	}
	return cfg.DefaultSecretsKeysFile()
}
