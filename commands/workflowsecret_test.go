package commands

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/webhook"
)

// TestWorkflowSecretCommands: `hubctl workflow secret set|ls|rm` against a hub in
// process: the value from stdin or a file (never a flag), names only in listings,
// other users refused; `workflow apply` shows a webhook secret once and `hook-secret
// --rotate` prints a new one.
func TestWorkflowSecretCommands(t *testing.T) {
	h := newHub(t)
	bob := h.login("bob", "bob-password")
	admin := h.login("admin", "admin-password")
	const value = "s3cr3t-from-stdin"

	if code, out, errOut := h.run(bob, value+"\n", false, "workflow", "secret", "set", "bob/DEPLOY_KEY"); code != 0 || out != "" ||
		!strings.Contains(errOut, "bob/DEPLOY_KEY set") {
		t.Fatalf("set from stdin: exit %d, %q, %q", code, out, errOut)
	}
	got, err := h.store.ResolveWorkflowSecrets(context.Background(), h.keys, "bob", []string{"DEPLOY_KEY"})
	if err != nil || got["DEPLOY_KEY"] != value {
		t.Fatalf("stored %q, %v", got["DEPLOY_KEY"], err)
	}
	file := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(file, []byte("line one\nline two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.ok(bob, "workflow", "secret", "set", "bob/MULTI", "--from-file", file)
	if got, _ := h.store.ResolveWorkflowSecrets(context.Background(), h.keys, "bob", []string{"MULTI"}); got["MULTI"] != "line one\nline two" {
		t.Fatalf("from file: %q", got["MULTI"])
	}
	h.fails(bob, "empty", "workflow", "secret", "set", "bob/EMPTY")
	h.fails(bob, "no such file", "workflow", "secret", "set", "bob/X", "--from-file", filepath.Join(t.TempDir(), "missing"))
	h.fails(bob, "HUBCTL_", "workflow", "secret", "set", "bob/HUBCTL_X", "--from-file", file)
	h.fails(bob, "NAMESPACE/NAME", "workflow", "secret", "set", "DEPLOY_KEY", "--from-file", file)
	h.fails(bob, "unknown flag", "workflow", "secret", "set", "bob/X", "--value", "oops")
	big := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(big, []byte(strings.Repeat("x", 49<<10)), 0o600); err != nil {
		t.Fatal(err)
	}
	h.fails(bob, "exceeds", "workflow", "secret", "set", "bob/BIG", "--from-file", big)

	out := h.ok(bob, "workflow", "secret", "ls", "bob")
	if !strings.HasPrefix(out, "SECRET") || !strings.Contains(out, "bob/DEPLOY_KEY") || !strings.Contains(out, "bob/MULTI") ||
		strings.Contains(out, value) || strings.Contains(out, "line one") {
		t.Fatalf("ls:\n%s", out)
	}
	var list []hubtypes.WorkflowSecret
	if err := json.Unmarshal([]byte(h.ok(bob, "workflow", "secret", "ls", "bob", "-o", "json")), &list); err != nil || len(list) != 2 {
		t.Fatalf("ls -o json: %v %+v", err, list)
	}
	// alice, made here without rights on bob's namespace, sees and changes nothing.
	h.user("alice", "alice-password", false)
	alice := h.login("alice", "alice-password")
	h.fails(alice, "not found", "workflow", "secret", "ls", "bob")
	h.fails(alice, "not found", "workflow", "secret", "rm", "bob/DEPLOY_KEY")
	if code, _, errOut := h.run(alice, "x", false, "workflow", "secret", "set", "bob/DEPLOY_KEY"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Fatalf("alice set: %d %q", code, errOut)
	}
	h.ok(admin, "workflow", "secret", "ls", "bob") // a site admin administers every namespace

	h.ok(bob, "workflow", "secret", "rm", "bob/DEPLOY_KEY")
	h.fails(bob, "not found", "workflow", "secret", "rm", "bob/DEPLOY_KEY")
	entries, err := h.store.ListAudit(context.Background(), accounts.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range entries {
		if strings.Contains(e.Detail, value) || strings.Contains(e.Detail, "line one") {
			t.Fatalf("audit holds a value: %+v", e)
		}
		actions = append(actions, e.Action)
	}
	if s := strings.Join(actions, " "); !strings.Contains(s, "workflow.secret.set") || !strings.Contains(s, "workflow.secret.delete") {
		t.Fatalf("audit actions %v", actions)
	}

	// The webhook secret: shown by the first apply only, on stdout; rotated on demand.
	wf := filepath.Join(t.TempDir(), "hooked.yaml")
	if err := os.WriteFile(wf, []byte("name: hooked\non:\n  webhook:\njobs:\n  a:\n    image: alpine\n    steps:\n      - run: \"true\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, first, errOut := h.run(bob, "", false, "workflow", "apply", wf, "--namespace", "bob")
	if code != 0 || !strings.HasPrefix(first, webhook.SecretPrefix) || !strings.Contains(errOut, "/api/v1/hooks/workflows/bob/hooked") {
		t.Fatalf("apply: exit %d, stdout %q, stderr %q", code, first, errOut)
	}
	if again := h.ok(bob, "workflow", "apply", wf, "--namespace", "bob"); again != "" {
		t.Fatalf("second apply printed %q", again)
	}
	h.fails(bob, "--rotate", "workflow", "hook-secret", "bob/hooked")
	rotated := h.ok(bob, "workflow", "hook-secret", "bob/hooked", "--rotate")
	if !strings.HasPrefix(rotated, webhook.SecretPrefix) || rotated == first {
		t.Fatalf("rotated %q", rotated)
	}
	h.fails(alice, "not found", "workflow", "hook-secret", "bob/hooked", "--rotate")
}
