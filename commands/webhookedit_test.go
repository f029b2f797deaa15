package commands

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/hubtypes"
)

func TestWebhookEditCommands(t *testing.T) {
	h := newHub(t)
	bob := h.login("bob", "bob-password")
	admin := h.login("admin", "admin-password")
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("all good")) }))
	t.Cleanup(ok.Close)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte("it broke"))
	}))
	t.Cleanup(broken.Close)

	first := strings.TrimSpace(h.ok(bob, "webhook", "create", ok.URL+"/hook", "--namespace", "bob", "--tag", "v*",
		"--header", "Authorization=Bearer hdr-value"))
	var hooks []hubtypes.Webhook
	if err := json.Unmarshal([]byte(h.ok(bob, "webhook", "ls", "-o", "json")), &hooks); err != nil || len(hooks) != 1 {
		t.Fatalf("ls: %v %+v", err, hooks)
	}
	id := hooks[0].ID

	// update: what the flags name changes, the rest stays.
	h.ok(bob, "webhook", "update", id, "--event", "manifest.pushed", "--event", "tag.deleted", "--repo-filter", "bob/app*")
	show := h.ok(bob, "webhook", "show", id)
	for _, want := range []string{"manifest.pushed,tag.deleted", "bob/app*", "v*", "Authorization", ok.URL} {
		if !strings.Contains(show, want) {
			t.Fatalf("show after update lacks %q:\n%s", want, show)
		}
	}
	var got hubtypes.Webhook
	if err := json.Unmarshal([]byte(h.ok(bob, "webhook", "update", id, "--clear-tags", "--clear-headers", "-o", "json")), &got); err != nil ||
		len(got.Tags) != 0 || len(got.Headers) != 0 || len(got.Events) != 2 {
		t.Fatalf("update --clear-tags --clear-headers: %v %+v", err, got)
	}
	h.fails(bob, "nothing to change", "webhook", "update", id)
	h.fails(bob, "not both", "webhook", "update", id, "--header", "A=b", "--clear-headers")
	h.fails(bob, "not both", "webhook", "update", id, "--tag", "v*", "--clear-tags")
	h.fails(bob, "NAME=VALUE", "webhook", "update", id, "--header", "novalue")
	h.fails(bob, "url must be", "webhook", "update", id, "--url", "ftp://example.com")
	h.fails(bob, "not found", "webhook", "update", "nope", "--url", "https://example.com")

	// rotate-secret prints the new secret, once; the old one signs until --keep-previous.
	second := strings.TrimSpace(h.ok(bob, "webhook", "rotate-secret", id))
	if !strings.HasPrefix(second, "whsec_") || second == first {
		t.Fatalf("rotate-secret printed %q", second)
	}
	if show := h.ok(bob, "webhook", "show", id); !strings.Contains(show, "previous secret until") || strings.Contains(show, second) {
		t.Fatalf("show after rotation:\n%s", show)
	}
	h.ok(bob, "webhook", "rotate-secret", id, "--keep-previous", "0")
	if show := h.ok(bob, "webhook", "show", id); strings.Contains(show, "previous secret") {
		t.Fatalf("show after a rotation with no overlap:\n%s", show)
	}
	h.fails(bob, "keep-previous", "webhook", "rotate-secret", id, "--keep-previous", "200h")
	h.fails(bob, "not found", "webhook", "rotate-secret", "nope")

	// test: status, duration and the head of the answer; exit 1 unless 2xx.
	out := h.ok(bob, "webhook", "test", id)
	for _, want := range []string{"status", "200", "duration", "all good"} {
		if !strings.Contains(out, want) {
			t.Fatalf("test lacks %q:\n%s", want, out)
		}
	}
	h.fails(bob, "retry in", "webhook", "test", id) // one test per hook a second
	if out := h.ok(bob, "webhook", "deliveries", id); !strings.Contains(out, "webhook.test") || !strings.Contains(out, "delivered") {
		t.Fatalf("deliveries after a test:\n%s", out)
	}
	h.ok(admin, "webhook", "create", broken.URL+"/hook", "--namespace", "bob")
	if err := json.Unmarshal([]byte(h.ok(bob, "webhook", "ls", "-o", "json")), &hooks); err != nil || len(hooks) != 2 {
		t.Fatalf("ls: %v %+v", err, hooks)
	}
	code, out, errOut := h.run(bob, "", false, "webhook", "test", hooks[1].ID)
	if code != 1 || !strings.Contains(out, "500") || !strings.Contains(out, "it broke") || !strings.Contains(errOut, "did not answer 2xx") {
		t.Fatalf("test of a failing receiver: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	h.fails(bob, "not found", "webhook", "test", "nope")
}
