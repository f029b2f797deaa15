package tokenserver

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/machinetoken"
	"github.com/hubctl/hubctl/internal/auth/password"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/auth/token"
)

// mintJob mints a job token as the workflow engine does (machinetoken.Minter, the
// hub's one minter), for alice, on the fixture's keys; now shifts its clock.
func (f *fixture) mintJob(subject string, now time.Time, ttl time.Duration, access ...scope.Access) string {
	f.t.Helper()
	alice, err := f.store.GetUser(context.Background(), "alice")
	if err != nil {
		f.t.Fatal(err)
	}
	m := &machinetoken.Minter{Keys: f.keys, Issuer: "hubctl", Service: "hubctl", Store: f.store,
		Policy: &authz.Policy{Store: f.store}, Now: func() time.Time { return now }}
	tok, err := m.Mint(context.Background(), machinetoken.Request{Creator: alice.ID, Subject: subject, Access: access, TTL: ttl})
	if err != nil {
		f.t.Fatal(err)
	}
	return tok.Raw
}

func repoAccess(name string, actions ...string) scope.Access {
	return scope.Access{Type: scope.TypeRepository, Name: name, Actions: actions}
}

// TestJobTokenAsPassword: a job token given as the password of hubctl-job, with HTTP
// Basic (docker, containerd's fallback) or the OAuth2 password grant (containerd),
// gets a registry token for what was asked within what the job token grants, living
// no longer than it.
func TestJobTokenAsPassword(t *testing.T) {
	f := newFixture(t)
	job := f.mintJob("workflow-run:7", time.Now(), 2*time.Minute, repoAccess("alice/private", scope.Pull, scope.Push))

	resp, tr, body := f.get(JobUser, job, scopes("repository:alice/private:pull"))
	if resp.StatusCode != 200 || tr.RefreshToken != "" {
		t.Fatalf("GET with the job token: %d %s", resp.StatusCode, body)
	}
	sub, acc := f.access(tr.Token)
	if sub != "workflow-run:7" || strings.Join(acc["alice/private"], ",") != "pull" {
		t.Fatalf("granted %s %v", sub, acc)
	}
	if tr.ExpiresIn > 120 || tr.ExpiresIn < 100 {
		t.Fatalf("expires_in %d: want at most the job token's 120 s", tr.ExpiresIn)
	}

	resp, tr, body = f.post(url.Values{"grant_type": {"password"}, "service": {"hubctl"}, "username": {JobUser}, "password": {job},
		"scope": {"repository:alice/private:pull,push"}, "access_type": {"offline"}})
	if resp.StatusCode != 200 || tr.RefreshToken != "" {
		t.Fatalf("POST password grant with the job token: %d %s", resp.StatusCode, body)
	}
	if _, acc := f.access(tr.Token); strings.Join(acc["alice/private"], ",") != "pull,push" {
		t.Fatalf("POST granted %v", acc)
	}

	// A pattern grant reaches the repositories below its prefix, pull and push only.
	pat := f.mintJob("workflow-run:8", time.Now(), time.Minute, repoAccess("alice/*", scope.Pull))
	_, tr, _ = f.get(JobUser, pat, scopes("repository:alice/private:pull,push", "repository:alicex/app:pull", "repository:bob/app:pull"))
	if _, acc := f.access(tr.Token); strings.Join(acc["alice/private"], ",") != "pull" || len(acc["alicex/app"]) != 0 || len(acc["bob/app"]) != 0 {
		t.Fatalf("pattern granted %v", acc)
	}
}

