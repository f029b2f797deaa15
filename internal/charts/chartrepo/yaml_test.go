package chartrepo

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestYAMLRoundTrip: what the hand-written emitter writes reads back, with the YAML
// parser helm uses, as the JSON it came from.
func TestYAMLRoundTrip(t *testing.T) {
	src := `{"apiVersion":"v2","name":"app","version":"1.2.3+build.1","appVersion":"1.0","description":"a: tricky # string",
	"keywords":["web","yes","null","007","-dash"],"deprecated":true,"annotations":{"helm.sh/images":"- image: x\n","empty":""},
	"maintainers":[{"name":"Ada","email":"ada@example.com"}],"dependencies":[{"name":"redis","version":"~18","import-values":[["a","b"],{"child":"c","parent":"d"}]}],
	"icon":"https://example.com/i.png","home":" leading space","sources":[],"kubeVersion":">=1.25.0-0","weird":{"":"x","k":1.5e3}}`
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader([]byte(src)))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.WriteString("entries:\n  app:\n")
	writeMapping(&b, 4, "  - ", m)
	var got struct {
		Entries map[string][]map[string]any `json:"entries"`
	}
	if err := yaml.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	var want map[string]any
	_ = json.Unmarshal([]byte(src), &want)
	if len(got.Entries["app"]) != 1 || !reflect.DeepEqual(got.Entries["app"][0], want) {
		t.Errorf("round trip:\n got %#v\nwant %#v\nyaml:\n%s", got.Entries["app"], want, b.String())
	}
}

func TestPlainSafe(t *testing.T) {
	for s, want := range map[string]bool{"app": true, "1.2.3": true, "1.2": false, "007": false, "yes": false, "Null": false,
		"a b": true, "a: b": false, "#x": false, "-x": false, "x-y": true, "": false, " x": false, "a/b.c": true} {
		if got := plainSafe(s); got != want {
			t.Errorf("plainSafe(%q) = %v, want %v", s, got, want)
		}
	}
}
