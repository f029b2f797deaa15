package accounts

import (
	"errors"
	"strings"
	"testing"
)

func TestValidators(t *testing.T) {
	for _, tt := range []struct {
		what string
		err  error
		ok   bool
	}{
		{"name of 64", CheckName(strings.Repeat("a", 64)), true},
		{"name of 65", CheckName(strings.Repeat("a", 65)), false},
		{"empty email", CheckEmail(""), true},
		{"email", CheckEmail("alice+hub@example.com"), true},
		{"email with newline", CheckEmail("a@b\nc"), false},
		{"email with space", CheckEmail("a b@c"), false},
		{"email without @", CheckEmail("alice"), false},
		{"email with two @", CheckEmail("a@b@c"), false},
		{"email too long", CheckEmail(strings.Repeat("a", 250) + "@b.cd"), false},
		{"description", CheckDescription("Développeurs, équipe ✓"), true},
		{"description with tab", CheckDescription("a\tb"), false},
		{"description with RLO", CheckDescription("a\u202eb"), false},
		{"description too long", CheckDescription(strings.Repeat("d", 257)), false},
		{"description not UTF-8", CheckDescription("\xff"), false},
		{"token name", CheckTokenName("ci token #1"), true},
		{"empty token name", CheckTokenName(""), false},
		{"token name with slash", CheckTokenName("a/b"), false},
		{"token name with escape", CheckTokenName("a\x1b"), false},
		{"token name too long", CheckTokenName(strings.Repeat("t", 101)), false},
	} {
		if (tt.err == nil) != tt.ok || (tt.err != nil && !errors.Is(tt.err, ErrInvalid)) {
			t.Errorf("%s: %v, want ok=%v", tt.what, tt.err, tt.ok)
		}
	}
}

func TestAuditEntryClean(t *testing.T) {
	e := AuditEntry{Actor: "x\ny", Action: "login.failed", Target: strings.Repeat("t", 1000), Detail: "\x1b[2J"}.Clean()
	if e.Actor != `x\ny` || len(e.Target) > MaxAuditField || e.Detail != `\x1b[2J` || e.Action != "login.failed" {
		t.Fatalf("%+v", e)
	}
}
