package sqlstore

import (
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/secrets"
	"github.com/hubctl/hubctl/internal/webhook"
)

// TestWebhookDragonflyStored: a dragonfly hook keeps its kind, settings and sealed
// personal access token (resealed by rotation like the other secrets, sealed for its
// row); a delivery keeps the preheat job it created, and a poll that was not the
// job's last is not counted as an attempt.
func TestWebhookDragonflyStored(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		s, _ := openFresh(t, b)
		ring := testRing(t, "k1")
		h, _ := newHook(t, ring, webhook.ScopeNamespace, "acme")
		h.Kind, h.Tags = webhook.KindDragonfly, nil
		h.CreatedAt = h.CreatedAt.Add(-time.Minute)
		set := webhook.Dragonfly{Scope: webhook.PreheatAllPeers, SchedulerClusterIDs: []uint64{2}, Platform: "linux/arm64"}.WithDefaults()
		h.Dragonfly = &set
		if err := webhook.SealDragonflyToken(ring, &h, "pat-secret"); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateWebhook(ctx, h, "alice"); err != nil {
			t.Fatal(err)
		}
		plain, _ := newHook(t, ring, webhook.ScopeNamespace, "acme")
		if err := s.CreateWebhook(ctx, plain, "alice"); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetWebhook(ctx, h.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Kind != webhook.KindDragonfly || got.Dragonfly == nil || got.Dragonfly.Scope != webhook.PreheatAllPeers ||
			got.Dragonfly.SchedulerClusterIDs[0] != 2 || got.Dragonfly.Timeout != webhook.DefaultPreheatTimeout || got.DragonflyToken == "" {
			t.Fatalf("got %+v", got)
		}
		if p, _ := s.GetWebhook(ctx, plain.ID); p.Kind != webhook.KindWebhook || p.Dragonfly != nil || p.DragonflyToken != "" {
			t.Fatalf("plain hook %+v", p)
		}
		ad := secrets.RowAD(webhook.Table, h.ID, "dragonfly_token")
		if b, err := ring.Open(got.DragonflyToken, ad); err != nil || string(b) != "pat-secret" {
			t.Fatalf("open the token: %v", err)
		}
		if _, err := ring.Open(got.DragonflyToken, secrets.RowAD(webhook.Table, plain.ID, "dragonfly_token")); err == nil {
			t.Fatal("the token opens for another row")
		}
		both, _ := secrets.NewKeyring(mustKeys(t, ring, testRing(t, "k2"))...)
		if n, err := s.ResealSecrets(ctx, both); err != nil || n != 5 { // two secrets, two headers, one token
			t.Fatalf("resealed %d: %v", n, err)
		}
		got, _ = s.GetWebhook(ctx, h.ID)
		if id, _ := secrets.KeyID(got.DragonflyToken); id != "k2" {
			t.Fatalf("token sealed with %s after rotation", id)
		}

		if _, err := s.AppendEvent(ctx, events.Event{Type: events.ManifestPushed, Repository: "acme/app", Tag: "v1",
			Digest: "sha256:0000000000000000000000000000000000000000000000000000000000000000", Kind: events.KindChart}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AppendEvent(ctx, events.Event{Type: events.ManifestPushed, Repository: "acme/app", Tag: "v1",
			Digest: "sha256:1111111111111111111111111111111111111111111111111111111111111111", Kind: events.KindImage}); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		if _, err := s.DispatchWebhooks(ctx, 0, now); err != nil {
			t.Fatal(err)
		}
		ds, _ := s.ListWebhookDeliveries(ctx, h.ID, 0)
		if len(ds) != 1 || ds[0].Repository != "acme/app" {
			t.Fatalf("a dragonfly hook gets image pushes only: %+v", ds)
		}
		claim := func() webhook.Claim {
			t.Helper()
			cs, err := s.ClaimWebhookDeliveries(ctx, 10, now, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cs {
				if c.Hook.ID == h.ID {
					return c
				}
			}
			t.Fatal("no claim of the dragonfly hook")
			return webhook.Claim{}
		}
		c := claim()
		job := webhook.PreheatJob{ID: 7, API: webhook.DragonflyOAPI, State: "PENDING", Deadline: now.Add(time.Hour)}
		if err := s.FinishWebhookDelivery(ctx, c.Delivery.ID, webhook.Outcome{State: webhook.StatePending, NextAt: now,
			Job: job.String(), Attempt: webhook.Attempt{Started: now, Status: 200}}, 0, now); err != nil {
			t.Fatal(err)
		}
		c = claim()
		if pj, err := webhook.ParsePreheatJob(c.Delivery.Job); err != nil || pj.ID != 7 || !c.Delivery.Running() {
			t.Fatalf("claimed %+v: %v", c.Delivery, err)
		}
		if err := s.FinishWebhookDelivery(ctx, c.Delivery.ID, webhook.Outcome{State: webhook.StatePending, NextAt: now.Add(time.Hour),
			Skip: true, Uncounted: true}, 0, now); err != nil {
			t.Fatal(err)
		}
		ds, _ = s.ListWebhookDeliveries(ctx, h.ID, 0)
		if d := ds[0]; d.Attempts != 1 || len(d.Log) != 1 || !d.Running() {
			t.Fatalf("after a poll: %+v", d)
		}
	})
}
