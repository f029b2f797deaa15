package commands

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/auth/token"
)

func TestKeysRotateAndRetire(t *testing.T) {
	data := t.TempDir()
	// Without keys there, the directory is refused: a mistyped setting must not start a
	// key set elsewhere (issue 16 item 3).
	code, _, errOut := runIO(t, t.TempDir(), "", false, "keys", "rotate", "--data", data)
	if code != 1 || !strings.Contains(errOut, "--init") {
		t.Fatalf("rotate where there are no keys: exit %d %q", code, errOut)
	}
	code, out, errOut := runIO(t, t.TempDir(), "", false, "keys", "ls", "--data", data, "--init", "-o", "json")
	var keys []token.KeyInfo
	if code != 0 || json.Unmarshal([]byte(out), &keys) != nil || len(keys) != 1 || !keys[0].Signing {
		t.Fatalf("ls: exit %d %q %q", code, out, errOut)
	}
	first := keys[0].ID
	code, out, errOut = runIO(t, t.TempDir(), "", false, "keys", "rotate", "--data", data)
	if code != 0 || !strings.Contains(errOut, "signs new tokens") || !strings.Contains(out, first) {
		t.Fatalf("rotate: exit %d %q %q", code, out, errOut)
	}
	code, _, errOut = runIO(t, t.TempDir(), "", false, "keys", "retire", "--data", data, "--", first)
	if code != 0 {
		t.Fatalf("retire: exit %d %q", code, errOut)
	}
	ks, err := token.LoadOrCreateKeySet(data + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	if got := ks.Keys(); len(got) != 1 || got[0].ID == first {
		t.Fatalf("keys after retire: %+v", got)
	}
	// The last key cannot go.
	if code, _, errOut = runIO(t, t.TempDir(), "", false, "keys", "retire", "--data", data, "--", ks.SigningKeyID()); code != 1 || !strings.Contains(errOut, "only key") {
		t.Fatalf("retire the last key: exit %d %q", code, errOut)
	}
}

// TestKeysReadServesConfiguration: `hubctl keys` finds the key directory where serve
// would, through --config and HUBCTL_AUTH_KEYS_DIR, not only --data (issue 16 item 3).
func TestKeysReadServesConfiguration(t *testing.T) {
	keysDir := t.TempDir() + "/shared-keys"
	ks, err := token.LoadOrCreateKeySet(keysDir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := t.TempDir() + "/hubctl.yaml"
	if err := os.WriteFile(cfg, []byte("data: "+t.TempDir()+"\nauth:\n  keys_dir: "+keysDir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runIO(t, t.TempDir(), "", false, "--config", cfg, "keys", "ls", "-o", "json")
	if code != 0 || !strings.Contains(out, ks.SigningKeyID()) {
		t.Fatalf("keys ls with --config: exit %d %q %q", code, out, errOut)
	}
	code, out, errOut = run(t, map[string]string{"HUBCTL_AUTH_KEYS_DIR": keysDir}, "keys", "rotate", "--data", t.TempDir())
	if code != 0 || !strings.Contains(errOut, "signs new tokens") {
		t.Fatalf("keys rotate with HUBCTL_AUTH_KEYS_DIR: exit %d %q %q", code, out, errOut)
	}
	if err := ks.Reload(); err != nil || len(ks.Keys()) != 2 {
		t.Fatalf("the rotation did not land in %s: %+v, %v", keysDir, ks.Keys(), err)
	}
}
