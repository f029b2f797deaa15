package mirror

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad checks that Load never panics and that whatever it accepts is a valid
// Spec that Plan would take as is.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/errors/*.yaml")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(string(b))
		}
	}
	f.Add("defaults: {target: localhost/m, tags: {semver: '>=1', newest: 2}}\nmirrors: [{source: docker.io/library/alpine}]\n")
	f.Add("mirrors:\n- &a {source: 'ghcr.io/o/a:1', target: localhost/a}\n- *a\n")
	f.Add("mirrors: [{source: docker.io/x, target: localhost/x, tags: {include: ['(?i)^V']}}]")
	f.Fuzz(func(t *testing.T, in string) {
		spec, err := Load(strings.NewReader(in))
		if err != nil {
			if spec != nil {
				t.Fatal("Load returned a spec and an error")
			}
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if err := spec.Validate(); err != nil {
			t.Fatalf("Load accepted a spec that does not validate: %v\n%s", err, in)
		}
	})
}
