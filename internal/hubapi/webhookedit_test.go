package hubapi_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/hubapi"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/webhook"
)

// withDeliverer gives the API a deliverer for test deliveries whose SSRF guard opens
// allow.
func withDeliverer(allow ...string) func(*hubapi.Options) {
	return func(o *hubapi.Options) {
		var g webhook.Guard
		for _, a := range allow {
			g.Allow = append(g.Allow, netip.MustParsePrefix(a))
		}
		o.Deliverer = &webhook.Deliverer{Store: o.Webhooks, Keyring: o.Keyring, Client: webhook.NewClient(g), Now: o.Now}
	}
}

// hookReceiver is a real receiver on 127.0.0.1 that keeps what it got.
type hookReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []http.Header
	bodies [][]byte
	status int
}

func newHookReceiver(t *testing.T) *hookReceiver {
	rc := &hookReceiver{status: http.StatusOK}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got, rc.bodies = append(rc.got, r.Header.Clone()), append(rc.bodies, b)
		status := rc.status
		rc.mu.Unlock()
		w.WriteHeader(status)
		w.Write([]byte("pong from the receiver"))
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *hookReceiver) last() (http.Header, []byte, int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.got) == 0 {
		return nil, nil, 0
	}
	return rc.got[len(rc.got)-1], rc.bodies[len(rc.bodies)-1], len(rc.got)
}

// verifies checks the Standard Webhooks signature as a receiver holding secret does,
// written from the spec, not from the hub's code: any of the space-separated v1
// signatures may match.
func verifies(secret string, h http.Header, body []byte) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "." + string(body)))
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		if v, s, ok := strings.Cut(sig, ","); ok && v == "v1" {
			if got, err := base64.StdEncoding.DecodeString(s); err == nil && hmac.Equal(got, want) {
				return true
			}
		}
	}
	return false
}

func TestWebhookUpdateAPI(t *testing.T) {
	f := newFixture(t)
	create := map[string]any{"scope": "namespace", "target": "alice", "url": "https://example.com/hook",
		"events": []string{"manifest.pushed"}, "tags": []string{"v*"}, "headers": map[string]string{"Authorization": "Bearer s3cret-header"}}
	made := decodeAs[hubtypes.CreateWebhookResponse](t, f.want(f.do(asAlice, "POST", "/api/v1/webhooks", create), 201, ""))
	path := "/api/v1/webhooks/" + made.ID

	// What the patch names changes; what it leaves out stays.
	r := f.want(f.do(asAlice, "PATCH", path, map[string]any{"url": "https://example.com/new", "tags": []string{"release-*"},
		"headers": map[string]string{"X-Token": "t0ken-value"}}), 200, "")
	got := decodeAs[hubtypes.Webhook](t, r)
	if got.URL != "https://example.com/new" || got.Tags[0] != "release-*" || got.Events[0] != "manifest.pushed" ||
		len(got.Headers) != 1 || got.Headers[0] != "X-Token" || got.Scope != "namespace" || got.Target != "alice" {
		t.Fatalf("after the patch %+v", got)
	}
	if strings.Contains(string(r.body), "t0ken-value") {
		t.Fatal("the answer shows a header value")
	}
	e := f.wantAudit("webhook.update", "alice", made.ID)
	if !strings.Contains(e.Detail, "https://example.com/new") || !strings.Contains(e.Detail, "X-Token") || strings.Contains(e.Detail, "t0ken-value") {
		t.Fatalf("audit detail %q", e.Detail)
	}
	// null resets a list; {} removes the headers.
	got = decodeAs[hubtypes.Webhook](t, f.want(f.do(asAlice, "PATCH", path, `{"events": null, "tags": [], "headers": {}}`), 200, ""))
	if len(got.Events) != 0 || len(got.Tags) != 0 || len(got.Headers) != 0 || got.URL != "https://example.com/new" {
		t.Fatalf("after resetting %+v", got)
	}
	// Enabling alone is audited as before.
	f.want(f.do(asAlice, "PATCH", path, map[string]any{"enabled": false}), 200, "")
	f.wantAudit("webhook.disable", "alice", made.ID)

	// Checked as at creation; scope and target cannot change; an empty or null patch is
	// refused.
	for _, bad := range []string{
		`{"url": "ftp://example.com"}`,
		`{"url": "https://u:p@example.com"}`,
		`{"url": null}`,
		`{"format": null}`,
		`{"enabled": null}`,
		`{"format": "cloudevents-nope"}`,
		`{"events": ["nope"]}`,
		`{"tags": ["[x"]}`,
		`{"headers": {"Webhook-Signature": "x"}}`,
		`{"headers": {"X-Bad": "a\r\nInjected: yes"}}`,
		`{"scope": "site"}`,
		`{"target": "bob"}`,
		`{}`,
		`{"url": "https://example.com", "secret": "whsec_x"}`,
	} {
		f.want(f.do(asAlice, "PATCH", path, bad), 400, "INVALID_REQUEST")
	}
	if again := decodeAs[hubtypes.Webhook](t, f.want(f.do(asAlice, "GET", path, nil), 200, "")); again.URL != "https://example.com/new" ||
		again.Target != "alice" {
		t.Fatalf("a refused patch changed the hook: %+v", again)
	}

	// Others cannot learn the hook exists; a read-only token may not change it.
	f.want(f.do(asBob, "PATCH", path, map[string]any{"url": "https://evil.example.com"}), 404, "NAME_UNKNOWN")
	reader := f.token(asAlice, "hooks-read", "hub:webhooks:read")
	f.want(f.do(bearer(reader), "PATCH", path, map[string]any{"url": "https://evil.example.com"}), 403, "DENIED")
	writer := f.token(asAlice, "hooks-write", "hub:webhooks:write")
	f.want(f.do(bearer(writer), "PATCH", path, map[string]any{"url": "https://example.com/by-token"}), 200, "")
	f.want(f.do(asAdmin, "PATCH", path, map[string]any{"url": "https://example.com/by-admin"}), 200, "")
	f.want(f.do(asAlice, "PATCH", "/api/v1/webhooks/nope", map[string]any{"url": "https://example.com"}), 404, "NAME_UNKNOWN")
}

