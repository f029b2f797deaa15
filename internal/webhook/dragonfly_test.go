package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/auth/token"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/webhook"
)

// dfPreheatArgs mirrors types.PreheatArgs of Dragonfly's manager (manager/types/job.go
// in dragonflyoss/dragonfly), every field with its Go type, so that decoding with
// DisallowUnknownFields refuses a field or a type the manager would not take.
type dfPreheatArgs struct {
	Type                        string            `json:"type"`
	URL                         string            `json:"url"`
	URLs                        []string          `json:"urls"`
	PieceLength                 *uint64           `json:"piece_length"`
	Tag                         string            `json:"tag"`
	Application                 string            `json:"application"`
	FilteredQueryParams         string            `json:"filtered_query_params"`
	Headers                     map[string]string `json:"headers"`
	Username                    string            `json:"username"`
	Password                    string            `json:"password"`
	Platform                    string            `json:"platform"`
	Scope                       string            `json:"scope"`
	IPs                         []string          `json:"ips"`
	Percentage                  *uint8            `json:"percentage"`
	Count                       *uint32           `json:"count"`
	ConcurrentCount             int64             `json:"concurrent_count"`
	ConcurrentTaskCount         int64             `json:"concurrent_task_count"`
	ConcurrentPeerCount         int64             `json:"concurrent_peer_count"`
	Timeout                     time.Duration     `json:"timeout"`
	LoadToCache                 bool              `json:"load_to_cache"`
	ContentForCalculatingTaskID *string           `json:"content_for_calculating_task_id"`
}

// dfCreateJob mirrors types.CreatePreheatJobRequest.
type dfCreateJob struct {
	BIO                 string        `json:"bio"`
	Type                string        `json:"type"`
	Args                dfPreheatArgs `json:"args"`
	UserID              uint          `json:"user_id"`
	SchedulerClusterIDs []uint        `json:"scheduler_cluster_ids"`
}

// fakeManager plays a Dragonfly manager, which cannot run here: a loopback server
// that checks each request against the manager's published API (the routes of
// manager/router/router.go, the bodies of manager/types/job.go, the personal access
// token of the open API) and answers as manager/handlers/job.go does. states are the
// job states successive polls report; create decides the create call's answer.
type fakeManager struct {
	t      *testing.T
	srv    *httptest.Server
	api    string // "oapi" or "v1"
	pat    string
	mu     sync.Mutex
	jobs   []dfCreateJob
	polls  int
	calls  int // create calls
	states []string
	create func(n int, w http.ResponseWriter) bool // true: answered, no job made
	fetch  func(job dfCreateJob)                   // what the manager does with a new job
	errs   []string
}

func newFakeManager(t *testing.T, api, pat string, states ...string) *fakeManager {
	m := &fakeManager{t: t, api: api, pat: pat, states: states}
	m.srv = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(m.srv.Close)
	return m
}

func (m *fakeManager) fail(format string, args ...any) {
	m.mu.Lock()
	m.errs = append(m.errs, fmt.Sprintf(format, args...))
	m.mu.Unlock()
}

func (m *fakeManager) check() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.errs {
		m.t.Error("fake manager: " + e)
	}
}

