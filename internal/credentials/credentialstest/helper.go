// Package credentialstest builds the real credential helper program that tests use to
// prove credsStore and credHelpers are honoured.
package credentialstest

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// HelperName is the credsStore / credHelpers value that selects the test helper
// (docker runs docker-credential-<name>).
const HelperName = "hubtest"

// Helper is a built docker-credential-hubtest in a directory of its own.
type Helper struct {
	// Dir holds the program; tests put it on PATH.
	Dir string
}

// Entry is one credential as the helper stores it (the helper protocol's fields).
type Entry struct {
	ServerURL string
	Username  string
	Secret    string
}

// BuildHelper compiles docker-credential-hubtest into a temporary directory and puts
// that directory first on PATH for the rest of the test, where docker's config package
// looks the helper up.
func BuildHelper(t testing.TB) *Helper {
	t.Helper()
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the helper source")
	}
	src := filepath.Join(filepath.Dir(self), "testdata", "docker-credential-hubtest")
	dir := t.TempDir()
	// go test puts its own toolchain first on PATH.
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "docker-credential-"+HelperName), ".")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build credential helper: %v\n%s", err, out)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return &Helper{Dir: dir}
}

// Entries returns what the helper holds, keyed by server URL.
func (h *Helper) Entries(t testing.TB) map[string]Entry {
	t.Helper()
	all := map[string]Entry{}
	b, err := os.ReadFile(filepath.Join(h.Dir, "store.json"))
	if os.IsNotExist(err) {
		return all
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatalf("helper store: %v", err)
	}
	return all
}
