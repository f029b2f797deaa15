package layering

import (
	"path"
	"strings"
	"testing"
)

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"a/b": "a/b", "/a/b/": "a/b", "a//b": "a/b", "./a": "a", "a/./b": "a/b", "a/../b": "b",
		"../../etc/passwd": "etc/passwd", "": "", "/": "", ".": "", `a\b`: "a/b", "a/..": "", "..a/b.": "..a/b.",
	} {
		if got := cleanPath(in); got != want {
			t.Errorf("cleanPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzCleanPath(f *testing.F) {
	f.Add("a/b/../c")
	f.Fuzz(func(t *testing.T, p string) {
		want := strings.TrimPrefix(path.Clean("/"+strings.ReplaceAll(p, `\`, "/")), "/")
		if got := cleanPath(p); got != want {
			t.Fatalf("cleanPath(%q) = %q, want %q", p, got, want)
		}
	})
}
