package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/pgtest"
	"github.com/hubctl/hubctl/internal/secrets"
	"github.com/hubctl/hubctl/internal/webhook"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

var backends = []struct {
	name string
	open func(t *testing.T) *sqlstore.Store
}{
	{"sqlite", func(t *testing.T) *sqlstore.Store {
		s, err := sqlstore.OpenSQLite(t.Context(), t.TempDir()+"/db")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}},
	{"postgres", func(t *testing.T) *sqlstore.Store {
		s, err := sqlstore.OpenPostgres(t.Context(), pgtest.Start(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}},
}

// received is one request the receiver got.
type received struct {
	path   string
	header http.Header
	body   []byte
}

// receiver is a real HTTP server on 127.0.0.1 playing the webhook's receiver; answer
// decides each reply (200 when nil).
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(n int, w http.ResponseWriter)
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, received{path: r.URL.Path, header: r.Header.Clone(), body: b})
		n, answer := len(rc.got), rc.answer
		rc.mu.Unlock()
		if answer != nil {
			answer(n, w)
			return
		}
		w.Write([]byte("ok"))
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) requests(path string) []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []received
	for _, r := range rc.got {
		if r.path == path {
			out = append(out, r)
		}
	}
	return out
}

// verifyStandardWebhooks checks the Standard Webhooks signature the way the spec
// describes it, written here independently of the hub's code: the key is the base64
// after "whsec_", the signed content "id.timestamp.body", the header a space-separated
// list of "v1,<base64>", the timestamp within five minutes.
func verifyStandardWebhooks(secret string, h http.Header, body []byte, now time.Time) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || id == "" {
		return errors.New("missing webhook-id or webhook-timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return errors.New("timestamp out of tolerance")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		v, s, _ := strings.Cut(sig, ",")
		got, err := base64.StdEncoding.DecodeString(s)
		if v == "v1" && err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no valid v1 signature")
}

// verifyGitHub checks X-Hub-Signature-256 as GitHub's documentation describes: the hex
// HMAC-SHA256 of the body keyed with the secret as configured.
func verifyGitHub(secret string, h http.Header, body []byte) error {
	sig, ok := strings.CutPrefix(h.Get("X-Hub-Signature-256"), "sha256=")
	if !ok {
		return errors.New("no sha256= signature")
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return errors.New("X-Hub-Signature-256 does not verify")
	}
	return nil
}

// clock is the deliverer's clock, moved by tests to make retries due.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type harness struct {
	t     *testing.T
	store *sqlstore.Store
	ring  *secrets.Keyring
	rc    *receiver
	clock *clock
	d     *webhook.Deliverer
	// secrets are the hooks' secrets by the receiver's path.
	secrets map[string]string
}

func newHarness(t *testing.T, open func(*testing.T) *sqlstore.Store, allow ...string) *harness {
	k, _ := secrets.GenerateKey("k")
	ring, _ := secrets.NewKeyring(k)
	store := open(t)
	var g webhook.Guard
	for _, a := range allow {
		g.Allow = append(g.Allow, netip.MustParsePrefix(a))
	}
	clk := &clock{t: time.Now()}
	h := &harness{t: t, store: store, ring: ring, rc: newReceiver(t), clock: clk, secrets: map[string]string{}}
	h.d = &webhook.Deliverer{Store: store, Keyring: ring, MayPull: (&authz.Policy{Store: store}).MayPull, Client: webhook.NewClient(g),
		Now: clk.now, MaxFailures: 3}
	return h
}

func (h *harness) user(name string, admin bool) accounts.User {
	h.t.Helper()
	u, err := h.store.CreateUser(h.t.Context(), accounts.User{Name: name, Admin: admin, PasswordHash: "x"})
	if err != nil {
		h.t.Fatal(err)
	}
	// The account's own account.created event is fixture, not what a test counts: move
	// the dispatcher past it (hooks are backdated a minute, so they would match it).
	if _, err := h.store.DispatchWebhooks(h.t.Context(), 0, time.Now()); err != nil {
		h.t.Fatal(err)
	}
	return u
}

// hook stores a hook of owner on scope/target posting to the receiver's path.
func (h *harness) hook(owner accounts.User, scope, target, path string) (webhook.Hook, string) {
	h.t.Helper()
	return h.hookFormat(owner, scope, target, path, webhook.FormatHubctl)
}

