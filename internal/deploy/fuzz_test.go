package deploy

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: no input panics, every error has a position and a message, and what
// parses keeps its bounds: replicas placed exactly, hosts named, a target kind chosen.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(base))
	f.Add([]byte(base + "  replicas: 5\nhosts: [{name: local}, {name: b, docker: \"ssh://u@b:22\", replicas: 2}]\n"))
	f.Add([]byte(base + "  ports: [\"[::1]:80:80/udp\", 9000]\n  volumes: [\"a:/b:ro\"]\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		s, err := Parse(src)
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 || s != nil {
				t.Fatalf("error %T %v, spec %v", err, err, s != nil)
			}
			for _, e := range es {
				if e.Line < 1 || e.Col < 1 || e.Msg == "" {
					t.Fatalf("error without a position or message: %#v", e)
				}
			}
			return
		}
		if s.Service.Name == "" || s.Service.Image == "" {
			t.Fatalf("a spec without name or image: %+v", s.Service)
		}
		if (s.Kubernetes == nil) == (len(s.Hosts) == 0) {
			t.Fatalf("kubernetes %v with %d hosts", s.Kubernetes != nil, len(s.Hosts))
		}
		if s.Kubernetes == nil {
			sum := 0
			for _, n := range s.Placement() {
				if n < 0 {
					t.Fatalf("placement %v", s.Placement())
				}
				sum += n
			}
			if sum != s.Service.Replicas {
				t.Fatalf("placement %v places %d of %d replicas", s.Placement(), sum, s.Service.Replicas)
			}
		}
		if s.Service.Health.Interval <= 0 || s.Service.Health.Timeout <= 0 || s.Service.Health.Threshold < 1 {
			t.Fatalf("health without defaults: %+v", s.Service.Health)
		}
	})
}
