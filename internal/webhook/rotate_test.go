package webhook_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/webhook"
)

func TestSignSeveralSecrets(t *testing.T) {
	a, _ := webhook.NewSecret()
	b, _ := webhook.NewSecret()
	now := time.Now()
	body := []byte(`{"x":1}`)
	h := http.Header{}
	if err := webhook.Sign(h, []string{a, b}, "msg_1", now, body); err != nil {
		t.Fatal(err)
	}
	sigs := strings.Split(h.Get("webhook-signature"), " ")
	if len(sigs) != 2 || !strings.HasPrefix(sigs[0], "v1,") || !strings.HasPrefix(sigs[1], "v1,") || sigs[0] == sigs[1] {
		t.Fatalf("webhook-signature %q, want two space-separated v1 signatures", h.Get("webhook-signature"))
	}
	for _, s := range []string{a, b} {
		if err := verifyStandardWebhooks(s, h, body, now); err != nil {
			t.Fatalf("a receiver with one of the secrets: %v", err)
		}
	}
	other, _ := webhook.NewSecret()
	if err := verifyStandardWebhooks(other, h, body, now); err == nil {
		t.Fatal("a third secret verifies")
	}
	if err := verifyStandardWebhooks(a, h, []byte(`{"x":2}`), now); err == nil {
		t.Fatal("a changed body verifies")
	}
	if err := verifyGitHub(a, h, body); err != nil {
		t.Fatalf("X-Hub-Signature-256 by the first (current) secret: %v", err)
	}
	if err := verifyGitHub(b, h, body); err == nil {
		t.Fatal("X-Hub-Signature-256 by the previous secret")
	}
	if err := webhook.Sign(http.Header{}, nil, "msg_1", now, body); err == nil {
		t.Fatal("signed with no secret")
	}
	if err := webhook.Sign(http.Header{}, []string{a, "whsec_short"}, "msg_1", now, body); err == nil {
		t.Fatal("signed with a malformed secret")
	}
}

// TestRotateSecretOverlap: after a rotation, deliveries carry the signatures of both
// secrets until the previous one expires, so a receiver that knows only the old secret
// keeps verifying; after expiry it no longer does, and the old secret is gone at rest.
func TestRotateSecretOverlap(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			h := newHarness(t, b.open, "127.0.0.1/32")
			alice := h.user("alice", false)
			hk, old := h.hook(alice, webhook.ScopeNamespace, "alice", "/alice")
			fresh, _ := webhook.NewSecret()
			at := h.clock.now()
			if _, err := h.store.UpdateWebhook(t.Context(), hk.ID, "alice", func(x *webhook.Hook) (string, string, error) {
				return "webhook.rotate_secret", "", webhook.Rotate(h.ring, x, fresh, at, at.Add(time.Hour))
			}); err != nil {
				t.Fatal(err)
			}
			h.push("alice/app", "v1")
			h.step()
			got := h.rc.requests("/alice")
			if len(got) != 1 {
				t.Fatalf("%d requests, want 1", len(got))
			}
			r := got[0]
			if n := len(strings.Fields(r.header.Get("webhook-signature"))); n != 2 {
				t.Fatalf("%d signatures during the overlap, want 2", n)
			}
			if err := verifyStandardWebhooks(old, r.header, r.body, h.clock.now()); err != nil {
				t.Fatalf("a receiver that knows only the old secret, during the overlap: %v", err)
			}
			if err := verifyStandardWebhooks(fresh, r.header, r.body, h.clock.now()); err != nil {
				t.Fatalf("a receiver with the new secret: %v", err)
			}
			if err := verifyGitHub(fresh, r.header, r.body); err != nil {
				t.Fatalf("X-Hub-Signature-256 by the new secret: %v", err)
			}

			h.clock.add(time.Hour + time.Second)
			h.push("alice/app", "v2")
			h.step()
			got = h.rc.requests("/alice")
			if len(got) != 2 {
				t.Fatalf("%d requests, want 2", len(got))
			}
			r = got[1]
			if n := len(strings.Fields(r.header.Get("webhook-signature"))); n != 1 {
				t.Fatalf("%d signatures after expiry, want 1", n)
			}
			if err := verifyStandardWebhooks(old, r.header, r.body, h.clock.now()); err == nil {
				t.Fatal("the old secret still verifies after expiry")
			}
			if err := verifyStandardWebhooks(fresh, r.header, r.body, h.clock.now()); err != nil {
				t.Fatalf("the new secret after expiry: %v", err)
			}
			if stored, _ := h.store.GetWebhook(t.Context(), hk.ID); stored.PreviousSecret != "" {
				t.Fatal("the expired secret is still stored")
			}
		})
	}
}

