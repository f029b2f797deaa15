package commands

import (
	"strings"
	"testing"
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
	run("add-key", "--data", data)
	out, _ := run("ls", "--data", data)
	if ids := strings.Fields(out); len(ids) != 2 {
		t.Fatalf("ls: %q", out)
	}
	if _, errOut := run("rotate", "--data", data); !strings.Contains(errOut, "resealed 0 secrets") {
		t.Fatalf("rotate: %s", errOut)
	}
}
