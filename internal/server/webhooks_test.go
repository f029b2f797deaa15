package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/hubtypes"
)

// TestWebhookFromServe: a running hub delivers a push over HTTP to a webhook created
// through its API, signed with the secret the API showed once (checked here with
// GitHub's algorithm, written independently of the hub's code).
func TestWebhookFromServe(t *testing.T) {
	var mu sync.Mutex
	var got []*http.Request
	var bodies [][]byte
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, bodies = append(got, r), append(bodies, b)
		mu.Unlock()
	}))
	defer rc.Close()
	r := start(t, map[string]string{"auth.mode": "token", "webhooks.allow_addresses": "127.0.0.1", "webhooks.interval": "50ms"})
	base := "http://" + r.addr
	body := `{"scope":"namespace","target":"lib","url":"` + rc.URL + `/in","events":["manifest.pushed"]}`
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/webhooks", strings.NewReader(body))
	req.SetBasicAuth(AdminUser, testAdminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var hook hubtypes.CreateWebhookResponse
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &hook) != nil {
		t.Fatalf("create webhook: %s %s", resp.Status, b)
	}

	h := hub{t: t, base: base, tok: adminToken(t, base, "repository:lib/app:push,pull")}
	h.push("lib/app", "v1", "events")
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no delivery within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	if len(got) != 1 {
		t.Fatalf("%d deliveries, want 1 (manifest.pushed only)", len(got))
	}
	mac := hmac.New(sha256.New, []byte(hook.Secret))
	mac.Write(bodies[0])
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); got[0].Header.Get("X-Hub-Signature-256") != want {
		t.Fatalf("X-Hub-Signature-256 %q, want %q", got[0].Header.Get("X-Hub-Signature-256"), want)
	}
	var ev struct {
		Type string
		Data struct{ Repository, Tag string }
	}
	if err := json.Unmarshal(bodies[0], &ev); err != nil || ev.Type != "manifest.pushed" || ev.Data.Repository != "lib/app" || ev.Data.Tag != "v1" {
		t.Fatalf("body %s: %v", bodies[0], err)
	}
	mu.Unlock()

	// A test delivery goes out from the API through the hub's deliverer, now.
	req, _ = http.NewRequest(http.MethodPost, base+"/api/v1/webhooks/"+hook.ID+"/test", nil)
	req.SetBasicAuth(AdminUser, testAdminPassword)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	var d hubtypes.WebhookDelivery
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &d) != nil || d.State != "delivered" || d.Type != "webhook.test" {
		t.Fatalf("test webhook: %s %s", resp.Status, b)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || !strings.Contains(string(bodies[1]), `"webhook.test"`) {
		t.Fatalf("%d requests after the test, want 2", len(got))
	}
}
