package webhook

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/hubctl/hubctl/internal/events"
)

// Formats of a hook's body (Hook.Format; docs/webhooks.md, Formats). Each has its
// encoder in its own file: format_hubctl.go, format_cloudevents.go,
// format_distribution.go, format_harbor.go.
const (
	// FormatHubctl is hubctl's own JSON body, the default (docs/webhooks.schema.json).
	FormatHubctl = "hubctl"
	// FormatCloudEvents is a CloudEvents 1.0 event in structured mode.
	FormatCloudEvents = "cloudevents"
	// FormatDistribution is the CNCF distribution registry's notification envelope.
	FormatDistribution = "distribution"
	// FormatHarbor is Harbor's default webhook payload.
	FormatHarbor = "harbor"
)

// Formats lists every format a hook may take, the default first.
var Formats = []string{FormatHubctl, FormatCloudEvents, FormatDistribution, FormatHarbor}

// ErrNotCarried is returned by Encode for an event its hook's format has no way to
// say (a distribution-format hook and a tag.moved, say). The dispatcher does not fan
// such events out to the hook (Matches), so it only happens to a delivery queued
// before; the deliverer records it as skipped.
var ErrNotCarried = errors.New("not carried by the hook's format")

// Message is what an encoder turns into a body: one event for one hook.
type Message struct {
	Hook Hook
	// Event is the event as the hook may see it: the site-only fields (Remote,
	// RequestID) are already gone unless the hook is a site hook.
	Event events.Event
	// ExternalURL is the hub's base URL (external_url), "" when not configured.
	ExternalURL string
	// InstanceID names the delivering process (distribution's source.instanceID).
	InstanceID string
	// Visibility is the repository's visibility at delivery, "public" or "private"
	// (Harbor's repo_type); "" reads as private.
	Visibility string
}

// format is one body format: its Content-Type, the event types it has a meaning for
// (nil: all) and its encoder.
type format struct {
	contentType string
	types       []events.Type
	encode      func(Message) ([]byte, error)
}

var formats = map[string]format{
	FormatHubctl:       {contentType: "application/json", encode: encodeHubctl},
	FormatCloudEvents:  {contentType: CloudEventsContentType, encode: encodeCloudEvents},
	FormatDistribution: {contentType: DistributionContentType, types: distributionTypes(), encode: encodeDistribution},
	FormatHarbor:       {contentType: "application/json", types: harborTypes(), encode: encodeHarbor},
}

// lookup returns format f; "" is hubctl, the default.
func lookup(f string) (format, bool) {
	if f == "" {
		f = FormatHubctl
	}
	ft, ok := formats[f]
	return ft, ok
}

// Carries reports whether a hook of format f is sent events of type t: every type for
// hubctl and cloudevents, only those with a meaning there for distribution and harbor.
func Carries(f string, t events.Type) bool {
	ft, ok := lookup(f)
	return ok && (ft.types == nil || slices.Contains(ft.types, t))
}

// CarriedTypes returns the event types of events.Types that format f carries.
func CarriedTypes(f string) []events.Type {
	var out []events.Type
	for _, t := range events.Types {
		if Carries(f, t) {
			out = append(out, t)
		}
	}
	return out
}

// ContentType is the Content-Type of a body in format f.
func ContentType(f string) string {
	ft, _ := lookup(f)
	return ft.contentType
}

// Encode returns the body m's hook receives for m's event, and its Content-Type; an
// error wrapping ErrNotCarried when the format has no way to say the event.
func Encode(m Message) (body []byte, contentType string, err error) {
	ft, ok := lookup(m.Hook.Format)
	if !ok {
		return nil, "", fmt.Errorf("%w: format %q: want one of %s", ErrInvalid, m.Hook.Format, strings.Join(Formats, ", "))
	}
	if !Carries(m.Hook.Format, m.Event.Type) {
		return nil, "", fmt.Errorf("%s: %w", m.Event.Type, ErrNotCarried)
	}
	body, err = ft.encode(m)
	if err != nil {
		return nil, "", err
	}
	return body, ft.contentType, nil
}

// validateFormat checks h's format, and that every event type h asks for is one the
// format carries (a distribution hook asking for tag.moved would never get one).
func validateFormat(h Hook) error {
	if _, ok := formats[h.Format]; !ok {
		return fmt.Errorf("format %q is unknown: want one of %s", h.Format, strings.Join(Formats, ", "))
	}
	for _, t := range h.Events {
		if !Carries(h.Format, t) {
			var names []string
			for _, c := range CarriedTypes(h.Format) {
				names = append(names, string(c))
			}
			return fmt.Errorf("format %s does not carry %s events: it carries %s", h.Format, t, strings.Join(names, ", "))
		}
	}
	return nil
}

// externalHost is the host[:port] of the hub's external URL, "" when none is set.
func externalHost(externalURL string) string {
	if externalURL == "" {
		return ""
	}
	u, err := url.Parse(externalURL)
	if err != nil {
		return ""
	}
	return u.Host
}

// refString is repository:tag, or repository@digest without a tag.
func refString(e events.Event) string {
	switch {
	case e.Tag != "":
		return e.Repository + ":" + e.Tag
	case e.Digest != "":
		return e.Repository + "@" + e.Digest
	}
	return e.Repository
}
