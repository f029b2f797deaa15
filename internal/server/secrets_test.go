package server

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hubctl/hubctl/internal/config"
)

func TestOpenKeyring(t *testing.T) {
	data := t.TempDir()
	cfg, err := config.Load(config.Sources{Flags: map[string]string{"data": data}})
	if err != nil {
		t.Fatal(err)
	}
	// SQLite, nothing configured: the keys file is made at first start, 0600, and kept.
	if _, err := OpenKeyring(cfg, false); err == nil {
		t.Fatal("opened keys that do not exist without create")
	}
	r, err := OpenKeyring(cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(data, "secrets.keys"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keys file: %v %v", fi, err)
	}
	again, err := OpenKeyring(cfg, true)
	if err != nil || again.Newest() != r.Newest() {
		t.Fatalf("second start: %v, key %s want %s", err, again.Newest(), r.Newest())
	}
	// PostgreSQL without a configured key has no keyring (serve runs without webhooks).
	pg, err := config.Load(config.Sources{Flags: map[string]string{"data": data, "db.path": "postgres://h@127.0.0.1:1/h"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenKeyring(pg, true); !errors.Is(err, ErrNoSecretsKey) {
		t.Fatalf("postgres without a key: %v", err)
	}
	env := map[string]string{config.EnvSecretsKey: "k1=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,k2=AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="}
	pg, err = config.Load(config.Sources{Flags: map[string]string{"data": data, "db.path": "postgres://h@127.0.0.1:1/h"},
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := OpenKeyring(pg, true); err != nil || r.Newest() != "k2" {
		t.Fatalf("postgres with %s: %v", config.EnvSecretsKey, err)
	}
}
