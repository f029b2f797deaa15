package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/policy"
)

// hub is a running test server with an admin token for one repository.
type hub struct {
	t    *testing.T
	base string
	tok  string
}

func (h hub) do(method, path string, body []byte, hdr map[string]string) (*http.Response, string) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.base+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+h.tok)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// push puts a config-only image under tag and returns its digest.
func (h hub) push(repo, tag, content string) string {
	h.t.Helper()
	cfg := []byte(`{"architecture":"amd64","os":"linux","x":"` + content + `"}`)
	cd := fmt.Sprintf("sha256:%x", sha256.Sum256(cfg))
	if resp, b := h.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+cd, cfg, map[string]string{"Content-Type": "application/octet-stream"}); resp.StatusCode != http.StatusCreated {
		h.t.Fatalf("blob: %s %s", resp.Status, b)
	}
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[]}`, cd, len(cfg))
	resp, b := h.do(http.MethodPut, "/v2/"+repo+"/manifests/"+tag, []byte(m), map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
	if resp.StatusCode != http.StatusCreated {
		h.t.Fatalf("push %s:%s: %s %s", repo, tag, resp.Status, b)
	}
	return resp.Header.Get("Docker-Content-Digest")
}

// TestPolicies: through the API, a namespace's immutable tags refuse a moving push and
// deletes (by tag and by digest) with a clear 409; a re-push of the same image passes;
// retention's dry run lists and its run deletes what keep_newest leaves, audited;
// pulls reach the database in a batch by shutdown.
func TestPolicies(t *testing.T) {
	r := start(t, map[string]string{"auth.mode": "token", "retention.interval": "0"})
	base := "http://" + r.addr
	h := hub{t: t, base: base, tok: adminToken(t, base, "repository:team/app:push,pull,delete")}

	put := func(scope, body string, want int) {
		t.Helper()
		resp, b := h.do(http.MethodPut, "/api/v1/policies/"+scope, []byte(body), map[string]string{"Content-Type": "application/json"})
		if resp.StatusCode != want {
			t.Fatalf("PUT policy %s: %s %s", scope, resp.Status, b)
		}
	}
	put("team", `{"immutable_tags":["v*"]}`, http.StatusOK)
	put("team/app", `{"retention":{"rules":[{"tags":"build-*","keep_newest":2}]}}`, http.StatusOK)
	put("team/app", `{"retention":{"rules":[{"tags":"build-*"}]}}`, http.StatusBadRequest)
	// Anonymous may not.
	req, _ := http.NewRequest(http.MethodPut, base+"/api/v1/policies/team", strings.NewReader(`{}`))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous PUT: %v %v", resp.Status, err)
	}

	v1 := h.push("team/app", "v1", "one")
	if d := h.push("team/app", "v1", "one"); d != v1 {
		t.Fatal("re-push changed the digest")
	}
	resp, b := h.do(http.MethodPut, "/v2/team/app/manifests/v1", []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:`+strings.Repeat("0", 64)+`","size":1},"layers":[]}`),
		map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(b, "tag v1 of team/app is immutable") || !strings.Contains(b, `pattern \"v*\" of namespace team`) {
		t.Fatalf("moving v1: %s %s", resp.Status, b)
	}
	h.push("team/app", "v2", "two-moving") // a new immutable tag may be created
	for _, path := range []string{"/v2/team/app/manifests/v1", "/v2/team/app/manifests/" + v1} {
		if resp, b := h.do(http.MethodDelete, path, nil, nil); resp.StatusCode != http.StatusConflict || !strings.Contains(b, "immutable") {
			t.Fatalf("DELETE %s: %s %s", path, resp.Status, b)
		}
	}

	// Retention: build-1..4, the newest two stay; v* and latest are not judged.
	for i := 1; i <= 4; i++ {
		h.push("team/app", fmt.Sprintf("build-%d", i), fmt.Sprintf("build %d", i))
	}
	h.push("team/app", "latest", "latest")
	// Pull a manifest (GET), so a pull time is recorded.
	if resp, _ := h.do(http.MethodGet, "/v2/team/app/manifests/v1", nil, map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"}); resp.StatusCode != http.StatusOK {
		t.Fatal(resp.Status)
	}
	var rep policy.Report
	resp, b = h.do(http.MethodPost, "/api/v1/retention?scope=team/app&dry_run=true", nil, nil)
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(b), &rep) != nil {
		t.Fatalf("dry run: %s %s", resp.Status, b)
	}
	if rep.DeletedTags != 2 || len(rep.Plans) != 1 || rep.Plans[0].Tags[0].Name != "build-1" || rep.Plans[0].Tags[1].Name != "build-2" {
		t.Fatalf("dry run: %+v", rep)
	}
	if resp, _ := h.do(http.MethodHead, "/v2/team/app/manifests/build-1", nil, map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"}); resp.StatusCode != http.StatusOK {
		t.Fatal("the dry run deleted build-1")
	}
	resp, b = h.do(http.MethodPost, "/api/v1/retention?scope=team", nil, nil)
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(b), &rep) != nil || rep.DeletedTags != 2 {
		t.Fatalf("run: %s %s", resp.Status, b)
	}
	resp, b = h.do(http.MethodGet, "/v2/team/app/tags/list", nil, nil)
	if !strings.Contains(b, `"build-3","build-4","latest","v1","v2"`) {
		t.Fatalf("tags after retention: %s", b)
	}
	// Pulled again after retention's flush: only the shutdown's flush writes this one.
	if resp, _ := h.do(http.MethodGet, "/v2/team/app/manifests/v1", nil, map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"}); resp.StatusCode != http.StatusOK {
		t.Fatal(resp.Status)
	}
	resp, b = h.do(http.MethodGet, "/api/v1/policies/team/app", nil, nil)
	var doc policy.Document
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(b), &doc) != nil || doc.Effective == nil ||
		len(doc.Effective.ImmutableTags) != 1 || doc.Effective.Retention == nil {
		t.Fatalf("GET policy: %s %s", resp.Status, b)
	}

	r.stop(t)
	// The audit log names retention; the pull time was flushed at shutdown.
	db, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(r.data, "hubctl.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v, err := db.RetentionView(context.Background(), "team/app")
	if err != nil {
		t.Fatal(err)
	}
	pulled := 0
	for _, m := range v.Manifests {
		if !m.PulledAt.IsZero() {
			pulled++
			if m.Digest.String() != v1 {
				t.Errorf("pull time on %s, pulled only %s", m.Digest, v1)
			}
		}
	}
	if pulled != 1 {
		t.Errorf("%d manifests with a pull time, want 1", pulled)
	}
	// Both pulls are counted: one in the flush before retention ran, one at shutdown.
	pe, err := db.ListEvents(context.Background(), events.Query{Types: []events.Type{events.RepositoryPulled},
		Access: metadata.CatalogFilter{All: true}})
	if err != nil {
		t.Fatal(err)
	}
	var counted float64
	for _, e := range pe.Events {
		if e.Repository != "team/app" || e.Tag != "v1" || e.Digest != v1 {
			t.Errorf("pull event %+v", e)
		}
		c, _ := e.Detail["count"].(float64)
		counted += c
	}
	if len(pe.Events) != 2 || counted != 2 {
		t.Errorf("%d repository.pulled events counting %v pulls, want 2 and 2", len(pe.Events), counted)
	}
	entries, err := db.ListAudit(context.Background(), auditFilter("retention"))
	if err != nil || len(entries) < 2 {
		t.Fatalf("audit of retention: %v, %v", entries, err)
	}
}