func TestWebhookRotateSecretAPI(t *testing.T) {
	f := newFixture(t, withDeliverer("127.0.0.1/32"))
	rc := newHookReceiver(t)
	made := decodeAs[hubtypes.CreateWebhookResponse](t, f.want(f.do(asAlice, "POST", "/api/v1/webhooks",
		map[string]any{"scope": "namespace", "target": "alice", "url": rc.srv.URL + "/hook"}), 201, ""))
	path := "/api/v1/webhooks/" + made.ID
	first := made.Secret

	// No body: a new secret, the old one signing for 24 hours more.
	r := f.want(f.do(asAlice, "POST", path+"/rotate-secret", nil), 200, "")
	rot := decodeAs[hubtypes.CreateWebhookResponse](t, r)
	second := rot.Secret
	if !strings.HasPrefix(second, "whsec_") || second == first || rot.PreviousSecretExpiresAt != f.clock.now().Add(24*time.Hour).UTC().Format(time.RFC3339) {
		t.Fatalf("rotated %+v (now %v)", rot.Webhook, f.clock.now())
	}
	e := f.wantAudit("webhook.rotate_secret", "alice", made.ID)
	for _, s := range []string{first, second, strings.TrimPrefix(second, "whsec_")} {
		if strings.Contains(e.Detail, s) {
			t.Fatal("the audit entry holds a secret")
		}
	}
	shown := string(f.want(f.do(asAlice, "GET", path, nil), 200, "").body)
	if strings.Contains(shown, strings.TrimPrefix(second, "whsec_")) || !strings.Contains(shown, "previousSecretExpiresAt") {
		t.Fatalf("GET after rotation: %s", shown)
	}
	// A receiver that knows either secret verifies the deliveries of the overlap.
	f.want(f.do(asAlice, "POST", path+"/test", nil), 200, "")
	h, body, _ := rc.last()
	if !verifies(first, h, body) || !verifies(second, h, body) {
		t.Fatalf("during the overlap: old %v, new %v", verifies(first, h, body), verifies(second, h, body))
	}

	// A given secret, the previous one dropped at once: only the newest signs.
	third := "whsec_" + base64.StdEncoding.EncodeToString([]byte("a secret of thirty-two bytes...."))
	rot = decodeAs[hubtypes.CreateWebhookResponse](t, f.want(f.do(asAlice, "POST", path+"/rotate-secret",
		map[string]any{"secret": third, "expire_previous_in": "0"}), 200, ""))
	if rot.Secret != third || rot.PreviousSecretExpiresAt != "" {
		t.Fatalf("rotated with no overlap %+v", rot)
	}
	f.clock.add(time.Second)
	f.want(f.do(asAlice, "POST", path+"/test", nil), 200, "")
	h, body, _ = rc.last()
	if !verifies(third, h, body) || verifies(second, h, body) || verifies(first, h, body) || len(strings.Fields(h.Get("webhook-signature"))) != 1 {
		t.Fatal("after a rotation with no overlap an old secret still signs")
	}

	for _, bad := range []string{
		`{"expire_previous_in": "169h"}`,
		`{"expire_previous_in": "-1h"}`,
		`{"expire_previous_in": "tomorrow"}`,
		`{"secret": "whsec_QUJD"}`,
		`{"secret": "not-a-secret"}`,
		`{"previous": "x"}`,
		`[]`,
	} {
		f.want(f.do(asAlice, "POST", path+"/rotate-secret", bad), 400, "INVALID_REQUEST")
	}
	f.want(f.do(asAlice, "POST", path+"/rotate-secret", map[string]any{"expire_previous_in": "168h"}), 200, "")
	f.want(f.do(asBob, "POST", path+"/rotate-secret", nil), 404, "NAME_UNKNOWN")
	reader := f.token(asAlice, "hooks-read", "hub:webhooks:read")
	f.want(f.do(bearer(reader), "POST", path+"/rotate-secret", nil), 403, "DENIED")
}

