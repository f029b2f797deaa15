package sqlstore

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/secrets"
	"github.com/hubctl/hubctl/internal/webhook"
)

func testRing(t testing.TB, ids ...string) *secrets.Keyring {
	t.Helper()
	var keys []secrets.Key
	for _, id := range ids {
		k, err := secrets.GenerateKey(id)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	r, err := secrets.NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newHook(t testing.TB, ring *secrets.Keyring, scope, target string) (webhook.Hook, string) {
	t.Helper()
	now := time.Now().UTC()
	h := webhook.Hook{ID: uuid.NewString(), Scope: scope, Target: target, URL: "https://example.com/hook",
		Events: []events.Type{events.ManifestPushed}, Tags: []string{"v*"}, Format: webhook.FormatHubctl, Enabled: true,
		CreatedBy: 1, CreatedAt: now, UpdatedAt: now}
	secret, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if err := webhook.Seal(ring, &h, secret, map[string]string{"authorization": "Bearer tok"}); err != nil {
		t.Fatal(err)
	}
	return h, secret
}

func TestWebhooks(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		s, _ := openFresh(t, b)
		ring := testRing(t, "k1")
		ns, secret := newHook(t, ring, webhook.ScopeNamespace, "acme")
		repo, _ := newHook(t, ring, webhook.ScopeRepository, "acme/app")
		other, _ := newHook(t, ring, webhook.ScopeNamespace, "other")
		site, _ := newHook(t, ring, webhook.ScopeSite, "")
		for _, h := range []webhook.Hook{ns, repo, other, site} {
			if err := s.CreateWebhook(ctx, h, "alice"); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.GetWebhook(ctx, ns.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Target != "acme" || got.Tags[0] != "v*" || got.Events[0] != events.ManifestPushed || !got.Enabled ||
			got.HeaderNames[0] != "Authorization" || got.CreatedBy != 1 {
			t.Fatalf("got %+v", got)
		}
		if sec, hdr, err := webhook.Open(ring, got); err != nil || sec != secret || hdr["authorization"] != "Bearer tok" {
			t.Fatalf("open: %v %v", hdr, err)
		}
		// The stored secret is sealed for its row: moved to another row, it opens no more.
		moved := repo
		moved.Secret = got.Secret
		if _, _, err := webhook.Open(ring, moved); !errors.Is(err, secrets.ErrOpen) {
			t.Fatalf("a secret moved to another row: %v", err)
		}
		list, err := s.ListWebhooks(ctx, webhook.Filter{Namespaces: []string{"acme"}})
		if err != nil || len(list) != 2 {
			t.Fatalf("acme's hooks: %d %v", len(list), err)
		}
		if list, _ := s.ListWebhooks(ctx, webhook.Filter{Site: true}); len(list) != 1 || list[0].ID != site.ID {
			t.Fatalf("site hooks: %+v", list)
		}
		if list, _ := s.ListWebhooks(ctx, webhook.Filter{All: true}); len(list) != 4 {
			t.Fatalf("all hooks: %d", len(list))
		}
		if list, _ := s.ListWebhooks(ctx, webhook.Filter{}); len(list) != 0 {
			t.Fatalf("an empty filter selected %d", len(list))
		}
		if err := s.DeleteWebhook(ctx, repo.ID, "bob"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetWebhook(ctx, repo.ID); !errors.Is(err, webhook.ErrNotFound) {
			t.Fatalf("deleted: %v", err)
		}
		if err := s.DeleteWebhook(ctx, repo.ID, "bob"); !errors.Is(err, webhook.ErrNotFound) {
			t.Fatalf("deleted twice: %v", err)
		}
		audit, err := s.ListAudit(ctx, accounts.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var creates, deletes int
		for _, e := range audit {
			switch e.Action {
			case "webhook.create":
				creates++
			case "webhook.delete":
				deletes++
				if e.Actor != "bob" || e.Target != repo.ID {
					t.Fatalf("delete audit %+v", e)
				}
			}
		}
		if creates != 4 || deletes != 1 {
			t.Fatalf("audit: %d creates, %d deletes", creates, deletes)
		}

		// Rotation: a new key, then every sealed column is resealed with it.
		ring2 := testRing(t, "k2")
		both, _ := secrets.NewKeyring(mustKeys(t, ring, ring2)...)
		n, err := s.ResealSecrets(ctx, both)
		if err != nil || n != 6 { // three hooks, secret and headers each
			t.Fatalf("resealed %d: %v", n, err)
		}
		if n, err := s.ResealSecrets(ctx, both); err != nil || n != 0 {
			t.Fatalf("second reseal: %d %v", n, err)
		}
		got, _ = s.GetWebhook(ctx, ns.ID)
		if id, _ := secrets.KeyID(got.Secret); id != "k2" {
			t.Fatalf("secret sealed with %s after rotation", id)
		}
		if sec, _, err := webhook.Open(ring2, got); err != nil || sec != secret {
			t.Fatalf("open with the new key alone: %v", err)
		}
	})
}

// mustKeys returns the keys of rings, in order, to make one ring of them.
func mustKeys(t testing.TB, rings ...*secrets.Keyring) []secrets.Key {
	t.Helper()
	var out []secrets.Key
	for _, r := range rings {
		out = append(out, r.Keys()...)
	}
	return out
}

// TestDispatchNoSkipOnPostgres: the dispatcher reads the feed with its xid horizon, so
// an event of a transaction still open when a later one commits is fanned out once it
// commits, not skipped by a cursor that moved past the later one.
func TestDispatchNoSkipOnPostgres(t *testing.T) {
	s, _ := openFresh(t, backends[1])
	ctx := t.Context()
	ring := testRing(t, "k")
	h, _ := newHook(t, ring, webhook.ScopeSite, "")
	h.Events, h.Tags = nil, nil
	h.CreatedAt = h.CreatedAt.Add(-time.Hour)
	if err := s.CreateWebhook(ctx, h, "admin"); err != nil {
		t.Fatal(err)
	}
	a, err := s.e.begin(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	defer a.rollback(ctx)
	if err := s.lockRepo(ctx, a, "x/a"); err != nil {
		t.Fatal(err)
	}
	if err := s.appendEvent(ctx, a, events.Event{Type: events.TagMoved, Repository: "x/a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendEvent(ctx, events.Event{Type: events.TagMoved, Repository: "x/b"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DispatchWebhooks(ctx, 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, "webhook_deliveries"); n != 0 {
		t.Fatalf("%d deliveries while an older transaction is open, want 0", n)
	}
	if err := a.commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DispatchWebhooks(ctx, 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	ds, err := s.ListWebhookDeliveries(ctx, h.ID, 0)
	if err != nil || len(ds) != 2 {
		t.Fatalf("after the commit: %d deliveries, %v; want both events", len(ds), err)
	}
	if _, err := s.DispatchWebhooks(ctx, 0, time.Now()); err != nil || count(t, s, "webhook_deliveries") != 2 {
		t.Fatalf("a second dispatch fanned out again: %v", err)
	}
}

// TestPurgeWebhookDeliveries: the delivery log is kept as long as the events and no
// longer; finished deliveries older than the cutoff go with their attempts, pending
// ones stay however old, recent ones stay.
func TestPurgeWebhookDeliveries(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		s, _ := openFresh(t, b)
		h, _ := newHook(t, testRing(t, "k"), webhook.ScopeSite, "")
		h.Events, h.Tags = nil, nil
		h.CreatedAt = h.CreatedAt.Add(-time.Hour)
		if err := s.CreateWebhook(ctx, h, "admin"); err != nil {
			t.Fatal(err)
		}
		for _, repo := range []string{"x/a", "x/b", "x/c"} {
			if _, err := s.AppendEvent(ctx, events.Event{Type: events.TagMoved, Repository: repo}); err != nil {
				t.Fatal(err)
			}
		}
		now := time.Now()
		old := now.Add(-48 * time.Hour)
		if _, err := s.DispatchWebhooks(ctx, 0, old); err != nil {
			t.Fatal(err)
		}
		claims, err := s.ClaimWebhookDeliveries(ctx, 3, now, time.Minute)
		if err != nil || len(claims) != 3 {
			t.Fatalf("claimed %d, %v; want 3", len(claims), err)
		}
		delivered := webhook.Outcome{State: webhook.StateDelivered, Attempt: webhook.Attempt{Started: old, Status: 200}}
		if err := s.FinishWebhookDelivery(ctx, claims[0].Delivery.ID, delivered, 0, old); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishWebhookDelivery(ctx, claims[1].Delivery.ID, delivered, 0, now); err != nil {
			t.Fatal(err)
		}
		// claims[2] stays pending, dispatched two days ago.
		if n := count(t, s, "webhook_attempts"); n != 2 {
			t.Fatalf("%d attempts, want 2", n)
		}
		n, err := s.PurgeWebhookDeliveries(ctx, now.Add(-24*time.Hour), 1)
		if err != nil || n != 1 {
			t.Fatalf("purged %d, %v; want 1", n, err)
		}
		ds, err := s.ListWebhookDeliveries(ctx, h.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		left := map[int64]bool{}
		for _, d := range ds {
			left[d.ID] = true
		}
		if len(ds) != 2 || left[claims[0].Delivery.ID] || !left[claims[1].Delivery.ID] || !left[claims[2].Delivery.ID] {
			t.Fatalf("left %v; want the recent and the pending delivery", left)
		}
		if n := count(t, s, "webhook_attempts"); n != 1 {
			t.Fatalf("%d attempts left, want 1: the purged delivery's went with it", n)
		}
	})
}
