package sqlstore

import (
	"errors"
	"slices"
	"strings"
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

// TestWebhookUpdate: a hook's changes are made under its row lock with their audit
// entry, in one transaction; what identifies it cannot change; a failed change writes
// nothing.
func TestWebhookUpdate(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		s, _ := openFresh(t, b)
		ring := testRing(t, "k1")
		h, secret := newHook(t, ring, webhook.ScopeNamespace, "acme")
		if err := s.CreateWebhook(ctx, h, "alice"); err != nil {
			t.Fatal(err)
		}
		got, err := s.UpdateWebhook(ctx, h.ID, "bob", func(h *webhook.Hook) (string, string, error) {
			h.URL, h.Events, h.Tags = "https://example.com/new", nil, []string{"release-*"}
			return "webhook.update", "url → https://example.com/new", webhook.SealHeaders(ring, h, map[string]string{"X-Token": "t2"})
		})
		if err != nil {
			t.Fatal(err)
		}
		stored, err := s.GetWebhook(ctx, h.ID)
		if err != nil {
			t.Fatal(err)
		}
		if stored.URL != "https://example.com/new" || len(stored.Events) != 0 || stored.Tags[0] != "release-*" ||
			stored.HeaderNames[0] != "X-Token" || stored.Scope != webhook.ScopeNamespace || stored.Target != "acme" ||
			!stored.UpdatedAt.Equal(got.UpdatedAt) || !stored.CreatedAt.Equal(h.CreatedAt) {
			t.Fatalf("stored %+v", stored)
		}
		if sec, hdr, err := webhook.Open(ring, stored); err != nil || sec != secret || hdr["X-Token"] != "t2" || len(hdr) != 1 {
			t.Fatalf("open after update: %v %v", hdr, err)
		}
		audit, err := s.ListAudit(ctx, accounts.AuditFilter{Action: "webhook.update"})
		if err != nil || len(audit) != 1 || audit[0].Actor != "bob" || audit[0].Target != h.ID || !strings.Contains(audit[0].Detail, "new") {
			t.Fatalf("audit %+v %v", audit, err)
		}

		// A change that fails, or would move the hook, writes nothing, audit included.
		boom := errors.New("boom")
		if _, err := s.UpdateWebhook(ctx, h.ID, "bob", func(h *webhook.Hook) (string, string, error) {
			h.URL = "https://example.com/lost"
			return "", "", boom
		}); !errors.Is(err, boom) {
			t.Fatalf("failed change: %v", err)
		}
		for _, move := range []func(h *webhook.Hook){
			func(h *webhook.Hook) { h.Scope, h.Target = webhook.ScopeSite, "" },
			func(h *webhook.Hook) { h.Target = "other" },
			func(h *webhook.Hook) { h.CreatedBy = 99 },
		} {
			if _, err := s.UpdateWebhook(ctx, h.ID, "bob", func(h *webhook.Hook) (string, string, error) {
				move(h)
				h.URL = "https://example.com/lost"
				return "webhook.update", "", nil
			}); !errors.Is(err, webhook.ErrInvalid) {
				t.Fatalf("moving a hook: %v", err)
			}
		}
		if again, _ := s.GetWebhook(ctx, h.ID); again.URL != "https://example.com/new" || again.Target != "acme" || again.CreatedBy != 1 {
			t.Fatalf("a refused change was written: %+v", again)
		}
		if audit, _ := s.ListAudit(ctx, accounts.AuditFilter{Action: "webhook.update"}); len(audit) != 1 {
			t.Fatalf("%d update audits, want 1", len(audit))
		}
		if _, err := s.UpdateWebhook(ctx, "nope", "bob", func(*webhook.Hook) (string, string, error) {
			t.Fatal("change called for a missing hook")
			return "", "", nil
		}); !errors.Is(err, webhook.ErrNotFound) {
			t.Fatalf("missing hook: %v", err)
		}
	})
}

