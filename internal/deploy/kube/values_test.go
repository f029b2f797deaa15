package kube

import (
	"reflect"
	"strings"
	"testing"
)

const testDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

func TestPinValues(t *testing.T) {
	ref, err := parsePinned("hub.example.com/acme/web:1.4@" + testDigest)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		vals      map[string]any
		path      string
		chartVals map[string]any
		want      map[string]any
		err       string
	}{
		{
			name: "default shape, other values kept",
			vals: map[string]any{"replicaCount": 3, "image": map[string]any{"pullPolicy": "IfNotPresent"}},
			path: "image",
			want: map[string]any{"replicaCount": 3, "image": map[string]any{"pullPolicy": "IfNotPresent",
				"repository": "hub.example.com/acme/web", "tag": "1.4", "digest": testDigest}},
		},
		{
			name: "nested path created",
			path: "app.image",
			want: map[string]any{"app": map[string]any{"image": map[string]any{"repository": "hub.example.com/acme/web", "tag": "1.4", "digest": testDigest}}},
		},
		{
			name:      "registry split when the chart has one",
			path:      "image",
			chartVals: map[string]any{"image": map[string]any{"registry": "docker.io", "repository": "bitnami/nginx"}},
			want:      map[string]any{"image": map[string]any{"registry": "hub.example.com", "repository": "acme/web", "tag": "1.4", "digest": testDigest}},
		},
		{
			name: "a scalar in the way",
			vals: map[string]any{"image": "nginx:1"},
			path: "image",
			err:  "image is string, not a mapping",
		},
		{
			name: "a scalar in the way, deeper",
			vals: map[string]any{"app": []any{"x"}},
			path: "app.image",
			err:  "app is []interface {}, not a mapping",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := deepCopy(c.vals)
			got, err := pinValues(c.vals, c.path, ref, c.chartVals)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %#v\nwant %#v", got, c.want)
			}
			if !reflect.DeepEqual(c.vals, before) && !(len(c.vals) == 0 && len(before) == 0) {
				t.Errorf("the spec's values were changed: %#v", c.vals)
			}
		})
	}
}

func TestParsePinned(t *testing.T) {
	if _, err := parsePinned("hub.example.com/acme/web:1.4"); err == nil || !strings.Contains(err.Error(), "not pinned") {
		t.Errorf("a tag alone: %v", err)
	}
	if _, err := parsePinned("Not A Ref@@"); err == nil {
		t.Error("garbage accepted")
	}
	r, err := parsePinned("hub.example.com/acme/web@" + testDigest)
	if err != nil || r.Tag != "" || r.Digest != testDigest {
		t.Errorf("digest only: %+v %v", r, err)
	}
}
