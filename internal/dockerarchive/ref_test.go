package dockerarchive

import "testing"

func TestNormalizeRef(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"app", "app:latest", true},
		{"app:1", "app:1", true},
		{"team/app", "team/app:latest", true},
		{"docker.io/library/app:1", "docker.io/library/app:1", true},
		{"localhost:5000/app", "localhost:5000/app:latest", true},
		{"registry.example.com:443/a/b:v1.2", "registry.example.com:443/a/b:v1.2", true},
		{"[::1]:5000/app:2", "[::1]:5000/app:2", true},
		{"", "", false},
		{"App", "", false},
		{"app@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "", false},
		{"app:", "", false},
		{"app:bad tag", "", false},
		{"bad_host!.com/app", "", false},
		{"/app", "", false},
	} {
		got, err := NormalizeRef(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("NormalizeRef(%q) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestSameImageName(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"app", "app:latest", true},
		{"app:1", "docker.io/library/app:1", true},
		{"app:1", "index.docker.io/library/app:1", true},
		{"team/app:1", "docker.io/team/app:1", true},
		{"app:1", "app:2", false},
		{"app:1", "example.com/app:1", false},
		{"library/app", "app", true},
		{"localhost/app", "app", false},
		{"app", "", false},
	} {
		if got := SameImageName(tc.a, tc.b); got != tc.same {
			t.Errorf("SameImageName(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

func FuzzNormalizeRef(f *testing.F) {
	for _, s := range []string{"app", "a/b:c", "localhost:5000/x", "[::1]/y:z", "x@sha256:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		n, err := NormalizeRef(ref)
		if err != nil {
			return
		}
		again, err := NormalizeRef(n)
		if err != nil || again != n {
			t.Fatalf("NormalizeRef(%q) = %q, then %q, %v", ref, n, again, err)
		}
		if !SameImageName(ref, n) {
			t.Fatalf("%q and its normal form %q differ", ref, n)
		}
	})
}