func auditFilter(actor string) accounts.AuditFilter { return accounts.AuditFilter{Actor: actor} }

// TestRetentionScheduled: with retention.interval set, the server applies a policy by
// itself, and the run shows in the metrics.
func TestRetentionScheduled(t *testing.T) {
	maddr := freeAddr(t)
	r := start(t, map[string]string{"auth.mode": "token", "retention.interval": "100ms", "metrics.addr": maddr})
	base := "http://" + r.addr
	h := hub{t: t, base: base, tok: adminToken(t, base, "repository:team/app:push,pull,delete")}
	for i := 1; i <= 3; i++ {
		h.push("team/app", fmt.Sprintf("build-%d", i), fmt.Sprintf("scheduled %d", i))
	}
	if resp, b := h.do(http.MethodPut, "/api/v1/policies/team", []byte(`{"retention":{"rules":[{"tags":"build-*","keep_newest":1}]}}`), nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("set policy: %s %s", resp.Status, b)
	}
	var tags string
	for i := 0; i < 100; i++ {
		_, tags = h.do(http.MethodGet, "/v2/team/app/tags/list", nil, nil)
		if strings.Contains(tags, `"tags":["build-3"]`) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(tags, `"tags":["build-3"]`) {
		t.Fatalf("tags after scheduled retention: %s", tags)
	}
	m := scrape(t, "http://"+maddr+"/metrics", nil)
	if m[`hubctl_retention_deleted_total{kind="tag"}`] != 2 || m[`hubctl_retention_runs_total{result="ok"}`] == 0 {
		t.Errorf("retention series: deleted %v, runs %v", m[`hubctl_retention_deleted_total{kind="tag"}`], m[`hubctl_retention_runs_total{result="ok"}`])
	}
}
