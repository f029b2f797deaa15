package hubapi_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata"
)

// hubEvents returns the events of type t, as an admin reads them.
func (f *fixture) hubEvents(t events.Type) []events.Event {
	f.t.Helper()
	p, err := f.store.ListEvents(context.Background(), events.Query{Types: []events.Type{t}, Access: metadata.CatalogFilter{All: true}, Limit: events.MaxPage})
	if err != nil {
		f.t.Fatal(err)
	}
	return p.Events
}

// TestAuditInTransaction: the hub API's audit entries are written in the change's own
// transaction. A change that commits always has its entry (and its event); a change
// refused by the store has none; and when the entry cannot be written, the change does
// not happen either (before, it happened and the entry was lost with a log line).
func TestAuditInTransaction(t *testing.T) {
	f := newFixture(t)
	count := func(action string) int { return len(f.audited(action)) }

	// Committed: entry and event.
	f.want(f.do(asAdmin, "POST", "/api/v1/users", map[string]any{"name": "carol", "password": "carol-password"}), 201, "")
	f.wantAudit("user.create", "admin", "carol")
	if es := f.hubEvents(events.AccountCreated); len(es) == 0 || es[len(es)-1].Detail["account"] != "carol" || es[len(es)-1].Actor != "admin" {
		t.Fatalf("account.created events %+v", es)
	}
	f.token(asAlice, "ci", "repository:alice/*:pull")
	if e := f.wantAudit("token.create", "alice", "alice/ci"); e.Detail != "scopes repository:alice/*:pull" {
		t.Errorf("token.create detail %q", e.Detail)
	}
	if es := f.hubEvents(events.TokenCreated); len(es) != 1 || es[0].Detail["token"] != "ci" || es[0].Detail["account"] != "alice" {
		t.Fatalf("token.created events %+v", es)
	}
	f.want(f.do(asAlice, "DELETE", "/api/v1/tokens/ci", nil), 204, "")
	f.wantAudit("token.revoke", "alice", "alice/ci")
	if es := f.hubEvents(events.TokenRevoked); len(es) != 1 {
		t.Fatalf("token.revoked events %+v", es)
	}
	f.want(f.do(asAlice, "POST", "/api/v1/orgs", map[string]any{"name": "acme"}), 201, "")
	f.want(f.do(asAlice, "PUT", "/api/v1/orgs/acme/teams/owners/members/bob", nil), 204, "")
	f.wantAudit("team.member.add", "alice", "acme/owners")
	if es := f.hubEvents(events.TeamMemberAdded); len(es) != 1 || es[0].Detail["member"] != "bob" {
		t.Fatalf("team.member_added events %+v", es)
	}
	f.want(f.do(asAdmin, "PUT", "/api/v1/namespaces/alice/quota", map[string]any{"bytes": 1000}), 200, "")
	if e := f.wantAudit("quota.change", "admin", "alice"); e.Detail != "1000 bytes" {
		t.Errorf("quota.change detail %q", e.Detail)
	}
	if es := f.hubEvents(events.QuotaChanged); len(es) != 1 || es[0].Detail["bytes"] != float64(1000) {
		t.Fatalf("quota.changed events %+v", es)
	}

	// Refused by the store, inside its transaction: no entry, no event.
	before := map[string]int{}
	for _, a := range []string{"user.create", "token.create", "token.revoke", "team.member.add", "quota.change"} {
		before[a] = count(a)
	}
	f.want(f.do(asAdmin, "POST", "/api/v1/users", map[string]any{"name": "alice", "password": "other-password"}), 409, "CONFLICT")
	f.token(asAlice, "ci2", "repository:alice/*:pull")
	before["token.create"]++
	f.want(f.do(asAlice, "POST", "/api/v1/tokens", map[string]any{"name": "ci2", "scopes": []string{"repository:alice/*:pull"}}), 409, "CONFLICT")
	f.want(f.do(asAlice, "DELETE", "/api/v1/tokens/never-made", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asAlice, "DELETE", "/api/v1/tokens/ci", nil), 404, "NAME_UNKNOWN") // revoked already
	f.want(f.do(asAlice, "PUT", "/api/v1/orgs/acme/teams/owners/members/ghost", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asAdmin, "PUT", "/api/v1/namespaces/nowhere/quota", map[string]any{"bytes": 1}), 404, "NAME_UNKNOWN")
	for a, n := range before {
		if got := count(a); got != n {
			t.Errorf("%s: %d entries after refused changes, want %d", a, got, n)
		}
	}
	if n := len(f.hubEvents(events.TokenCreated)); n != 2 {
		t.Errorf("%d token.created events, want 2", n)
	}

	// An entry that cannot be written takes its change with it.
	db, err := sql.Open("sqlite", f.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log WHEN NEW.target IN ('dave', 'bob', 'alice/ci3')
		BEGIN SELECT RAISE(ABORT, 'audit refused'); END`); err != nil {
		t.Fatal(err)
	}
	f.want(f.do(asAdmin, "POST", "/api/v1/users", map[string]any{"name": "dave", "password": "dave-password"}), 500, "UNKNOWN")
	f.want(f.do(asAdmin, "GET", "/api/v1/users/dave", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asAdmin, "PUT", "/api/v1/namespaces/bob/quota", map[string]any{"bytes": 5}), 500, "UNKNOWN")
	if _, quota, err := f.store.Usage(context.Background(), "bob"); err != nil || quota != 0 {
		t.Errorf("bob's quota %d (%v) after its audit failed, want none", quota, err)
	}
	f.want(f.do(asAlice, "POST", "/api/v1/tokens", map[string]any{"name": "ci3", "scopes": []string{"repository:alice/*:pull"}}), 500, "UNKNOWN")
	toks := decodeAs[[]map[string]any](t, f.want(f.do(asAlice, "GET", "/api/v1/tokens", nil), 200, ""))
	for _, tk := range toks {
		if tk["name"] == "ci3" {
			t.Errorf("token ci3 made although its audit entry failed")
		}
	}
	for _, e := range f.hubEvents(events.AccountCreated) {
		if e.Detail["account"] == "dave" {
			t.Errorf("account.created for dave, whose creation rolled back")
		}
	}
	if n := len(f.hubEvents(events.QuotaChanged)); n != 1 {
		t.Errorf("%d quota.changed events, want 1", n)
	}
}
