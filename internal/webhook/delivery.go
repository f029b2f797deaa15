package webhook

import (
	"context"
	"time"

	"github.com/hubctl/hubctl/internal/events"
)

// Delivery states.
const (
	StatePending   = "pending"   // due at NextAt
	StateDelivered = "delivered" // a 2xx answered
	StateFailed    = "failed"    // given up: out of time, 410, or the hook was turned off
	StateSkipped   = "skipped"   // the hook's owner may no longer read the repository
	// StateRunning is how a pending delivery of a dragonfly hook whose preheat job
	// exists is shown; the store keeps it pending (Delivery.Running).
	StateRunning = "running"
)

// Delivery is one event to send to one hook, and what became of it.
type Delivery struct {
	ID         int64
	HookID     string
	EventID    string
	EventType  events.Type
	Repository string
	// Payload is the event (events.Event as JSON) as it was when fanned out.
	Payload    string
	State      string
	Attempts   int
	NextAt     time.Time
	LastStatus int
	LastError  string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	// Log holds the attempts, oldest first, when listed with them.
	Log []Attempt
	// Job is the Dragonfly preheat job the delivery created (PreheatJob as JSON); ""
	// before one exists and for other kinds.
	Job string
}

// Running reports whether the delivery waits on a preheat job it created: pending,
// to be polled at NextAt.
func (d Delivery) Running() bool { return d.State == StatePending && d.Job != "" }

// Attempt is one try of a delivery: the request as sent (custom header values
// redacted) and the head of the answer.
type Attempt struct {
	Started         time.Time
	Duration        time.Duration
	Status          int    // 0 when no answer came
	Error           string // why no answer came, or why it was not sent
	RequestHeaders  map[string]string
	ResponseHeaders map[string]string
	ResponseBody    string // at most MaxResponseBody bytes
}

// Claim is a due delivery a worker took, with its hook.
type Claim struct {
	Delivery Delivery
	Hook     Hook
}

// Outcome is what a worker learnt from an attempt.
type Outcome struct {
	// Attempt is recorded unless Skip.
	Attempt Attempt
	// State is the delivery's next state; NextAt when it stays pending.
	State  string
	NextAt time.Time
	// Error is the delivery's last error (empty when delivered).
	Error string
	// Failed counts towards the hook's consecutive failures; a delivered outcome
	// resets them.
	Failed bool
	// Disable turns the hook off with this reason (410 Gone).
	Disable string
	// Skip records no attempt (the owner lost access).
	Skip bool
	// Job, when not empty, replaces the delivery's Job (a preheat job created or
	// polled).
	Job string
	// Uncounted takes the claim back out of the delivery's attempts: a poll of a
	// running preheat job is not an attempt of its own.
	Uncounted bool
}

// DeliveryStore keeps deliveries: the dispatcher's fan-out, the workers' claims.
type DeliveryStore interface {
	Store
	// DispatchWebhooks reads up to limit events after the dispatcher's cursor (in feed
	// order, never past a transaction still in flight) and, in the transaction that
	// moves the cursor, writes a pending delivery for every enabled hook that matches
	// each event and existed when it happened. It returns how many events it read.
	DispatchWebhooks(ctx context.Context, limit int, now time.Time) (int, error)
	// ClaimWebhookDeliveries takes up to n pending deliveries due at now, of enabled
	// hooks, that no worker holds, and holds them until now+lease.
	ClaimWebhookDeliveries(ctx context.Context, n int, now time.Time, lease time.Duration) ([]Claim, error)
	// FinishWebhookDelivery records an attempt's outcome on the delivery and its hook;
	// a hook failing maxFailures times in a row is paused (disabled with a reason).
	FinishWebhookDelivery(ctx context.Context, id int64, o Outcome, maxFailures int, now time.Time) error
	// ListWebhookDeliveries returns the hook's latest deliveries, newest first, with
	// their attempts.
	ListWebhookDeliveries(ctx context.Context, hookID string, limit int) ([]Delivery, error)
	// RedeliverWebhook queues the event of a delivery of the hook again, due now, as a
	// new delivery with the same event id, and audits it as actor.
	RedeliverWebhook(ctx context.Context, hookID string, deliveryID int64, actor string, now time.Time) (Delivery, error)
	// RecordWebhookTest stores a test delivery d of its hook, finished, with its one
	// attempt (d.Log[0]), audits it as actor, and returns its id; an error wrapping
	// ErrNotFound when the hook is gone.
	RecordWebhookTest(ctx context.Context, d Delivery, actor string) (int64, error)
	// PurgeWebhookDeliveries deletes finished deliveries (delivered, failed, skipped)
	// last updated before before, with their attempts, at most batch per transaction
	// (0: a default) until none is left, and returns how many it deleted. Pending ones
	// stay, however old: they give up on their own after three days.
	PurgeWebhookDeliveries(ctx context.Context, before time.Time, batch int) (int, error)
}