// TestTestDelivery: a test is sent now through the deliverer's own path (signed, with
// the hook's headers, whatever its filters), stored with its attempt, never retried,
// and leaves the hook as it was even when the receiver fails or answers 410.
func TestTestDelivery(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			h := newHarness(t, b.open, "127.0.0.1/32")
			alice := h.user("alice", false)
			hk, secret := h.hook(alice, webhook.ScopeNamespace, "alice", "/alice")
			hk, err := h.store.UpdateWebhook(ctx, hk.ID, "alice", func(x *webhook.Hook) (string, string, error) {
				x.Events, x.Tags = []events.Type{events.TagDeleted}, []string{"never"}
				return "webhook.update", "", nil
			})
			if err != nil {
				t.Fatal(err)
			}
			d, err := h.d.Test(ctx, hk, "alice")
			if err != nil {
				t.Fatal(err)
			}
			if d.ID == 0 || d.State != webhook.StateDelivered || len(d.Log) != 1 || d.Log[0].Status != 200 || d.Log[0].ResponseBody != "ok" {
				t.Fatalf("test delivery %+v", d)
			}
			got := h.rc.requests("/alice")
			if len(got) != 1 {
				t.Fatalf("%d requests, want 1", len(got))
			}
			r := got[0]
			if err := verifyStandardWebhooks(secret, r.header, r.body, h.clock.now()); err != nil {
				t.Fatalf("the test's signature: %v", err)
			}
			if r.header.Get("webhook-id") != d.EventID || r.header.Get("Authorization") != "Bearer receiver-token" {
				t.Fatalf("headers %v", r.header)
			}
			var body webhook.Body
			if err := json.Unmarshal(r.body, &body); err != nil || body.Type != webhook.EventTest || body.Hook != hk.ID || body.Data.Actor != "alice" {
				t.Fatalf("body %s: %v", r.body, err)
			}
			ds := h.deliveries(hk.ID)
			if len(ds) != 1 || ds[0].ID != d.ID || ds[0].EventType != webhook.EventTest || len(ds[0].Log) != 1 ||
				ds[0].Log[0].RequestHeaders["Authorization"] != webhook.Redacted {
				t.Fatalf("stored %+v", ds)
			}

			for _, status := range []int{http.StatusInternalServerError, http.StatusGone} {
				h.rc.answer = func(_ int, w http.ResponseWriter) { w.WriteHeader(status) }
				d, err := h.d.Test(ctx, hk, "alice")
				if err != nil || d.State != webhook.StateFailed || d.LastStatus != status || d.Log[0].Status != status {
					t.Fatalf("test answered %d: %+v %v", status, d, err)
				}
			}
			h.clock.add(24 * time.Hour)
			h.step()
			if n := len(h.rc.requests("/alice")); n != 3 {
				t.Fatalf("%d requests, want 3: a failed test is not retried", n)
			}
			if stored, _ := h.store.GetWebhook(ctx, hk.ID); !stored.Enabled || stored.Failures != 0 || stored.DisabledReason != "" {
				t.Fatalf("a failed test changed the hook: %+v", stored)
			}
			if _, err := h.d.Test(ctx, webhook.Hook{ID: "gone", Secret: hk.Secret}, "alice"); err == nil {
				t.Fatal("tested a hook that does not exist")
			}
		})
	}
}

// TestTestDeliverySSRF: a test goes through the SSRF guard as deliveries do.
func TestTestDeliverySSRF(t *testing.T) {
	h := newHarness(t, backends[0].open) // 127.0.0.1 is refused
	alice := h.user("alice", false)
	hk, _ := h.hook(alice, webhook.ScopeNamespace, "alice", "/alice")
	d, err := h.d.Test(t.Context(), hk, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if d.State != webhook.StateFailed || d.Log[0].Status != 0 || !strings.Contains(d.Log[0].Error, "not allowed") {
		t.Fatalf("test to 127.0.0.1: %+v", d)
	}
	if n := len(h.rc.requests("/alice")); n != 0 {
		t.Fatalf("the guard let %d requests through", n)
	}
}
