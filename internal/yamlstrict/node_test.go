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

// TestQuantities: CPU and memory as Kubernetes writes them; anything else is -1.
func TestQuantities(t *testing.T) {
	for s, want := range map[string]int64{"500m": 500, "1.5": 1500, "2": 2000, "x": -1, "NaN": -1, "1e7": -1} {
		if got := MilliCPU(s); got != want {
			t.Errorf("MilliCPU(%q) = %d, want %d", s, got, want)
		}
	}
	for s, want := range map[string]int64{"512Mi": 512 << 20, "2Gi": 2 << 30, "256M": 256e6, "100": 100, "-1Mi": -1, "9999Ti": -1, "1.5Gi": -1} {
		if got := Bytes(s); got != want {
			t.Errorf("Bytes(%q) = %d, want %d", s, got, want)
		}
	}
}
