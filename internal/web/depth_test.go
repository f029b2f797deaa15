package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/server/servertest"
)

// orgHub starts a hub with org acme (owner alice) whose public repository acme/app
// bob may read and carol may write through team grants.
func orgHub(t *testing.T) (*hub, string) {
	t.Helper()
	addr, cfg := servertest.StartConfig(t, "token", adminPassword)
	h := &hub{t: t, addr: addr}
	for _, u := range []string{"alice", "bob", "carol"} {
		h.user(u)
	}
	h.api("POST", "/api/v1/orgs", "alice", "alice-password", map[string]string{"name": "acme"}, http.StatusCreated)
	for team, user := range map[string]string{"readers": "bob", "writers": "carol"} {
		h.api("POST", "/api/v1/orgs/acme/teams", "alice", "alice-password", map[string]string{"name": team}, http.StatusCreated)
		h.api("PUT", "/api/v1/orgs/acme/teams/"+team+"/members/"+user, "alice", "alice-password", nil, http.StatusNoContent)
	}
	h.api("PUT", "/api/v1/orgs/acme/teams/readers/grants", "alice", "alice-password", map[string]string{"repository": "acme/app", "role": "read"}, http.StatusOK)
	h.api("PUT", "/api/v1/orgs/acme/teams/writers/grants", "alice", "alice-password", map[string]string{"repository": "acme/app", "role": "write"}, http.StatusOK)
	return h, cfg.DB.Path
}

