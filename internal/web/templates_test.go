package web

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// TestTemplatesHaveNoInline: the CSP forbids inline script, style attributes and
// event handlers; a template holding one would be broken, so none may.
func TestTemplatesHaveNoInline(t *testing.T) {
	bad := regexp.MustCompile(`(?i)<script(\s[^>]*)?>\s*[^<\s]|<script>|\son[a-z]+\s*=|\sstyle\s*=|<style|javascript:|template\.HTML`)
	n := 0
	err := fs.WalkDir(templateFS, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := templateFS.ReadFile(p)
		if err != nil {
			return err
		}
		n++
		if m := bad.Find(b); m != nil {
			t.Errorf("%s: %q", p, m)
		}
		return nil
	})
	if err != nil || n != len(pageNames)+1 {
		t.Fatalf("walked %d templates: %v", n, err)
	}
}

// TestEveryInputHasALabel: each visible input, select and textarea has an id that a
// <label for> names.
func TestEveryInputHasALabel(t *testing.T) {
	input := regexp.MustCompile(`<(input|select|textarea)\b[^>]*>`)
	id := regexp.MustCompile(`\bid="([^"]+)"`)
	for _, name := range pageNames {
		b, _ := templateFS.ReadFile("templates/" + name + ".html")
		for _, m := range input.FindAllString(string(b), -1) {
			if strings.Contains(m, `type="hidden"`) {
				continue
			}
			im := id.FindStringSubmatch(m)
			if im == nil || !strings.Contains(string(b), `<label for="`+im[1]+`"`) {
				t.Errorf("%s: %s has no label", name, m)
			}
		}
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/alice/app": "/alice/app", "": "/", "//evil.example": "/", "/\\evil.example": "/", "https://evil.example": "/",
		"/login": "/", "/a\nb": "/", "alice": "/",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestShellWords(t *testing.T) {
	if got := shellWords([]string{"/app", "--flag", "a b", "it's", ""}); got != `/app --flag 'a b' 'it'\''s' ''` {
		t.Errorf("shellWords = %s", got)
	}
}
