package distclient

import (
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/reference"
)

const testDigest = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"

func TestParseRef(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in                      string
		host, path, tag, digest string
		str                     string // String(); "" means host/path:tag as built
	}{
		{in: "alpine", host: "index.docker.io", path: "library/alpine", tag: "latest"},
		{in: "alpine:3.19", host: "index.docker.io", path: "library/alpine", tag: "3.19"},
		{in: "docker.io/alpine", host: "index.docker.io", path: "library/alpine", tag: "latest"},
		{in: "docker.io/library/alpine:edge", host: "index.docker.io", path: "library/alpine", tag: "edge"},
		{in: "index.docker.io/user/app", host: "index.docker.io", path: "user/app", tag: "latest"},
		{in: "docker://alpine", host: "index.docker.io", path: "library/alpine", tag: "latest"},
		{in: "user/app:v1", host: "index.docker.io", path: "user/app", tag: "v1"},
		{in: "ghcr.io/org/team/app:1.0", host: "ghcr.io", path: "org/team/app", tag: "1.0"},
		{in: "127.0.0.1:5000/team/app", host: "127.0.0.1:5000", path: "team/app", tag: "latest"},
		{in: "localhost:5000/app:v2", host: "localhost:5000", path: "app", tag: "v2"},
		{in: "localhost/app", host: "localhost", path: "app", tag: "latest"},
		{in: "registry.example.com:443/a/b:c", host: "registry.example.com:443", path: "a/b", tag: "c"},
		{in: "127.0.0.1:5000/team/app@" + testDigest, host: "127.0.0.1:5000", path: "team/app", digest: testDigest},
		{in: "alpine@" + testDigest, host: "index.docker.io", path: "library/alpine", digest: testDigest},
		// A tag written before the digest is kept for display; the digest rules.
		{in: "127.0.0.1:5000/team/app:v1@" + testDigest, host: "127.0.0.1:5000", path: "team/app", tag: "v1", digest: testDigest},
		{in: "alpine:3.19@" + testDigest, host: "index.docker.io", path: "library/alpine", tag: "3.19", digest: testDigest},
		// The port of the registry is not a tag.
		{in: "localhost:5000/app@" + testDigest, host: "localhost:5000", path: "app", digest: testDigest},
	} {
		t.Run(tt.in, func(t *testing.T) {
			r, err := ParseRef(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if r.Host != tt.host || r.Path != tt.path || r.Tag != tt.tag || r.Digest != tt.digest {
				t.Fatalf("got %+v, want host %q path %q tag %q digest %q", r, tt.host, tt.path, tt.tag, tt.digest)
			}
			wantID := tt.tag
			if tt.digest != "" {
				wantID = tt.digest
			}
			if r.Identifier() != wantID {
				t.Errorf("Identifier() = %q, want %q", r.Identifier(), wantID)
			}
			want := tt.host + "/" + tt.path
			if tt.tag != "" {
				want += ":" + tt.tag
			}
			if tt.digest != "" {
				want += "@" + tt.digest
			}
			if r.String() != want {
				t.Errorf("String() = %q, want %q", r.String(), want)
			}
			if r.Repo.String() != tt.host+"/"+tt.path {
				t.Errorf("Repo.String() = %q", r.Repo.String())
			}
		})
	}
}

func TestParseRefInvalid(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"",
		"Alpine",            // upper case repository
		"alpine:",           // empty tag
		"alpine@",           // empty digest
		"alpine@sha256:abc", // short digest
		"alpine@md5:" + strings.Repeat("a", 32),
		"a b",
		"host:5000/app:tag:more",
		"app:" + strings.Repeat("t", 129), // tag over 128 characters
		"host:port/app",
		"docker://",
	} {
		t.Run(in, func(t *testing.T) {
			r, err := ParseRef(in)
			if err == nil {
				t.Fatalf("ParseRef(%q) = %+v, want an error", in, r)
			}
			if !strings.Contains(err.Error(), "invalid image reference") {
				t.Errorf("error %q does not say what was wrong", err)
			}
		})
	}
}

