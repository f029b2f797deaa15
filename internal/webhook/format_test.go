package webhook_test

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/webhook"
)

var (
	digestA = "sha256:" + strings.Repeat("a", 64)
	digestB = "sha256:" + strings.Repeat("b", 64)
)

// sample returns an event of type t with the fields its writer in the store sets
// (docs/design/events.md, What writes events), pushed from 192.0.2.7.
func sample(t events.Type, repo string) events.Event {
	e := events.Event{Type: t, Repository: repo, Actor: "alice", Remote: "192.0.2.7", RequestID: "req-7f3a"}
	switch t {
	case events.ManifestPushed:
		e.Tag, e.Digest, e.MediaType, e.Size = "v1", digestA, "application/vnd.oci.image.manifest.v1+json", 1234
		e.ArtifactType, e.Kind = "application/vnd.oci.image.config.v1+json", events.KindImage
	case events.TagMoved:
		e.Tag, e.Digest, e.PreviousDigest, e.MediaType = "v1", digestA, digestB, "application/vnd.oci.image.index.v1+json"
	case events.TagDeleted:
		e.Tag, e.Digest = "v1", digestA
	case events.ManifestDeleted, events.BlobDeleted:
		e.Digest = digestA
	case events.RepositoryVisibilityChanged:
		e.Visibility = "public"
	case events.ChartPushed:
		e.Digest, e.Tag, e.Chart, e.Version, e.Kind, e.Size = digestA, "1.2.3", "app", "1.2.3", events.KindChart, 2048
	case events.GCCompleted:
		e.Repository, e.Actor, e.Remote, e.RequestID = "", "system", "", ""
		e.Detail = map[string]any{"blobsDeleted": 3, "bytesFreed": 4096}
	case events.QuotaExceeded:
		e.Detail = map[string]any{"message": "namespace acme is over its quota of 1 GiB", "method": "PUT"}
	case events.WorkflowFinished:
		e.Repository, e.Remote, e.RequestID = "", "", ""
		e.Detail = map[string]any{"namespace": "acme", "workflow": "build", "workflowId": 3, "runId": 42, "number": 7,
			"trigger": "push", "result": "success", "depth": 1}
	}
	return e
}

// compileSchema compiles the embedded JSON Schema of the hubctl format.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(webhook.Schema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("webhooks.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("webhooks.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// TestFormatHubctlSchema sends an event of every type to a site hook in the hubctl
// format and validates every body it received against docs/webhooks.schema.json.
func TestFormatHubctlSchema(t *testing.T) {
	docs, err := os.ReadFile("../../docs/webhooks.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(docs, webhook.Schema) {
		t.Fatal("docs/webhooks.schema.json differs from internal/webhook/webhooks.schema.json: copy one onto the other")
	}
	sch := compileSchema(t)
	h := newHarness(t, backends[0].open, "127.0.0.1/32")
	admin := h.user("admin", true)
	h.hook(admin, webhook.ScopeSite, "", "/site")
	for _, typ := range events.Types {
		if _, err := h.store.AppendEvent(t.Context(), sample(typ, "acme/app")); err != nil {
			t.Fatal(err)
		}
	}
	h.step()
	got := h.rc.requests("/site")
	if len(got) != len(events.Types) {
		t.Fatalf("%d bodies, want one per event type (%d)", len(got), len(events.Types))
	}
	seen := map[string]bool{}
	for _, r := range got {
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(inst); err != nil {
			t.Errorf("body %s does not validate: %v", r.body, err)
		}
		var b webhook.Body
		_ = json.Unmarshal(r.body, &b)
		seen[string(b.Type)] = true
	}
	if len(seen) != len(events.Types) {
		t.Fatalf("types seen %v", seen)
	}
	// The schema is not vacuous: it refuses what the hub never sends.
	for name, bad := range map[string]string{
		"no id":         `{"type":"manifest.pushed","timestamp":"2026-12-06T20:37:35Z","webhook":"w","data":{"id":"0193b6f2-1c2d-7e3f-8a4b-5c6d7e8f9a0b","type":"manifest.pushed","time":"2026-12-06T20:37:35Z"}}`,
		"unknown type":  `{"id":"0193b6f2-1c2d-7e3f-8a4b-5c6d7e8f9a0b","type":"image.pushed","timestamp":"2026-12-06T20:37:35Z","webhook":"w","data":{"id":"0193b6f2-1c2d-7e3f-8a4b-5c6d7e8f9a0b","type":"manifest.pushed","time":"2026-12-06T20:37:35Z"}}`,
		"unknown field": `{"id":"0193b6f2-1c2d-7e3f-8a4b-5c6d7e8f9a0b","type":"manifest.pushed","timestamp":"2026-12-06T20:37:35Z","webhook":"w","data":{"id":"0193b6f2-1c2d-7e3f-8a4b-5c6d7e8f9a0b","type":"manifest.pushed","time":"2026-12-06T20:37:35Z","password":"x"}}`,
		"bad time":      `{"id":"0193b6f2-1c2d-7e3f-8a4b-5c6d7e8f9a0b","type":"manifest.pushed","timestamp":"yesterday","webhook":"w","data":{"id":"0193b6f2-1c2d-7e3f-8a4b-5c6d7e8f9a0b","type":"manifest.pushed","time":"2026-12-06T20:37:35Z"}}`,
	} {
		inst, _ := jsonschema.UnmarshalJSON(strings.NewReader(bad))
		if sch.Validate(inst) == nil {
			t.Errorf("%s: the schema accepts %s", name, bad)
		}
	}
}

