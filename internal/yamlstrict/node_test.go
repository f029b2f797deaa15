package yamlstrict

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestCheckTree: aliases, foreign tags and deep nesting are refused where they stand;
// a plain document passes.
func TestCheckTree(t *testing.T) {
	for _, c := range []struct {
		src  string
		want string // "" = no error
	}{
		{"a: 1\nb: [x, y]\n", ""},
		{"a: &x 1\nb: *x\n", "2:4: YAML aliases (*x) are not supported"},
		{"a: !secret x\n", "1:4: the tag !secret is not supported"},
		{strings.Repeat("[", 70) + strings.Repeat("]", 70) + "\n", "nested more than 64 levels deep"},
	} {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(c.src), &doc); err != nil {
			t.Fatalf("%q: %v", c.src, err)
		}
		got := CheckTree(doc.Content[0]).Sorted().Error()
		if c.want == "" && got != "" || !strings.Contains(got, c.want) {
			t.Errorf("%q: got %q, want %q", c.src, got, c.want)
		}
	}
}

// TestSuggest: a near miss names the known word; a far one says nothing.
func TestSuggest(t *testing.T) {
	known := []string{"image", "steps", "needs"}
	if got := Suggest("imgae", known); got != ` (did you mean "image"?)` {
		t.Errorf("imgae: %q", got)
	}
	if got := Suggest("zzz", known); got != "" {
		t.Errorf("zzz: %q", got)
	}
}
