package web_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// TestExploreSearch searches through the store on the explore page of a real hub:
// labels read from the pushed config at push, a label holding markup rendered
// inert, a private repository found by nobody else (by name, label or digest), the
// filters, and the repository page paged in SQL.
func TestExploreSearch(t *testing.T) {
	h := startHub(t)
	h.user("alice")
	h.user("bob")
	tok := h.registryToken("alice", "alice-password", "alice/shop")
	evil := `<script>alert("label")</script>`
	shop := h.pushImage(tok, "alice/shop", "v1", "amd64", map[string]string{
		"org.opencontainers.image.description": "Storefront of the zebra shop",
		"org.opencontainers.image.vendor":      "Quokka Corp",
		"evil":                                 evil,
	}, 100)
	h.setVisibility("alice/shop", "public")
	stok := h.registryToken("alice", "alice-password", "alice/vault")
	vault := h.pushImage(stok, "alice/vault", "v1", "amd64", map[string]string{"team": "zebra-payments"}, 100)

	alice, bob, anon := h.browser(), h.browser(), h.browser()
	alice.login("alice")
	bob.login("bob")

	// Found by the description label, by another label, by the markup itself; the
	// label is shown escaped.
	for _, q := range []string{"storefront", "quokka", "<script>"} {
		p := anon.get("/explore?q=" + url.QueryEscape(q))
		if p.Status != 200 || !strings.Contains(p.Body, `href="/alice/shop"`) {
			t.Errorf("anonymous search %q does not find alice/shop:\n%s", q, p.Body)
		}
		if strings.Contains(p.Body, evil) || !strings.Contains(p.Body, "evil=&lt;script&gt;alert(&#34;label&#34;)&lt;/script&gt;") {
			t.Errorf("search %q: the label is not shown escaped:\n%s", q, p.Body)
		}
	}
	p := anon.get("/explore?q=zebra")
	if !strings.Contains(p.Body, "Storefront of the zebra shop") || strings.Contains(p.Body, "alice/vault") || strings.Contains(p.Body, "payments") {
		t.Errorf("anonymous search zebra:\n%s", p.Body)
	}
	// The private repository: found by alice, by nobody else, whatever the query.
	for _, q := range []string{"zebra-payments", "vault", vault.Digest[:14], strings.TrimPrefix(vault.Digest, "sha256:")[:10]} {
		for who, b := range map[string]*browser{"bob": bob, "anonymous": anon} {
			if p := b.get("/explore?q=" + url.QueryEscape(q) + "&visibility=private"); strings.Contains(p.Body, "alice/vault") || strings.Contains(p.Body, vault.Digest) {
				t.Errorf("%s finds the private repository by %q:\n%s", who, q, p.Body)
			}
		}
		if p := alice.get("/explore?q=" + url.QueryEscape(q)); !strings.Contains(p.Body, `href="/alice/vault`) {
			t.Errorf("alice does not find her private repository by %q:\n%s", q, p.Body)
		}
	}
	// A digest prefix links to the manifest.
	if p := anon.get("/explore?q=" + url.QueryEscape(shop.Digest[:16])); !strings.Contains(p.Body, `href="/alice/shop/-/manifests/`+shop.Digest+`"`) {
		t.Errorf("digest search:\n%s", p.Body)
	}
	if p := anon.get("/explore?q=sha256:ab"); p.Status != 200 || !strings.Contains(p.Body, "at least 4 hex digits") {
		t.Errorf("short digest prefix: %d\n%s", p.Status, p.Body)
	}
	// Filters.
	for _, tc := range []struct {
		who   *browser
		query string
		want  []string
		not   []string
	}{
		{alice, "visibility=private", []string{"alice/vault"}, []string{`href="/alice/shop"`}},
		{alice, "visibility=public", []string{`href="/alice/shop"`}, []string{"alice/vault"}},
		{alice, "kind=image&namespace=alice", []string{`href="/alice/shop"`, "alice/vault"}, nil},
		{alice, "kind=chart", nil, []string{"alice/shop", "alice/vault"}},
		{bob, "namespace=alice", []string{`href="/alice/shop"`}, []string{"alice/vault"}},
	} {
		p := tc.who.get("/explore?" + tc.query)
		for _, w := range tc.want {
			if !strings.Contains(p.Body, w) {
				t.Errorf("%s: lacks %q", tc.query, w)
			}
		}
		for _, w := range tc.not {
			if strings.Contains(p.Body, w) {
				t.Errorf("%s: shows %q", tc.query, w)
			}
		}
	}

	// The repository page pages its tags in SQL: 55 tags, 50 a page.
	man := h.manifest(tok, "alice/shop", "v1")
	for i := range 54 {
		h.put(tok, "PUT", fmt.Sprintf("/v2/alice/shop/manifests/t%02d", i), "application/vnd.oci.image.manifest.v1+json", man)
	}
	p = anon.get("/alice/shop?sort=name&order=asc")
	if !strings.Contains(p.Body, "(55)") || !strings.Contains(p.Body, "Page 1 of 2") || !strings.Contains(p.Body, `href="/alice/shop/-/tags/t00"`) ||
		strings.Contains(p.Body, `href="/alice/shop/-/tags/v1"`) {
		t.Errorf("tag page 1:\n%s", p.Body)
	}
	p = anon.get("/alice/shop?sort=name&order=asc&page=2")
	if !strings.Contains(p.Body, "Page 2 of 2") || !strings.Contains(p.Body, `href="/alice/shop/-/tags/v1"`) || strings.Contains(p.Body, `href="/alice/shop/-/tags/t00"`) ||
		!strings.Contains(p.Body, "alice/shop:t00") {
		t.Errorf("tag page 2 (the pull commands name the table's first tag):\n%s", p.Body)
	}
	if p := anon.get("/alice/shop?sort=name&page=99"); !strings.Contains(p.Body, "Page 2 of 2") {
		t.Errorf("a page past the end shows the last:\n%s", p.Body)
	}
}