func (m *fakeManager) serve(w http.ResponseWriter, r *http.Request) {
	prefix := "/oapi/v1/jobs"
	if m.api == webhook.DragonflyV1 {
		prefix = "/api/v1/jobs"
	}
	if m.api == webhook.DragonflyOAPI && r.Header.Get("Authorization") != "Bearer "+m.pat {
		// The personal access token middleware answers 401 without a valid token.
		m.fail("%s %s: Authorization %q", r.Method, r.URL.Path, r.Header.Get("Authorization"))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if m.api == webhook.DragonflyV1 && r.Header.Get("Authorization") != "" {
		m.fail("the 2.0.x API got an Authorization header")
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == prefix:
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			m.fail("create: Content-Type %q", ct)
		}
		m.mu.Lock()
		m.calls++
		n := m.calls
		create := m.create
		m.mu.Unlock()
		if create != nil && create(n, w) {
			return
		}
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		var req dfCreateJob
		if err := dec.Decode(&req); err != nil {
			m.fail("create: body: %v", err)
			w.WriteHeader(http.StatusUnprocessableEntity)
			fmt.Fprintf(w, `{"errors":%q}`, err.Error())
			return
		}
		if req.Type != "preheat" || req.Args.Type != "image" || req.Args.URL == "" {
			m.fail("create: %+v", req)
		}
		if s := req.Args.Scope; s != "" && s != "single_seed_peer" && s != "all_seed_peers" && s != "all_peers" {
			m.fail("create: scope %q", s)
		}
		m.mu.Lock()
		m.jobs = append(m.jobs, req)
		id := len(m.jobs)
		fetch := m.fetch
		m.mu.Unlock()
		if fetch != nil {
			fetch(req)
		}
		// models.Job echoes the args, credentials included: the hub must not store them.
		args, _ := json.Marshal(req.Args)
		fmt.Fprintf(w, `{"id":%d,"created_at":"2026-12-06T00:00:00Z","task_id":"group_%s","bio":"","type":"preheat",%s:"PENDING","args":%s,"result":null,"scheduler_clusters":[]}`,
			id, uuid.NewString(), m.stateField(), args)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, prefix+"/"):
		id, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, prefix+"/"))
		m.mu.Lock()
		defer m.mu.Unlock()
		if err != nil || id < 1 || id > len(m.jobs) {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		state := "PENDING"
		if m.polls < len(m.states) {
			state = m.states[m.polls]
		}
		m.polls++
		if state == "500" {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		args, _ := json.Marshal(m.jobs[id-1].Args)
		fmt.Fprintf(w, `{"id":%d,"type":"preheat",%s:%q,"args":%s,"result":{"job_states":[]}}`, id, m.stateField(), state, args)
	default:
		m.fail("unexpected %s %s", r.Method, r.URL.Path)
		w.WriteHeader(http.StatusNotFound)
	}
}

// stateField is the job's state key: "state" since 2.1, "status" in 2.0.x.
func (m *fakeManager) stateField() string {
	if m.api == webhook.DragonflyV1 {
		return `"status"`
	}
	return `"state"`
}

func (m *fakeManager) pollCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.polls
}

func (m *fakeManager) created() []dfCreateJob {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]dfCreateJob(nil), m.jobs...)
}

// issuerMinter mints with the token service's real Issuer and refuses the
// repositories in refuse, as the server's minter refuses what the owner may not pull.
type issuerMinter struct {
	issuer *token.Issuer
	refuse map[string]bool
	mu     sync.Mutex
	minted []webhook.PullToken
}

func (m *issuerMinter) MintPull(_ context.Context, h webhook.Hook, repo string) (webhook.PullToken, error) {
	if m.refuse[repo] {
		return webhook.PullToken{}, fmt.Errorf("%w: test", webhook.ErrMintRefused)
	}
	t, err := m.issuer.Issue("webhook:"+h.ID, token.Hub{}, []scope.Access{{Type: scope.TypeRepository, Name: repo, Actions: []string{scope.Pull}}})
	if err != nil {
		return webhook.PullToken{}, err
	}
	p := webhook.PullToken{Raw: t.Raw, ID: t.ID, ExpiresAt: t.IssuedAt.Add(webhook.PullTokenTTL)}
	m.mu.Lock()
	m.minted = append(m.minted, p)
	m.mu.Unlock()
	return p, nil
}

