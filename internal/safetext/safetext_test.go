package safetext

import (
	"strings"
	"testing"
)

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"alice":                    "alice",
		"Zoë Ünïcode ✓":            "Zoë Ünïcode ✓",
		"a\tb\nc\r":                `a\tb\nc\r`,
		"\x1b[31mred\x1b[0m":       `\x1b[31mred\x1b[0m`,
		"evil\u202egpj.exe":        `evil\u202egpj.exe`,
		"back\\slash":              `back\slash`,
		"escaped \\n already":      `escaped \n already`,
		"bad \xff byte":            `bad \xff byte`,
		"c1 \u0085 next line":      `c1 \x85 next line`,
		"line\u2028separator":      `line\u2028separator`,
		"isolate \u2066x\u2069 ok": `isolate \u2066x\u2069 ok`,
	} {
		got := Escape(in)
		if got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
		if strings.ContainsFunc(got, Unsafe) {
			t.Errorf("Escape(%q) still holds an unsafe character", in)
		}
	}
}

func TestCheck(t *testing.T) {
	for _, ok := range []string{"", "alice", "Team of Zoë", "ops@example.com"} {
		if err := Check(ok); err != nil {
			t.Errorf("Check(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"a\nb", "tab\t", "\x1b[2J", "rlo\u202e", "\xff", "del\x7f"} {
		if err := Check(bad); err == nil {
			t.Errorf("Check(%q) = nil", bad)
		}
	}
}

func TestTruncate(t *testing.T) {
	if got := Truncate("short", 10); got != "short" {
		t.Fatal(got)
	}
	got := Truncate(strings.Repeat("é", 100), 11)
	if len(got) > 11 || !strings.HasSuffix(got, "…") || !strings.HasPrefix(got, "éééé") {
		t.Fatalf("Truncate = %q (%d bytes)", got, len(got))
	}
}

func FuzzEscape(f *testing.F) {
	f.Add("a\x1b[2J\u202e\xff\\")
	f.Fuzz(func(t *testing.T, s string) {
		e := Escape(s)
		if strings.ContainsFunc(e, Unsafe) || Check(e) != nil {
			t.Fatalf("Escape(%q) = %q is not safe", s, e)
		}
	})
}
