package webhook

import (
	_ "embed"
	"encoding/json"
	"time"

	"github.com/hubctl/hubctl/internal/events"
)

// Body is the JSON a hook in the hubctl format receives (docs/webhooks.md; its JSON
// Schema is Schema).
type Body struct {
	// ID is the event's id, the same as the webhook-id header: dedupe on it.
	ID   string       `json:"id"`
	Type events.Type  `json:"type"`
	Time time.Time    `json:"timestamp"`
	Hook string       `json:"webhook"`
	Data events.Event `json:"data"`
}

// Schema is the JSON Schema (draft 2020-12) of Body, the hubctl format; published as
// docs/webhooks.schema.json.
//
//go:embed webhooks.schema.json
var Schema []byte

func encodeHubctl(m Message) ([]byte, error) {
	e := m.Event
	return json.Marshal(Body{ID: e.ID, Type: e.Type, Time: e.Time, Hook: m.Hook.ID, Data: e})
}