// hookFormat is hook with a body format.
func (h *harness) hookFormat(owner accounts.User, scope, target, path, format string) (webhook.Hook, string) {
	h.t.Helper()
	now := time.Now().Add(-time.Minute)
	hk := webhook.Hook{ID: uuid.NewString(), Scope: scope, Target: target, URL: h.rc.srv.URL + path, Format: format,
		Enabled: true, CreatedBy: owner.ID, CreatedAt: now, UpdatedAt: now}
	secret, _ := webhook.NewSecret()
	h.secrets[path] = secret
	if err := webhook.Seal(h.ring, &hk, secret, map[string]string{"Authorization": "Bearer receiver-token"}); err != nil {
		h.t.Fatal(err)
	}
	if err := h.store.CreateWebhook(h.t.Context(), hk, owner.Name); err != nil {
		h.t.Fatal(err)
	}
	return hk, secret
}

func (h *harness) push(repo, tag string) events.Event {
	h.t.Helper()
	e, err := h.store.AppendEvent(h.t.Context(), events.Event{Type: events.ManifestPushed, Repository: repo, Tag: tag,
		Digest: "sha256:" + strings.Repeat("a", 64), Actor: "someone", Remote: "192.0.2.7"})
	if err != nil {
		h.t.Fatal(err)
	}
	return e
}

func (h *harness) step() {
	h.t.Helper()
	for range 50 { // dispatch, then claims until nothing is due
		busy, err := h.d.Step(h.t.Context())
		if err != nil {
			h.t.Fatal(err)
		}
		if !busy {
			return
		}
	}
	h.t.Fatal("the deliverer is still busy after 50 steps")
}

func (h *harness) deliveries(hookID string) []webhook.Delivery {
	h.t.Helper()
	ds, err := h.store.ListWebhookDeliveries(h.t.Context(), hookID, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	return ds
}

func TestDeliverSigned(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			h := newHarness(t, b.open, "127.0.0.1/32")
			alice := h.user("alice", false)
			hk, secret := h.hook(alice, webhook.ScopeNamespace, "alice", "/alice")
			other, _ := h.hook(alice, webhook.ScopeRepository, "alice/other", "/other")
			e := h.push("alice/app", "v1")
			h.step()
			got := h.rc.requests("/alice")
			if len(got) != 1 || len(h.rc.requests("/other")) != 0 {
				t.Fatalf("receiver got %d (and %d for the other hook), want 1", len(got), len(h.rc.requests("/other")))
			}
			r := got[0]
			if err := verifyStandardWebhooks(secret, r.header, r.body, time.Now()); err != nil {
				t.Fatalf("Standard Webhooks signature: %v", err)
			}
			if err := verifyGitHub(secret, r.header, r.body); err != nil {
				t.Fatalf("GitHub signature: %v", err)
			}
			if err := verifyStandardWebhooks("whsec_"+base64.StdEncoding.EncodeToString(make([]byte, 32)), r.header, r.body, time.Now()); err == nil {
				t.Fatal("a wrong secret verifies")
			}
			if r.header.Get("webhook-id") != e.ID || r.header.Get("Authorization") != "Bearer receiver-token" ||
				r.header.Get("Content-Type") != "application/json" {
				t.Fatalf("headers %v", r.header)
			}
			var body webhook.Body
			if err := json.Unmarshal(r.body, &body); err != nil || body.ID != e.ID || body.Data.Tag != "v1" || body.Hook != hk.ID ||
				body.Data.Remote != "" {
				t.Fatalf("body %s: %v", r.body, err)
			}
			ds := h.deliveries(hk.ID)
			if len(ds) != 1 || ds[0].State != webhook.StateDelivered || len(ds[0].Log) != 1 || ds[0].Log[0].Status != 200 ||
				ds[0].Log[0].ResponseBody != "ok" {
				t.Fatalf("deliveries %+v", ds)
			}
			if v := ds[0].Log[0].RequestHeaders["Authorization"]; v != webhook.Redacted {
				t.Fatalf("stored custom header %q, want it redacted", v)
			}
			if len(h.deliveries(other.ID)) != 0 {
				t.Fatal("a hook of another repository got a delivery")
			}

			// Redelivery sends the same event (same webhook-id) again.
			if _, err := h.store.RedeliverWebhook(t.Context(), hk.ID, ds[0].ID, "alice", h.clock.now()); err != nil {
				t.Fatal(err)
			}
			h.step()
			if got := h.rc.requests("/alice"); len(got) != 2 || got[1].header.Get("webhook-id") != e.ID {
				t.Fatalf("redelivery: %d requests", len(got))
			}
			// A hook created after an event does not get it.
			late, _ := h.hook(alice, webhook.ScopeNamespace, "alice", "/late")
			if len(h.deliveries(late.ID)) != 0 {
				t.Fatal("late hook")
			}
		})
	}
}