// TestFormatCloudEvents parses what a cloudevents hook receives with the CloudEvents
// Go SDK, as a receiver would, from the request's headers and body.
func TestFormatCloudEvents(t *testing.T) {
	h := newHarness(t, backends[0].open, "127.0.0.1/32")
	h.d.ExternalURL = "https://hub.example.com/"
	admin := h.user("admin", true)
	h.hookFormat(admin, webhook.ScopeSite, "", "/ce", webhook.FormatCloudEvents)
	pushed, err := h.store.AppendEvent(t.Context(), sample(events.ManifestPushed, "acme/app"))
	if err != nil {
		t.Fatal(err)
	}
	gc, err := h.store.AppendEvent(t.Context(), sample(events.GCCompleted, ""))
	if err != nil {
		t.Fatal(err)
	}
	h.step()
	got := h.rc.requests("/ce")
	if len(got) != 2 {
		t.Fatalf("%d requests, want 2", len(got))
	}
	for _, want := range []struct {
		e                       events.Event
		ceType, source, subject string
	}{
		{pushed, "dev.hubctl.manifest.pushed", "https://hub.example.com/acme/app", "acme/app:v1"},
		{gc, "dev.hubctl.gc.completed", "https://hub.example.com", ""},
	} {
		r := byID(t, got, want.e.ID)
		if ct := r.header.Get("Content-Type"); ct != "application/cloudevents+json" {
			t.Fatalf("Content-Type %q", ct)
		}
		msg := cehttp.NewMessage(r.header, io.NopCloser(bytes.NewReader(r.body)))
		if msg.ReadEncoding() != binding.EncodingStructured {
			t.Fatalf("encoding %v, want structured", msg.ReadEncoding())
		}
		ev, err := binding.ToEvent(t.Context(), msg)
		if err != nil {
			t.Fatalf("the SDK cannot read %s: %v", r.body, err)
		}
		if err := ev.Validate(); err != nil {
			t.Fatalf("%s: %v", r.body, err)
		}
		if ev.SpecVersion() != "1.0" || ev.ID() != want.e.ID || ev.Type() != want.ceType || ev.Source() != want.source ||
			ev.Subject() != want.subject || !ev.Time().Equal(want.e.Time) || ev.DataContentType() != "application/json" {
			t.Fatalf("event %s", ev)
		}
		var data events.Event
		if err := ev.DataAs(&data); err != nil {
			t.Fatal(err)
		}
		if data.ID != want.e.ID || data.Type != want.e.Type || data.Digest != want.e.Digest || data.Tag != want.e.Tag ||
			data.Repository != want.e.Repository || data.Actor != want.e.Actor {
			t.Fatalf("data %+v, want %+v", data, want.e)
		}
		if err := verifyStandardWebhooks(h.secret(t, "/ce"), r.header, r.body, time.Now()); err != nil {
			t.Fatal(err)
		}
	}

	// Without an external URL the source is a URI reference under "hubctl".
	h.d.ExternalURL = ""
	e := h.push("acme/app", "v2")
	h.step()
	r := byID(t, h.rc.requests("/ce"), e.ID)
	ev, err := binding.ToEvent(t.Context(), cehttp.NewMessage(r.header, io.NopCloser(bytes.NewReader(r.body))))
	if err != nil || ev.Validate() != nil || ev.Source() != "hubctl/acme/app" || ev.Subject() != "acme/app:v2" {
		t.Fatalf("event %v: %v", ev, err)
	}
}

