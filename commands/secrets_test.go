package commands

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/secrets"
)

func TestAdminSecrets(t *testing.T) {
	data := t.TempDir()
	newHubDatabase(t, data)
	run := func(args ...string) (string, string) {
		t.Helper()
		code, out, errOut := runHubctl(t, append([]string{"admin", "secrets"}, args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, errOut)
		}
		return out, errOut
	}
	_, errOut := run("add-key", "--data", data)
	if !strings.Contains(errOut, "created") {
		t.Fatalf("first add-key: %s", errOut)
	}
	// A workflow secret sealed with the first key (issue 19): rotate must reseal it.
	ctx := context.Background()
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(data, "hubctl.db"))
	if err != nil {
		t.Fatal(err)
	}
	ring, err := secrets.FileKeyring(filepath.Join(data, "secrets.keys"), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetWorkflowSecret(ctx, ring, "acme", "DEPLOY_KEY", "value-1", 1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	run("add-key", "--data", data)
	out, _ := run("ls", "--data", data)
	if ids := strings.Fields(out); len(ids) != 2 {
		t.Fatalf("ls: %q", out)
	}
	if _, errOut := run("rotate", "--data", data); !strings.Contains(errOut, "resealed 1 secrets") {
		t.Fatalf("rotate: %s", errOut)
	}
	keys, err := secrets.LoadFile(filepath.Join(data, "secrets.keys"))
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys: %d %v", len(keys), err)
	}
	newest, _ := secrets.NewKeyring(keys[1])
	if db, err = sqlstore.OpenSQLite(ctx, filepath.Join(data, "hubctl.db")); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got, err := db.ResolveWorkflowSecrets(ctx, newest, "acme", []string{"DEPLOY_KEY"}); err != nil || got["DEPLOY_KEY"] != "value-1" {
		t.Fatalf("after rotate, with the new key alone: %v %v", got, err)
	}
}