func TestSSRFGuard(t *testing.T) {
	h := newHarness(t, backends[0].open) // no allow-list: 127.0.0.1 is refused
	alice := h.user("alice", false)
	hk, _ := h.hook(alice, webhook.ScopeNamespace, "alice", "/alice")
	h.push("alice/app", "v1")
	h.step()
	if n := len(h.rc.requests("/alice")); n != 0 {
		t.Fatalf("the guard let %d requests through to 127.0.0.1", n)
	}
	ds := h.deliveries(hk.ID)
	if len(ds) != 1 || ds[0].State != webhook.StatePending || len(ds[0].Log) != 1 || !strings.Contains(ds[0].Log[0].Error, "not allowed") ||
		!strings.Contains(ds[0].Log[0].Error, "127.0.0.1 is in 127.0.0.0/8") {
		t.Fatalf("deliveries %+v", ds)
	}
	for _, addr := range []string{"127.0.0.1:80", "[::1]:443", "169.254.169.254:80", "10.1.2.3:80", "192.168.0.1:80", "[fd00:ec2::254]:80",
		"0.0.0.0:80", "[::ffff:127.0.0.1]:80", "100.100.100.200:80"} {
		if err := (webhook.Guard{}).Check(addr); !errors.Is(err, webhook.ErrForbiddenAddress) {
			t.Errorf("%s: %v", addr, err)
		}
	}
	if err := (webhook.Guard{}).Check("93.184.216.34:443"); err != nil {
		t.Errorf("a public address: %v", err)
	}
}

func TestRetriesAndDisabling(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			h := newHarness(t, b.open, "127.0.0.1/32")
			alice := h.user("alice", false)
			h.rc.answer = func(n int, w http.ResponseWriter) {
				switch n {
				case 1: // busy, come back in an hour
					w.Header().Set("Retry-After", "3600")
					w.WriteHeader(http.StatusServiceUnavailable)
				case 2:
					w.WriteHeader(http.StatusOK)
				default:
					w.WriteHeader(http.StatusGone)
				}
			}
			hk, _ := h.hook(alice, webhook.ScopeNamespace, "alice", "/alice")
			h.push("alice/app", "v1")
			h.step()
			ds := h.deliveries(hk.ID)
			if len(ds) != 1 || ds[0].State != webhook.StatePending || ds[0].NextAt.Before(h.clock.now().Add(59*time.Minute)) {
				t.Fatalf("after a 503 with Retry-After 3600: %+v", ds)
			}
			h.clock.add(30 * time.Minute)
			h.step()
			if n := len(h.rc.requests("/alice")); n != 1 {
				t.Fatalf("retried before Retry-After: %d requests", n)
			}
			h.clock.add(31 * time.Minute)
			h.step()
			if ds := h.deliveries(hk.ID); ds[0].State != webhook.StateDelivered || ds[0].Attempts != 2 || len(ds[0].Log) != 2 {
				t.Fatalf("after the retry: %+v", ds[0])
			}
			// 410 Gone turns the hook off, and it gets nothing more.
			h.push("alice/app", "v2")
			h.step()
			got, _ := h.store.GetWebhook(t.Context(), hk.ID)
			if got.Enabled || !strings.Contains(got.DisabledReason, "410") {
				t.Fatalf("after 410: %+v", got)
			}
			h.push("alice/app", "v3")
			h.step()
			if n := len(h.rc.requests("/alice")); n != 3 {
				t.Fatalf("%d requests, want none after the 410", n)
			}

			// A hook failing MaxFailures (3) times in a row is paused.
			h.rc.answer = func(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) }
			bad, _ := h.hook(alice, webhook.ScopeNamespace, "alice", "/bad")
			h.push("alice/app", "v4")
			for range 4 {
				h.step()
				h.clock.add(24 * time.Hour)
			}
			got, _ = h.store.GetWebhook(t.Context(), bad.ID)
			if got.Enabled || !strings.Contains(got.DisabledReason, "paused after 3") || len(h.rc.requests("/bad")) != 3 {
				t.Fatalf("after failures: %+v, %d requests", got, len(h.rc.requests("/bad")))
			}
			// Turned on again, the hook starts over: no failures, no reason, its pending
			// delivery is sent again.
			if err := h.store.SetWebhookEnabled(t.Context(), bad.ID, true, "alice"); err != nil {
				t.Fatal(err)
			}
			if got, _ = h.store.GetWebhook(t.Context(), bad.ID); !got.Enabled || got.Failures != 0 || got.DisabledReason != "" {
				t.Fatalf("re-enabled: %+v", got)
			}
		})
	}
}