func newMinter(t *testing.T) *issuerMinter {
	keys, err := token.LoadOrCreateKeySet(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &issuerMinter{issuer: &token.Issuer{Keys: keys, Issuer: "hubctl", Service: "hub", TTL: webhook.PullTokenTTL}, refuse: map[string]bool{}}
}

const testPAT = "dfpat_0123456789abcdef"

// dragonflyHook stores a dragonfly hook of owner on namespace ns for manager m.
func (h *harness) dragonflyHook(owner accounts.User, ns string, m *fakeManager, s webhook.Dragonfly) webhook.Hook {
	h.t.Helper()
	now := time.Now().Add(-time.Minute)
	s = s.WithDefaults()
	s.API = m.api
	hk := webhook.Hook{ID: uuid.NewString(), Scope: webhook.ScopeNamespace, Target: ns, URL: m.srv.URL, Format: webhook.FormatHubctl,
		Events: []events.Type{events.ManifestPushed}, Enabled: true, CreatedBy: owner.ID, CreatedAt: now, UpdatedAt: now,
		Kind: webhook.KindDragonfly, Dragonfly: &s}
	pat := ""
	if m.api == webhook.DragonflyOAPI {
		pat = testPAT
	}
	if err := webhook.ValidateKind(hk, pat); err != nil {
		h.t.Fatal(err)
	}
	secret, _ := webhook.NewSecret()
	if err := webhook.Seal(h.ring, &hk, secret, nil); err != nil {
		h.t.Fatal(err)
	}
	if err := webhook.SealDragonflyToken(h.ring, &hk, pat); err != nil {
		h.t.Fatal(err)
	}
	if err := h.store.CreateWebhook(h.t.Context(), hk, owner.Name); err != nil {
		h.t.Fatal(err)
	}
	return hk
}

const testDigest = "sha256:" + "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0"

func (h *harness) pushKind(repo, tag, kind string) {
	h.t.Helper()
	if _, err := h.store.AppendEvent(h.t.Context(), events.Event{Type: events.ManifestPushed, Repository: repo, Tag: tag,
		Digest: testDigest, Kind: kind, Actor: "someone"}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) delivery(hookID string) webhook.Delivery {
	h.t.Helper()
	ds := h.deliveries(hookID)
	if len(ds) != 1 {
		h.t.Fatalf("%d deliveries, want 1: %+v", len(ds), ds)
	}
	return ds[0]
}

// TestDragonflyPreheat: an image push creates one preheat job of the shape the
// manager takes, with a pull token for that repository in its headers; the delivery
// then waits (pending, running) and is polled at its due times, PENDING then
// SUCCESS, and ends delivered with two attempt rows: the create call and the final
// state. Neither the personal access token nor the pull token is stored.
func TestDragonflyPreheat(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			h := newHarness(t, b.open, "127.0.0.1/32")
			minter := newMinter(t)
			h.d.Minter, h.d.RegistryURL = minter, "https://hub.example.com"
			m := newFakeManager(t, webhook.DragonflyOAPI, testPAT, "PENDING", "STARTED", "SUCCESS")
			alice := h.user("alice", false)
			hk := h.dragonflyHook(alice, "alice", m, webhook.Dragonfly{Scope: webhook.PreheatAllSeedPeers,
				SchedulerClusterIDs: []uint64{1, 3}, Platform: "linux/amd64"})
			h.pushKind("alice/app", "v1", events.KindImage)
			h.pushKind("alice/chart", "1.0.0", events.KindChart) // not an image: no delivery
			h.step()
			jobs := m.created()
			if len(jobs) != 1 {
				t.Fatalf("%d jobs created, want 1", len(jobs))
			}
			j := jobs[0]
			if j.Args.URL != "https://hub.example.com/v2/alice/app/manifests/"+testDigest || j.Args.Scope != "all_seed_peers" ||
				j.Args.Platform != "linux/amd64" || len(j.SchedulerClusterIDs) != 2 || j.SchedulerClusterIDs[1] != 3 {
				t.Fatalf("job %+v", j)
			}
			minter.mu.Lock()
			pull := minter.minted[0]
			minter.mu.Unlock()
			if j.Args.Headers["Authorization"] != "Bearer "+pull.Raw || j.Args.Username != "" || j.Args.Password != "" {
				t.Fatalf("credentials %+v", j.Args)
			}
			d := h.delivery(hk.ID)
			if !d.Running() || d.Attempts != 1 || len(d.Log) != 1 || d.Log[0].Status != 200 || d.NextAt.After(h.clock.now().Add(3*time.Second)) {
				t.Fatalf("after the create call: %+v", d)
			}
			job, err := webhook.ParsePreheatJob(d.Job)
			if err != nil || job.ID != 1 || job.State != "PENDING" || job.TokenID != pull.ID {
				t.Fatalf("job %q: %v", d.Job, err)
			}
			// Polls come at their due time only, each waiting longer.
			h.step()
			if m.pollCount() != 0 {
				t.Fatal("polled before the job was due")
			}
			var gaps []time.Duration
			for range 3 {
				before := h.delivery(hk.ID)
				gaps = append(gaps, before.NextAt.Sub(h.clock.now()))
				h.clock.add(time.Minute)
				h.step()
			}
			if gaps[1] <= gaps[0] {
				t.Fatalf("poll waits %v do not grow", gaps)
			}
			d = h.delivery(hk.ID)
			if d.State != webhook.StateDelivered || d.Attempts != 2 || len(d.Log) != 2 || d.Log[1].Status != 200 || m.pollCount() != 3 {
				t.Fatalf("after SUCCESS: %+v (%d polls)", d, m.pollCount())
			}
			for _, a := range d.Log {
				if a.RequestHeaders["Authorization"] != webhook.Redacted {
					t.Fatalf("stored Authorization %q", a.RequestHeaders["Authorization"])
				}
				all, _ := json.Marshal(a)
				if bytes.Contains(all, []byte(testPAT)) || bytes.Contains(all, []byte(pull.Raw)) {
					t.Fatalf("a token reached the attempt log: %s", all)
				}
			}
			if !strings.Contains(d.Log[1].ResponseBody, `"SUCCESS"`) {
				t.Fatalf("final attempt body %q", d.Log[1].ResponseBody)
			}
			m.check()
		})
	}
}

