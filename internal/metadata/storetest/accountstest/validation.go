package accountstest

import (
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/safetext"
)

// testFieldLimits: every text field a client sets is bounded and free of control
// characters when stored (issue 12, item 7), and audit fields, which record what
// clients sent, are stored escaped and cut rather than refused.
func testFieldLimits(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	long := strings.Repeat("a", accounts.MaxNameLength+1)
	_, err := s.CreateUser(ctx, accounts.User{Name: long})
	wantErr(t, "CreateUser(65-byte name)", err, accounts.ErrInvalid)
	_, err = s.CreateOrg(ctx, long, "x")
	wantErr(t, "CreateOrg(65-byte name)", err, accounts.ErrInvalid)
	_, err = s.CreateUser(ctx, accounts.User{Name: strings.Repeat("a", accounts.MaxNameLength)})
	must(t, err)

	for _, email := range []string{"a@b\n2026-01-01 admin login", "\x1b[2Jx@y", "x@y\u202e", "no-at-sign", "a@", strings.Repeat("a", 250) + "@b.cd"} {
		_, err := s.CreateUser(ctx, accounts.User{Name: "eve", Email: email})
		wantErr(t, "CreateUser(email "+safetext.Escape(email)+")", err, accounts.ErrInvalid)
	}
	alice := newUser(t, s, "alice")
	alice.Email = "alice@example.com\r\nbob@example.com"
	wantErr(t, "UpdateUser(email with CRLF)", s.UpdateUser(ctx, alice), accounts.ErrInvalid)

	newOrg(t, s, "acme", "alice")
	for _, d := range []string{"ops\tteam", "line\nbreak", strings.Repeat("d", accounts.MaxDescriptionLength+1), "bad \xff utf-8"} {
		err := s.CreateTeam(ctx, accounts.Team{Org: "acme", Name: "devs", Description: d})
		wantErr(t, "CreateTeam(description "+safetext.Escape(d)+")", err, accounts.ErrInvalid)
	}
	must(t, s.CreateTeam(ctx, accounts.Team{Org: "acme", Name: "devs", Description: "Développeurs, équipe ✓"}))

	for _, name := range []string{"", "a\x1b[31m", "a/b", strings.Repeat("t", accounts.MaxTokenNameLength+1)} {
		_, err := s.CreateToken(ctx, accounts.AccessToken{User: "alice", Name: name, Hash: hashOf("secret " + name)})
		wantErr(t, "CreateToken(name "+safetext.Escape(name)+")", err, accounts.ErrInvalid)
	}

	// A failed login's user name is what an attacker typed: recorded, but escaped and
	// bounded.
	forged := "x\n42  2026-01-01T00:00:00Z  admin  login  -  10.0.0.1  -\x1b]0;pwned\x07" + strings.Repeat("y", 5000)
	must(t, s.Audit(ctx, accounts.AuditEntry{Actor: forged, Action: "login.failed", Detail: strings.Repeat("d\t", 5000)}))
	es, err := s.ListAudit(ctx, accounts.AuditFilter{Action: "login.failed"})
	must(t, err)
	if len(es) != 1 {
		t.Fatalf("audit entries: %+v", es)
	}
	e := es[0]
	if strings.ContainsFunc(e.Actor+e.Detail, safetext.Unsafe) || len(e.Actor) > accounts.MaxAuditField || len(e.Detail) > accounts.MaxAuditDetail ||
		!strings.HasPrefix(e.Actor, `x\n42`) {
		t.Fatalf("audit entry stored raw or unbounded: actor %q (%d bytes), detail %d bytes", e.Actor, len(e.Actor), len(e.Detail))
	}
}
