package commands

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/server/servertest"
	"github.com/opencontainers/go-digest"
)

// TestSearchCommand runs `hubctl search` against a real hub in-process (the same
// server as `hubctl serve`, with token auth): images pushed with labels are found by
// them, as anonymous (public only), as another user and as their owner; the table
// escapes what a label says; --json prints the API's answer.
func TestSearchCommand(t *testing.T) {
	const adminPass = "admin-password-for-search"
	host := servertest.Start(t, "token", adminPass)
	call := func(method, path, user, pass, ctype string, body []byte, want int) []byte {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+host+path, bytes.NewReader(body))
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		if strings.HasPrefix(pass, "Bearer ") {
			req.Header.Set("Authorization", pass)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %s %s", method, path, resp.Status, b.String())
		}
		return b.Bytes()
	}
	push := func(repo string, labels map[string]string) digest.Digest {
		t.Helper()
		var tr struct{ Token string }
		if err := json.Unmarshal(call("GET", "/token?service=hubctl&scope=repository:"+repo+":pull,push", "admin", adminPass, "", nil, 200), &tr); err != nil {
			t.Fatal(err)
		}
		bearer := "Bearer " + tr.Token
		cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "config": map[string]any{"Labels": labels}})
		cd := digest.FromBytes(cfg)
		call("POST", "/v2/"+repo+"/blobs/uploads/?digest="+cd.String(), "", bearer, "application/octet-stream", cfg, 201)
		m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[]}`, cd, len(cfg))
		call("PUT", "/v2/"+repo+"/manifests/v1", "", bearer, "application/vnd.oci.image.manifest.v1+json", []byte(m), 201)
		return digest.FromString(m)
	}
	open := push("admin/storefront", map[string]string{"org.opencontainers.image.description": "Quokka shop\x1b[2J", "vendor": "zebra"})
	push("admin/vault", map[string]string{"team": "zebra-payments"})
	call("PATCH", "/api/v1/repositories/admin/storefront", "admin", adminPass, "application/json", []byte(`{"visibility":"public"}`), 200)
	call("POST", "/api/v1/users", "admin", adminPass, "application/json", []byte(`{"name":"bob","password":"bob-password"}`), 201)

	h := &hub{t: t, host: host}
	anonymous, admin, bob := t.TempDir(), h.login("admin", adminPass), h.login("bob", "bob-password")

	out := h.ok(anonymous, "search", "quokka")
	if !strings.Contains(out, "REPOSITORY") || !strings.Contains(out, "admin/storefront") || !strings.Contains(out, "public") ||
		!strings.Contains(out, `Quokka shop\x1b[2J`) || strings.Contains(out, "\x1b") {
		t.Errorf("anonymous search quokka:\n%q", out)
	}
	for who, cfg := range map[string]string{"anonymous": anonymous, "bob": bob} {
		if out := h.ok(cfg, "search", "zebra"); strings.Contains(out, "admin/vault") || !strings.Contains(out, "admin/storefront") {
			t.Errorf("%s: search zebra:\n%s", who, out)
		}
		if out := h.ok(cfg, "search", "payments"); strings.Contains(out, "admin/vault") {
			t.Errorf("%s finds the private repository:\n%s", who, out)
		}
	}
	var page hubtypes.SearchPage
	if err := json.Unmarshal([]byte(h.ok(admin, "search", "zebra", "--json")), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Results) != 2 || page.Results[0].Repository != "admin/vault" || page.Results[0].Labels["team"] != "zebra-payments" || page.Results[0].Kind != "image" {
		t.Errorf("admin search zebra --json: %+v", page)
	}
	if out := h.ok(admin, "search", "--visibility", "private", "-o", "json"); !strings.Contains(out, `"admin/vault"`) || strings.Contains(out, "storefront") {
		t.Errorf("--visibility private: %s", out)
	}
	if out := h.ok(anonymous, "search", open.String()[:14]); !strings.Contains(out, "DIGEST") || !strings.Contains(out, open.String()) {
		t.Errorf("digest search:\n%s", out)
	}
	if _, out, errOut := h.run(admin, "", false, "search", "--kind", "image", "--limit", "1"); !strings.Contains(out, "admin/vault") || !strings.Contains(errOut, "more results: add --after ") {
		t.Errorf("--limit 1: %q %q", out, errOut)
	}
	h.fails(admin, "invalid --kind", "search", "--kind", "vm")
	h.fails(admin, "at least 4 hex digits", "search", "sha256:ab")
	h.fails(admin, "at least 3 characters", "search", "db")
	h.fails(h.login("bob", "wrong"), "unauthorized", "search", "x")
}
