package hubapi_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/machinetoken"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/auth/token"
	"github.com/hubctl/hubctl/internal/auth/tokenserver"
	"github.com/hubctl/hubctl/internal/hubapi"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
)

// jobFixture is the deploy API with a minter whose tokens the API verifies, and the
// set of runs that have ended (their job tokens revoked). acme is alice's
// organisation where carol may write and bob only read; carol also owns carol.
type jobFixture struct {
	*fixture
	keys   *token.KeySet
	minter *machinetoken.Minter
	mu     sync.Mutex
	ended  map[string]bool
	opts   hubapi.Options
}

func newJobFixture(t *testing.T) *jobFixture {
	t.Helper()
	keys, err := token.LoadOrCreateKeySet(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	jf := &jobFixture{keys: keys, ended: map[string]bool{}}
	ver := &token.Verifier{Keys: keys, Issuer: "hubctl-test", Audience: "registry.test"}
	jf.fixture = newFixture(t, func(o *hubapi.Options) {
		store := o.Accounts.(*sqlstore.Store)
		o.Deploys = store
		jf.minter = &machinetoken.Minter{Keys: keys, Issuer: "hubctl-test", Service: "registry.test", Store: store, Policy: &authz.Policy{Store: store}}
		o.Minter = jf.minter
		o.VerifyJWT = func(raw string) (string, token.Hub, error) {
			c, err := ver.Verify(raw)
			if err != nil {
				return "", token.Hub{}, err
			}
			return c.Subject, c.Hub, nil
		}
		o.JobActive = func(_ context.Context, subject string) error {
			jf.mu.Lock()
			defer jf.mu.Unlock()
			if jf.ended[subject] {
				return fmt.Errorf("%w: %s has ended", tokenserver.ErrJobRevoked, subject)
			}
			return nil
		}
		jf.opts = *o
	})
	f := jf.fixture
	f.createUser("carol", carolPass, false)
	f.want(f.do(asAlice, "POST", "/api/v1/orgs", map[string]any{"name": "acme"}), 201, "")
	for team, who := range map[string]string{"writers": "carol", "readers": "bob"} {
		f.want(f.do(asAlice, "POST", "/api/v1/orgs/acme/teams", map[string]any{"name": team}), 201, "")
		f.want(f.do(asAlice, "PUT", "/api/v1/orgs/acme/teams/"+team+"/members/"+who, nil), 204, "")
		role := map[string]string{"writers": "write", "readers": "read"}[team]
		f.want(f.do(asAlice, "PUT", "/api/v1/orgs/acme/teams/"+team+"/grants", map[string]any{"repository": "", "role": role}), 200, "")
	}
	return jf
}

// mint mints a job token of run 1 for user, as the workflow engine asks for it.
func (jf *jobFixture) mint(user string, deploys ...string) machinetoken.Token {
	jf.t.Helper()
	u, err := jf.store.GetUser(jf.t.Context(), user)
	if err != nil {
		jf.t.Fatal(err)
	}
	tok, err := jf.minter.Mint(jf.t.Context(), machinetoken.Request{Creator: u.ID, Subject: "workflow-run:1",
		Access: []scope.Access{{Type: scope.TypeRepository, Name: "acme/web", Actions: []string{scope.Pull}}}, Deploys: deploys})
	if err != nil {
		jf.t.Fatal(err)
	}
	return tok
}

// TestDeployJobToken: a job token with permissions.deploy deploys the services it
// names, as far as its applier may write the namespace now, and nothing else.
func TestDeployJobToken(t *testing.T) {
	jf := newJobFixture(t)
	f := jf.fixture
	job := bearer(jf.mint("carol", "acme/web", "acme/api*").Raw)

	df := &deployFixture{fixture: f}
	b := df.begin(job, beginBody("runner", 1))
	if b.Deploy.Number != 1 || b.Deploy.By != "carol" {
		t.Fatalf("begin by a job token: %+v", b)
	}
	if es := f.audited("deploy.begin"); len(es) != 1 || es[0].Actor != "carol" || !strings.Contains(es[0].Detail, "job token of workflow-run:1") {
		t.Fatalf("audit of the begin: %+v", es)
	}
	f.want(f.do(job, "POST", "/api/v1/deploys/acme/web/1/renew", nil), 200, "")
	f.want(f.do(job, "GET", "/api/v1/deploys/acme/web/lock", nil), 200, "")
	df.finish(job, 1, "succeeded", "")
	f.want(f.do(job, "GET", "/api/v1/deploys/acme/web", nil), 200, "")
	f.want(f.do(job, "POST", "/api/v1/deploys/acme/api-v2", beginBody("runner", 1)), 201, "")

	// Another service of the namespace, and a namespace carol owns herself: as to an
	// outsider, though carol could.
	for _, path := range []string{"/api/v1/deploys/acme/db", "/api/v1/deploys/carol/web", "/api/v1/deploys/acme/ap"} {
		for _, m := range []string{"GET", "POST"} {
			f.want(f.do(job, m, path, beginBody("runner", 1)), 404, "NAME_UNKNOWN")
		}
	}
	// Every other route treats the token as anonymous.
	for _, ep := range []struct{ method, path string }{{"GET", "/api/v1/user"}, {"POST", "/api/v1/tokens"},
		{"GET", "/api/v1/workflows/acme"}, {"GET", "/api/v1/orgs/acme"}, {"GET", "/api/v1/nosuch"}, {"GET", "/api/v1/deploysx/acme/web"}} {
		r := f.do(job, ep.method, ep.path, map[string]any{"name": "x", "scopes": []string{"hub:deploys:write"}})
		if r.status != 401 || !strings.Contains(string(r.body), "machine token") {
			t.Errorf("job token on %s %s: %d %s", ep.method, ep.path, r.status, r.body)
		}
	}
	// The chart repository's sign-in sees no one.
	req := httptest.NewRequest("GET", "/charts/acme/index.yaml", nil)
	req.Header.Set("Authorization", "Bearer "+jf.mint("carol", "acme/web").Raw)
	if p, err := hubapi.NewAuthenticator(jf.opts).Principal(httptest.NewRecorder(), req); p != nil || err != nil {
		t.Fatalf("chart sign-in with a job token: %+v %v", p, err)
	}
}

// TestDeployJobTokenAttacks: tokens without the permission, for another namespace,
// expired, of an ended run, forged for another kind of machine, and after the applier
// lost the write role: all refused, and the lock untouched.
func TestDeployJobTokenAttacks(t *testing.T) {
	jf := newJobFixture(t)
	f := jf.fixture
	ctx := t.Context()
	carol, err := f.store.GetUser(ctx, "carol")
	if err != nil {
		t.Fatal(err)
	}
	refused := func(who string, a auth, status int) {
		t.Helper()
		for _, ep := range []struct{ method, path string }{{"POST", "/api/v1/deploys/acme/web"}, {"GET", "/api/v1/deploys/acme/web"},
			{"DELETE", "/api/v1/deploys/acme/web/lock"}, {"POST", "/api/v1/deploys/acme/web/secrets"}} {
			if r := f.do(a, ep.method, ep.path, beginBody("evil", 1)); r.status != status {
				t.Errorf("%s: %s %s: %d %s, want %d", who, ep.method, ep.path, r.status, r.body, status)
			}
		}
	}
	// No permissions.deploy: the token is anonymous to the API.
	refused("no permission", bearer(jf.mint("carol").Raw), 401)
	// bob may only read acme: the minter drops the deploys he asks for; mallory may
	// do nothing there, so she gets no token at all.
	tok := jf.mint("bob", "acme/web", "acme/*")
	if c, err := (&token.Verifier{Keys: jf.keys, Issuer: "hubctl-test", Audience: "registry.test"}).Verify(tok.Raw); err != nil || c.Hub != (token.Hub{Creator: c.Hub.Creator}) {
		t.Fatalf("bob's job token: %+v %v", c, err)
	}
	refused("bob's job token", bearer(tok.Raw), 401)
	f.createUser("mallory", malloryPass, false)
	mallory, err := f.store.GetUser(ctx, "mallory")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jf.minter.Mint(ctx, machinetoken.Request{Creator: mallory.ID, Subject: "workflow-run:1", Deploys: []string{"acme/web"}}); err == nil {
		t.Fatal("minted mallory a deploying token for acme")
	}
	// Carol's permission names her own namespace: acme is another.
	refused("another namespace", bearer(jf.mint("carol", "carol/*").Raw), 404)
	// A job token that expired.
	old := *jf.minter
	old.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	expired, err := old.Mint(ctx, machinetoken.Request{Creator: carol.ID, Subject: "workflow-run:1",
		Access: []scope.Access{{Type: scope.TypeRepository, Name: "acme/web", Actions: []string{scope.Pull}}}, Deploys: []string{"acme/web"}})
	if err != nil {
		t.Fatal(err)
	}
	refused("expired", bearer(expired.Raw), 401)
	// The claims of a job token on another kind of machine token, signed with the
	// hub's own key: refused, as is asking the minter for one.
	iss := &token.Issuer{Keys: jf.keys, Issuer: "hubctl-test", Service: "registry.test", TTL: time.Minute}
	forged, err := iss.Issue("webhook:abc", token.Hub{Creator: carol.ID, Deploy: "acme/*"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	refused("webhook subject", bearer(forged.Raw), 401)
	if _, err := jf.minter.Mint(ctx, machinetoken.Request{Creator: carol.ID, Subject: "webhook:abc", Deploys: []string{"acme/web"}}); err == nil {
		t.Fatal("minted a deploying webhook token")
	}
	for _, bad := range []string{"acme", "acme/*/x", "acme/Web", "../web", "acme/-web", "acme/**"} {
		if _, err := jf.minter.Mint(ctx, machinetoken.Request{Creator: carol.ID, Subject: "workflow-run:1", Deploys: []string{bad}}); err == nil {
			t.Errorf("minted deploy %q", bad)
		}
	}

	// A good token, then the run ends: revoked.
	good := bearer(jf.mint("carol", "acme/web").Raw)
	f.want(f.do(good, "GET", "/api/v1/deploys/acme/web", nil), 200, "")
	jf.mu.Lock()
	jf.ended["workflow-run:1"] = true
	jf.mu.Unlock()
	refused("run ended", good, 401)
	jf.mu.Lock()
	jf.ended["workflow-run:1"] = false
	jf.mu.Unlock()

	// The applier is moved to the readers: refused at the next call, though the
	// token was minted while she could write; gone from the organisation: 404.
	f.want(f.do(asAlice, "DELETE", "/api/v1/orgs/acme/teams/writers/members/carol", nil), 204, "")
	f.want(f.do(asAlice, "PUT", "/api/v1/orgs/acme/teams/readers/members/carol", nil), 204, "")
	refused("applier lost write", good, 403)
	f.want(f.do(asAlice, "DELETE", "/api/v1/orgs/acme/teams/readers/members/carol", nil), 204, "")
	refused("applier lost every role", good, 404)
	// A disabled applier: the token signs in no more.
	f.want(f.do(asAlice, "PUT", "/api/v1/orgs/acme/teams/writers/members/carol", nil), 204, "")
	f.want(f.do(good, "GET", "/api/v1/deploys/acme/web", nil), 200, "")
	f.want(f.do(asAdmin, "PATCH", "/api/v1/users/carol", map[string]any{"disabled": true}), 200, "")
	refused("applier disabled", good, 401)

	if _, ok, _ := f.store.DeployLock(ctx, "acme", "web"); ok {
		t.Fatal("a refused token took the lock")
	}
}
