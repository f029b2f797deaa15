package transfer

import (
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/reference"
	"github.com/opencontainers/go-digest"
)

const (
	testHex    = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
	testDigest = "sha256:" + testHex
)

func TestParseLocation(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in         string
		kind       Kind
		path, name string
		tag        string // Tag()
		str        string // String(); "" means the input
	}{
		// OCI layouts: the REF follows the last colon, or @ for a digest.
		{in: "oci:./img", kind: KindOCI, path: "./img"},
		{in: "oci:./img:v1", kind: KindOCI, path: "./img", name: "v1", tag: "v1"},
		{in: "oci:/abs/dir:1.0-rc_1", kind: KindOCI, path: "/abs/dir", name: "1.0-rc_1", tag: "1.0-rc_1"},
		{in: "oci:dir@" + testDigest, kind: KindOCI, path: "dir", name: testDigest},
		{in: "oci:dir:" + testDigest, kind: KindOCI, path: "dir", name: testDigest},
		{in: "oci:/tmp/a:b/dir", kind: KindOCI, path: "/tmp/a:b/dir"},
		{in: "oci:/tmp/a:b/dir:v2", kind: KindOCI, path: "/tmp/a:b/dir", name: "v2", tag: "v2"},
		{in: "oci-archive:img.tar", kind: KindOCIArchive, path: "img.tar"},
		{in: "oci-archive:out/img.tar:v1", kind: KindOCIArchive, path: "out/img.tar", name: "v1", tag: "v1"},
		{in: "oci-archive:img.tar@" + testDigest, kind: KindOCIArchive, path: "img.tar", name: testDigest},
		// docker-archive: the path ends at the first colon; the rest is a docker
		// reference with colons of its own.
		{in: "docker-archive:app.tar", kind: KindDockerArchive, path: "app.tar"},
		{in: "docker-archive:app.tar:app:1", kind: KindDockerArchive, path: "app.tar", name: "app:1", tag: "app:1"},
		{in: "docker-archive:app.tar:localhost:5000/team/app:1", kind: KindDockerArchive, path: "app.tar", name: "localhost:5000/team/app:1", tag: "localhost:5000/team/app:1"},
		{in: "docker-archive:./out/app.tar:app", kind: KindDockerArchive, path: "./out/app.tar", name: "app", tag: "app"},
		// The Docker engine.
		{in: "docker-daemon:app:1", kind: KindDockerDaemon, name: "app:1"},
		{in: "docker-daemon:registry.example.com/team/app@" + testDigest, kind: KindDockerDaemon, name: "registry.example.com/team/app@" + testDigest},
	} {
		t.Run(tt.in, func(t *testing.T) {
			l, err := ParseLocation(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if l.Kind != tt.kind || l.Path != tt.path || l.Name != tt.name {
				t.Fatalf("got kind %q path %q name %q, want %q %q %q", l.Kind, l.Path, l.Name, tt.kind, tt.path, tt.name)
			}
			if l.IsRegistry() {
				t.Error("a local form is not a registry")
			}
			if got := l.Tag(); got != tt.tag {
				t.Errorf("Tag() = %q, want %q", got, tt.tag)
			}
			if l.String() != tt.in {
				t.Errorf("String() = %q, want the input", l.String())
			}
			d := digest.Digest(testDigest)
			want := tt.in + "@" + testDigest
			if l.Kind == KindOCI || l.Kind == KindOCIArchive {
				want = string(l.Kind) + ":" + l.Path + "@" + testDigest
			}
			if got := l.WithDigest(d); got != want {
				t.Errorf("WithDigest = %q", got)
			}
		})
	}
}

func TestParseLocationRegistry(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in, str, tag, withDigest string
	}{
		{"alpine", "index.docker.io/library/alpine:latest", "latest", "index.docker.io/library/alpine:latest@" + testDigest},
		{"docker://alpine:3", "index.docker.io/library/alpine:3", "3", "index.docker.io/library/alpine:3@" + testDigest},
		{"127.0.0.1:5000/team/app:v1", "127.0.0.1:5000/team/app:v1", "v1", "127.0.0.1:5000/team/app:v1@" + testDigest},
		{"localhost:5000/app", "localhost:5000/app:latest", "latest", "localhost:5000/app:latest@" + testDigest},
		{"ghcr.io/o/app@" + testDigest, "ghcr.io/o/app@" + testDigest, "", "ghcr.io/o/app@" + testDigest},
		// No kind prefix: "oci" alone is an image name, and so is a name with a tag.
		{"oci", "index.docker.io/library/oci:latest", "latest", "index.docker.io/library/oci:latest@" + testDigest},
		{"ocifoo:dir", "index.docker.io/library/ocifoo:dir", "dir", "index.docker.io/library/ocifoo:dir@" + testDigest},
	} {
		t.Run(tt.in, func(t *testing.T) {
			l, err := ParseLocation(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if l.Kind != KindRegistry || !l.IsRegistry() || l.Path != "" {
				t.Fatalf("got %+v, want a registry location", l)
			}
			if l.String() != tt.str {
				t.Errorf("String() = %q, want %q", l.String(), tt.str)
			}
			if l.Tag() != tt.tag {
				t.Errorf("Tag() = %q, want %q", l.Tag(), tt.tag)
			}
			if got := l.WithDigest(testDigest); got != tt.withDigest {
				t.Errorf("WithDigest = %q, want %q", got, tt.withDigest)
			}
		})
	}
}

func TestParseLocationErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"oci:", "oci: needs a path, like oci:./image"},
		{"oci::v1", "oci: needs a path"},
		{"oci-archive:", "oci-archive: needs a path, like oci-archive:./image"},
		{"docker-archive:", "docker-archive: needs a path"},
		{"docker-archive::app:1", "docker-archive: needs a path"},
		{"docker-daemon:", "docker-daemon: needs an image name, like docker-daemon:app:1"},
		{"docker-daemon:Bad Name", "invalid image reference"},
		{"", "invalid image reference"},
		{"OCI:dir", `did you mean "oci:dir"?`},
		{"Upper/Case:1", `repository names are lower case; did you mean "upper/case:1"?`},
		{"host:5000/app:a:b", "invalid image reference"},
		{"./image", "local forms: oci:DIR, oci-archive:FILE, docker-archive:FILE, docker-daemon:IMAGE"},
		{"ocidir:./image", `"ocidir:./image": ocidir: is no location form (local forms: oci:DIR,`},
		// Issue 13: a registry alone is no Docker Hub image, and typos say why.
		{"127.0.0.1:5000", "127.0.0.1:5000 names a registry, not an image"},
		{"docker://localhost:5000", "localhost:5000 names a registry, not an image"},
		{"app@sha256:abc", `digest "sha256:abc" has 3 hex digits, sha256 has 64: was it shortened?`},
		{"app:", `empty tag after ':'; write "app" for latest, or a tag like "app:1"`},
		{"app@", "nothing after '@'"},
		{"app@md5:abc", `digest algorithm "md5" is not one hubctl reads`},
		{"app:v1+build", `tag "v1+build" may hold only letters, digits`},
		{"127.0.0.1:5000/", "no repository after the registry host"},
		{"127.0.0.1:5000/a//b:1", `empty path component in repository "a//b"`},
	} {
		t.Run(tt.in, func(t *testing.T) {
			l, err := ParseLocation(tt.in)
			if err == nil {
				t.Fatalf("ParseLocation(%q) = %+v, want an error", tt.in, l)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestWithDigestRoundTrip: the result line of a copy is meant to be used again
// (`hubctl pull … | xargs hubctl push`), so it must parse back to the same place.
// For a local form with a tag, raw+"@"+digest does not: "oci:dir:v1@sha256:…" parses
// as the directory "dir:v1".
func TestWithDigestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"oci:dir:v1", "oci:dir@" + testDigest, "oci-archive:img.tar:v1", "oci:dir", "127.0.0.1:5000/a:v1"} {
		l, err := ParseLocation(in)
		if err != nil {
			t.Fatal(err)
		}
		pinned := l.WithDigest(testDigest)
		again, err := ParseLocation(pinned)
		if err != nil {
			t.Errorf("%s: WithDigest = %q does not parse: %v", in, pinned, err)
			continue
		}
		if again.Kind != l.Kind || again.Path != l.Path || (l.IsRegistry() && again.Ref.Repo != l.Ref.Repo) {
			t.Errorf("%s: WithDigest = %q parses as kind %s path %q", in, pinned, again.Kind, again.Path)
		}
		if !again.IsRegistry() && again.Name != testDigest {
			t.Errorf("%s: WithDigest = %q names %q, want the digest", in, pinned, again.Name)
		}
	}
}

func FuzzParseLocation(f *testing.F) {
	for _, s := range []string{
		"oci:./img:v1", "oci:dir@" + testDigest, "oci:/tmp/a:b/dir", "oci-archive:x.tar",
		"docker-archive:app.tar:localhost:5000/app:1", "docker-daemon:app:1", "docker-daemon:",
		"alpine", "docker://127.0.0.1:5000/a/b:c@" + testDigest, "oci:", ":", "::", "oci::", "docker://docker://x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLocation(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("ParseLocation(%q): empty error", s)
			}
			return
		}
		switch l.Kind {
		case KindRegistry:
			if l.Ref.Host == "" || l.Ref.Path == "" || l.Ref.Identifier() == "" {
				t.Fatalf("ParseLocation(%q) = %+v: incomplete reference", s, l.Ref)
			}
			if reference.ValidateRepository(l.Ref.Path) != nil || strings.HasSuffix(l.Ref.Host, ":") {
			}
			again, err := ParseLocation(l.String())
			if err != nil || again.Ref != l.Ref {
				t.Fatalf("ParseLocation(%q).String() = %q parses as %+v, %v", s, l.String(), again.Ref, err)
			}
		case KindDockerDaemon:
			if l.Name == "" || l.Path != "" {
				t.Fatalf("ParseLocation(%q) = %+v", s, l)
			}
		case KindOCI, KindOCIArchive, KindDockerArchive:
			if l.Path == "" {
				t.Fatalf("ParseLocation(%q) = %+v: no path", s, l)
			}
			if l.String() != s {
				t.Fatalf("String() = %q, want %q", l.String(), s)
			}
		default:
			t.Fatalf("ParseLocation(%q): kind %q", s, l.Kind)
		}
		_ = l.Tag()
		_ = l.WithDigest(testDigest)
	})
}