// TestDragonflyOutcomes: a job reporting FAILURE fails the delivery and counts against
// the hook; a manager answering 503 to the create call is retried (and the retry
// mints a new token); polls that meet a 500 keep polling; a job that never ends is
// given up at the hook's timeout; the 2.0.x API takes no token and says "status"; an
// owner who may not pull gets no token and no job.
func TestDragonflyOutcomes(t *testing.T) {
	h := newHarness(t, backends[0].open, "127.0.0.1/32")
	minter := newMinter(t)
	h.d.Minter, h.d.RegistryURL = minter, "https://hub.example.com"
	alice := h.user("alice", false)

	failing := newFakeManager(t, webhook.DragonflyOAPI, testPAT, "PENDING", "FAILURE")
	hk := h.dragonflyHook(alice, "alice", failing, webhook.Dragonfly{})
	h.pushKind("alice/app", "v1", events.KindImage)
	for range 3 {
		h.step()
		h.clock.add(time.Minute)
	}
	d := h.delivery(hk.ID)
	got, _ := h.store.GetWebhook(t.Context(), hk.ID)
	if d.State != webhook.StateFailed || !strings.Contains(d.LastError, "FAILURE") || len(d.Log) != 2 || got.Failures != 1 {
		t.Fatalf("FAILURE: %+v, hook failures %d", d, got.Failures)
	}
	if j := failing.created(); len(j) != 1 || j[0].Args.Scope != "single_seed_peer" || j[0].SchedulerClusterIDs != nil {
		t.Fatalf("defaults: %+v", j)
	}
	failing.check()
	if err := h.store.DeleteWebhook(t.Context(), hk.ID, "alice"); err != nil {
		t.Fatal(err)
	}

	flaky := newFakeManager(t, webhook.DragonflyOAPI, testPAT, "500", "SUCCESS")
	flaky.create = func(n int, w http.ResponseWriter) bool {
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	}
	hk = h.dragonflyHook(alice, "alice", flaky, webhook.Dragonfly{})
	minter.minted = nil
	h.pushKind("alice/app", "v2", events.KindImage)
	h.step()
	d = h.delivery(hk.ID)
	if d.State != webhook.StatePending || d.Running() || len(d.Log) != 1 || d.Log[0].Status != 503 {
		t.Fatalf("after a 503: %+v", d)
	}
	for range 4 {
		h.clock.add(time.Minute)
		h.step()
	}
	d = h.delivery(hk.ID)
	if d.State != webhook.StateDelivered || len(d.Log) != 3 || d.Attempts != 3 || len(flaky.created()) != 1 {
		t.Fatalf("503, created, poll 500, SUCCESS: %+v, %d jobs", d, len(flaky.created()))
	}
	minter.mu.Lock()
	if n := len(minter.minted); n != 2 { // one per create call sent
		t.Errorf("%d tokens minted, want 2", n)
	}
	minter.mu.Unlock()
	flaky.check()
	if err := h.store.DeleteWebhook(t.Context(), hk.ID, "alice"); err != nil {
		t.Fatal(err)
	}

	slow := newFakeManager(t, webhook.DragonflyV1, "")
	hk = h.dragonflyHook(alice, "alice", slow, webhook.Dragonfly{Timeout: 5 * time.Minute})
	h.pushKind("alice/app", "v3", events.KindImage)
	polls := 0
	for range 40 {
		h.step()
		if h.delivery(hk.ID).State != webhook.StatePending {
			break
		}
		polls++
		h.clock.add(20 * time.Second)
	}
	d = h.delivery(hk.ID)
	if d.State != webhook.StateFailed || !strings.Contains(d.LastError, "not finished after 5m0s") || len(d.Log) != 2 {
		t.Fatalf("timeout: %+v after %d turns", d, polls)
	}
	if polls < 10 || polls > 25 {
		t.Fatalf("%d polls in 5 minutes", polls)
	}
	slow.check()
	if err := h.store.DeleteWebhook(t.Context(), hk.ID, "alice"); err != nil {
		t.Fatal(err)
	}

	refused := newFakeManager(t, webhook.DragonflyOAPI, testPAT)
	hk = h.dragonflyHook(alice, "alice", refused, webhook.Dragonfly{})
	minter.refuse["alice/secret"] = true
	h.pushKind("alice/secret", "v1", events.KindImage)
	h.step()
	if d := h.delivery(hk.ID); d.State != webhook.StateSkipped || len(refused.created()) != 0 {
		t.Fatalf("refused mint: %+v", d)
	}
}

