package webhook

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hubctl/hubctl/internal/events"
)

// harborEventTypes maps the event types that have a meaning for a Harbor webhook receiver
// to Harbor's event types. A chart push arrives as PUSH_ARTIFACT (its manifest.pushed),
// as with Harbor 2.8 and later; tag deletions, tag moves, blobs, repositories, GC are
// not Harbor webhook events and are not sent to harbor hooks.
var harborEventTypes = map[events.Type]string{
	events.ManifestPushed:  "PUSH_ARTIFACT",
	events.ManifestDeleted: "DELETE_ARTIFACT",
	events.QuotaExceeded:   "QUOTA_EXCEED",
}

func harborTypes() []events.Type {
	var out []events.Type
	for _, t := range events.Types {
		if _, ok := harborEventTypes[t]; ok {
			out = append(out, t)
		}
	}
	return out
}

// Harbor's default payload (src/pkg/notifier/model/event.go of goharbor/harbor:
// Payload, EventData, Resource, Repository).
type (
	harborPayload struct {
		Type      string          `json:"type"`
		OccurAt   int64           `json:"occur_at"`
		Operator  string          `json:"operator"`
		EventData harborEventData `json:"event_data"`
	}
	harborEventData struct {
		Resources  []harborResource  `json:"resources,omitempty"`
		Repository harborRepository  `json:"repository"`
		Custom     map[string]string `json:"custom_attributes,omitempty"`
	}
	harborResource struct {
		Digest      string `json:"digest,omitempty"`
		Tag         string `json:"tag"`
		ResourceURL string `json:"resource_url,omitempty"`
	}
	harborRepository struct {
		DateCreated  int64  `json:"date_created,omitempty"`
		Name         string `json:"name"`
		Namespace    string `json:"namespace"`
		RepoFullName string `json:"repo_full_name"`
		RepoType     string `json:"repo_type"`
	}
)

func encodeHarbor(m Message) ([]byte, error) {
	e := m.Event
	if e.Repository == "" {
		// Harbor's events all belong to a project's repository.
		return nil, fmt.Errorf("%s without a repository: %w", e.Type, ErrNotCarried)
	}
	ns, name, _ := strings.Cut(e.Repository, "/")
	repoType := "private"
	if m.Visibility == "public" {
		repoType = "public"
	}
	p := harborPayload{Type: harborEventTypes[e.Type], OccurAt: e.Time.Unix(), Operator: e.Actor,
		EventData: harborEventData{Repository: harborRepository{Name: name, Namespace: ns, RepoFullName: e.Repository, RepoType: repoType}}}
	switch e.Type {
	case events.QuotaExceeded:
		if msg, ok := e.Detail["message"].(string); ok {
			p.EventData.Custom = map[string]string{"Details": msg}
		}
		if e.Digest != "" || e.Tag != "" {
			p.EventData.Resources = []harborResource{{Digest: e.Digest, Tag: e.Tag}}
		}
	default:
		// Harbor names the artifact by its first tag, else by its digest, and so does
		// resource_url: the host of the hub's external URL, then repo:tag or repo@digest.
		r := harborResource{Digest: e.Digest, Tag: e.Tag}
		if r.Tag == "" {
			r.Tag = e.Digest
		}
		r.ResourceURL = refString(e)
		if host := externalHost(m.ExternalURL); host != "" {
			r.ResourceURL = host + "/" + r.ResourceURL
		}
		p.EventData.Resources = []harborResource{r}
	}
	return json.Marshal(p)
}
