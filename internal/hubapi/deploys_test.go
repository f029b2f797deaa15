package hubapi_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/machinetoken"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/auth/token"
	"github.com/hubctl/hubctl/internal/hubapi"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/secrets"
)

// syncBuf is a log destination tests read while the handler writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// deployFixture is the API with the deploy store, the machine-token minter (its own
// keys, verified by verifier), a keyring and a debug log; acme is alice's
// organisation, where carol may write and bob only read the whole namespace; mallory
// is in none.
type deployFixture struct {
	*fixture
	ring     *secrets.Keyring
	verifier *token.Verifier
	log      *syncBuf
}

const (
	carolPass   = "carol-password"
	malloryPass = "mallory-password"
)

var (
	asCarol   = basic("carol", carolPass)
	asMallory = basic("mallory", malloryPass)
)

func newDeployFixture(t *testing.T) *deployFixture {
	t.Helper()
	keys, err := token.LoadOrCreateKeySet(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ring := testKeyring(t)
	logs := &syncBuf{}
	f := newFixture(t, func(o *hubapi.Options) {
		store := o.Accounts.(*sqlstore.Store)
		o.Deploys = store
		o.Keyring = ring
		o.Minter = &machinetoken.Minter{Keys: keys, Issuer: "hubctl-test", Service: "registry.test", Store: store, Policy: &authz.Policy{Store: store}}
		o.Log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	f.createUser("carol", carolPass, false)
	f.createUser("mallory", malloryPass, false)
	f.want(f.do(asAlice, "POST", "/api/v1/orgs", map[string]any{"name": "acme"}), 201, "")
	for team, who := range map[string]string{"writers": "carol", "readers": "bob"} {
		f.want(f.do(asAlice, "POST", "/api/v1/orgs/acme/teams", map[string]any{"name": team}), 201, "")
		f.want(f.do(asAlice, "PUT", "/api/v1/orgs/acme/teams/"+team+"/members/"+who, nil), 204, "")
		role := map[string]string{"writers": "write", "readers": "read"}[team]
		f.want(f.do(asAlice, "PUT", "/api/v1/orgs/acme/teams/"+team+"/grants", map[string]any{"repository": "", "role": role}), 200, "")
	}
	return &deployFixture{fixture: f, ring: ring, verifier: &token.Verifier{Keys: keys, Issuer: "hubctl-test", Audience: "registry.test"}, log: logs}
}

const webSpec = "service:\n  name: web\n  image: hub.test/acme/web:v1\n"

func beginBody(host string, pid int) hubtypes.BeginDeployRequest {
	return hubtypes.BeginDeployRequest{Spec: webSpec, Target: "docker", Hosts: []string{"local"}, Host: host, PID: pid,
		Digests: map[string]string{"service": "hub.test/acme/web@sha256:" + strings.Repeat("ab", 32),
			"db": "hub.test/acme/db@sha256:" + strings.Repeat("cd", 32)}}
}

func (f *deployFixture) begin(a auth, body any) hubtypes.BeginDeployResponse {
	f.t.Helper()
	return decodeAs[hubtypes.BeginDeployResponse](f.t, f.want(f.do(a, "POST", "/api/v1/deploys/acme/web", body), 201, ""))
}

func (f *deployFixture) finish(a auth, n int, outcome, errMsg string) hubtypes.DeployRecord {
	f.t.Helper()
	return decodeAs[hubtypes.DeployRecord](f.t, f.want(f.do(a, "PATCH", "/api/v1/deploys/acme/web/"+itoa(int64(n)),
		hubtypes.FinishDeployRequest{Outcome: outcome, Error: errMsg}), 200, ""))
}

// TestDeployAPI: begin (the lock and the number), a second begin refused with the
// holder, renew, finish once, history newest first in pages, one record with its
// spec, the lock read and broken (audited, its deploy marked failed), rollbackOf.
func TestDeployAPI(t *testing.T) {
	f := newDeployFixture(t)
	b := f.begin(asAlice, beginBody("laptop", 4242))
	if b.Deploy.Number != 1 || b.Deploy.Outcome != "running" || b.Deploy.By != "alice" || b.Deploy.Started == "" || b.Deploy.Spec != "" ||
		b.Lock.By != "alice" || b.Lock.Host != "laptop" || b.Lock.PID != 4242 || b.Lock.Number != 1 || b.Lock.Expires <= b.Lock.Acquired {
		t.Fatalf("begin: %+v", b)
	}
	f.wantAudit("deploy.begin", "alice", "acme/web")

	// A second deploy, by another writer: refused, and told who holds the lock.
	r := f.want(f.do(asCarol, "POST", "/api/v1/deploys/acme/web", beginBody("ci", 7)), 409, "DEPLOY_LOCKED")
	var e struct {
		Errors []struct {
			Message string
			Detail  hubtypes.DeployLock
		}
	}
	if json.Unmarshal(r.body, &e) != nil || e.Errors[0].Detail.By != "alice" || e.Errors[0].Detail.Host != "laptop" ||
		e.Errors[0].Detail.Number != 1 || !strings.Contains(e.Errors[0].Message, "lock break") {
		t.Fatalf("locked answer: %s", r.body)
	}
	lock := decodeAs[hubtypes.DeployLock](t, f.want(f.do(asBob, "GET", "/api/v1/deploys/acme/web/lock", nil), 200, ""))
	if lock.By != "alice" || lock.Number != 1 {
		t.Fatalf("lock %+v", lock)
	}
	renewed := decodeAs[hubtypes.DeployLock](t, f.want(f.do(asAlice, "POST", "/api/v1/deploys/acme/web/1/renew", nil), 200, ""))
	if renewed.Expires < lock.Expires {
		t.Fatalf("renewed %+v after %+v", renewed, lock)
	}
	f.want(f.do(asAlice, "POST", "/api/v1/deploys/acme/web/2/renew", nil), 409, "DEPLOY_LOCK_LOST")

	done := f.finish(asAlice, 1, "succeeded", "")
	if done.Outcome != "succeeded" || done.Finished == "" || done.Number != 1 {
		t.Fatalf("finished %+v", done)
	}
	f.want(f.do(asAlice, "PATCH", "/api/v1/deploys/acme/web/1", hubtypes.FinishDeployRequest{Outcome: "failed"}), 409, "CONFLICT")
	f.want(f.do(asAlice, "POST", "/api/v1/deploys/acme/web/1/renew", nil), 409, "DEPLOY_LOCK_LOST")
	f.want(f.do(asAlice, "GET", "/api/v1/deploys/acme/web/lock", nil), 404, "DEPLOY_NOT_LOCKED")
	f.want(f.do(asAlice, "DELETE", "/api/v1/deploys/acme/web/lock", nil), 404, "DEPLOY_NOT_LOCKED")

	// Carol deploys 2 (failed) and rolls back to 1 (3).
	f.begin(asCarol, beginBody("ci", 7))
	f.finish(asCarol, 2, "failed", "health check of web-2 failed")
	rb := beginBody("ci", 8)
	rb.RollbackOf = 1
	if got := f.begin(asCarol, rb); got.Deploy.Number != 3 || got.Deploy.RollbackOf != 1 {
		t.Fatalf("rollback %+v", got)
	}
	f.finish(asCarol, 3, "succeeded", "")
	rb.RollbackOf = 99
	f.want(f.do(asCarol, "POST", "/api/v1/deploys/acme/web", rb), 400, "INVALID_REQUEST")

	page := decodeAs[hubtypes.DeployPage](t, f.want(f.do(asBob, "GET", "/api/v1/deploys/acme/web?limit=2", nil), 200, ""))
	if len(page.Deploys) != 2 || page.Deploys[0].Number != 3 || page.Deploys[1].Number != 2 || page.Next != 2 ||
		page.Deploys[1].Error != "health check of web-2 failed" || page.Deploys[0].Spec != "" || page.Deploys[0].By != "carol" ||
		page.Deploys[0].Digests["db"] == "" {
		t.Fatalf("page 1 %+v", page)
	}
	page = decodeAs[hubtypes.DeployPage](t, f.want(f.do(asBob, "GET", "/api/v1/deploys/acme/web?limit=2&before=2", nil), 200, ""))
	if len(page.Deploys) != 1 || page.Deploys[0].Number != 1 || page.Next != 0 {
		t.Fatalf("page 2 %+v", page)
	}
	one := decodeAs[hubtypes.DeployRecord](t, f.want(f.do(asBob, "GET", "/api/v1/deploys/acme/web/1", nil), 200, ""))
	if one.Spec != webSpec || one.Outcome != "succeeded" || one.Hosts[0] != "local" || one.Target != "docker" {
		t.Fatalf("get %+v", one)
	}
	f.want(f.do(asBob, "GET", "/api/v1/deploys/acme/web/9", nil), 404, "DEPLOY_UNKNOWN")
	empty := decodeAs[hubtypes.DeployPage](t, f.want(f.do(asBob, "GET", "/api/v1/deploys/acme/other", nil), 200, ""))
	if len(empty.Deploys) != 0 {
		t.Fatalf("another service: %+v", empty)
	}

	// Breaking a live lock: audited with its holder, and its deploy marked failed.
	f.begin(asAlice, beginBody("laptop", 11))
	broken := decodeAs[hubtypes.DeployLock](t, f.want(f.do(asCarol, "DELETE", "/api/v1/deploys/acme/web/lock", nil), 200, ""))
	if broken.By != "alice" || broken.Number != 4 {
		t.Fatalf("broken %+v", broken)
	}
	if a := f.wantAudit("deploy.lock.break", "carol", "acme/web"); !strings.Contains(a.Detail, "held by alice on laptop pid 11 for deploy 4") {
		t.Fatalf("audit %+v", a)
	}
	four := decodeAs[hubtypes.DeployRecord](t, f.want(f.do(asAlice, "GET", "/api/v1/deploys/acme/web/4", nil), 200, ""))
	if four.Outcome != "failed" || !strings.Contains(four.Error, "broken by carol") {
		t.Fatalf("deploy of the broken lock: %+v", four)
	}
	f.want(f.do(asAlice, "PATCH", "/api/v1/deploys/acme/web/4", hubtypes.FinishDeployRequest{Outcome: "succeeded"}), 409, "CONFLICT")
	f.wantAudit("deploy.finish", "carol", "acme/web")
}

// TestDeployInputIsBounded: every bad input is refused with a clear error and
// nothing is recorded.
func TestDeployInputIsBounded(t *testing.T) {
	f := newDeployFixture(t)
	base := "/api/v1/deploys/acme/web"
	mod := func(edit func(*hubtypes.BeginDeployRequest)) hubtypes.BeginDeployRequest {
		b := beginBody("laptop", 1)
		edit(&b)
		return b
	}
	for name, body := range map[string]any{
		"empty spec":     mod(func(b *hubtypes.BeginDeployRequest) { b.Spec = " \n" }),
		"NUL in spec":    mod(func(b *hubtypes.BeginDeployRequest) { b.Spec = "a\x00b" }),
		"target":         mod(func(b *hubtypes.BeginDeployRequest) { b.Target = "nomad" }),
		"no digests":     mod(func(b *hubtypes.BeginDeployRequest) { b.Digests = nil }),
		"tag not digest": mod(func(b *hubtypes.BeginDeployRequest) { b.Digests["service"] = "hub.test/acme/web:v1" }),
		"bad digest":     mod(func(b *hubtypes.BeginDeployRequest) { b.Digests["service"] = "hub.test/acme/web@sha256:zz" }),
		"digest key":     mod(func(b *hubtypes.BeginDeployRequest) { b.Digests["Bad Key"] = b.Digests["service"] }),
		"host space":     mod(func(b *hubtypes.BeginDeployRequest) { b.Host = "my laptop" }),
		"no host":        mod(func(b *hubtypes.BeginDeployRequest) { b.Host = "" }),
		"long host":      mod(func(b *hubtypes.BeginDeployRequest) { b.Host = strings.Repeat("h", 300) }),
		"hosts newline":  mod(func(b *hubtypes.BeginDeployRequest) { b.Hosts = []string{"a\nb"} }),
		"many hosts":     mod(func(b *hubtypes.BeginDeployRequest) { b.Hosts = make([]string, 65) }),
		"pid":            mod(func(b *hubtypes.BeginDeployRequest) { b.PID = -1 }),
		"unknown field":  `{"spec":"x","target":"docker","digests":{},"host":"h","pid":1,"admin":true}`,
		"two objects":    `{"spec":"x"} {}`,
		"not JSON":       `spec: x`,
	} {
		r := f.do(asAlice, "POST", base, body)
		if r.status != 400 || r.code() != "INVALID_REQUEST" {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	huge := mod(func(b *hubtypes.BeginDeployRequest) { b.Spec = strings.Repeat("x", 1<<20+1) })
	f.want(f.do(asAlice, "POST", base, huge), 413, "INVALID_REQUEST")
	f.want(f.do(asAlice, "POST", base, `{"spec":"`+strings.Repeat("\\u0026", 1<<20+1)+`"}`), 413, "INVALID_REQUEST")
	f.want(f.do(asAlice, "POST", "/api/v1/deploys/acme/Web!", beginBody("h", 1)), 400, "INVALID_REQUEST")
	f.want(f.do(asAlice, "POST", "/api/v1/deploys/acme/"+strings.Repeat("a", 65), beginBody("h", 1)), 400, "INVALID_REQUEST")
	for _, p := range []string{base + "/0", base + "/-1", base + "/x", base + "/99999999999"} {
		f.want(f.do(asAlice, "GET", p, nil), 400, "INVALID_REQUEST")
	}
	for _, q := range []string{"?limit=0", "?limit=101", "?limit=x", "?before=0", "?before=-3"} {
		f.want(f.do(asAlice, "GET", base+q, nil), 400, "INVALID_REQUEST")
	}
	if page := decodeAs[hubtypes.DeployPage](t, f.want(f.do(asAlice, "GET", base, nil), 200, "")); len(page.Deploys) != 0 {
		t.Fatalf("a refused begin recorded something: %+v", page)
	}
	if _, ok, _ := f.store.DeployLock(t.Context(), "acme", "web"); ok {
		t.Fatal("a refused begin left a lock")
	}

	f.begin(asAlice, beginBody("laptop", 1))
	for name, body := range map[string]any{
		"running": hubtypes.FinishDeployRequest{Outcome: "running"},
		"unknown": hubtypes.FinishDeployRequest{Outcome: "maybe"},
		"long":    hubtypes.FinishDeployRequest{Outcome: "failed", Error: strings.Repeat("e", 4097)},
	} {
		if r := f.do(asAlice, "PATCH", base+"/1", body); r.status != 400 || r.code() != "INVALID_REQUEST" {
			t.Errorf("finish %s: %d %s", name, r.status, r.body)
		}
	}
	if rec := decodeAs[hubtypes.DeployRecord](t, f.want(f.do(asAlice, "GET", base+"/1", nil), 200, "")); rec.Outcome != "running" {
		t.Fatalf("a refused finish changed the deploy: %+v", rec)
	}
	f.want(f.do(asAlice, "PUT", base+"/1", nil), 405, "UNSUPPORTED")
}

// TestDeployPullToken: a writer gets a token of subject deploy:ID that pulls the
// named repositories only, for 10 minutes, audited by the minter (never its text);
// a repository the caller may not pull, a deploy not running or not there, a
// read-only member, an outsider and a token without the scope get none.
func TestDeployPullToken(t *testing.T) {
	f := newDeployFixture(t)
	path := "/api/v1/deploys/acme/web/pull-token"
	f.begin(asCarol, beginBody("ci", 7))
	ask := hubtypes.DeployPullTokenRequest{Number: 1, Repositories: []string{"acme/web", "acme/db", "acme/web"}}
	got := decodeAs[hubtypes.DeployPullToken](t, f.want(f.do(asCarol, "POST", path, ask), 200, ""))
	c, err := f.verifier.Verify(got.Token)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.Subject, "deploy:") || c.UserID != 0 || len(got.Repositories) != 2 {
		t.Fatalf("claims %+v, answer %+v", c, got)
	}
	if ttl := time.Until(c.ExpiresAt); ttl > hubapi.DeployPullTokenTTL || ttl < hubapi.DeployPullTokenTTL-time.Minute {
		t.Fatalf("lifetime %v", ttl)
	}
	for _, tc := range []struct {
		repo, action string
		want         bool
	}{{"acme/web", scope.Pull, true}, {"acme/db", scope.Pull, true}, {"acme/web", scope.Push, false}, {"acme/other", scope.Pull, false}} {
		if c.Allows(scope.TypeRepository, tc.repo, tc.action) != tc.want {
			t.Errorf("%s %s: want %v", tc.action, tc.repo, tc.want)
		}
	}
	entries := f.audited(machinetoken.AuditAction)
	if len(entries) != 1 || entries[0].Actor != c.Subject || !strings.Contains(entries[0].Detail, "deploy 1 of acme/web by carol") ||
		strings.Contains(entries[0].Detail, got.Token) {
		t.Fatalf("audit %+v", entries)
	}
	// The token is no key to the hub API.
	if r := f.do(bearer(got.Token), "GET", "/api/v1/deploys/acme/web", nil); r.status == 200 {
		t.Fatalf("the pull token reads the history: %s", r.body)
	}

	// Asking for a repository the caller may not pull: nothing at all is minted.
	f.want(f.do(asCarol, "POST", path, hubtypes.DeployPullTokenRequest{Number: 1, Repositories: []string{"acme/web", "alice/private"}}), 403, "DENIED")
	f.want(f.do(asCarol, "POST", path, hubtypes.DeployPullTokenRequest{Number: 1, Repositories: []string{"admin/secret"}}), 403, "DENIED")
	// Robustness and bounds.
	f.want(f.do(asCarol, "POST", path, hubtypes.DeployPullTokenRequest{Number: 1, Repositories: []string{"Acme/Web"}}), 400, "INVALID_REQUEST")
	f.want(f.do(asCarol, "POST", path, hubtypes.DeployPullTokenRequest{Number: 1}), 400, "INVALID_REQUEST")
	f.want(f.do(asCarol, "POST", path, hubtypes.DeployPullTokenRequest{Number: 1, Repositories: make([]string, 33)}), 400, "INVALID_REQUEST")
	f.want(f.do(asCarol, "POST", path, hubtypes.DeployPullTokenRequest{Repositories: []string{"acme/web"}}), 400, "INVALID_REQUEST")
	f.want(f.do(asCarol, "POST", path, hubtypes.DeployPullTokenRequest{Number: 5, Repositories: []string{"acme/web"}}), 404, "DEPLOY_UNKNOWN")
	// Who may not deploy gets none.
	f.want(f.do(asBob, "POST", path, ask), 403, "DENIED")
	f.want(f.do(asMallory, "POST", path, ask), 404, "NAME_UNKNOWN")
	// A finished deploy gets none.
	f.finish(asCarol, 1, "succeeded", "")
	f.want(f.do(asCarol, "POST", path, ask), 409, "CONFLICT")
	if n := len(f.audited(machinetoken.AuditAction)); n != 1 {
		t.Fatalf("%d tokens minted, want 1", n)
	}

	// Access tokens: hub:deploys:write deploys, but a pull token pulls no more than the
	// access token itself may.
	f.begin(asCarol, beginBody("ci", 8))
	noPull := f.token(asCarol, "deploy-only", "hub:deploys:write")
	f.want(f.do(bearer(noPull), "POST", path, hubtypes.DeployPullTokenRequest{Number: 2, Repositories: []string{"acme/web"}}), 403, "DENIED")
	withPull := f.token(asCarol, "deploy-pull", "hub:deploys:write", "repository:acme/*:pull")
	got = decodeAs[hubtypes.DeployPullToken](t, f.want(f.do(bearer(withPull), "POST", path,
		hubtypes.DeployPullTokenRequest{Number: 2, Repositories: []string{"acme/web"}}), 200, ""))
	if c, err := f.verifier.Verify(got.Token); err != nil || !c.Allows(scope.TypeRepository, "acme/web", scope.Pull) {
		t.Fatalf("token-made pull token: %+v %v", c, err)
	}
	if strings.Contains(f.log.String(), got.Token) {
		t.Fatal("a pull token reached the log")
	}
}

// TestDeployAttacks: an outsider learns nothing (the answer of a namespace that does
// not exist, on every endpoint); a read-only member and a read-only token see the
// history but cannot deploy, finish, renew or break the lock; anonymous callers are
// unauthenticated.
func TestDeployAttacks(t *testing.T) {
	f := newDeployFixture(t)
	f.begin(asCarol, beginBody("ci", 7))
	endpoints := []struct{ method, path string }{
		{"GET", "/api/v1/deploys/%s/web"}, {"POST", "/api/v1/deploys/%s/web"}, {"GET", "/api/v1/deploys/%s/web/1"},
		{"PATCH", "/api/v1/deploys/%s/web/1"}, {"POST", "/api/v1/deploys/%s/web/1/renew"}, {"GET", "/api/v1/deploys/%s/web/lock"},
		{"DELETE", "/api/v1/deploys/%s/web/lock"}, {"POST", "/api/v1/deploys/%s/web/pull-token"}, {"POST", "/api/v1/deploys/%s/web/secrets"},
	}
	bodyFor := func(method, path string) any {
		switch {
		case strings.HasSuffix(path, "pull-token"):
			return hubtypes.DeployPullTokenRequest{Number: 1, Repositories: []string{"acme/web"}}
		case strings.HasSuffix(path, "secrets"):
			return hubtypes.DeploySecretsRequest{Names: []string{"DB_PASSWORD"}}
		case method == "PATCH":
			return hubtypes.FinishDeployRequest{Outcome: "failed"}
		case method == "POST" && strings.HasSuffix(path, "/web"):
			return beginBody("evil", 1)
		}
		return nil
	}
	for _, ep := range endpoints {
		real := strings.Replace(ep.path, "%s", "acme", 1)
		missing := strings.Replace(ep.path, "%s", "nosuch", 1)
		a := f.do(asMallory, ep.method, real, bodyFor(ep.method, real))
		b := f.do(asMallory, ep.method, missing, bodyFor(ep.method, missing))
		if a.status != 404 || a.code() != "NAME_UNKNOWN" || a.status != b.status ||
			strings.ReplaceAll(string(a.body), "acme", "X") != strings.ReplaceAll(string(b.body), "nosuch", "X") {
			t.Errorf("outsider %s %s: %d %s; missing namespace: %d %s", ep.method, real, a.status, a.body, b.status, b.body)
		}
		if r := f.do(anon, ep.method, real, bodyFor(ep.method, real)); r.status != 401 {
			t.Errorf("anonymous %s %s: %d", ep.method, real, r.status)
		}
		// A namespace one owns is no way into another's.
		if r := f.do(asMallory, ep.method, strings.Replace(ep.path, "%s", "alice", 1), bodyFor(ep.method, real)); r.status != 404 {
			t.Errorf("outsider in alice's namespace %s %s: %d", ep.method, ep.path, r.status)
		}
	}

	readToken := f.token(asCarol, "reader", "hub:deploys:read")
	otherArea := f.token(asCarol, "wf", "hub:workflows:write", "hub:workflows:read")
	for who, a := range map[string]auth{"bob (read role)": asBob, "read-only token": bearer(readToken)} {
		for _, ep := range endpoints {
			real := strings.Replace(ep.path, "%s", "acme", 1)
			r := f.do(a, ep.method, real, bodyFor(ep.method, real))
			want := 403
			if ep.method == "GET" {
				want = 200
			}
			if r.status != want {
				t.Errorf("%s %s %s: %d %s, want %d", who, ep.method, real, r.status, r.body, want)
			}
		}
	}
	for _, ep := range endpoints {
		real := strings.Replace(ep.path, "%s", "acme", 1)
		if r := f.do(bearer(otherArea), ep.method, real, bodyFor(ep.method, real)); r.status != 403 {
			t.Errorf("a token of another area %s %s: %d", ep.method, real, r.status)
		}
	}
	// The deploy is untouched by all of it.
	rec := decodeAs[hubtypes.DeployRecord](t, f.want(f.do(asCarol, "GET", "/api/v1/deploys/acme/web/1", nil), 200, ""))
	if lock, ok, _ := f.store.DeployLock(t.Context(), "acme", "web"); rec.Outcome != "running" || !ok || lock.By != "carol" {
		t.Fatalf("after the attacks: %+v, lock %+v", rec, lock)
	}
	if es := f.audited("deploy.lock.break"); len(es) != 0 {
		t.Fatalf("break audited: %+v", es)
	}
}

// TestDeploySecrets: a writer gets the values of the names asked for, audited by
// name; the values appear in no audit entry, no log line and no other answer; a
// missing name is named and nothing is answered; readers and outsiders get nothing.
func TestDeploySecrets(t *testing.T) {
	f := newDeployFixture(t)
	ctx := t.Context()
	alice, err := f.store.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	const dbValue, apiValue, otherValue = "db-s3cr3t-VALUE-1", "api-s3cr3t-VALUE-2", "alice-own-VALUE-3"
	must(t, f.store.SetWorkflowSecret(ctx, f.ring, "acme", "DB_PASSWORD", dbValue, alice.ID))
	must(t, f.store.SetWorkflowSecret(ctx, f.ring, "acme", "API_KEY", apiValue, alice.ID))
	must(t, f.store.SetWorkflowSecret(ctx, f.ring, "alice", "DB_PASSWORD", otherValue, alice.ID))
	path := "/api/v1/deploys/acme/web/secrets"

	got := decodeAs[hubtypes.DeploySecrets](t, f.want(f.do(asCarol, "POST", path, hubtypes.DeploySecretsRequest{Names: []string{"DB_PASSWORD", "API_KEY"}}), 200, ""))
	if len(got.Values) != 2 || got.Values["DB_PASSWORD"] != dbValue || got.Values["API_KEY"] != apiValue {
		t.Fatalf("values %+v", got.Values)
	}
	if a := f.wantAudit("deploy.secrets", "carol", "acme/web"); a.Detail != "names API_KEY, DB_PASSWORD" {
		t.Fatalf("audit %+v", a)
	}
	var leaks []string
	check := func(what string, body []byte) {
		for _, v := range []string{dbValue, apiValue, otherValue} {
			if bytes.Contains(body, []byte(v)) {
				leaks = append(leaks, what)
			}
		}
	}
	r := f.want(f.do(asCarol, "POST", path, hubtypes.DeploySecretsRequest{Names: []string{"DB_PASSWORD", "MISSING"}}), 404, "NAME_UNKNOWN")
	if !strings.Contains(string(r.body), "MISSING") {
		t.Fatalf("missing answer %s", r.body)
	}
	check("the answer for a missing name", r.body)
	for name, a := range map[string]auth{"reader": asBob, "outsider": asMallory, "anonymous": anon} {
		r := f.do(a, "POST", path, hubtypes.DeploySecretsRequest{Names: []string{"DB_PASSWORD"}})
		if r.status == 200 {
			t.Errorf("%s got secrets", name)
		}
		check(name, r.body)
	}
	// Another namespace's secret is never reached through acme's deploys.
	r = f.want(f.do(asAlice, "POST", path, hubtypes.DeploySecretsRequest{Names: []string{"DB_PASSWORD"}}), 200, "")
	if v := decodeAs[hubtypes.DeploySecrets](t, r).Values["DB_PASSWORD"]; v != dbValue {
		t.Fatalf("alice's acme value %q", v)
	}
	for _, bad := range [][]string{nil, {"1BAD"}, {"HUBCTL_TOKEN"}, {"A-B"}, make([]string, 65)} {
		r := f.want(f.do(asCarol, "POST", path, hubtypes.DeploySecretsRequest{Names: bad}), 400, "INVALID_REQUEST")
		check("a bad request", r.body)
	}
	all, err := f.store.ListAudit(ctx, accounts.AuditFilter{Limit: 1000})
	must(t, err)
	for _, e := range all {
		check("audit "+e.Action, []byte(e.Detail+e.Target+e.Actor))
	}
	check("the log", []byte(f.log.String()))
	if len(leaks) > 0 {
		t.Fatalf("secret values leaked into: %v", leaks)
	}
	if n := len(f.audited("deploy.secrets")); n != 2 {
		t.Fatalf("%d secret reads audited, want 2", n)
	}
}

// TestDeployLockTake: the lock `hubctl deploy down` takes holds no deploy: a begin
// is refused while it is held, its holder renews it by taking it again (audited
// once), another writer is refused, a reader may not take it, a release by another
// holder leaves it, its holder's release frees it; bad bodies are refused.
func TestDeployLockTake(t *testing.T) {
	f := newDeployFixture(t)
	body := hubtypes.TakeDeployLockRequest{Host: "laptop", PID: 4242}
	l := decodeAs[hubtypes.DeployLock](t, f.want(f.do(asAlice, "POST", "/api/v1/deploys/acme/web/lock", body), 200, ""))
	if l.By != "alice" || l.Host != "laptop" || l.PID != 4242 || l.Number != 0 || l.Expires <= l.Acquired {
		t.Fatalf("take: %+v", l)
	}
	f.wantAudit("deploy.lock.take", "alice", "acme/web")
	f.want(f.do(asCarol, "POST", "/api/v1/deploys/acme/web", beginBody("ci", 7)), 409, "DEPLOY_LOCKED")
	f.want(f.do(asCarol, "POST", "/api/v1/deploys/acme/web/lock", body), 409, "DEPLOY_LOCKED")
	f.want(f.do(asBob, "POST", "/api/v1/deploys/acme/web/lock", body), 403, "DENIED")
	f.want(f.do(asMallory, "POST", "/api/v1/deploys/acme/web/lock", body), 404, "NAME_UNKNOWN")
	r := decodeAs[hubtypes.DeployLock](t, f.want(f.do(asAlice, "POST", "/api/v1/deploys/acme/web/lock", body), 200, ""))
	if r.Expires < l.Expires || r.Acquired != l.Acquired {
		t.Fatalf("renewal %+v after %+v", r, l)
	}
	f.want(f.do(asCarol, "POST", "/api/v1/deploys/acme/web/lock/release", body), 204, "")
	f.want(f.do(asAlice, "GET", "/api/v1/deploys/acme/web/lock", nil), 200, "")
	f.want(f.do(asAlice, "POST", "/api/v1/deploys/acme/web/lock/release", body), 204, "")
	f.want(f.do(asAlice, "GET", "/api/v1/deploys/acme/web/lock", nil), 404, "DEPLOY_NOT_LOCKED")
	f.want(f.do(asAlice, "POST", "/api/v1/deploys/acme/web/lock", hubtypes.TakeDeployLockRequest{Host: "bad\nhost", PID: 1}), 400, "INVALID_REQUEST")
	f.want(f.do(asAlice, "POST", "/api/v1/deploys/acme/web/lock", hubtypes.TakeDeployLockRequest{Host: "h", PID: -1}), 400, "INVALID_REQUEST")
	f.begin(asCarol, beginBody("ci", 7))
}
