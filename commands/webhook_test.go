package commands

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/hubtypes"
)

func TestWebhookCommands(t *testing.T) {
	h := newHub(t)
	bob := h.login("bob", "bob-password")
	admin := h.login("admin", "admin-password")
	secret := strings.TrimSpace(h.ok(bob, "webhook", "create", "https://ci.example.com/hook", "--namespace", "bob",
		"--event", "manifest.pushed", "--tag", "v*", "--header", "Authorization=Bearer hdr-value"))
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("create printed %q, want the secret", secret)
	}
	var hooks []hubtypes.Webhook
	if err := json.Unmarshal([]byte(h.ok(bob, "webhook", "ls", "-o", "json")), &hooks); err != nil || len(hooks) != 1 {
		t.Fatalf("ls: %v %+v", err, hooks)
	}
	id := hooks[0].ID
	out := h.ok(bob, "webhook", "ls")
	if !strings.HasPrefix(out, "ID") || !strings.Contains(out, id) || !strings.Contains(out, "manifest.pushed") {
		t.Fatalf("ls:\n%s", out)
	}
	show := h.ok(bob, "webhook", "show", id)
	if !strings.Contains(show, "Authorization") || strings.Contains(show, "hdr-value") || strings.Contains(show, secret) {
		t.Fatalf("show:\n%s", show)
	}
	// --format and regular-expression filters reach the hub; a bad one is refused there.
	ceOut := h.ok(bob, "webhook", "create", "https://ce.example.com/hook", "--namespace", "bob", "--format", "cloudevents",
		"--repo-filter", "re:bob/(app|api)", "--tag", `re:v\d+`, "-o", "json")
	var ce hubtypes.CreateWebhookResponse
	if err := json.Unmarshal([]byte(ceOut), &ce); err != nil || ce.Format != "cloudevents" || ce.Repositories[0] != "re:bob/(app|api)" ||
		ce.Tags[0] != `re:v\d+` {
		t.Fatalf("create --format cloudevents: %v %s", err, ceOut)
	}
	if show := h.ok(bob, "webhook", "show", ce.ID); !strings.Contains(show, "cloudevents") {
		t.Fatalf("show:\n%s", show)
	}
	h.ok(bob, "webhook", "rm", ce.ID)
	h.fails(bob, "want one of hubctl, cloudevents, distribution, harbor", "webhook", "create", "https://x.example.com", "--namespace", "bob", "--format", "slack")
	h.fails(bob, "not an RE2 regular expression", "webhook", "create", "https://x.example.com", "--namespace", "bob", "--tag", "re:(?=v)")
	h.fails(bob, "exactly one of", "webhook", "create", "https://x.example.com", "--namespace", "bob", "--site")
	h.fails(bob, "NAME=VALUE", "webhook", "create", "https://x.example.com", "--namespace", "bob", "--header", "novalue")
	h.fails(bob, "denied", "webhook", "create", "https://x.example.com", "--site")
	if out := h.ok(admin, "webhook", "ls"); !strings.Contains(out, id) {
		t.Fatalf("admin's ls:\n%s", out)
	}
	// A push fans out to the hook; its delivery is listed and can be sent again.
	h.push("bob/app", "v1")
	if _, err := h.store.DispatchWebhooks(t.Context(), 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	out = h.ok(bob, "webhook", "deliveries", id)
	if !strings.HasPrefix(out, "DELIVERY") || !strings.Contains(out, "manifest.pushed") || !strings.Contains(out, "pending") {
		t.Fatalf("deliveries:\n%s", out)
	}
	var ds []hubtypes.WebhookDelivery
	if err := json.Unmarshal([]byte(h.ok(bob, "webhook", "deliveries", id, "-o", "json")), &ds); err != nil || len(ds) != 1 {
		t.Fatalf("deliveries -o json: %v %+v", err, ds)
	}
	h.ok(bob, "webhook", "redeliver", id, strconv.FormatInt(ds[0].ID, 10))
	if err := json.Unmarshal([]byte(h.ok(bob, "webhook", "deliveries", id, "-o", "json")), &ds); err != nil || len(ds) != 2 || ds[0].Event != ds[1].Event {
		t.Fatalf("after redeliver: %v %+v", err, ds)
	}
	h.fails(bob, "not found", "webhook", "redeliver", id, "999")
	h.fails(admin, "not found", "webhook", "deliveries", "nope")
	h.ok(bob, "webhook", "disable", id)
	if out := h.ok(bob, "webhook", "show", id); !strings.Contains(out, "enabled       no") {
		t.Fatalf("after disable:\n%s", out)
	}
	h.ok(bob, "webhook", "enable", id)
	h.ok(bob, "webhook", "rm", id)
	h.fails(bob, "not found", "webhook", "show", id)
}

func TestWebhookDragonflyCommands(t *testing.T) {
	h := newHub(t)
	bob := h.login("bob", "bob-password")
	code, out, errOut := h.run(bob, "df-pat-secret\n", false, "webhook", "create", "https://dragonfly.example.com:8080", "--namespace", "bob",
		"--kind", "dragonfly", "--dragonfly-scope", "all_seed_peers", "--dragonfly-cluster", "1", "--dragonfly-cluster", "4",
		"--dragonfly-platform", "linux/arm64", "--dragonfly-timeout", "45m", "--dragonfly-token-stdin")
	if code != 0 {
		t.Fatalf("create: exit %d: %s", code, errOut)
	}
	id := strings.TrimSpace(out)
	if strings.HasPrefix(id, "whsec_") || !strings.Contains(errOut, "preheat") {
		t.Fatalf("create printed %q, stderr %q; want the id", out, errOut)
	}
	show := h.ok(bob, "webhook", "show", id)
	for _, want := range []string{"dragonfly scope", "all_seed_peers", "1,4", "linux/arm64", "45m0s", "stored (sealed)", "oapi"} {
		if !strings.Contains(show, want) {
			t.Fatalf("show lacks %q:\n%s", want, show)
		}
	}
	if strings.Contains(show, "df-pat-secret") || strings.Contains(h.ok(bob, "webhook", "show", id, "-o", "json"), "df-pat-secret") {
		t.Fatalf("the token is shown:\n%s", show)
	}
	h.fails(bob, "--dragonfly-scope is for --kind dragonfly", "webhook", "create", "https://x.example.com", "--namespace", "bob", "--dragonfly-scope", "all_peers")
	h.fails(bob, "invalid --kind", "webhook", "create", "https://x.example.com", "--namespace", "bob", "--kind", "slack")
	h.fails(bob, "personal access token", "webhook", "create", "https://x.example.com", "--namespace", "bob", "--kind", "dragonfly")
	h.fails(bob, "dragonfly scope", "webhook", "create", "https://x.example.com", "--namespace", "bob", "--kind", "dragonfly",
		"--dragonfly-api", "v1", "--dragonfly-scope", "everyone")
	h.fails(bob, "only event", "webhook", "create", "https://x.example.com", "--namespace", "bob", "--kind", "dragonfly",
		"--dragonfly-api", "v1", "--event", "tag.deleted")
	if code, _, errOut := h.run(bob, "", false, "webhook", "create", "https://x.example.com", "--namespace", "bob", "--kind", "dragonfly",
		"--dragonfly-token-stdin"); code == 0 || !strings.Contains(errOut, "one line") {
		t.Fatalf("empty stdin: exit %d, %q", code, errOut)
	}
}
