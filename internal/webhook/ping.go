package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/hubctl/hubctl/internal/events"
)

// EventTest is the type of the synthetic event `hubctl webhook test` sends: a ping
// that carries no repository's data. It is never written to the outbox, so no filter
// names it and every hook may be sent one.
const EventTest events.Type = "webhook.test"

// Test sends h a webhook.test event now, synchronously, the way a real delivery is
// sent (the SSRF guard, the signatures, the hook's format and custom headers), and
// stores it as a delivery of h with its one attempt, audited as actor. It is not
// retried and leaves the hook as it was (its failures, whether it is on): the answer
// is for whoever asked. The delivery returned carries the attempt in Log.
func (d *Deliverer) Test(ctx context.Context, h Hook, actor string) (Delivery, error) {
	now := d.now()
	id, err := uuid.NewV7()
	if err != nil {
		return Delivery{}, err
	}
	e := events.Event{ID: id.String(), Type: EventTest, Time: now.UTC(), Actor: actor,
		Detail: map[string]any{"message": "a test delivery sent by " + actor + " (hubctl webhook test)"}}
	payload, err := json.Marshal(e)
	if err != nil {
		return Delivery{}, err
	}
	del := Delivery{HookID: h.ID, EventID: e.ID, EventType: EventTest, Payload: string(payload), Attempts: 1,
		NextAt: now, CreatedAt: now, UpdatedAt: now}
	o := d.attempt(ctx, Claim{Delivery: del, Hook: h})
	if o.Skip {
		// Nothing was sent: the hook's secret or headers could not be opened.
		return Delivery{}, fmt.Errorf("test webhook %s: %s", h.ID, o.Error)
	}
	del.State = o.State
	if del.State != StateDelivered {
		del.State = StateFailed
	}
	del.LastStatus, del.LastError, del.Log = o.Attempt.Status, o.Error, []Attempt{o.Attempt}
	// Recorded even when the caller went away meanwhile: the attempt happened.
	if del.ID, err = d.Store.RecordWebhookTest(context.WithoutCancel(ctx), del, actor); err != nil {
		if errors.Is(err, ErrNotFound) {
			return Delivery{}, err
		}
		return Delivery{}, fmt.Errorf("test webhook %s: record the attempt: %w", h.ID, err)
	}
	return del, nil
}
