package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWorkflowInstance: the instance id is made once per data directory and read
// back the same by the next start; another directory gets another; a file that does
// not hold one is refused (never silently replaced: running job runs are claimed
// under it).
func TestWorkflowInstance(t *testing.T) {
	dir := t.TempDir()
	a, err := workflowInstance(dir)
	if err != nil || !instancePattern.MatchString(a) {
		t.Fatalf("first: %q, %v", a, err)
	}
	if again, err := workflowInstance(dir); err != nil || again != a {
		t.Fatalf("again: %q, %v (want %q)", again, err, a)
	}
	if other, err := workflowInstance(t.TempDir()); err != nil || other == a {
		t.Fatalf("another directory: %q, %v", other, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, workflowInstanceFile+".tmp-*")); len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	for _, bad := range []string{"", "../../etc", "ABCDEF012345", "0123456789abc", "hub-1; rm -rf /"} {
		if err := os.WriteFile(filepath.Join(dir, workflowInstanceFile), []byte(bad+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if id, err := workflowInstance(dir); err == nil || !strings.Contains(err.Error(), "remove the file") {
			t.Fatalf("%q: %q, %v", bad, id, err)
		}
	}
}
