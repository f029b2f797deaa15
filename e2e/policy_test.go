package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestTagPolicies drives `hubctl repo policy` against a real hub: immutable tags
// refuse hubctl's and crane's pushes that would move them (with the reason in the
// error line) and deletes; retention's dry run lists and its run deletes; show prints
// the effective policy; the runs are audited.
func TestTagPolicies(t *testing.T) {
	s := startAuthServer(t)
	env := clientEnv(t, t.TempDir())
	runStdin(t, "", env, adminPassword+"\n", hubctlBin, "login", s.Addr, "-u", "admin", "--password-stdin")
	hub := func(args ...string) string {
		t.Helper()
		return run(t, "", env, hubctlBin, append(args, "--registry", s.Addr)...)
	}
	hub("repo", "policy", "set", "admin", "--immutable", "v*")
	hub("repo", "policy", "set", "admin/app", "--tags", "build-*", "--keep-newest", "1", "--always-keep", "build-keep")

	push := func(tag string, size int) (string, string, error) {
		img := buildImage(t, "amd64", randomLayer(t, size))
		lay := newLayout(t)
		lay.addImage(img, "1")
		return runErr(t, "", env, hubctlBin, "push", "oci:"+lay.Dir+":1", s.Addr+"/admin/app:"+tag)
	}
	for _, tag := range []string{"v1", "build-1", "build-2", "build-3", "build-keep"} {
		if _, se, err := push(tag, 1000+len(tag)); err != nil {
			t.Fatalf("push %s: %v\n%s", tag, err, se)
		}
	}
	_, se, err := push("v1", 4321)
	lines := strings.Split(strings.TrimSpace(se), "\n")
	if last := lines[len(lines)-1]; err == nil || !strings.HasPrefix(last, "hubctl: ") || !strings.Contains(last, "immutable") || !strings.Contains(last, `"v*"`) {
		t.Fatalf("moving v1 with hubctl push: err %v, stderr %q; want an error line naming the immutable pattern", err, se)
	}
	_, se, err = runErr(t, "", env, hubctlBin, "rm", s.Addr+"/admin/app:v1")
	if err == nil || !strings.Contains(se, "immutable") {
		t.Fatalf("hubctl rm of v1: err %v, stderr %q", err, se)
	}

	// crane: the refusal reaches another client too.
	if crane := toolOrSkip(t, "crane"); crane != "" {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "layer.tar"), layerTar(t, "x.bin", 2048), 0o644)
		cenv := clientEnv(t, t.TempDir())
		runStdin(t, dir, cenv, adminPassword, crane, "auth", "login", s.Addr, "-u", "admin", "--password-stdin")
		_, cse, err := runErr(t, dir, cenv, crane, "--insecure", "append", "--oci-empty-base", "-f", filepath.Join(dir, "layer.tar"), "-t", s.Addr+"/admin/app:v1")
		if err == nil || !strings.Contains(cse, "immutable") {
			t.Fatalf("crane moving v1: err %v, stderr %q", err, cse)
		}
	}

	show := hub("repo", "policy", "show", "admin/app")
	if !strings.Contains(show, "Effective") || !strings.Contains(show, "v*") || !strings.Contains(show, "keep newest 1") {
		t.Errorf("policy show:\n%s", show)
	}
	dry := hub("repo", "policy", "run", "admin/app", "--dry-run")
	if !strings.Contains(dry, "build-1") || !strings.Contains(dry, "build-2") || strings.Contains(dry, "build-3") || strings.Contains(dry, "build-keep") {
		t.Fatalf("dry run:\n%s", dry)
	}
	var rep struct {
		DeletedTags int `json:"deleted_tags"`
	}
	if err := json.Unmarshal([]byte(hub("repo", "policy", "run", "admin", "-o", "json")), &rep); err != nil || rep.DeletedTags != 2 {
		t.Fatalf("run: %+v %v", rep, err)
	}
	var tags []string
	json.Unmarshal([]byte(run(t, "", env, hubctlBin, "tags", "-o", "json", s.Addr+"/admin/app")), &tags)
	if !slices.Equal(tags, []string{"build-3", "build-keep", "v1"}) {
		t.Fatalf("tags after retention: %v", tags)
	}
	if n := count(t, s.DataDir, "SELECT COUNT(*) FROM audit_log WHERE actor = 'retention' AND action = 'delete'"); n != 2 {
		t.Errorf("%d audited retention deletes, want 2", n)
	}
	if n := count(t, s.DataDir, "SELECT COUNT(*) FROM audit_log WHERE action IN ('policy.set', 'retention.run')"); n != 3 {
		t.Errorf("%d audited policy changes and runs, want 3", n)
	}
	hub("repo", "policy", "rm", "admin")
	if _, se, err := push("v1", 999); err != nil {
		t.Fatalf("after removing the namespace policy, v1 may move: %v %s", err, se)
	}
}

// toolOrSkip is tool for an optional part of a test: "" (and a log line) when missing
// outside CI.
func toolOrSkip(t *testing.T, name string) string {
	t.Helper()
	if inCI() {
		return tool(t, name)
	}
	if p := filepath.Join(toolsDir(), name); exists(p) {
		return p
	}
	t.Logf("%s not installed: that part is skipped", name)
	return ""
}
