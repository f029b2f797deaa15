package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/ratelimit"
	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/web"
)

// tagPageBudget is the most a tag page may weigh, HTML + CSS + JS uncompressed
// (issue 21's target).
const tagPageBudget = 100 << 10

// pushRealisticImage pushes, for os/arch, an image shaped like a service built on a
// distribution base: layers layers (small: only their descriptors reach the page), a
// history with an empty step between each pair of layers, env, ports, volumes and
// labels as real images carry them. It returns the manifest's digest and size.
func (h *hub) pushRealisticImage(tok, repo, arch string, layers int) (string, int) {
	h.t.Helper()
	var descs []map[string]any
	var diffIDs []string
	var history []map[string]any
	for i := range layers {
		layer := []byte(fmt.Sprintf("%s %s layer %d", repo, arch, i))
		h.put(tok, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+digestOf(layer), "application/octet-stream", layer)
		descs = append(descs, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digestOf(layer), "size": len(layer)})
		diffIDs = append(diffIDs, digestOf(layer))
		history = append(history,
			map[string]any{"created": "2026-11-30T10:00:00Z", "created_by": fmt.Sprintf(`/bin/sh -c #(nop)  ENV STEP_%d=value-of-the-step-%d`, i, i), "empty_layer": true},
			map[string]any{"created": "2026-11-30T10:00:00Z", "created_by": fmt.Sprintf(`RUN /bin/sh -c apt-get update && apt-get install -y --no-install-recommends ca-certificates curl tzdata package-%d && rm -rf /var/lib/apt/lists/* # buildkit`, i), "comment": "buildkit.dockerfile.v0"})
	}
	labels := map[string]string{}
	for _, k := range []string{"title", "description", "url", "source", "version", "revision", "vendor", "licenses", "authors", "documentation", "created", "base.name", "base.digest"} {
		labels["org.opencontainers.image."+k] = "a value of " + k + " as a CI system writes it, about sixty characters"
	}
	var env []string
	for i := range 15 {
		env = append(env, fmt.Sprintf("SETTING_%d=/usr/local/share/app/setting-%d", i, i))
	}
	cfg, _ := json.Marshal(map[string]any{
		"architecture": arch, "os": "linux", "created": "2026-11-30T10:00:00Z",
		"config": map[string]any{"Env": env, "Entrypoint": []string{"/usr/local/bin/docker-entrypoint.sh"}, "Cmd": []string{"app", "--config", "/etc/app/config.yaml"},
			"WorkingDir": "/srv/app", "User": "app:app", "Labels": labels,
			"ExposedPorts": map[string]any{"8080/tcp": map[string]any{}, "9090/tcp": map[string]any{}}, "Volumes": map[string]any{"/var/lib/app": map[string]any{}}},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": diffIDs},
		"history": history,
	})
	h.put(tok, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+digestOf(cfg), "application/octet-stream", cfg)
	man, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digestOf(cfg), "size": len(cfg)},
		"layers": descs,
	})
	h.put(tok, "PUT", "/v2/"+repo+"/manifests/"+digestOf(man), "application/vnd.oci.image.manifest.v1+json", man)
	return digestOf(man), len(man)
}

var assetRe = regexp.MustCompile(`<(?:link rel="stylesheet" href|script src)="([^"]+)"`)

// weight is a page's HTML plus every stylesheet and script it loads, uncompressed,
// and how many of those assets there were.
func (b *browser) weight(path string) (html, total, assets int) {
	b.h.t.Helper()
	p := b.get(path)
	if p.Status != http.StatusOK {
		b.h.t.Fatalf("GET %s: %d\n%s", path, p.Status, p.Body)
	}
	total = len(p.Body)
	for _, m := range assetRe.FindAllStringSubmatch(p.Body, -1) {
		a := b.get(m[1])
		if a.Status != http.StatusOK || len(a.Body) == 0 {
			b.h.t.Fatalf("asset %s of %s: %d, %d bytes", m[1], path, a.Status, len(a.Body))
		}
		total += len(a.Body)
		assets++
	}
	return len(p.Body), total, assets
}

// TestTagPageWeight: the tag page of a realistic multi-platform image (four
// platforms of 30 layers and 60 history steps each, a dozen labels) and the page of
// one of its platforms stay under 100 KiB of HTML + CSS + JS, so a template or
// stylesheet that grows past it fails here.
func TestTagPageWeight(t *testing.T) {
	h := startHub(t)
	h.user("alice")
	tok := h.registryToken("alice", "alice-password", "alice/service")
	var ms []map[string]any
	var children []string
	for _, arch := range []string{"amd64", "arm64", "ppc64le", "s390x"} {
		d, size := h.pushRealisticImage(tok, "alice/service", arch, 30)
		children = append(children, d)
		ms = append(ms, map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": size,
			"platform": map[string]string{"os": "linux", "architecture": arch}})
	}
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": ms})
	h.put(tok, "PUT", "/v2/alice/service/manifests/v1.2.3", "application/vnd.oci.image.index.v1+json", idx)

	alice := h.browser()
	alice.login("alice")
	for _, c := range []struct{ path, want string }{
		{"/alice/service/-/tags/v1.2.3", "linux/s390x"},
		{"/alice/service/-/manifests/" + children[0], "package-29"},
	} {
		page := alice.get(c.path)
		if !strings.Contains(page.Body, c.want) {
			t.Fatalf("%s does not show %q: not the page this test means to weigh\n%s", c.path, c.want, page.Body)
		}
		html, total, assets := alice.weight(c.path)
		t.Logf("%s: HTML %d B, with %d assets %d B (%.1f KiB of %d KiB)", c.path, html, assets, total, float64(total)/1024, tagPageBudget>>10)
		if assets < 2 {
			t.Errorf("%s loads %d stylesheets and scripts, want the stylesheet and copy.js at least", c.path, assets)
		}
		if total > tagPageBudget {
			t.Errorf("%s weighs %d bytes (HTML %d), over the %d budget", c.path, total, html, tagPageBudget)
		}
	}
}

// TestNewRequiresSearch: a handler without Options.Search is refused at New, not
// when the first search or repository page is asked for.
func TestNewRequiresSearch(t *testing.T) {
	st, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	blobs, err := blobstore.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	o := web.Options{Accounts: st, Meta: st, Views: st, Blobs: blobs, Policy: &authz.Policy{Store: st}, Guard: ratelimit.NewGuard(ratelimit.GuardOptions{})}
	if _, err := web.New(o); err == nil || !strings.Contains(err.Error(), "Search") {
		t.Errorf("New without Search: %v, want an error naming Search", err)
	}
	o.Search = st
	if _, err := web.New(o); err != nil {
		t.Errorf("New with Search: %v", err)
	}
}