// TestDragonflyManagerURLGuarded: the SSRF guard applies to the manager as to any
// receiver.
func TestDragonflyManagerURLGuarded(t *testing.T) {
	h := newHarness(t, backends[0].open) // 127.0.0.1 not allowed
	h.d.RegistryURL = "https://hub.example.com"
	m := newFakeManager(t, webhook.DragonflyOAPI, testPAT)
	hk := h.dragonflyHook(h.user("alice", false), "alice", m, webhook.Dragonfly{})
	h.pushKind("alice/app", "v1", events.KindImage)
	h.step()
	d := h.delivery(hk.ID)
	if len(m.created()) != 0 || d.State != webhook.StatePending || len(d.Log) != 1 || !strings.Contains(d.Log[0].Error, "not allowed") {
		t.Fatalf("guard: %+v", d)
	}
}

func TestValidateKind(t *testing.T) {
	ok := func() webhook.Hook {
		s := webhook.Dragonfly{}.WithDefaults()
		return webhook.Hook{URL: "https://df.example.com", Kind: webhook.KindDragonfly, Dragonfly: &s, Format: webhook.FormatHubctl,
			Events: []events.Type{events.ManifestPushed}}
	}
	if err := webhook.ValidateKind(ok(), testPAT); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		edit  func(h *webhook.Hook)
		token string
		want  string
	}{
		{"no token for the open API", func(*webhook.Hook) {}, "", "personal access token"},
		{"token with a newline", func(*webhook.Hook) {}, "a\nb", "printable"},
		{"bad kind", func(h *webhook.Hook) { h.Kind = "slack" }, testPAT, "kind"},
		{"webhook with settings", func(h *webhook.Hook) { h.Kind = webhook.KindWebhook }, "", "dragonfly settings"},
		{"no settings", func(h *webhook.Hook) { h.Dragonfly = nil }, testPAT, "settings"},
		{"bad api", func(h *webhook.Hook) { h.Dragonfly.API = "v2" }, testPAT, "api"},
		{"bad scope", func(h *webhook.Hook) { h.Dragonfly.Scope = "everyone" }, testPAT, "scope"},
		{"cluster 0", func(h *webhook.Hook) { h.Dragonfly.SchedulerClusterIDs = []uint64{0} }, testPAT, "cluster"},
		{"bad platform", func(h *webhook.Hook) { h.Dragonfly.Platform = "linux" }, testPAT, "platform"},
		{"short timeout", func(h *webhook.Hook) { h.Dragonfly.Timeout = time.Second }, testPAT, "timeout"},
		{"other events", func(h *webhook.Hook) { h.Events = append(h.Events, events.TagDeleted) }, testPAT, "only event"},
		{"query in URL", func(h *webhook.Hook) { h.URL += "?x=1" }, testPAT, "base address"},
	}
	for _, c := range cases {
		h := ok()
		s := *h.Dragonfly
		h.Dragonfly = &s
		c.edit(&h)
		err := webhook.ValidateKind(h, c.token)
		if !errors.Is(err, webhook.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	v1 := ok()
	v1.Dragonfly.API = webhook.DragonflyV1
	if err := webhook.ValidateKind(v1, ""); err != nil {
		t.Errorf("2.0.x needs no token: %v", err)
	}
}
