package webhook

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/events"
)

// DistributionContentType is the Content-Type of the CNCF distribution registry's
// notification envelope (its notifications.EventsMediaType).
const DistributionContentType = "application/vnd.docker.distribution.events.v2+json"

// distributionActions maps the event types that have a meaning for a distribution
// notification receiver to distribution's actions. The rest (tag moves, repository
// creation and visibility, charts, GC, quotas) are not sent to distribution hooks.
var distributionActions = map[events.Type]string{
	events.ManifestPushed:    "push",
	events.ManifestDeleted:   "delete",
	events.TagDeleted:        "delete",
	events.BlobDeleted:       "delete",
	events.RepositoryDeleted: "delete", // distribution's RepoDeleted: a target with only the repository
}

func distributionTypes() []events.Type {
	var out []events.Type
	for _, t := range events.Types {
		if _, ok := distributionActions[t]; ok {
			out = append(out, t)
		}
	}
	return out
}

// The envelope and its event, with distribution's field names (notifications/event.go
// of github.com/distribution/distribution: Envelope, Event, RequestRecord,
// ActorRecord, SourceRecord).
type (
	distributionEnvelope struct {
		Events []distributionEvent `json:"events"`
	}
	distributionEvent struct {
		ID        string             `json:"id,omitempty"`
		Timestamp time.Time          `json:"timestamp"`
		Action    string             `json:"action,omitempty"`
		Target    distributionTarget `json:"target"`
		Request   distributionReq    `json:"request"`
		Actor     distributionActor  `json:"actor"`
		Source    distributionSource `json:"source"`
	}
	distributionTarget struct {
		MediaType  string `json:"mediaType,omitempty"`
		Digest     string `json:"digest,omitempty"`
		Size       int64  `json:"size,omitempty"`
		Length     int64  `json:"length,omitempty"`
		Repository string `json:"repository,omitempty"`
		URL        string `json:"url,omitempty"`
		Tag        string `json:"tag,omitempty"`
	}
	distributionReq struct {
		ID        string `json:"id"`
		Addr      string `json:"addr,omitempty"`
		Host      string `json:"host,omitempty"`
		Method    string `json:"method"`
		UserAgent string `json:"useragent"`
	}
	distributionActor struct {
		Name string `json:"name,omitempty"`
	}
	distributionSource struct {
		Addr       string `json:"addr,omitempty"`
		InstanceID string `json:"instanceID,omitempty"`
	}
)

func encodeDistribution(m Message) ([]byte, error) {
	e := m.Event
	action := distributionActions[e.Type]
	ev := distributionEvent{ID: e.ID, Timestamp: e.Time.UTC(), Action: action,
		Target: distributionTarget{Repository: e.Repository, Digest: e.Digest, Tag: e.Tag},
		// Addr and ID are empty unless the hook is a site hook: who pushed from where
		// is for site administrators. The hub does not keep the client's User-Agent.
		Request: distributionReq{ID: e.RequestID, Addr: e.Remote, Host: externalHost(m.ExternalURL), Method: http.MethodDelete},
		Actor:   distributionActor{Name: e.Actor},
		Source:  distributionSource{Addr: externalHost(m.ExternalURL), InstanceID: m.InstanceID},
	}
	if e.Type == events.ManifestPushed {
		ev.Request.Method = http.MethodPut
		ev.Target.MediaType, ev.Target.Size, ev.Target.Length = e.MediaType, e.Size, e.Size
		if base := strings.TrimSuffix(m.ExternalURL, "/"); base != "" && e.Digest != "" {
			ev.Target.URL = base + "/v2/" + e.Repository + "/manifests/" + e.Digest
		}
	}
	return json.Marshal(distributionEnvelope{Events: []distributionEvent{ev}})
}