// TestFormatDistribution checks the distribution envelope, and that the events it has
// no action for are not fanned out to a distribution hook at all.
func TestFormatDistribution(t *testing.T) {
	h := newHarness(t, backends[0].open, "127.0.0.1/32")
	h.d.ExternalURL = "https://hub.example.com"
	admin := h.user("admin", true)
	hk, _ := h.hookFormat(admin, webhook.ScopeSite, "", "/dist", webhook.FormatDistribution)
	var sent []events.Event
	for _, typ := range events.Types {
		e, err := h.store.AppendEvent(t.Context(), sample(typ, "acme/app"))
		if err != nil {
			t.Fatal(err)
		}
		if webhook.Carries(webhook.FormatDistribution, typ) {
			sent = append(sent, e)
		}
	}
	h.step()
	got := h.rc.requests("/dist")
	if len(got) != len(sent) || len(sent) != 5 {
		t.Fatalf("%d requests for %d carried events, want 5", len(got), len(sent))
	}
	if ds := h.deliveries(hk.ID); len(ds) != len(sent) {
		t.Fatalf("%d deliveries: the events distribution does not carry were fanned out", len(ds))
	}
	wantAction := map[events.Type]string{events.ManifestPushed: "push", events.ManifestDeleted: "delete", events.TagDeleted: "delete",
		events.BlobDeleted: "delete", events.RepositoryDeleted: "delete"}
	for _, e := range sent {
		r := byID(t, got, e.ID)
		if ct := r.header.Get("Content-Type"); ct != "application/vnd.docker.distribution.events.v2+json" {
			t.Fatalf("Content-Type %q", ct)
		}
		// Decoded strictly into distribution's field names: a misspelt one fails here.
		var env struct {
			Events []struct {
				ID        string    `json:"id"`
				Timestamp time.Time `json:"timestamp"`
				Action    string    `json:"action"`
				Target    struct {
					MediaType  string `json:"mediaType"`
					Digest     string `json:"digest"`
					Size       int64  `json:"size"`
					Length     int64  `json:"length"`
					Repository string `json:"repository"`
					URL        string `json:"url"`
					Tag        string `json:"tag"`
				} `json:"target"`
				Request struct {
					ID        string `json:"id"`
					Addr      string `json:"addr"`
					Host      string `json:"host"`
					Method    string `json:"method"`
					UserAgent string `json:"useragent"`
				} `json:"request"`
				Actor struct {
					Name string `json:"name"`
				} `json:"actor"`
				Source struct {
					Addr       string `json:"addr"`
					InstanceID string `json:"instanceID"`
				} `json:"source"`
			} `json:"events"`
		}
		dec := json.NewDecoder(bytes.NewReader(r.body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&env); err != nil || len(env.Events) != 1 {
			t.Fatalf("envelope %s: %v", r.body, err)
		}
		ev := env.Events[0]
		if ev.ID != e.ID || !ev.Timestamp.Equal(e.Time) || ev.Action != wantAction[e.Type] || ev.Target.Repository != "acme/app" ||
			ev.Target.Digest != e.Digest || ev.Target.Tag != e.Tag || ev.Actor.Name != "alice" ||
			ev.Request.Host != "hub.example.com" || ev.Source.Addr != "hub.example.com" || ev.Source.InstanceID == "" {
			t.Fatalf("%s: %s", e.Type, r.body)
		}
		// A site hook sees where the request came from.
		if ev.Request.Addr != "192.0.2.7" || ev.Request.ID != "req-7f3a" {
			t.Fatalf("site hook request %+v", ev.Request)
		}
		if e.Type == events.ManifestPushed {
			if ev.Target.MediaType != e.MediaType || ev.Target.Size != 1234 || ev.Target.Length != 1234 || ev.Request.Method != "PUT" ||
				ev.Target.URL != "https://hub.example.com/v2/acme/app/manifests/"+digestA {
				t.Fatalf("push target %s", r.body)
			}
		} else if ev.Request.Method != "DELETE" {
			t.Fatalf("%s method %q", e.Type, ev.Request.Method)
		}
	}
}

// TestFormatHarbor checks Harbor's payload: the event types, the repository's
// visibility as repo_type, the resource URL under the external URL.
func TestFormatHarbor(t *testing.T) {
	h := newHarness(t, backends[0].open, "127.0.0.1/32")
	h.d.ExternalURL = "https://hub.example.com"
	admin := h.user("admin", true)
	hk, _ := h.hookFormat(admin, webhook.ScopeSite, "", "/harbor", webhook.FormatHarbor)
	if err := h.store.EnsureRepository(t.Context(), "acme/pub"); err != nil {
		t.Fatal(err)
	}
	if err := h.store.SetRepositoryVisibility(t.Context(), "acme/pub", accounts.Public); err != nil {
		t.Fatal(err)
	}
	type payload struct {
		Type      string `json:"type"`
		OccurAt   int64  `json:"occur_at"`
		Operator  string `json:"operator"`
		EventData struct {
			Resources []struct {
				Digest      string `json:"digest"`
				Tag         string `json:"tag"`
				ResourceURL string `json:"resource_url"`
			} `json:"resources"`
			Repository struct {
				DateCreated  int64  `json:"date_created"`
				Name         string `json:"name"`
				Namespace    string `json:"namespace"`
				RepoFullName string `json:"repo_full_name"`
				RepoType     string `json:"repo_type"`
			} `json:"repository"`
			Custom map[string]string `json:"custom_attributes"`
		} `json:"event_data"`
	}
	for _, tt := range []struct {
		e                     events.Event
		typ, repoType, tag    string
		resourceURL, operator string
	}{
		{sample(events.ManifestPushed, "acme/pub"), "PUSH_ARTIFACT", "public", "v1", "hub.example.com/acme/pub:v1", "alice"},
		{sample(events.ManifestPushed, "acme/priv/app"), "PUSH_ARTIFACT", "private", "v1", "hub.example.com/acme/priv/app:v1", "alice"},
		{sample(events.ManifestDeleted, "acme/pub"), "DELETE_ARTIFACT", "public", digestA, "hub.example.com/acme/pub@" + digestA, "alice"},
		{sample(events.QuotaExceeded, "acme/pub"), "QUOTA_EXCEED", "public", "", "", "alice"},
	} {
		e, err := h.store.AppendEvent(t.Context(), tt.e)
		if err != nil {
			t.Fatal(err)
		}
		n := len(h.rc.requests("/harbor"))
		h.step()
		got := h.rc.requests("/harbor")
		if len(got) != n+1 {
			t.Fatalf("%s: %d requests, want %d", tt.typ, len(got), n+1)
		}
		r := got[n]
		var p payload
		dec := json.NewDecoder(bytes.NewReader(r.body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %v", r.body, err)
		}
		repo := p.EventData.Repository
		ns, name, _ := strings.Cut(e.Repository, "/")
		if p.Type != tt.typ || p.OccurAt != e.Time.Unix() || p.Operator != tt.operator || repo.RepoFullName != e.Repository ||
			repo.Namespace != ns || repo.Name != name || repo.RepoType != tt.repoType {
			t.Fatalf("%s", r.body)
		}
		if tt.typ == "QUOTA_EXCEED" {
			if p.EventData.Custom["Details"] != "namespace acme is over its quota of 1 GiB" || len(p.EventData.Resources) != 0 {
				t.Fatalf("quota %s", r.body)
			}
			continue
		}
		if len(p.EventData.Resources) != 1 || p.EventData.Resources[0].Digest != digestA || p.EventData.Resources[0].Tag != tt.tag ||
			p.EventData.Resources[0].ResourceURL != tt.resourceURL {
			t.Fatalf("resources %s", r.body)
		}
	}
	// Not Harbor events: never fanned out to the hook.
	before := len(h.deliveries(hk.ID))
	for _, typ := range []events.Type{events.TagMoved, events.TagDeleted, events.BlobDeleted, events.RepositoryCreated,
		events.ChartPushed, events.GCCompleted} {
		if _, err := h.store.AppendEvent(t.Context(), sample(typ, "acme/pub")); err != nil {
			t.Fatal(err)
		}
	}
	h.step()
	if n := len(h.deliveries(hk.ID)); n != before {
		t.Fatalf("%d deliveries of events Harbor has no type for", n-before)
	}
	// A quota refusal with no repository has no Harbor form: skipped, with the reason,
	// and nothing sent.
	if _, err := h.store.AppendEvent(t.Context(), events.Event{Type: events.QuotaExceeded, Detail: map[string]any{"message": "m"}}); err != nil {
		t.Fatal(err)
	}
	n := len(h.rc.requests("/harbor"))
	h.step()
	ds := h.deliveries(hk.ID)
	if len(h.rc.requests("/harbor")) != n || ds[0].State != webhook.StateSkipped || !strings.Contains(ds[0].LastError, "format harbor does not carry") ||
		len(ds[0].Log) != 0 {
		t.Fatalf("delivery %+v", ds[0])
	}
}

// TestFormatSiteOnlyFields is the attacker's test: a namespace hook, in any format,
// never learns the address or request id of whoever pushed; a site hook does. Every
// body is signed as sent.
func TestFormatSiteOnlyFields(t *testing.T) {
	h := newHarness(t, backends[0].open, "127.0.0.1/32")
	admin := h.user("admin", true)
	alice := h.user("alice", false)
	secrets := map[string]string{}
	for _, f := range webhook.Formats {
		_, secrets["/ns/"+f] = h.hookFormat(alice, webhook.ScopeNamespace, "alice", "/ns/"+f, f)
		_, secrets["/site/"+f] = h.hookFormat(admin, webhook.ScopeSite, "", "/site/"+f, f)
	}
	h.push("alice/app", "v1") // from 192.0.2.7
	if _, err := h.store.AppendEvent(t.Context(), sample(events.ManifestPushed, "alice/app")); err != nil {
		t.Fatal(err)
	}
	h.step()
	for path, secret := range secrets {
		got := h.rc.requests(path)
		if len(got) != 2 {
			t.Fatalf("%s: %d requests, want 2", path, len(got))
		}
		for _, r := range got {
			if err := verifyStandardWebhooks(secret, r.header, r.body, time.Now()); err != nil {
				t.Fatalf("%s: Standard Webhooks: %v", path, err)
			}
			if err := verifyGitHub(secret, r.header, r.body); err != nil {
				t.Fatalf("%s: GitHub: %v", path, err)
			}
			leaks := bytes.Contains(r.body, []byte("192.0.2.7")) || bytes.Contains(r.body, []byte("req-7f3a"))
			site := strings.HasPrefix(path, "/site/")
			if !site && leaks {
				t.Fatalf("%s: a namespace hook got the pusher's address or request id: %s", path, r.body)
			}
			if site && !leaks && path != "/site/"+webhook.FormatHarbor { // Harbor's payload has no such field
				t.Fatalf("%s: a site hook did not get the address: %s", path, r.body)
			}
		}
	}
}

func TestValidateFormats(t *testing.T) {
	base := webhook.Hook{Scope: webhook.ScopeSite, URL: "https://ci.example.com/hook"}
	for _, f := range webhook.Formats {
		h := base
		h.Format = f
		if err := webhook.Validate(h, nil); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	h := base
	h.Format = "slack"
	err := webhook.Validate(h, nil)
	if err == nil || !strings.Contains(err.Error(), `format "slack" is unknown: want one of hubctl, cloudevents, distribution, harbor`) {
		t.Fatalf("unknown format: %v", err)
	}
	h.Format = ""
	if webhook.Validate(h, nil) == nil {
		t.Fatal("an empty format is accepted by Validate: the API defaults it before")
	}
	h.Format, h.Events = webhook.FormatDistribution, []events.Type{events.ManifestPushed, events.TagMoved}
	if err := webhook.Validate(h, nil); err == nil || !strings.Contains(err.Error(), "format distribution does not carry tag.moved events: it carries manifest.pushed") {
		t.Fatalf("a distribution hook asking for tag.moved: %v", err)
	}
	h.Format, h.Events = webhook.FormatHarbor, []events.Type{events.ManifestPushed, events.QuotaExceeded}
	if err := webhook.Validate(h, nil); err != nil {
		t.Fatal(err)
	}
	if got := webhook.CarriedTypes(webhook.FormatCloudEvents); !slices.Equal(got, events.Types) {
		t.Fatalf("cloudevents carries %v", got)
	}
}

// byID returns the request of the event id (the webhook-id header): workers send
// at once, so requests arrive in any order.
func byID(t *testing.T, got []received, id string) received {
	t.Helper()
	for _, r := range got {
		if r.header.Get("webhook-id") == id {
			return r
		}
	}
	t.Fatalf("no request for event %s", id)
	return received{}
}

// secret returns the secret of the hook posting to path (kept by the harness).
func (h *harness) secret(t *testing.T, path string) string {
	t.Helper()
	s, ok := h.secrets[path]
	if !ok {
		t.Fatalf("no hook posts to %s", path)
	}
	return s
}
