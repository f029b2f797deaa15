package commands

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/auth/token"
)

func TestKeysRotateAndRetire(t *testing.T) {
	data := t.TempDir()
	code, out, errOut := runIO(t, t.TempDir(), "", false, "keys", "ls", "--data", data, "-o", "json")
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