func TestWebhookTestAPI(t *testing.T) {
	f := newFixture(t, withDeliverer("127.0.0.1/32"))
	rc := newHookReceiver(t)
	made := decodeAs[hubtypes.CreateWebhookResponse](t, f.want(f.do(asAlice, "POST", "/api/v1/webhooks",
		map[string]any{"scope": "namespace", "target": "alice", "url": rc.srv.URL + "/hook", "events": []string{"tag.deleted"}}), 201, ""))
	path := "/api/v1/webhooks/" + made.ID

	// Others get 404 whether or not the hook exists, and use up no test.
	f.want(f.do(asBob, "POST", path+"/test", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asBob, "POST", "/api/v1/webhooks/nope/test", nil), 404, "NAME_UNKNOWN")
	reader := f.token(asAlice, "hooks-read", "hub:webhooks:read")
	f.want(f.do(bearer(reader), "POST", path+"/test", nil), 403, "DENIED")

	d := decodeAs[hubtypes.WebhookDelivery](t, f.want(f.do(asAlice, "POST", path+"/test", nil), 200, ""))
	if d.Type != "webhook.test" || d.State != "delivered" || len(d.Log) != 1 || d.Log[0].Status != 200 ||
		d.Log[0].ResponseBody != "pong from the receiver" {
		t.Fatalf("test %+v", d)
	}
	h, body, n := rc.last()
	if n != 1 || !verifies(made.Secret, h, body) || h.Get("webhook-id") != d.Event || !strings.Contains(string(body), `"webhook.test"`) {
		t.Fatalf("the receiver got %d requests: %v %s", n, h, body)
	}
	f.wantAudit("webhook.test", "alice", made.ID)

	// One test per hook a second.
	r := f.want(f.do(asAlice, "POST", path+"/test", nil), 429, "TOOMANYREQUESTS")
	if r.header.Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	if _, _, n := rc.last(); n != 1 {
		t.Fatal("a refused test was sent")
	}
	f.clock.add(time.Second)
	rc.mu.Lock()
	rc.status = http.StatusInternalServerError
	rc.mu.Unlock()
	d = decodeAs[hubtypes.WebhookDelivery](t, f.want(f.do(asAdmin, "POST", path+"/test", nil), 200, ""))
	if d.State != "failed" || d.LastStatus != 500 || d.Log[0].Status != 500 {
		t.Fatalf("test of a failing receiver %+v", d)
	}
	ds := decodeAs[[]hubtypes.WebhookDelivery](t, f.want(f.do(asAlice, "GET", path+"/deliveries", nil), 200, ""))
	if len(ds) != 2 || ds[0].Type != "webhook.test" || ds[0].State != "failed" || ds[1].State != "delivered" {
		t.Fatalf("deliveries %+v", ds)
	}
	if hook := decodeAs[hubtypes.Webhook](t, f.want(f.do(asAlice, "GET", path, nil), 200, "")); !hook.Enabled || hook.Failures != 0 {
		t.Fatalf("a failed test changed the hook %+v", hook)
	}
}

// TestWebhookTestAPIGuard: a test goes through the SSRF guard; a hub without a
// deliverer answers 503.
func TestWebhookTestAPIGuard(t *testing.T) {
	f := newFixture(t, withDeliverer())
	made := decodeAs[hubtypes.CreateWebhookResponse](t, f.want(f.do(asAlice, "POST", "/api/v1/webhooks",
		map[string]any{"scope": "namespace", "target": "alice", "url": "http://127.0.0.1:1/metadata"}), 201, ""))
	d := decodeAs[hubtypes.WebhookDelivery](t, f.want(f.do(asAlice, "POST", "/api/v1/webhooks/"+made.ID+"/test", nil), 200, ""))
	if d.State != "failed" || d.Log[0].Status != 0 || !strings.Contains(d.Log[0].Error, "not allowed") {
		t.Fatalf("test to loopback %+v", d)
	}

	g := newFixture(t)
	made = decodeAs[hubtypes.CreateWebhookResponse](t, g.want(g.do(asAlice, "POST", "/api/v1/webhooks",
		map[string]any{"scope": "namespace", "target": "alice", "url": "https://example.com"}), 201, ""))
	g.want(g.do(asAlice, "POST", "/api/v1/webhooks/"+made.ID+"/test", nil), 503, "UNAVAILABLE")
}
