package reference

import (
	"strings"
	"testing"
)

func TestValidateRepository(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"library/ubuntu", true},
		{"a", true},
		{"a.b_c__d-e--f/g", true},
		{"x/y/z/w", true},
		{"", false},
		{"Upper", false},
		{"../x", false},
		{"a//b", false},
		{"/a", false},
		{"a/", false},
		{"a___b", false},
		{"-a", false},
		{"a-", false},
		{strings.Repeat("a", 255), true},
		{strings.Repeat("a", 256), false},
	} {
		if err := ValidateRepository(tc.name); (err == nil) != tc.ok {
			t.Errorf("%q: err=%v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestIsTag(t *testing.T) {
	for _, tc := range []struct {
		tag string
		ok  bool
	}{
		{"latest", true}, {"v1.2.3-rc_1", true}, {"_x", true}, {".x", false}, {"-x", false},
		{"", false}, {strings.Repeat("a", 128), true}, {strings.Repeat("a", 129), false}, {"a:b", false},
	} {
		if IsTag(tc.tag) != tc.ok {
			t.Errorf("%q: want %v", tc.tag, tc.ok)
		}
	}
}

func TestParseDigest(t *testing.T) {
	good := []string{
		"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
	}
	bad := []string{"", "sha256:", "sha256:abc", "md5:d41d8cd98f00b204e9800998ecf8427e", "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", "nocolon"}
	for _, s := range good {
		if _, err := ParseDigest(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range bad {
		if _, err := ParseDigest(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func FuzzValidateRepository(f *testing.F) {
	f.Add("library/ubuntu")
	f.Add("a/../b")
	f.Fuzz(func(t *testing.T, name string) {
		if ValidateRepository(name) != nil {
			return
		}
		if strings.Contains(name, "..") || strings.HasPrefix(name, "/") || strings.Contains(name, "//") || len(name) > MaxNameLength {
			t.Fatalf("accepted %q", name)
		}
	})
}

func FuzzParseDigest(f *testing.F) {
	f.Add("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDigest(s)
		if err == nil && d.Validate() != nil {
			t.Fatalf("accepted %q", s)
		}
	})
}