func TestParseRepo(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, host, path string }{
		{"alpine", "index.docker.io", "library/alpine"},
		{"docker.io/library/alpine", "index.docker.io", "library/alpine"},
		{"docker://user/app", "index.docker.io", "user/app"},
		{"127.0.0.1:5000/team/app", "127.0.0.1:5000", "team/app"},
		{"ghcr.io/org/app", "ghcr.io", "org/app"},
		{"localhost:5000/a/b/c", "localhost:5000", "a/b/c"},
	} {
		r, err := ParseRepo(tt.in)
		if err != nil {
			t.Errorf("ParseRepo(%q): %v", tt.in, err)
			continue
		}
		if r.Host != tt.host || r.Path != tt.path {
			t.Errorf("ParseRepo(%q) = %+v, want %s/%s", tt.in, r, tt.host, tt.path)
		}
	}
	for _, in := range []string{"", "Alpine", "alpine:3", "alpine@" + testDigest, "a b"} {
		if r, err := ParseRepo(in); err == nil {
			t.Errorf("ParseRepo(%q) = %+v, want an error", in, r)
		} else if !strings.Contains(err.Error(), "invalid repository") {
			t.Errorf("ParseRepo(%q) error %q", in, err)
		}
	}
}

func TestApiHost(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"index.docker.io":      "registry-1.docker.io",
		"docker.io":            "registry-1.docker.io",
		"registry-1.docker.io": "registry-1.docker.io",
		"ghcr.io":              "ghcr.io",
		"127.0.0.1:5000":       "127.0.0.1:5000",
	} {
		if got := apiHost(in); got != want {
			t.Errorf("apiHost(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParseRef checks that whatever ParseRef accepts is complete and survives a round
// trip through String.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{
		"alpine", "alpine:3.19", "docker://alpine", "127.0.0.1:5000/team/app:v1@" + testDigest,
		"ghcr.io/o/r@" + testDigest, "localhost:5000/app", "a/b/c/d:e", "Alpine", "", "::", "@@",
		"host:5000/app:tag:more", "docker://docker://x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			return
		}
		if r.Host == "" || r.Path == "" || r.Identifier() == "" {
			t.Fatalf("ParseRef(%q) = %+v: incomplete", s, r)
		}
		if reference.ValidateRepository(r.Path) != nil || strings.HasSuffix(r.Host, ":") {
		}
		again, err := ParseRef(r.String())
		if err != nil {
			t.Fatalf("ParseRef(%q).String() = %q does not parse: %v", s, r.String(), err)
		}
		if again != r {
			t.Fatalf("round trip of %q: %+v, then %+v", s, r, again)
		}
	})
}

// TestParseRefRejectsMalformedNames: ParseRef and ParseRepo rely on go-containerregistry's
// parser, which only checks the characters of a repository name, so names that docker
// and the distribution spec refuse (empty, "." and ".." path components, separators at
// the ends, an empty port) come back as valid references and reach the registry as
// /v2/a/../b/manifests/latest.
func TestParseRefRejectsMalformedNames(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"/app", "app/", "a//b", "a/./b", "a/../b", "-a", "_a", "a...b",
		"host:/app", "host:5000//app", "docker://docker://x",
	} {
		if r, err := ParseRef(in); err == nil {
			t.Errorf("ParseRef(%q) = %+v (path %q), want an error", in, r, r.Path)
		}
		if r, err := ParseRepo(in); err == nil {
			t.Errorf("ParseRepo(%q) = %+v, want an error", in, r)
		}
	}
}

// TestParseRefExplains: a reference that does not parse says why and, where it can
// tell, what was meant (issue 13).
func TestParseRefExplains(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"Alpine:3", `repository names are lower case; did you mean "alpine:3"?`},
		{"127.0.0.1:5000/Team/App@" + testDigest, `did you mean "127.0.0.1:5000/team/app@` + testDigest + `"?`},
		{"app@sha256:2c26b46b", `has 8 hex digits, sha256 has 64`},
		{"app@sha512:2c26b46b", `has 8 hex digits, sha512 has 128`},
		{"app@2c26b46b", `lacks its algorithm: write @sha256:2c26b46b`},
		{"app@sha256:" + strings.Repeat("G", 64), "must be lower-case hex"},
		{"app:", "empty tag after ':'"},
		{"[::1]:5000", "names a registry, not an image"},
		{"registry.example.com:443", "names a registry, not an image"},
	} {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseRef(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseRef(%q) = %v, want an error with %q", tt.in, err, tt.want)
			}
		})
	}
	// A numeric tag on a name that is no host stays a Docker Hub image, as docker reads it.
	if r, err := ParseRef("app:5000"); err != nil || r.Tag != "5000" || r.Path != "library/app" {
		t.Errorf("ParseRef(app:5000) = %+v, %v", r, err)
	}
	if _, err := ParseRepo("127.0.0.1:5000"); err == nil || !strings.Contains(err.Error(), "names a registry, not a repository") {
		t.Errorf("ParseRepo(host) = %v", err)
	}
}