// TestWebhookRotateSecret: the previous secret is sealed at rest in its own column
// (moved to the current one's, it opens no more), signs until it expires, and is
// dropped once read expired and resealed by key rotation like the others.
func TestWebhookRotateSecret(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		s, _ := openFresh(t, b)
		ring := testRing(t, "k1")
		h, first := newHook(t, ring, webhook.ScopeSite, "")
		h.Events, h.Tags = nil, nil
		h.CreatedAt = h.CreatedAt.Add(-time.Hour)
		if err := s.CreateWebhook(ctx, h, "admin"); err != nil {
			t.Fatal(err)
		}
		second, _ := webhook.NewSecret()
		now := time.Now()
		rotated, err := s.UpdateWebhook(ctx, h.ID, "admin", func(h *webhook.Hook) (string, string, error) {
			return "webhook.rotate_secret", "previous secret kept", webhook.Rotate(ring, h, second, now, now.Add(time.Hour))
		})
		if err != nil {
			t.Fatal(err)
		}
		stored, _ := s.GetWebhook(ctx, h.ID)
		if stored.PreviousSecret == "" || !stored.PreviousExpires.Equal(rotated.PreviousExpires) ||
			stored.PreviousExpires.Sub(now) != time.Hour {
			t.Fatalf("previous secret %q until %v", stored.PreviousSecret, stored.PreviousExpires)
		}
		for _, sealed := range []string{stored.Secret, stored.PreviousSecret} {
			if strings.Contains(sealed, first) || strings.Contains(sealed, second) ||
				strings.Contains(sealed, strings.TrimPrefix(first, "whsec_")) {
				t.Fatal("a secret is stored in plaintext")
			}
		}
		keys, _, err := webhook.OpenSigning(ring, stored, now)
		if err != nil || len(keys) != 2 || keys[0] != second || keys[1] != first {
			t.Fatalf("signing keys during the overlap: %d %v", len(keys), err)
		}
		if keys, _, err := webhook.OpenSigning(ring, stored, now.Add(time.Hour)); err != nil || len(keys) != 1 || keys[0] != second {
			t.Fatalf("signing keys after expiry: %d %v", len(keys), err)
		}
		swapped := stored
		swapped.Secret = stored.PreviousSecret
		if _, _, err := webhook.Open(ring, swapped); !errors.Is(err, secrets.ErrOpen) {
			t.Fatalf("the previous secret moved to the secret column: %v", err)
		}
		audit, _ := s.ListAudit(ctx, accounts.AuditFilter{Action: "webhook.rotate_secret"})
		if len(audit) != 1 || strings.Contains(audit[0].Detail, "whsec_") {
			t.Fatalf("rotation audit %+v", audit)
		}
		// Key rotation reseals the previous secret too.
		both, _ := secrets.NewKeyring(mustKeys(t, ring, testRing(t, "k2"))...)
		if n, err := s.ResealSecrets(ctx, both); err != nil || n != 3 {
			t.Fatalf("resealed %d, %v; want secret, headers and previous secret", n, err)
		}
		stored, _ = s.GetWebhook(ctx, h.ID)
		if id, _ := secrets.KeyID(stored.PreviousSecret); id != "k2" {
			t.Fatalf("previous secret sealed with %s after key rotation", id)
		}

		// Read expired by a worker's claim, it is dropped at rest.
		if _, err := s.AppendEvent(ctx, events.Event{Type: events.TagMoved, Repository: "x/a"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DispatchWebhooks(ctx, 0, now); err != nil {
			t.Fatal(err)
		}
		claims, err := s.ClaimWebhookDeliveries(ctx, 1, now.Add(2*time.Hour), time.Minute)
		if err != nil || len(claims) != 1 || claims[0].Hook.PreviousSecret != "" {
			t.Fatalf("claim after expiry: %+v %v", claims, err)
		}
		if stored, _ := s.GetWebhook(ctx, h.ID); stored.PreviousSecret != "" || !stored.PreviousExpires.IsZero() {
			t.Fatalf("an expired previous secret is still stored: %+v", stored)
		}

		// A rotation with no overlap keeps no previous secret; an expired one is dropped
		// by any update.
		third, _ := webhook.NewSecret()
		if _, err := s.UpdateWebhook(ctx, h.ID, "admin", func(h *webhook.Hook) (string, string, error) {
			return "webhook.rotate_secret", "", webhook.Rotate(both, h, third, now, now)
		}); err != nil {
			t.Fatal(err)
		}
		if stored, _ := s.GetWebhook(ctx, h.ID); stored.PreviousSecret != "" {
			t.Fatal("a rotation with no overlap kept the previous secret")
		}
		if _, err := s.UpdateWebhook(ctx, h.ID, "admin", func(h *webhook.Hook) (string, string, error) {
			past := time.Now().Add(-2 * time.Hour)
			return "webhook.rotate_secret", "", webhook.Rotate(both, h, second, past, past.Add(time.Hour))
		}); err != nil {
			t.Fatal(err)
		}
		if stored, _ := s.GetWebhook(ctx, h.ID); stored.PreviousSecret != "" {
			t.Fatal("an update stored an expired previous secret")
		}
	})
}