// resolve is the digest tag of repo points at, through the registry.
func (h *hub) resolve(tok, repo, tag string) string {
	h.t.Helper()
	req, _ := http.NewRequest("HEAD", h.url("/v2/"+repo+"/manifests/"+tag), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("Docker-Content-Digest")
}

var restoreFormRe = regexp.MustCompile(`action="/acme/app/-/restore"`)

// TestTagHistoryRestore: moving a tag is recorded with who moved it; the tag page
// lists the moves to every reader, with "restore this tag here" for those who may
// push; a restore is refused to anonymous, a reader, without the form token or from
// another origin (changing nothing), and done for a writer, recorded as a move by
// them. GC keeps the manifest the tag moved away from.
func TestTagHistoryRestore(t *testing.T) {
	h, dbPath := orgHub(t)
	tok := h.registryToken("alice", "alice-password", "acme/app")
	first := h.pushImage(tok, "acme/app", "v1", "amd64", nil, 1000)
	second := h.pushImage(tok, "acme/app", "v1", "arm64", nil, 1200)
	h.setVisibility("acme/app", "public")

	admin, alice, bob, carol, anon := h.browser(), h.browser(), h.browser(), h.browser(), h.browser()
	if p := admin.loginAs("admin", adminPassword); p.Status != http.StatusSeeOther {
		t.Fatalf("admin sign-in: %d", p.Status)
	}
	alice.login("alice")
	bob.login("bob")
	carol.login("carol")
	for _, c := range []struct {
		who     string
		b       *browser
		restore bool
	}{{"anonymous", anon, false}, {"reader", bob, false}, {"writer", carol, true}, {"owner", alice, true}, {"site admin", admin, true}} {
		p := c.b.get("/acme/app/-/tags/v1")
		if p.Status != 200 || !strings.Contains(p.Body, `id="history"`) || !strings.Contains(p.Body, "<td>alice</td>") ||
			!strings.Contains(p.Body, `href="/acme/app/-/manifests/`+first.Digest+`"`) {
			t.Errorf("%s: tag page %d lacks the history", c.who, p.Status)
			continue
		}
		if got := restoreFormRe.MatchString(p.Body); got != c.restore {
			t.Errorf("%s: restore offered %v, want %v", c.who, got, c.restore)
		}
		wantHeaders(t, c.who+" tag page", p)
	}
	form := func(b *browser) url.Values {
		v := url.Values{"tag": {"v1"}, "digest": {first.Digest}}
		if b != anon {
			v.Set("csrf", b.get("/acme/app/-/tags/v1").csrf(t))
		}
		return v
	}
	refused := []struct {
		who    string
		b      *browser
		form   url.Values
		hdr    map[string]string
		status int
	}{
		{"anonymous", anon, form(anon), map[string]string{"Origin": anon.origin}, http.StatusForbidden},
		{"reader", bob, form(bob), map[string]string{"Origin": bob.origin}, http.StatusForbidden},
		{"writer without a token", carol, url.Values{"tag": {"v1"}, "digest": {first.Digest}}, map[string]string{"Origin": carol.origin}, http.StatusForbidden},
		{"writer from another origin", carol, form(carol), map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{"writer, a bad tag", carol, func() url.Values { v := form(carol); v.Set("tag", "../x"); return v }(), map[string]string{"Origin": carol.origin}, http.StatusBadRequest},
		{"writer, a digest not here", carol, func() url.Values { v := form(carol); v.Set("digest", digest.FromString("x").String()); return v }(), map[string]string{"Origin": carol.origin}, http.StatusNotFound},
	}
	for _, c := range refused {
		if p := c.b.postWith("/acme/app/-/restore", c.form, c.hdr); p.Status != c.status {
			t.Errorf("%s: restore %d, want %d", c.who, p.Status, c.status)
		}
		if got := h.resolve(tok, "acme/app", "v1"); got != second.Digest {
			t.Fatalf("%s: a refused restore moved the tag to %s", c.who, got)
		}
	}
	// A private repository's restore is the same 404 as a missing one to an outsider.
	h.setVisibility("acme/app", "private")
	outsider := h.browser()
	h.user("dave")
	outsider.login("dave")
	if p := outsider.post("/acme/app/-/restore", url.Values{"csrf": {outsider.get("/settings").csrf(t)}, "tag": {"v1"}, "digest": {first.Digest}}); p.Status != http.StatusNotFound {
		t.Errorf("outsider restore on a private repository: %d, want 404", p.Status)
	}
	h.setVisibility("acme/app", "public")

	p := carol.post("/acme/app/-/restore", form(carol))
	if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/acme/app/-/tags/v1" {
		t.Fatalf("writer restore: %d %q\n%s", p.Status, p.Header.Get("Location"), p.Body)
	}
	if got := h.resolve(tok, "acme/app", "v1"); got != first.Digest {
		t.Fatalf("after restore v1 = %s, want %s", got, first.Digest)
	}
	page := alice.get("/acme/app/-/tags/v1")
	if !strings.Contains(page.Body, "<td>carol</td>") || !strings.Contains(page.Body, `value="`+second.Digest+`"`) {
		t.Errorf("the restore is not in the history as carol's, with a way back:\n%s", page.Body)
	}

	// An immutable tag is not restored, as a push would not move it.
	h.api("PUT", "/api/v1/policies/acme", "admin", adminPassword, map[string]any{"immutable_tags": []string{"v*"}}, http.StatusOK)
	if p := carol.post("/acme/app/-/restore", func() url.Values { v := form(carol); v.Set("digest", second.Digest); return v }()); p.Status != http.StatusConflict ||
		!strings.Contains(p.Body, "immutable") {
		t.Errorf("restore of an immutable tag: %d", p.Status)
	}
	if got := h.resolve(tok, "acme/app", "v1"); got != first.Digest {
		t.Fatalf("a refused restore of an immutable tag moved it to %s", got)
	}

	// GC (phase 1 on the hub's own database) keeps the manifest v1 moved away from.
	st, err := sqlstore.OpenSQLite(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ms, err := st.GCUntaggedManifests(context.Background(), time.Now().Add(time.Hour), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Digest.String() == second.Digest {
			t.Fatalf("GC collected %s, which tag history holds", second.Digest)
		}
	}
	if p := alice.get("/acme/app/-/manifests/" + second.Digest); p.Status != 200 {
		t.Errorf("the held manifest after GC: %d", p.Status)
	}
}

// pushReadme attaches a text/markdown artifact to subject in repo.
func (h *hub) pushReadme(tok, repo string, subject image, text string) string {
	h.t.Helper()
	empty := []byte("{}")
	layer := []byte(text)
	for _, b := range [][]byte{empty, layer} {
		h.put(tok, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+digestOf(b), "application/octet-stream", b)
	}
	man, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "artifactType": "text/markdown",
		"config":  map[string]any{"mediaType": "application/vnd.oci.empty.v1+json", "digest": digestOf(empty), "size": len(empty)},
		"layers":  []map[string]any{{"mediaType": "text/markdown", "digest": digestOf(layer), "size": len(layer)}},
		"subject": map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject.Digest, "size": len(h.manifest(tok, repo, subject.Digest))},
	})
	h.put(tok, "PUT", "/v2/"+repo+"/manifests/"+digestOf(man), "application/vnd.oci.image.manifest.v1+json", man)
	return digestOf(man)
}

