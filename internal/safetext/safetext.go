// Package safetext decides which characters of untrusted text may reach a terminal, a
// table or a log as they are, and escapes the others. User names, emails, descriptions
// and audit fields come from clients: a newline or a tab in one would forge table rows
// and columns, an ESC sequence would drive the reader's terminal, and a bidirectional
// override would show text in another order than it is stored.
package safetext

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Unsafe reports whether r must not be shown as it is: C0 and C1 control characters
// and DEL (tab and newline included), the Unicode line and paragraph separators, and
// the bidirectional marks, embeddings, overrides and isolates.
func Unsafe(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
		return true
	case r == 0x2028, r == 0x2029: // line and paragraph separators
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f: // arabic letter mark, LRM, RLM
		return true
	case r >= 0x202a && r <= 0x202e: // LRE, RLE, PDF, LRO, RLO
		return true
	case r >= 0x2066 && r <= 0x2069: // LRI, RLI, FSI, PDI
		return true
	}
	return false
}

// Check returns nil when s is valid UTF-8 without unsafe characters.
func Check(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("is not valid UTF-8")
	}
	if i := strings.IndexFunc(s, Unsafe); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return fmt.Errorf("has the control character %U at byte %d", r, i)
	}
	return nil
}

// Escape returns s with every unsafe character and invalid byte written as a Go
// escape (\n, \t, \x1b, \u202e), for display in tables and logs. A backslash already
// in s is left alone: text that looks like an escape is harmless, and escaping twice
// (text stored escaped, then shown) stays readable. Safe text comes back as it is.
func Escape(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, Unsafe) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case Unsafe(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case Unsafe(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// Truncate returns s cut to at most max bytes on a character boundary, with "…"
// (counted in max) when it was cut.
func Truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const ellipsis = "…"
	cut := max - len(ellipsis)
	if cut < 0 {
		cut = 0
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