// TestRecordWebhookTest: a test delivery is stored finished, with its attempt, and
// audited; not for a hook that is gone.
func TestRecordWebhookTest(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		s, _ := openFresh(t, b)
		h, _ := newHook(t, testRing(t, "k"), webhook.ScopeNamespace, "acme")
		if err := s.CreateWebhook(ctx, h, "alice"); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		d := webhook.Delivery{HookID: h.ID, EventID: uuid.NewString(), EventType: webhook.EventTest, Payload: "{}",
			State: webhook.StateFailed, Attempts: 1, LastStatus: 500, LastError: "500 Internal Server Error", NextAt: now,
			CreatedAt: now, Log: []webhook.Attempt{{Started: now, Duration: 3 * time.Millisecond, Status: 500, ResponseBody: "no"}}}
		id, err := s.RecordWebhookTest(ctx, d, "alice")
		if err != nil || id == 0 {
			t.Fatalf("record: %d %v", id, err)
		}
		ds, err := s.ListWebhookDeliveries(ctx, h.ID, 0)
		if err != nil || len(ds) != 1 || ds[0].ID != id || ds[0].State != webhook.StateFailed || ds[0].EventType != webhook.EventTest ||
			len(ds[0].Log) != 1 || ds[0].Log[0].ResponseBody != "no" || ds[0].LastStatus != 500 {
			t.Fatalf("deliveries %+v %v", ds, err)
		}
		// Finished: no worker claims it.
		if claims, err := s.ClaimWebhookDeliveries(ctx, 10, now.Add(time.Hour), time.Minute); err != nil || len(claims) != 0 {
			t.Fatalf("a test delivery was claimed: %+v %v", claims, err)
		}
		if audit, _ := s.ListAudit(ctx, accounts.AuditFilter{Action: "webhook.test"}); len(audit) != 1 || audit[0].Actor != "alice" ||
			!strings.Contains(audit[0].Detail, "500") {
			t.Fatalf("audit %+v", audit)
		}
		d.HookID = "gone"
		if _, err := s.RecordWebhookTest(ctx, d, "alice"); !errors.Is(err, webhook.ErrNotFound) {
			t.Fatalf("a test of a missing hook: %v", err)
		}
	})
}

// TestWebhookEnabledAt: an event raised while a hook is off is not sent when the hook
// is turned on again before the dispatcher reached it, by either way of turning it on;
// an event after that is.
func TestWebhookEnabledAt(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		s, _ := openFresh(t, b)
		ring := testRing(t, "k1")
		h, _ := newHook(t, ring, webhook.ScopeNamespace, "acme")
		h.Events, h.Tags = nil, nil
		h.CreatedAt = h.CreatedAt.Add(-time.Minute)
		if err := s.CreateWebhook(ctx, h, "alice"); err != nil {
			t.Fatal(err)
		}
		for i, enable := range []func() error{
			func() error { return s.SetWebhookEnabled(ctx, h.ID, true, "alice") },
			func() error {
				_, err := s.UpdateWebhook(ctx, h.ID, "alice", func(h *webhook.Hook) (string, string, error) {
					h.Enabled = true
					return "webhook.enable", "", nil
				})
				return err
			},
		} {
			if err := s.SetWebhookEnabled(ctx, h.ID, false, "alice"); err != nil {
				t.Fatal(err)
			}
			off, err := s.AppendEvent(ctx, events.Event{Type: events.TagMoved, Repository: "acme/app", Tag: "off"})
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond) // the clock moves between the event and the switch
			if err := enable(); err != nil {
				t.Fatal(err)
			}
			on, err := s.AppendEvent(ctx, events.Event{Type: events.TagMoved, Repository: "acme/app", Tag: "on"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.DispatchWebhooks(ctx, 0, time.Now()); err != nil {
				t.Fatal(err)
			}
			ds, err := s.ListWebhookDeliveries(ctx, h.ID, 0)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range ds {
				got = append(got, d.EventID)
			}
			if len(got) != i+1 || !slices.Contains(got, on.ID) || slices.Contains(got, off.ID) {
				t.Fatalf("way %d: deliveries of events %v; want %s and not %s", i, got, on.ID, off.ID)
			}
		}
	})
}
