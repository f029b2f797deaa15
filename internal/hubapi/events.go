package hubapi

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/reference"
)

// Long polls of GET /api/v1/events: the longest wait a caller may ask for, and how
// often the handler looks again meanwhile.
const (
	maxEventWait  = 30 * time.Second
	eventPollStep = 250 * time.Millisecond
)

// listEvents answers GET /api/v1/events: the events after `since` that the caller may
// read (see events.Query.Access), filtered by `type` (repeatable or comma-separated),
// `repository` and `namespace`, at most `limit`. With `wait` (seconds, at most 30) it
// answers as soon as there is an event, or with none when the time is up. `since=now`
// answers no events and, as next, the cursor after the newest one.
func (a *api) listEvents(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if a.events == nil {
		return notFound("no API endpoint %s", r.URL.Path)
	}
	v := r.URL.Query()
	q := events.Query{Access: a.policy.CatalogFilter(*p)}
	if since := v.Get("since"); since == "now" {
		// Only the cursor of the newest event: a follower starting now sends it back.
		q.Newest = true
	} else {
		after, err := events.ParseCursor(since)
		if err != nil {
			return invalid("since: %v", err)
		}
		q.After = after
	}
	for _, t := range v["type"] {
		for _, t := range strings.Split(t, ",") {
			if !slices.Contains(events.Types, events.Type(t)) {
				return invalid("type %q: want one of %s", t, typeNames())
			}
			q.Types = append(q.Types, events.Type(t))
		}
	}
	if q.Repository = v.Get("repository"); q.Repository != "" {
		if err := reference.ValidateRepository(q.Repository); err != nil {
			return invalid("repository: %v", err)
		}
	}
	q.Namespace = v.Get("namespace")
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > events.MaxPage {
			return invalid("limit %q: want 1 to %d", s, events.MaxPage)
		}
		q.Limit = n
	}
	var wait time.Duration
	if s := v.Get("wait"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || time.Duration(n)*time.Second > maxEventWait {
			return invalid("wait %q: want 0 to %d seconds", s, int(maxEventWait/time.Second))
		}
		wait = time.Duration(n) * time.Second
	}
	deadline := time.Now().Add(wait)
	for {
		page, err := a.events.ListEvents(r.Context(), q)
		if errors.Is(err, events.ErrBadCursor) {
			return invalid("since: %v", err)
		} else if err != nil {
			if errors.Is(err, events.ErrEventNotKept) {
				return notFound("since: %v", err)
			}
			return err
		}
		if len(page.Events) > 0 || q.Newest || !time.Now().Add(eventPollStep).Before(deadline) {
			// Where a push came from is for admins, as the audit log is.
			return reply(w, http.StatusOK, eventPage(page, p.User != nil && p.User.Admin))
		}
		t := time.NewTimer(eventPollStep)
		select {
		case <-r.Context().Done():
			t.Stop()
			return r.Context().Err()
		case <-t.C:
		}
	}
}

func typeNames() string {
	names := make([]string, len(events.Types))
	for i, t := range events.Types {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

func eventPage(p events.Page, admin bool) hubtypes.EventPage {
	out := hubtypes.EventPage{Events: make([]hubtypes.Event, 0, len(p.Events)), Next: p.Next.String()}
	for _, e := range p.Events {
		out.Events = append(out.Events, hubtypes.Event{
			Seq: e.Seq, Cursor: e.Cursor, ID: e.ID, Type: string(e.Type), Time: e.Time.UTC().Format(time.RFC3339Nano),
			RepositoryID: e.RepositoryID, Repository: e.Repository, Digest: e.Digest, PreviousDigest: e.PreviousDigest,
			Tag: e.Tag, MediaType: e.MediaType, ArtifactType: e.ArtifactType, Kind: e.Kind, Platforms: e.Platforms,
			Size: e.Size, Visibility: e.Visibility, Chart: e.Chart, Version: e.Version, Detail: e.Detail,
			Actor: e.Actor,
		})
		if admin {
			out.Events[len(out.Events)-1].Remote = e.Remote
			out.Events[len(out.Events)-1].RequestID = e.RequestID
		}
	}
	return out
}