// TestOwnerLostAccess is the attacker's test: mallory, an admin of organisation acme,
// adds a webhook on acme and is then removed from it. The events of acme's private
// repositories must never reach her hook, while the hook of acme's owner still gets
// them.
func TestOwnerLostAccess(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			h := newHarness(t, b.open, "127.0.0.1/32")
			owner := h.user("owner", false)
			mallory := h.user("mallory", false)
			if _, err := h.store.CreateOrg(ctx, "acme", "owner"); err != nil {
				t.Fatal(err)
			}
			if err := h.store.AddTeamMember(ctx, "acme", accounts.OwnersTeam, "mallory"); err != nil {
				t.Fatal(err)
			}
			evil, _ := h.hook(mallory, webhook.ScopeNamespace, "acme", "/mallory")
			h.hook(owner, webhook.ScopeNamespace, "acme", "/owner")
			h.push("acme/before", "1") // fanned out while she still had access, delivered after
			if _, err := h.d.Store.DispatchWebhooks(ctx, 0, h.clock.now()); err != nil {
				t.Fatal(err)
			}
			if err := h.store.RemoveTeamMember(ctx, "acme", accounts.OwnersTeam, "mallory"); err != nil {
				t.Fatal(err)
			}
			h.push("acme/secret", "1")
			h.step()
			if n := len(h.rc.requests("/mallory")); n != 0 {
				t.Fatalf("mallory's hook got %d private events after she lost access", n)
			}
			if n := len(h.rc.requests("/owner")); n != 2 {
				t.Fatalf("the owner's hook got %d events, want 2", n)
			}
			for _, d := range h.deliveries(evil.ID) {
				if d.State != webhook.StateSkipped || len(d.Log) != 0 {
					t.Fatalf("mallory's delivery %+v, want skipped with no attempt", d)
				}
			}
			// An owner whose account is gone is no owner either.
			if _, err := h.store.DeleteUser(ctx, "owner", false); err != nil {
				t.Fatalf("delete owner: %v", err)
			}
			h.push("acme/secret", "2")
			h.step()
			if n := len(h.rc.requests("/owner")); n != 2 {
				t.Fatalf("a deleted owner's hook got %d events, want still 2", n)
			}
		})
	}
}

// TestTwoReplicas: two hubs on one PostgreSQL database dispatch and deliver together;
// every event reaches the receiver once (the cursor lock fans out once, SKIP LOCKED and
// the lease keep the workers' claims apart).
func TestTwoReplicas(t *testing.T) {
	dsn := pgtest.Start(t)
	open := func(t *testing.T) *sqlstore.Store {
		s, err := sqlstore.OpenPostgres(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	h := newHarness(t, open, "127.0.0.1/32")
	second := *h.d
	second.Store = open(t)
	alice := h.user("alice", false)
	h.hook(alice, webhook.ScopeNamespace, "alice", "/alice")
	const n = 40
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			h.push("alice/app", strconv.Itoa(i))
		}
	})
	for _, d := range []*webhook.Deliverer{h.d, &second} {
		wg.Go(func() {
			for range 200 {
				if _, err := d.Step(context.Background()); err != nil {
					t.Error(err)
					return
				}
				if len(h.rc.requests("/alice")) >= n {
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for _, r := range h.rc.requests("/alice") {
		seen[r.header.Get("webhook-id")]++
	}
	if len(seen) != n {
		t.Fatalf("%d distinct events delivered, want %d", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Fatalf("event %s delivered %d times", id, k)
		}
	}
}