// TestRepositoryDepth: a readme from the description label is rendered with its
// script, event attributes and javascript: links inert; an attached readme artifact
// takes precedence and is listed with the referrers; the unique size counts only
// what no other manifest of the namespace references; the tag filter.
func TestRepositoryDepth(t *testing.T) {
	h := startHub(t)
	h.user("alice")
	tok := h.registryToken("alice", "alice-password", "alice/app")
	evil := "# Hello\n\n<script>alert('x')</script><img src=x onerror=alert(1)>\n\n[docs](javascript:alert(1)) and [site](https://example.com)"
	img := h.pushImage(tok, "alice/app", "v1.0", "amd64", map[string]string{"org.opencontainers.image.description": evil}, 4000)
	h.pushImage(tok, "alice/app", "v2.0", "arm64", nil, 100)
	h.pushImage(tok, "alice/app", "latest", "arm64", nil, 100)
	alice := h.browser()
	alice.login("alice")

	p := alice.get("/alice/app/-/tags/v1.0")
	body := strings.ToLower(p.Body)
	if p.Status != 200 || !strings.Contains(p.Body, "<h1>Hello</h1>") || !strings.Contains(p.Body, `href="https://example.com"`) {
		t.Fatalf("readme from the label not rendered: %d\n%s", p.Status, p.Body)
	}
	readme := body[strings.Index(body, `class="markdown"`):]
	readme = readme[:strings.Index(readme, "</section>")]
	for _, bad := range []string{"<script", "onerror", "javascript:", "<img"} {
		if strings.Contains(readme, bad) {
			t.Errorf("readme holds %q:\n%s", bad, readme)
		}
	}
	// The label's text is also shown escaped among the labels, never as markup.
	if strings.Contains(p.Body, "<script>alert('x')") {
		t.Error("a label's script reached the page unescaped")
	}
	// Unique size: the amd64 image's config and layer are its own.
	if !strings.Contains(p.Body, "Unique size") || !strings.Contains(p.Body, "<dd>"+humanBytes(img.Size)) {
		t.Errorf("unique size of v1.0, want %d bytes:\n%s", img.Size, p.Body)
	}
	h.pushReadme(tok, "alice/app", img, "# Attached readme\n\n<script>alert(2)</script>")
	p = alice.get("/alice/app/-/tags/v1.0")
	if !strings.Contains(p.Body, "<h1>Attached readme</h1>") || !strings.Contains(p.Body, `id="referrers"`) ||
		!strings.Contains(p.Body, "Readme</span>") || strings.Contains(strings.ToLower(p.Body), "alert(2)</script") {
		t.Errorf("attached readme / referrers:\n%s", p.Body)
	}

	// The repository page shows the readme of latest (which has none here) ...
	if p := alice.get("/alice/app"); strings.Contains(p.Body, `id="readme-h"`) {
		t.Errorf("alice/app shows a readme its latest tag lacks")
	}
	// ... or of a repository whose latest has one.
	dtok := h.registryToken("alice", "alice-password", "alice/doc")
	h.pushImage(dtok, "alice/doc", "latest", "amd64", map[string]string{"io.hubctl.image.readme": "# Doc\n\n<script>alert(3)</script>"}, 300)
	if p := alice.get("/alice/doc"); !strings.Contains(p.Body, "<h1>Doc</h1>") || strings.Contains(p.Body, "alert(3)</script") ||
		!strings.Contains(p.Body, `href="/alice/doc/-/tags/latest"`) {
		t.Errorf("repository readme:\n%s", p.Body)
	}

	// Tag filter.
	p = alice.get("/alice/app?glob=" + url.QueryEscape("v*"))
	if !strings.Contains(p.Body, `href="/alice/app/-/tags/v1.0"`) || !strings.Contains(p.Body, `href="/alice/app/-/tags/v2.0"`) ||
		strings.Contains(p.Body, `href="/alice/app/-/tags/latest"`) {
		t.Errorf("glob v*:\n%s", p.Body)
	}
	p = alice.get("/alice/app?glob=" + url.QueryEscape(`"><script>x</script>`))
	if p.Status != 200 || strings.Contains(p.Body, "<script>x") || !strings.Contains(p.Body, "No tag matches") {
		t.Errorf("hostile glob: %d", p.Status)
	}
}

// humanBytes is the page's size format for sizes of a few KiB.
func humanBytes(n int64) string { return fmt.Sprintf("%.1f KiB", float64(n)/1024) }
