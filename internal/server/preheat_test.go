package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/token"
	"github.com/hubctl/hubctl/internal/config"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/webhook"
)

// status sends one request to the hub with a bearer token and returns its status.
func status(t *testing.T, method, url, bearer string, body []byte, ct string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+bearer)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestDragonflyPreheatFromServe: a running hub with token auth answers a push to a
// dragonfly hook (created through its API) with a preheat job on a fake Dragonfly
// manager (a peer that cannot run here). The manager checks the request's shape,
// then does what a real one does with it: pulls the manifest URL from the hub with the
// headers it was given, and it works; the same token may not push there, nor pull
// another repository, nor read the hub API. The job reports PENDING then SUCCESS and
// the delivery ends delivered, the mint audited by its jti, the token nowhere stored.
func TestDragonflyPreheatFromServe(t *testing.T) {
	const pat = "dragonfly-pat-123"
	var mu sync.Mutex
	var problems []string
	var tokens []string
	var created, polls int
	fail := func(f string, args ...any) {
		mu.Lock()
		problems = append(problems, fmt.Sprintf(f, args...))
		mu.Unlock()
	}
	var otherDigest string
	var base string
	manager := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+pat {
			fail("%s %s: Authorization %q", r.Method, r.URL.Path, r.Header.Get("Authorization"))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/oapi/v1/jobs":
			var req struct {
				Type string `json:"type"`
				Args struct {
					Type     string            `json:"type"`
					URL      string            `json:"url"`
					Headers  map[string]string `json:"headers"`
					Scope    string            `json:"scope"`
					Platform string            `json:"platform"`
				} `json:"args"`
				SchedulerClusterIDs []uint `json:"scheduler_cluster_ids"`
			}
			dec := json.NewDecoder(r.Body)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil {
				fail("create: %v", err)
				w.WriteHeader(http.StatusUnprocessableEntity)
				return
			}
			if req.Type != "preheat" || req.Args.Type != "image" || req.Args.Scope != "all_peers" || req.Args.Platform != "linux/amd64" ||
				len(req.SchedulerClusterIDs) != 1 || req.SchedulerClusterIDs[0] != 1 || !strings.HasPrefix(req.Args.URL, base+"/v2/lib/app/manifests/sha256:") {
				fail("create: %+v", req)
			}
			auth := req.Args.Headers["Authorization"]
			tok, _ := strings.CutPrefix(auth, "Bearer ")
			mu.Lock()
			tokens = append(tokens, tok)
			created++
			mu.Unlock()
			// What the manager does: fetch the manifest with the headers.
			if s := status(t, http.MethodGet, req.Args.URL, tok, nil, ""); s != http.StatusOK {
				fail("pull with the minted token: %d", s)
			}
			if s := status(t, http.MethodHead, base+"/v2/lib/app/manifests/v1", tok, nil, ""); s != http.StatusOK {
				fail("HEAD by tag with the minted token: %d", s)
			}
			// What it must not be able to do with it.
			m := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`
			if s := status(t, http.MethodPut, base+"/v2/lib/app/manifests/evil", tok, []byte(m), "application/vnd.oci.image.manifest.v1+json"); s != http.StatusUnauthorized && s != http.StatusForbidden {
				fail("push with the minted token: %d", s)
			}
			if s := status(t, http.MethodPost, base+"/v2/lib/app/blobs/uploads/", tok, nil, ""); s != http.StatusUnauthorized && s != http.StatusForbidden {
				fail("upload with the minted token: %d", s)
			}
			if s := status(t, http.MethodGet, base+"/v2/lib/other/manifests/"+otherDigest, tok, nil, ""); s != http.StatusUnauthorized && s != http.StatusForbidden {
				fail("another repository with the minted token: %d", s)
			}
			if s := status(t, http.MethodGet, base+"/api/v1/webhooks", tok, nil, ""); s != http.StatusUnauthorized && s != http.StatusForbidden {
				fail("the hub API with the minted token: %d", s)
			}
			fmt.Fprintf(w, `{"id":42,"type":"preheat","state":"PENDING","args":%s}`, mustJSON(req.Args))
		case r.Method == http.MethodGet && r.URL.Path == "/oapi/v1/jobs/42":
			mu.Lock()
			polls++
			n := polls
			mu.Unlock()
			state := "PENDING"
			if n > 1 {
				state = "SUCCESS"
			}
			fmt.Fprintf(w, `{"id":42,"type":"preheat","state":%q}`, state)
		default:
			fail("unexpected %s %s", r.Method, r.URL.Path)
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer manager.Close()

	r := start(t, map[string]string{"auth.mode": "token", "webhooks.allow_addresses": "127.0.0.1", "webhooks.interval": "50ms"})
	base = "http://" + r.addr
	h := hub{t: t, base: base, tok: adminToken(t, base, "repository:lib/app:push,pull")}
	other := hub{t: t, base: base, tok: adminToken(t, base, "repository:lib/other:push,pull")}
	otherDigest = other.push("lib/other", "v1", "other")

	body := `{"scope":"namespace","target":"lib","url":"` + manager.URL + `","kind":"dragonfly",
		"dragonfly":{"scope":"all_peers","schedulerClusterIds":[1],"platform":"linux/amd64","timeout":"10m","token":"` + pat + `"}}`
	code, out := apiDo(t, http.MethodPost, base+"/api/v1/webhooks", basicAuth(AdminUser, testAdminPassword), json.RawMessage(body))
	var hook hubtypes.CreateWebhookResponse
	if code != http.StatusCreated || json.Unmarshal([]byte(out), &hook) != nil {
		t.Fatalf("create: %d %s", code, out)
	}
	if hook.Kind != "dragonfly" || hook.Secret != "" || hook.Dragonfly == nil || !hook.Dragonfly.HasToken || hook.Dragonfly.Token != "" ||
		len(hook.Events) != 1 || hook.Events[0] != "manifest.pushed" || strings.Contains(out, pat) {
		t.Fatalf("created %s", out)
	}
	h.push("lib/app", "v1", "preheat me")

	var ds []hubtypes.WebhookDelivery
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, out = apiDo(t, http.MethodGet, base+"/api/v1/webhooks/"+hook.ID+"/deliveries", basicAuth(AdminUser, testAdminPassword), nil)
		if code != http.StatusOK || json.Unmarshal([]byte(out), &ds) != nil {
			t.Fatalf("deliveries: %d %s", code, out)
		}
		if len(ds) == 1 && ds[0].State != "pending" && ds[0].State != "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not finished within 20 s: %s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Error("manager: " + p)
	}
	d := ds[0]
	if d.State != "delivered" || d.Job == nil || d.Job.ID != 42 || d.Job.State != "SUCCESS" || len(d.Log) != 2 || created != 1 || polls != 2 {
		t.Fatalf("delivery %s (%d created, %d polls)", out, created, polls)
	}
	if strings.Contains(out, pat) || strings.Contains(out, tokens[0]) {
		t.Fatalf("a token is in the delivery log: %s", out)
	}
	r.stop(t)
	db, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(r.data, "hubctl.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	entries, err := db.ListAudit(context.Background(), accounts.AuditFilter{Actor: "webhook:" + hook.ID})
	if err != nil || len(entries) != 1 {
		t.Fatalf("audit: %+v %v", entries, err)
	}
	claims, _ := jwtClaims(tokens[0])
	if e := entries[0]; e.Action != "token.machine" || e.Target != "repository:lib/app:pull" || !strings.Contains(e.Detail, claims.ID) ||
		strings.Contains(e.Detail, tokens[0]) || claims.Subject != "webhook:"+hook.ID || claims.ExpiresAt-claims.IssuedAt != int64(webhook.PullTokenTTL/time.Second) {
		t.Fatalf("audit entry %+v, claims %+v", e, claims)
	}
}

// jwtClaims reads a JWT's payload without verifying it (the hub verified it).
func jwtClaims(raw string) (struct {
	ID        string `json:"jti"`
	Subject   string `json:"sub"`
	IssuedAt  int64  `json:"iat"`
	ExpiresAt int64  `json:"exp"`
}, error) {
	var c struct {
		ID        string `json:"jti"`
		Subject   string `json:"sub"`
		IssuedAt  int64  `json:"iat"`
		ExpiresAt int64  `json:"exp"`
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return c, errors.New("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return c, err
	}
	return c, json.Unmarshal(b, &c)
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestDragonflyPullMinter: the server's minter refuses a repository the hook's creator
// may not pull, and a disabled or deleted creator, and audits what it issues.
func TestDragonflyPullMinter(t *testing.T) {
	ctx := context.Background()
	store, keys, alice := minterFixture(t)
	m := newPullMinter(config.Config{Auth: config.Auth{Issuer: "hubctl", Service: "hubctl"}},
		&authParts{keys: keys, policy: &authz.Policy{Store: store}}, store)
	h := webhook.Hook{ID: "hook-1", CreatedBy: alice.ID}
	tok, err := m.MintPull(ctx, h, "alice/app")
	if err != nil || tok.Raw == "" || tok.ID == "" {
		t.Fatalf("mint: %+v %v", tok, err)
	}
	if _, err := m.MintPull(ctx, h, "bob/private"); !errors.Is(err, webhook.ErrMintRefused) {
		t.Fatalf("another namespace: %v", err)
	}
	alice.Disabled = true
	if err := store.UpdateUser(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if _, err := m.MintPull(ctx, h, "alice/app"); !errors.Is(err, webhook.ErrMintRefused) {
		t.Fatalf("disabled creator: %v", err)
	}
	if _, err := m.MintPull(ctx, webhook.Hook{ID: "hook-2", CreatedBy: 999}, "alice/app"); !errors.Is(err, webhook.ErrMintRefused) {
		t.Fatalf("deleted creator: %v", err)
	}
	entries, _ := store.ListAudit(ctx, accounts.AuditFilter{Action: "token.machine"})
	if len(entries) != 1 || !strings.Contains(entries[0].Detail, tok.ID) || strings.Contains(entries[0].Detail, tok.Raw) {
		t.Fatalf("audit %+v", entries)
	}
}

// minterFixture is a SQLite store with one user, alice, and a token key set: what the
// hub's machine-token minter is built on.
func minterFixture(t *testing.T) (*sqlstore.Store, *token.KeySet, accounts.User) {
	t.Helper()
	store, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	keys, err := token.LoadOrCreateKeySet(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	alice, err := store.CreateUser(context.Background(), accounts.User{Name: "alice", PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	return store, keys, alice
}
