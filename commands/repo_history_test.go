package commands

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/server/servertest"
)

// historyHubCall sends one request to a hub and fails the test unless it answers want.
func historyHubCall(t *testing.T, host, method, path, user, pass, bearer, ctype string, body []byte, want int) http.Header {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+host+path, bytes.NewReader(body))
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %s %s", method, path, resp.Status, b)
	}
	if strings.HasPrefix(path, "/token") {
		var tr struct{ Token string }
		if err := json.Unmarshal(b, &tr); err != nil {
			t.Fatal(err)
		}
		resp.Header.Set("X-Test-Token", tr.Token)
	}
	return resp.Header
}

// historyPush pushes an image whose config says marker as user to repo:tag.
func historyPush(t *testing.T, host, user, pass, repo, tag, marker string) digest.Digest {
	t.Helper()
	tok := historyHubCall(t, host, "GET", "/token?service=hubctl&scope=repository:"+repo+":pull,push", user, pass, "", "", nil, 200).Get("X-Test-Token")
	cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "config": map[string]any{"Labels": map[string]string{"marker": marker}}})
	cd := digest.FromBytes(cfg)
	historyHubCall(t, host, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+cd.String(), "", "", tok, "application/octet-stream", cfg, 201)
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[]}`, cd, len(cfg))
	historyHubCall(t, host, "PUT", "/v2/"+repo+"/manifests/"+tag, "", "", tok, "application/vnd.oci.image.manifest.v1+json", []byte(m), 201)
	return digest.FromString(m)
}

// TestRepoHistoryAndRestoreCommands runs `hubctl repo history` and `hubctl repo
// restore` against a real hub in-process: the table lists both pushes with who made
// them, restore points the tag back (a pull by tag gets the old digest) and is the
// newest move; a reader is refused, a digest of another tag is refused, and neither
// moves the tag; an outsider is told the private repository does not exist.
func TestRepoHistoryAndRestoreCommands(t *testing.T) {
	const adminPass = "admin-password-for-history"
	host := servertest.Start(t, "token", adminPass)
	for _, u := range []string{"alice", "bob"} {
		historyHubCall(t, host, "POST", "/api/v1/users", "admin", adminPass, "", "application/json",
			[]byte(`{"name":"`+u+`","password":"`+u+`-password"}`), 201)
	}
	first := historyPush(t, host, "admin", adminPass, "alice/app", "v1", "first")
	second := historyPush(t, host, "alice", "alice-password", "alice/app", "v1", "second")
	other := historyPush(t, host, "alice", "alice-password", "alice/app", "other", "other")
	resolve := func() string {
		tok := historyHubCall(t, host, "GET", "/token?service=hubctl&scope=repository:alice/app:pull", "admin", adminPass, "", "", nil, 200).Get("X-Test-Token")
		return historyHubCall(t, host, "HEAD", "/v2/alice/app/manifests/v1", "", "", tok, "", nil, 200).Get("Docker-Content-Digest")
	}

	h := &hub{t: t, host: host}
	alice, bob := h.login("alice", "alice-password"), h.login("bob", "bob-password")

	out := h.ok(alice, "repo", "history", "alice/app:v1")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "TIME") || !strings.Contains(lines[0], "ACTOR") ||
		!strings.Contains(lines[1], "move") || !strings.Contains(lines[1], second.String()) || !strings.HasSuffix(lines[1], "alice") ||
		!strings.Contains(lines[2], "create") || !strings.Contains(lines[2], first.String()) || !strings.HasSuffix(lines[2], "admin") {
		t.Fatalf("repo history:\n%s", out)
	}
	var page hubtypes.TagHistoryPage
	if err := json.Unmarshal([]byte(h.ok(alice, "repo", "history", "alice/app:v1", "--json")), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Moves) != 2 || page.Moves[0].Digest != second.String() || page.Moves[0].Actor != "alice" {
		t.Errorf("repo history --json: %+v", page)
	}
	if code, out, errOut := h.run(alice, "", false, "repo", "history", "alice/app:v1", "--limit", "1"); code != 0 ||
		strings.Count(out, "\n") != 2 || !strings.Contains(errOut, fmt.Sprintf("older moves: add --before %d", page.Moves[0].ID)) {
		t.Errorf("--limit 1: %d %q %q", code, out, errOut)
	}

	// Refusals change nothing.
	h.fails(h.login("mallory", "x"), "unauthorized", "repo", "history", "alice/app:v1")
	h.fails(bob, "not found", "repo", "history", "alice/app:v1")
	historyHubCall(t, host, "PATCH", "/api/v1/repositories/alice/app", "alice", "alice-password", "", "application/json", []byte(`{"visibility":"public"}`), 200)
	h.fails(bob, "push right", "repo", "restore", "alice/app:v1", first.String())
	h.fails(alice, "not in the history of tag v1", "repo", "restore", "alice/app:v1", other.String())
	h.fails(alice, "want REPOSITORY:TAG", "repo", "restore", "alice/app", first.String())
	h.fails(alice, "--registry", "repo", "history", host+"/alice/app:v1")
	h.fails(alice, "invalid digest", "repo", "restore", "alice/app:v1", "sha256:nope")
	if got := resolve(); got != second.String() {
		t.Fatalf("a refused restore moved v1 to %s", got)
	}

	code, out, errOut := h.run(alice, "", false, "repo", "restore", "alice/app:v1", first.String())
	if code != 0 || out != "" || !strings.Contains(errOut, "alice/app:v1 now points at "+first.String()+" (was "+second.String()+")") {
		t.Fatalf("repo restore: %d %q %q", code, out, errOut)
	}
	if got := resolve(); got != first.String() {
		t.Fatalf("after restore v1 = %s, want %s", got, first)
	}
	if out := h.ok(bob, "repo", "history", "alice/app:v1"); !strings.Contains(strings.Split(out, "\n")[1], first.String()) {
		t.Errorf("the restore is not the newest move:\n%s", out)
	}
	var res hubtypes.TagRestore
	if err := json.Unmarshal([]byte(h.ok(alice, "repo", "restore", "alice/app:v1", second.String(), "-o", "json")), &res); err != nil ||
		res.Digest != second.String() || res.PreviousDigest != first.String() {
		t.Errorf("repo restore -o json: %+v %v", res, err)
	}
}
