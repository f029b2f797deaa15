package webhook

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/events"
)

// CloudEventsContentType is the Content-Type of a CloudEvents event in structured mode
// (CloudEvents 1.0, JSON event format).
const CloudEventsContentType = "application/cloudevents+json"

// CloudEventTypePrefix starts the CloudEvents type of an event: the hub's type after
// it, e.g. dev.hubctl.manifest.pushed.
const CloudEventTypePrefix = "dev.hubctl."

// cloudEvent is a CloudEvents 1.0 event in the JSON event format, structured mode: the
// context attributes and, in data, the event as GET /api/v1/events shows it.
type cloudEvent struct {
	SpecVersion     string       `json:"specversion"`
	ID              string       `json:"id"`
	Source          string       `json:"source"`
	Type            string       `json:"type"`
	Subject         string       `json:"subject,omitempty"`
	Time            time.Time    `json:"time"`
	DataContentType string       `json:"datacontenttype"`
	Data            events.Event `json:"data"`
}

// cloudEventSource is the event's source, a URI reference: the repository under the
// hub's external URL, or under "hubctl" when none is configured; the hub itself for
// hub-wide events.
func cloudEventSource(externalURL, repository string) string {
	base := strings.TrimSuffix(externalURL, "/")
	if base == "" {
		base = "hubctl"
	}
	if repository == "" {
		return base
	}
	return base + "/" + repository
}

func encodeCloudEvents(m Message) ([]byte, error) {
	e := m.Event
	ce := cloudEvent{SpecVersion: "1.0", ID: e.ID, Source: cloudEventSource(m.ExternalURL, e.Repository),
		Type: CloudEventTypePrefix + string(e.Type), Time: e.Time.UTC(), DataContentType: "application/json", Data: e}
	if e.Repository != "" {
		ce.Subject = e.Repository
		if e.Tag != "" {
			ce.Subject += ":" + e.Tag
		}
	}
	return json.Marshal(ce)
}
