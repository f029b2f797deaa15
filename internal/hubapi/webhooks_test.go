package hubapi_test

import (
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/hubapi"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/secrets"
)

func testKeyring(t *testing.T) *secrets.Keyring {
	t.Helper()
	k, err := secrets.GenerateKey("test")
	if err != nil {
		t.Fatal(err)
	}
	r, err := secrets.NewKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestWebhooksAPI(t *testing.T) {
	f := newFixture(t)
	create := map[string]any{"scope": "namespace", "target": "alice", "url": "https://example.com/hook",
		"events": []string{"manifest.pushed"}, "tags": []string{"v*"}, "headers": map[string]string{"Authorization": "Bearer s3cret-header"}}
	r := f.want(f.do(asAlice, "POST", "/api/v1/webhooks", create), 201, "")
	made := decodeAs[hubtypes.CreateWebhookResponse](t, r)
	if !strings.HasPrefix(made.Secret, "whsec_") || made.ID == "" || made.CreatedBy != "alice" || made.Headers[0] != "Authorization" {
		t.Fatalf("created %+v", made)
	}
	if strings.Contains(string(r.body), "s3cret-header") {
		t.Fatal("the create answer shows a header value")
	}
	f.wantAudit("webhook.create", "alice", made.ID)

	// Shown once: never again, nor the header values.
	for _, path := range []string{"/api/v1/webhooks", "/api/v1/webhooks/" + made.ID} {
		body := string(f.want(f.do(asAlice, "GET", path, nil), 200, "").body)
		if strings.Contains(body, made.Secret) || strings.Contains(body, strings.TrimPrefix(made.Secret, "whsec_")) ||
			strings.Contains(body, "s3cret-header") || !strings.Contains(body, made.ID) {
			t.Fatalf("GET %s: %s", path, body)
		}
	}
	// A given secret is kept; a malformed one refused.
	mine := "whsec_" + strings.Repeat("QUJD", 8)
	create["secret"] = mine
	if got := decodeAs[hubtypes.CreateWebhookResponse](t, f.want(f.do(asAlice, "POST", "/api/v1/webhooks", create), 201, "")); got.Secret != mine {
		t.Fatalf("secret %q, want the one given", got.Secret)
	}
	create["secret"] = "nope"
	f.want(f.do(asAlice, "POST", "/api/v1/webhooks", create), 400, "INVALID_REQUEST")
	delete(create, "secret")

	// Bob manages none of alice's hooks and cannot learn they exist.
	f.want(f.do(asBob, "GET", "/api/v1/webhooks/"+made.ID, nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asBob, "DELETE", "/api/v1/webhooks/"+made.ID, nil), 404, "NAME_UNKNOWN")
	if list := decodeAs[[]hubtypes.Webhook](t, f.want(f.do(asBob, "GET", "/api/v1/webhooks?namespace=alice", nil), 200, "")); len(list) != 0 {
		t.Fatalf("bob lists alice's hooks: %+v", list)
	}
	f.want(f.do(asBob, "POST", "/api/v1/webhooks", create), 403, "DENIED")
	site := map[string]any{"scope": "site", "url": "https://example.com/all"}
	f.want(f.do(asAlice, "POST", "/api/v1/webhooks", site), 403, "DENIED")
	f.want(f.do(asAdmin, "POST", "/api/v1/webhooks", site), 201, "")
	if list := decodeAs[[]hubtypes.Webhook](t, f.want(f.do(asAdmin, "GET", "/api/v1/webhooks", nil), 200, "")); len(list) != 3 {
		t.Fatalf("admin lists %d hooks, want 3", len(list))
	}

	// Bad values.
	for _, bad := range []map[string]any{
		{"scope": "namespace", "target": "alice", "url": "ftp://example.com"},
		{"scope": "namespace", "target": "alice", "url": "https://u:p@example.com"},
		{"scope": "namespace", "target": "alice", "url": "https://example.com", "events": []string{"nope"}},
		{"scope": "namespace", "target": "alice", "url": "https://example.com", "format": "slack"},
		{"scope": "namespace", "target": "alice", "url": "https://example.com", "tags": []string{"[x"}},
		{"scope": "namespace", "target": "alice", "url": "https://example.com", "tags": []string{"re:v(1"}},
		{"scope": "namespace", "target": "alice", "url": "https://example.com", "repositories": []string{"re:" + strings.Repeat("a", 257)}},
		{"scope": "namespace", "target": "alice", "url": "https://example.com", "format": "distribution", "events": []string{"tag.moved"}},
		{"scope": "namespace", "target": "alice", "url": "https://example.com", "headers": map[string]string{"Webhook-Signature": "x"}},
		{"scope": "repository", "target": "alice", "url": "https://example.com"},
		{"scope": "everything", "url": "https://example.com"},
	} {
		f.want(f.do(asAlice, "POST", "/api/v1/webhooks", bad), 400, "INVALID_REQUEST")
	}

	// Formats and regular-expression filters are kept and shown; errors say what is valid.
	ce := decodeAs[hubtypes.CreateWebhookResponse](t, f.want(f.do(asAlice, "POST", "/api/v1/webhooks", map[string]any{"scope": "namespace",
		"target": "alice", "url": "https://example.com/ce", "format": "cloudevents", "repositories": []string{"re:alice/(app|api)"},
		"tags": []string{`re:v\d+\.\d+\.\d+`, "latest"}}), 201, ""))
	got := decodeAs[hubtypes.Webhook](t, f.want(f.do(asAlice, "GET", "/api/v1/webhooks/"+ce.ID, nil), 200, ""))
	if got.Format != "cloudevents" || got.Repositories[0] != "re:alice/(app|api)" || got.Tags[0] != `re:v\d+\.\d+\.\d+` {
		t.Fatalf("created %+v", got)
	}
	f.want(f.do(asAlice, "DELETE", "/api/v1/webhooks/"+ce.ID, nil), 204, "")
	for bad, msg := range map[string]map[string]any{
		`format \"slack\" is unknown: want one of hubctl, cloudevents, distribution, harbor`: {"format": "slack"},
		"format distribution does not carry tag.moved events":                                {"format": "distribution", "events": []string{"tag.moved"}},
		"is not an RE2 regular expression":                                                   {"tags": []string{"re:(?=v)"}},
	} {
		req := map[string]any{"scope": "namespace", "target": "alice", "url": "https://example.com"}
		for k, v := range msg {
			req[k] = v
		}
		if r := f.want(f.do(asAlice, "POST", "/api/v1/webhooks", req), 400, "INVALID_REQUEST"); !strings.Contains(string(r.body), bad) {
			t.Fatalf("%v: %s, want %q", msg, r.body, bad)
		}
	}

	// Access tokens: hub:webhooks:read reads, hub:webhooks:write changes.
	reader := f.token(asAlice, "hooks-read", "hub:webhooks:read")
	writer := f.token(asAlice, "hooks-write", "hub:webhooks:write")
	other := f.token(asAlice, "pull", "repository:alice/*:pull")
	f.want(f.do(bearer(other), "GET", "/api/v1/webhooks", nil), 403, "DENIED")
	f.want(f.do(bearer(reader), "GET", "/api/v1/webhooks/"+made.ID, nil), 200, "")
	f.want(f.do(bearer(reader), "POST", "/api/v1/webhooks", create), 403, "DENIED")
	f.want(f.do(bearer(reader), "DELETE", "/api/v1/webhooks/"+made.ID, nil), 403, "DENIED")
	f.want(f.do(bearer(writer), "POST", "/api/v1/webhooks", create), 201, "")

	// Turning off and on: its managers, audited.
	off := decodeAs[hubtypes.Webhook](t, f.want(f.do(asAlice, "PATCH", "/api/v1/webhooks/"+made.ID, map[string]any{"enabled": false}), 200, ""))
	if off.Enabled {
		t.Fatal("still enabled")
	}
	f.wantAudit("webhook.disable", "alice", made.ID)
	f.want(f.do(asBob, "PATCH", "/api/v1/webhooks/"+made.ID, map[string]any{"enabled": true}), 404, "NAME_UNKNOWN")
	f.want(f.do(asAlice, "PATCH", "/api/v1/webhooks/"+made.ID, map[string]any{}), 400, "INVALID_REQUEST")
	f.want(f.do(bearer(reader), "PATCH", "/api/v1/webhooks/"+made.ID, map[string]any{"enabled": true}), 403, "DENIED")
	if on := decodeAs[hubtypes.Webhook](t, f.want(f.do(asAlice, "PATCH", "/api/v1/webhooks/"+made.ID, map[string]any{"enabled": true}), 200, "")); !on.Enabled {
		t.Fatal("not enabled again")
	}

	// Deliveries: the hook's managers only.
	f.want(f.do(asAlice, "GET", "/api/v1/webhooks/"+made.ID+"/deliveries", nil), 200, "")
	f.want(f.do(asBob, "GET", "/api/v1/webhooks/"+made.ID+"/deliveries", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asBob, "POST", "/api/v1/webhooks/"+made.ID+"/deliveries/1/redeliver", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asAlice, "POST", "/api/v1/webhooks/"+made.ID+"/deliveries/1/redeliver", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(bearer(reader), "POST", "/api/v1/webhooks/"+made.ID+"/deliveries/1/redeliver", nil), 403, "DENIED")

	f.want(f.do(asAlice, "DELETE", "/api/v1/webhooks/"+made.ID, nil), 204, "")
	f.wantAudit("webhook.delete", "alice", made.ID)
	f.want(f.do(asAlice, "GET", "/api/v1/webhooks/"+made.ID, nil), 404, "NAME_UNKNOWN")
}

// TestWebhooksWithoutKeys: a hub with no key to seal secrets (PostgreSQL with none
// configured) serves everything else and refuses to create a hook with a 503 naming
// what to set, rather than storing a secret it could not seal.
func TestWebhooksWithoutKeys(t *testing.T) {
	f := newFixture(t, func(o *hubapi.Options) { o.Keyring = nil })
	create := map[string]any{"scope": "namespace", "target": "alice", "url": "https://example.com/hook"}
	r := f.want(f.do(asAlice, "POST", "/api/v1/webhooks", create), 503, "UNAVAILABLE")
	if !strings.Contains(string(r.body), "HUBCTL_SECRETS_KEY") {
		t.Fatalf("the refusal does not say what to set: %s", r.body)
	}
	if list := decodeAs[[]hubtypes.Webhook](t, f.want(f.do(asAlice, "GET", "/api/v1/webhooks", nil), 200, "")); len(list) != 0 {
		t.Fatalf("hooks listed: %+v", list)
	}
}
