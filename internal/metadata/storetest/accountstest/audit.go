package accountstest

import (
	"fmt"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
)

func testAudit(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	got, err := s.ListAudit(ctx, accounts.AuditFilter{})
	must(t, err)
	if got == nil || len(got) != 0 {
		t.Fatalf("ListAudit on an empty store = %#v, want an empty slice", got)
	}
	wantErr(t, "Audit(no actor)", s.Audit(ctx, accounts.AuditEntry{Action: "login"}), accounts.ErrInvalid)
	wantErr(t, "Audit(no action)", s.Audit(ctx, accounts.AuditEntry{Actor: "alice"}), accounts.ErrInvalid)

	first := accounts.AuditEntry{Time: testTime, Actor: "alice", Action: "login", Target: "alice",
		Remote: "192.0.2.1:5000", Detail: "password"}
	must(t, s.Audit(ctx, first))
	entries := []accounts.AuditEntry{
		{Time: testTime.Add(1 * time.Minute), Actor: "bob", Action: "login.failed", Remote: "192.0.2.2"},
		{Time: testTime.Add(2 * time.Minute), Actor: "alice", Action: "push", Target: "acme/app"},
		{Time: testTime.Add(3 * time.Minute), Actor: "alice", Action: "token.create", Target: "ci"},
		{Time: testTime.Add(4 * time.Minute), Actor: "system", Action: "login", Target: "admin"},
	}
	for _, e := range entries {
		must(t, s.Audit(ctx, e))
	}
	before := time.Now()
	must(t, s.Audit(ctx, accounts.AuditEntry{Actor: "anonymous", Action: "pull"})) // zero Time: now

	all, err := s.ListAudit(ctx, accounts.AuditFilter{})
	must(t, err)
	if len(all) != 6 {
		t.Fatalf("ListAudit = %d entries, want 6", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID >= all[i-1].ID {
			t.Fatalf("ListAudit not newest first: ids %d then %d", all[i-1].ID, all[i].ID)
		}
	}
	if all[0].Actor != "anonymous" || all[0].Time.Before(before.Truncate(time.Microsecond)) {
		t.Fatalf("entry with a zero Time = %+v, want stamped now (after %s)", all[0], before)
	}
	last := all[5]
	first.ID = last.ID
	if last != first {
		t.Fatalf("oldest entry = %+v, want %+v", last, first)
	}

	for _, tc := range []struct {
		f    accounts.AuditFilter
		want []string // actions, newest first
	}{
		{accounts.AuditFilter{Actor: "alice"}, []string{"token.create", "push", "login"}},
		{accounts.AuditFilter{Action: "login"}, []string{"login", "login"}},
		{accounts.AuditFilter{Actor: "alice", Action: "login"}, []string{"login"}},
		{accounts.AuditFilter{Actor: "alice", Since: testTime.Add(2 * time.Minute)}, []string{"token.create", "push"}},
		{accounts.AuditFilter{Since: testTime.Add(4 * time.Minute), Limit: 1}, []string{"pull"}},
		{accounts.AuditFilter{Until: testTime.Add(time.Minute)}, []string{"login.failed", "login"}},
		{accounts.AuditFilter{Since: testTime.Add(time.Minute), Until: testTime.Add(3 * time.Minute)}, []string{"token.create", "push", "login.failed"}},
		{accounts.AuditFilter{Since: testTime.Add(time.Minute), Until: testTime.Add(3 * time.Minute), Limit: 1}, []string{"token.create"}},
		{accounts.AuditFilter{Until: testTime.Add(-time.Second)}, []string{}},
		// Bounds beyond what unix nanoseconds hold still mean before or after all.
		{accounts.AuditFilter{Since: time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)}, []string{}},
		{accounts.AuditFilter{Actor: "alice", Since: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)},
			[]string{"token.create", "push", "login"}},
		{accounts.AuditFilter{Actor: "alice", Before: all[2].ID}, []string{"push", "login"}},
		{accounts.AuditFilter{Actor: "carol"}, []string{}},
		{accounts.AuditFilter{Action: "log"}, []string{}}, // exact match, not a prefix
		{accounts.AuditFilter{Limit: 2}, []string{"pull", "login"}},
		{accounts.AuditFilter{Limit: -1}, []string{"pull", "login", "token.create", "push", "login.failed", "login"}},
	} {
		got, err := s.ListAudit(ctx, tc.f)
		must(t, err)
		actions := []string{}
		for _, e := range got {
			actions = append(actions, e.Action)
		}
		equalStrings(t, fmt.Sprintf("ListAudit(%+v)", tc.f), actions, tc.want)
	}
}

func testAuditPagination(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	const n = 1050
	for i := range n {
		actor := "alice"
		if i%3 == 0 {
			actor = "bob"
		}
		must(t, s.Audit(ctx, accounts.AuditEntry{Time: testTime.Add(time.Duration(i) * time.Second), Actor: actor,
			Action: "push", Detail: fmt.Sprint(i)}))
	}
	page, err := s.ListAudit(ctx, accounts.AuditFilter{})
	must(t, err)
	if len(page) != 100 || page[0].Detail != fmt.Sprint(n-1) {
		t.Fatalf("default page: %d entries starting at %q, want 100 starting at %d", len(page), page[0].Detail, n-1)
	}
	page, err = s.ListAudit(ctx, accounts.AuditFilter{Limit: 5000})
	must(t, err)
	if len(page) != 1000 {
		t.Fatalf("Limit 5000 returned %d entries, want the maximum 1000", len(page))
	}

	// Walking the pages of one actor visits each of their entries once, newest first.
	var seen []string
	f := accounts.AuditFilter{Actor: "bob", Limit: 64}
	for pages := 0; ; pages++ {
		if pages > n/64+1 {
			t.Fatalf("still paging after %d pages: Before does not advance", pages)
		}
		page, err := s.ListAudit(ctx, f)
		must(t, err)
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			if e.Actor != "bob" {
				t.Fatalf("page for bob holds %+v", e)
			}
			seen = append(seen, e.Detail)
		}
		f.Before = page[len(page)-1].ID
	}
	var want []string
	for i := n - 1; i >= 0; i-- {
		if i%3 == 0 {
			want = append(want, fmt.Sprint(i))
		}
	}
	equalStrings(t, "bob's entries over all pages", seen, want)

	// A time range in the middle, with entries on both sides of each bound: every page
	// but the last is full and the pages together are the range, once.
	lo, hi := 300, 700
	seen = nil
	f = accounts.AuditFilter{Since: testTime.Add(time.Duration(lo) * time.Second), Until: testTime.Add(time.Duration(hi) * time.Second), Limit: 64}
	for pages := 0; ; pages++ {
		if pages > n/64+1 {
			t.Fatalf("still paging after %d pages: Before does not advance", pages)
		}
		page, err := s.ListAudit(ctx, f)
		must(t, err)
		for _, e := range page {
			seen = append(seen, e.Detail)
		}
		if len(page) < f.Limit {
			break
		}
		f.Before = page[len(page)-1].ID
	}
	want = nil
	for i := hi; i >= lo; i-- {
		want = append(want, fmt.Sprint(i))
	}
	equalStrings(t, "the entries of a time range over all pages", seen, want)
}
