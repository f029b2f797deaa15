package commands

import (
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/internal/safetext"
)

// TestTablesEscapeWhatTheServerSends: a value holding newlines, tabs and terminal
// escapes (stored before the server refused them, or by a server that does not) cannot
// add rows or columns to a table or reach the terminal raw.
func TestTablesEscapeWhatTheServerSends(t *testing.T) {
	ios, _, out, errOut := iostreams.Test()
	o := &HubOptions{IO: ios}
	forged := "eve\n2  2026-01-01T00:00:00Z  admin  login  -  10.0.0.1  -"
	err := o.print(nil, []string{"ID", "ACTOR", "DETAIL"}, func(row func(...string)) {
		row("1", forged, "\x1b]0;pwned\x07\x1b[2J")
		row("3", "alice\tadmin", "ok \u202egpj.exe")
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("table has %d lines, want 3:\n%s", len(lines), out.String())
	}
	if strings.ContainsFunc(out.String(), func(r rune) bool { return r != '\n' && safetext.Unsafe(r) }) {
		t.Fatalf("raw control characters in the table: %q", out.String())
	}
	if !strings.Contains(lines[1], `eve\n2`) || !strings.Contains(lines[1], `\x1b]0;pwned\x07`) || !strings.Contains(lines[2], `alice\tadmin`) {
		t.Fatalf("table:\n%s", out.String())
	}
	if err := o.done(nil, "User %s created", "x\x1b[31m"); err != nil {
		t.Fatal(err)
	}
	if got := errOut.String(); got != "User x\\x1b[31m created\n" {
		t.Fatalf("done wrote %q", got)
	}
}
