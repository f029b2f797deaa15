package server

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
)

// TestEventsFromServe: what a running hub does reaches its outbox with who did it —
// a push over HTTP, a push refused over quota, a scheduled GC run — and GET
// /api/v1/events lists it.
func TestEventsFromServe(t *testing.T) {
	r := start(t, map[string]string{"auth.mode": "token", "gc.interval": "50ms"})
	base := "http://" + r.addr
	req, _ := http.NewRequest(http.MethodPut, base+"/api/v1/namespaces/admin/quota", strings.NewReader(`{"bytes":10}`))
	req.SetBasicAuth(AdminUser, testAdminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode >= 300 {
		t.Fatalf("set quota: %v %v", err, resp)
	}
	resp.Body.Close()

	h := hub{t: t, base: base, tok: adminToken(t, base, "repository:admin/app:push,pull")}
	blob := []byte("more than ten bytes of blob")
	dg := fmt.Sprintf("sha256:%x", sha256.Sum256(blob))
	if resp, b := h.do(http.MethodPost, "/v2/admin/app/blobs/uploads/?digest="+dg, blob, map[string]string{"Content-Type": "application/octet-stream"}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("push over quota: %s %s", resp.Status, b)
	}
	h.tok = adminToken(t, base, "repository:lib/app:push,pull")
	h.push("lib/app", "v1", "events")

	var page hubtypes.EventPage
	for range 100 {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/events?limit=1000", nil)
		req.SetBasicAuth(AdminUser, testAdminPassword)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatalf("events: %s %s", resp.Status, b)
		}
		if has(page, "gc.completed", "") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range [][2]string{{"quota.exceeded", "admin/app"}, {"repository.created", "lib/app"}, {"manifest.pushed", "lib/app"},
		{"tag.moved", "lib/app"}, {"gc.completed", ""}} {
		if !has(page, want[0], want[1]) {
			t.Errorf("no %s of %q in %+v", want[0], want[1], page.Events)
		}
	}
	// A long poll through the whole server (limits, TLS-less listener) answers when
	// its time is up, with the same cursor.
	req, _ = http.NewRequest(http.MethodGet, base+"/api/v1/events?wait=1&type=chart.pushed&since="+page.Next, nil)
	req.SetBasicAuth(AdminUser, testAdminPassword)
	began := time.Now()
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var idle hubtypes.EventPage
	err = json.NewDecoder(resp.Body).Decode(&idle)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || len(idle.Events) != 0 || idle.Next != page.Next || time.Since(began) < 500*time.Millisecond {
		t.Errorf("idle long poll: %v %s %+v after %s", err, resp.Status, idle, time.Since(began))
	}
	for _, e := range page.Events {
		if e.Type == "manifest.pushed" && (e.Actor != AdminUser || e.Remote == "" || e.RequestID == "" || e.Tag != "v1" || e.Kind != "image") {
			t.Errorf("manifest.pushed: %+v", e)
		}
		if e.Type == "gc.completed" && e.Actor != "system" {
			t.Errorf("gc.completed: %+v", e)
		}
	}
}

func has(p hubtypes.EventPage, typ, repo string) bool {
	for _, e := range p.Events {
		if e.Type == typ && e.Repository == repo {
			return true
		}
	}
	return false
}

// TestEventPurgeJob: the purge runs at start and then every interval, deleting only
// what is older than the retention.
func TestEventPurgeJob(t *testing.T) {
	meta, err := sqlstore.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "hubctl.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	for _, age := range []time.Duration{72 * time.Hour, 49 * time.Hour, time.Hour, 0} {
		if _, err := meta.AppendEvent(t.Context(), events.Event{Type: events.GCCompleted, Time: time.Now().Add(-age)}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		runEventPurge(ctx, slog.New(slog.DiscardHandler), meta, 48*time.Hour, 20*time.Millisecond)
	}()
	defer func() { cancel(); <-done }()
	for range 200 {
		p, err := meta.ListEvents(t.Context(), events.Query{Access: metadata.CatalogFilter{All: true}})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Events) == 2 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the purge job did not delete the two events older than the retention")
}