// TestJobTokenAttacks is what an attacker tries with the user name hubctl-job: every
// attempt gets 401 (or, for a repository the token does not cover, a token granting
// nothing), and each refusal is audited without the token's text.
func TestJobTokenAttacks(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	revoked := map[string]bool{"workflow-run:9": true}
	var mu sync.Mutex
	f.server.JobActive = func(_ context.Context, subject string) error {
		mu.Lock()
		defer mu.Unlock()
		if revoked[subject] {
			return fmt.Errorf("%w: run 9 finished", ErrJobRevoked)
		}
		if subject == "workflow-run:10" {
			return fmt.Errorf("database is down")
		}
		return nil
	}
	ask := scopes("repository:alice/private:pull")
	// A hub account named hubctl-job, made before the name meant anything.
	h, err := password.Hash("job-account-password")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.CreateUser(ctx, accounts.User{Name: JobUser, PasswordHash: h}); err != nil {
		t.Fatal(err)
	}
	// A signed-in user's own registry token (it carries hub claims, no job subject).
	_, userTok, _ := f.get("alice", "alice-password", ask)
	// A token signed by another key set, claiming the same issuer and audience.
	otherKeys, err := token.LoadOrCreateKeySet(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	forged, err := (&token.Issuer{Keys: otherKeys, Issuer: "hubctl", Service: "hubctl"}).Issue("workflow-run:7", token.Hub{},
		[]scope.Access{repoAccess("alice/private", scope.Pull)})
	if err != nil {
		t.Fatal(err)
	}
	valid := f.mintJob("workflow-run:7", time.Now(), time.Minute, repoAccess("alice/private", scope.Pull))
	attacks := map[string]struct{ user, pass string }{
		"expired job token":          {JobUser, f.mintJob("workflow-run:7", time.Now().Add(-2*time.Hour), time.Hour, repoAccess("alice/private", scope.Pull))},
		"revoked job token":          {JobUser, f.mintJob("workflow-run:9", time.Now(), time.Minute, repoAccess("alice/private", scope.Pull))},
		"run not checkable":          {JobUser, f.mintJob("workflow-run:10", time.Now(), time.Minute, repoAccess("alice/private", scope.Pull))},
		"webhook machine token":      {JobUser, f.mintJob("webhook:h1", time.Now(), time.Minute, repoAccess("alice/private", scope.Pull))},
		"user's registry token":      {JobUser, userTok.Token},
		"forged signature":           {JobUser, forged.Raw},
		"tampered payload":           {JobUser, tamper(valid)},
		"normal user's password":     {JobUser, "alice-password"},
		"the account's own password": {JobUser, "job-account-password"},
		"empty password":             {JobUser, ""},
		"access token":               {JobUser, "hub_" + strings.Repeat("a", 40)},
	}
	for name, a := range attacks {
		resp, _, body := f.get(a.user, a.pass, ask)
		if resp.StatusCode != 401 || !strings.Contains(body, "job token") {
			t.Errorf("%s (GET): %d %s", name, resp.StatusCode, body)
		}
		resp, _, body = f.post(url.Values{"grant_type": {"password"}, "service": {"hubctl"}, "username": {a.user}, "password": {a.pass},
			"scope": {"repository:alice/private:pull"}})
		if resp.StatusCode != 401 {
			t.Errorf("%s (POST): %d %s", name, resp.StatusCode, body)
		}
	}
	// The job token with another user name is not a password of anyone.
	if resp, _, body := f.get("alice", valid, ask); resp.StatusCode != 401 {
		t.Errorf("job token as alice's password: %d %s", resp.StatusCode, body)
	}
	// A token for another repository grants nothing there.
	_, tr, body := f.get(JobUser, valid, scopes("repository:alice/public:pull,push", "repository:bob/app:pull", "repository:alice/private:push,delete"))
	if tr.Token == "" {
		t.Fatalf("valid job token refused: %s", body)
	}
	if _, acc := f.access(tr.Token); len(acc["alice/public"]) != 0 || len(acc["bob/app"]) != 0 || len(acc["alice/private"]) != 0 {
		t.Fatalf("a job token for alice/private pull granted %v", acc)
	}
	// Refusals are audited, never with the token.
	entries, err := f.store.ListAudit(ctx, accounts.AuditFilter{Action: "login.failed"})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.Actor != JobUser {
			continue
		}
		n++
		for _, a := range attacks {
			if len(a.pass) > 8 && strings.Contains(e.Detail, a.pass) {
				t.Fatalf("audit entry holds a credential: %q", e.Detail)
			}
		}
	}
	if n < len(attacks) {
		t.Fatalf("%d audited refusals, want at least %d", n, len(attacks))
	}
}

// tamper changes the payload of a JWT (its access claim) keeping the signature.
func tamper(raw string) string {
	parts := strings.Split(raw, ".")
	p := []byte(parts[1])
	if p[len(p)-2] == 'A' {
		p[len(p)-2] = 'B'
	} else {
		p[len(p)-2] = 'A'
	}
	parts[1] = string(p)
	return strings.Join(parts, ".")
}
