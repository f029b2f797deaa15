package hubapi_test

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

// liveHub is a real hub in-process (the same server as `hubctl serve`, token auth),
// spoken to over HTTP as any client does.
type liveHub struct {
	t         *testing.T
	host      string
	adminPass string
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) code() string {
	var e struct{ Errors []struct{ Code string } }
	if json.Unmarshal(a.body, &e) != nil || len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

// call sends a request as user/pass (Basic), or with a bearer token when pass starts
// with "Bearer ", or anonymously when both are empty.
func (h *liveHub) call(method, path, user, pass, ctype string, body []byte) answer {
	h.t.Helper()
	req, err := http.NewRequest(method, "http://"+h.host+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if tok, ok := strings.CutPrefix(pass, "Bearer "); ok {
		req.Header.Set("Authorization", "Bearer "+tok)
	} else if user != "" {
		req.SetBasicAuth(user, pass)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

func (h *liveHub) must(a answer, status int) answer {
	h.t.Helper()
	if a.status != status {
		h.t.Fatalf("status %d, want %d: %s", a.status, status, a.body)
	}
	return a
}

func (h *liveHub) api(method, path, user, pass string, body any) answer {
	h.t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	return h.call(method, path, user, pass, "application/json", b)
}

// registryToken is a registry token of user for repo (pull and push, as granted).
func (h *liveHub) registryToken(user, pass, repo string) string {
	h.t.Helper()
	var tr struct{ Token string }
	if err := json.Unmarshal(h.must(h.call("GET", "/token?service=hubctl&scope=repository:"+repo+":pull,push", user, pass, "", nil), 200).body, &tr); err != nil {
		h.t.Fatal(err)
	}
	return "Bearer " + tr.Token
}

// push uploads an image whose config says marker and tags it.
func (h *liveHub) push(user, pass, repo, tag, marker string) digest.Digest {
	h.t.Helper()
	bearer := h.registryToken(user, pass, repo)
	cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "config": map[string]any{"Labels": map[string]string{"marker": marker}}})
	cd := digest.FromBytes(cfg)
	h.must(h.call("POST", "/v2/"+repo+"/blobs/uploads/?digest="+cd.String(), "", bearer, "application/octet-stream", cfg), 201)
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[]}`, cd, len(cfg))
	h.must(h.call("PUT", "/v2/"+repo+"/manifests/"+tag, "", bearer, "application/vnd.oci.image.manifest.v1+json", []byte(m)), 201)
	return digest.FromString(m)
}

// resolve is the digest a pull of repo:tag gets.
func (h *liveHub) resolve(repo, tag string) digest.Digest {
	h.t.Helper()
	bearer := h.registryToken("admin", h.adminPass, repo)
	a := h.call("HEAD", "/v2/"+repo+"/manifests/"+tag, "", bearer, "", nil)
	if a.status != 200 {
		h.t.Fatalf("HEAD %s:%s: %d", repo, tag, a.status)
	}
	return digest.Digest(a.header.Get("Docker-Content-Digest"))
}

func (h *liveHub) history(repo, tag, user, pass, query string) hubtypes.TagHistoryPage {
	h.t.Helper()
	var p hubtypes.TagHistoryPage
	if err := json.Unmarshal(h.must(h.api("GET", "/api/v1/repositories/"+repo+"/tags/"+tag+"/history"+query, user, pass, nil), 200).body, &p); err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *liveHub) restore(repo, tag, user, pass string, d digest.Digest) answer {
	h.t.Helper()
	return h.api("POST", "/api/v1/repositories/"+repo+"/tags/"+tag+"/restore", user, pass, hubtypes.RestoreTagRequest{Digest: d.String()})
}

// TestTagHistoryRestore runs the tag history endpoints on a real hub: two pushes under
// one tag are listed newest first with who pushed; a restore points the tag back
// (a pull by tag gets the old digest), is in the history and the audit log. The
// attacker's side: a digest not in the tag's history (another repository's manifest,
// another tag's), a reader, a pull-only token, an outsider on a private repository
// (the same 404 as a missing one) and an immutable tag are all refused and change
// nothing.
func TestTagHistoryRestore(t *testing.T) {
	const adminPass = "admin-password-for-history"
	h := &liveHub{t: t, host: servertest.Start(t, "token", adminPass), adminPass: adminPass}
	for _, u := range []string{"alice", "bob", "mallory"} {
		h.must(h.api("POST", "/api/v1/users", "admin", adminPass, map[string]string{"name": u, "password": u + "-password"}), 201)
	}
	const repo = "alice/app"
	first := h.push("admin", adminPass, repo, "v1", "first")
	second := h.push("alice", "alice-password", repo, "v1", "second")
	otherTag := h.push("alice", "alice-password", repo, "other", "other-tag")
	elsewhere := h.push("mallory", "mallory-password", "mallory/bait", "v1", "bait")

	p := h.history(repo, "v1", "alice", "alice-password", "")
	if p.Repository != repo || p.Tag != "v1" || len(p.Moves) != 2 || p.Next != 0 {
		t.Fatalf("history = %+v", p)
	}
	if m := p.Moves[0]; m.Action != "move" || m.Digest != second.String() || m.PreviousDigest != first.String() || m.Actor != "alice" || m.Time == "" {
		t.Errorf("newest move = %+v", m)
	}
	if m := p.Moves[1]; m.Action != "create" || m.Digest != first.String() || m.PreviousDigest != "" || m.Actor != "admin" {
		t.Errorf("first move = %+v", m)
	}
	// Pages, by move id as the audit log.
	p1 := h.history(repo, "v1", "alice", "alice-password", "?limit=1")
	if len(p1.Moves) != 1 || p1.Moves[0].ID != p.Moves[0].ID || p1.Next != p.Moves[0].ID {
		t.Errorf("page 1 = %+v", p1)
	}
	p2 := h.history(repo, "v1", "alice", "alice-password", fmt.Sprintf("?limit=1&before=%d", p1.Next))
	if len(p2.Moves) != 1 || p2.Moves[0].ID != p.Moves[1].ID || p2.Next != 0 {
		t.Errorf("page 2 = %+v", p2)
	}
	h.must(h.api("GET", "/api/v1/repositories/"+repo+"/tags/v1/history?limit=0", "alice", "alice-password", nil), 400)
	h.must(h.api("GET", "/api/v1/repositories/"+repo+"/tags/v1/history?before=x", "alice", "alice-password", nil), 400)
	h.must(h.api("GET", "/api/v1/repositories/"+repo+"/tags/..x/history", "alice", "alice-password", nil), 400)
	// The repository endpoint itself is unchanged under the same prefix.
	h.must(h.api("GET", "/api/v1/repositories/"+repo, "alice", "alice-password", nil), 200)
	h.must(h.api("POST", "/api/v1/repositories/"+repo, "alice", "alice-password", map[string]string{}), 405)

	unchanged := func(who string) {
		t.Helper()
		if got := h.resolve(repo, "v1"); got != second {
			t.Fatalf("%s: a refused restore moved v1 to %s", who, got)
		}
		if n := len(h.history(repo, "v1", "alice", "alice-password", "").Moves); n != 2 {
			t.Fatalf("%s: a refused restore left %d moves, want 2", who, n)
		}
	}

	// A private repository: an outsider learns nothing, the answer is a missing one's.
	missing := h.restore("alice/nothing", "v1", "mallory", "mallory-password", first)
	for name, a := range map[string]answer{
		"restore": h.restore(repo, "v1", "mallory", "mallory-password", first),
		"history": h.api("GET", "/api/v1/repositories/"+repo+"/tags/v1/history", "mallory", "mallory-password", nil),
	} {
		if a.status != 404 || a.code() != "NAME_UNKNOWN" ||
			!bytes.Equal(bytes.ReplaceAll(a.body, []byte(repo), []byte("alice/nothing")), missing.body) {
			t.Errorf("outsider %s on a private repository: %d %s, want what a missing one answers: %s", name, a.status, a.body, missing.body)
		}
	}
	unchanged("outsider")

	// A reader (the repository is public) may read the history but not restore.
	h.must(h.api("PATCH", "/api/v1/repositories/"+repo, "alice", "alice-password", map[string]string{"visibility": "public"}), 200)
	if n := len(h.history(repo, "v1", "bob", "bob-password", "").Moves); n != 2 {
		t.Errorf("a reader sees %d moves, want 2", n)
	}
	if a := h.restore(repo, "v1", "bob", "bob-password", first); a.status != 403 || a.code() != "DENIED" {
		t.Errorf("reader restore: %d %s", a.status, a.body)
	}
	if a := h.restore(repo, "v1", "", "", first); a.status != 401 {
		t.Errorf("anonymous restore: %d %s", a.status, a.body)
	}
	unchanged("reader")

	// The owner's token made for pulling only may not restore.
	var tok hubtypes.CreatedToken
	must(t, json.Unmarshal(h.must(h.api("POST", "/api/v1/tokens", "alice", "alice-password",
		hubtypes.CreateTokenRequest{Name: "pull-only", Scopes: []string{"repository:" + repo + ":pull"}}), 201).body, &tok))
	if a := h.restore(repo, "v1", "", "Bearer "+tok.Token, first); a.status != 403 || a.code() != "DENIED" {
		t.Errorf("pull-only token restore: %d %s", a.status, a.body)
	}
	unchanged("pull-only token")

	// A digest the tag never named: another repository's manifest (which a push
	// right here must not reach through a restore), another tag's, a made-up one.
	for name, d := range map[string]digest.Digest{"another repository's": elsewhere, "another tag's": otherTag, "unknown": digest.FromString("nothing")} {
		if a := h.restore(repo, "v1", "alice", "alice-password", d); a.status != 404 || a.code() != "MANIFEST_UNKNOWN" {
			t.Errorf("restore to %s manifest: %d %s", name, a.status, a.body)
		}
	}
	for name, body := range map[string]string{"no digest": `{}`, "bad digest": `{"digest":"sha256:xyz"}`, "unknown field": `{"digest":"` + first.String() + `","tag":"x"}`} {
		if a := h.call("POST", "/api/v1/repositories/"+repo+"/tags/v1/restore", "alice", "alice-password", "application/json", []byte(body)); a.status != 400 {
			t.Errorf("restore with %s: %d %s", name, a.status, a.body)
		}
	}
	unchanged("digest not in history")

	// The owner restores: the tag points back, the move is in the history and audited.
	var res hubtypes.TagRestore
	must(t, json.Unmarshal(h.must(h.restore(repo, "v1", "alice", "alice-password", first), 200).body, &res))
	if res.Repository != repo || res.Tag != "v1" || res.Digest != first.String() || res.PreviousDigest != second.String() {
		t.Errorf("restore answer = %+v", res)
	}
	if got := h.resolve(repo, "v1"); got != first {
		t.Fatalf("after restore v1 = %s, want %s", got, first)
	}
	p = h.history(repo, "v1", "bob", "bob-password", "")
	if len(p.Moves) != 3 || p.Moves[0].Action != "move" || p.Moves[0].Digest != first.String() || p.Moves[0].PreviousDigest != second.String() || p.Moves[0].Actor != "alice" {
		t.Errorf("history after restore = %+v", p.Moves)
	}
	var audit hubtypes.AuditPage
	must(t, json.Unmarshal(h.must(h.api("GET", "/api/v1/audit?action=tag.restore", "admin", adminPass, nil), 200).body, &audit))
	if len(audit.Entries) != 1 || audit.Entries[0].Actor != "alice" || audit.Entries[0].Target != repo+":v1" ||
		audit.Entries[0].Detail != second.String()+" -> "+first.String() {
		t.Errorf("audit = %+v", audit.Entries)
	}
	// The restored manifest's move back is itself restorable.
	h.must(h.restore(repo, "v1", "alice", "alice-password", second), 200)
	if got := h.resolve(repo, "v1"); got != second {
		t.Fatalf("after the second restore v1 = %s, want %s", got, second)
	}

	// An immutable tag is refused as a push to it is: the same code and status.
	h.must(h.api("PUT", "/api/v1/policies/alice", "admin", adminPass, map[string]any{"immutable_tags": []string{"v*"}}), 200)
	bearer := h.registryToken("alice", "alice-password", repo)
	push := h.call("PUT", "/v2/"+repo+"/manifests/v1", "", bearer, "application/vnd.oci.image.manifest.v1+json",
		h.call("GET", "/v2/"+repo+"/manifests/"+first.String(), "", bearer, "", nil).body)
	a := h.restore(repo, "v1", "alice", "alice-password", first)
	if a.status != http.StatusConflict || a.code() != "DENIED" || push.status != a.status || push.code() != a.code() ||
		!strings.Contains(string(a.body), "tag v1 of alice/app is immutable (") {
		t.Errorf("immutable tag: restore %d %s; push %d %s", a.status, a.body, push.status, push.body)
	}
	if got := h.resolve(repo, "v1"); got != second {
		t.Fatalf("a refused restore of an immutable tag moved it to %s", got)
	}
	if n := len(h.history(repo, "v1", "alice", "alice-password", "").Moves); n != 4 {
		t.Errorf("moves after the immutable refusal: %d, want 4", n)
	}
}
