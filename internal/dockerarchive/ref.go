package dockerarchive

import (
	"fmt"
	"strings"

	"github.com/hubctl/hubctl/internal/reference"
)

// dockerHub is the registry docker assumes for names without a host.
const dockerHub = "docker.io"

// imageName is a tagged image name split into the parts docker compares.
type imageName struct {
	domain string // registry host, "docker.io" when the name had none
	path   string // repository path, "library/" added for official docker.io images
	tag    string // "latest" when the name had none
}

// canonical is the fully qualified form, so that "app", "app:latest" and
// "docker.io/library/app:latest" compare equal.
func (n imageName) canonical() string { return n.domain + "/" + n.path + ":" + n.tag }

// parseName splits ref the way docker's reference.ParseNormalizedNamed does. Names
// with a digest are refused: RepoTags and docker load hold tags only.
func parseName(ref string) (imageName, error) {
	if ref == "" {
		return imageName{}, fmt.Errorf("image name is empty")
	}
	if strings.Contains(ref, "@") {
		return imageName{}, fmt.Errorf("image name %q has a digest; docker archives and docker load take tags only", ref)
	}
	var n imageName
	rest := ref
	if i := strings.IndexByte(ref, '/'); i >= 0 && isDomain(ref[:i]) {
		n.domain, rest = ref[:i], ref[i+1:]
		if !validDomain(n.domain) {
			return imageName{}, fmt.Errorf("image name %q: invalid registry host %q", ref, n.domain)
		}
	} else {
		n.domain = dockerHub
	}
	if n.domain == "index.docker.io" {
		n.domain = dockerHub
	}
	n.path = rest
	if i := strings.LastIndexByte(rest, ':'); i > strings.LastIndexByte(rest, '/') {
		n.path, n.tag = rest[:i], rest[i+1:]
		if !reference.IsTag(n.tag) {
			return imageName{}, fmt.Errorf("image name %q: invalid tag %q", ref, n.tag)
		}
	} else {
		n.tag = "latest"
	}
	if err := reference.ValidateRepository(n.path); err != nil {
		return imageName{}, fmt.Errorf("image name %q: %w", ref, err)
	}
	if n.domain == dockerHub && !strings.Contains(n.path, "/") {
		n.path = "library/" + n.path
	}
	return n, nil
}

// isDomain reports whether the first path component of a name is a registry host,
// by docker's rule: it has a dot or a port, is localhost, or has upper case letters
// (which a repository path cannot).
func isDomain(s string) bool {
	return strings.ContainsAny(s, ".:") || s == "localhost" || strings.ToLower(s) != s
}

// validDomain checks a host[:port] loosely: letters, digits, dots, dashes, and an
// optional numeric port. IPv6 literals in brackets are allowed.
func validDomain(s string) bool {
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		host, port = s[1:end], strings.TrimPrefix(s[end+1:], ":")
		if s[end+1:] != "" && !strings.HasPrefix(s[end+1:], ":") {
			return false
		}
		if host == "" || strings.Trim(host, "0123456789abcdefABCDEF:.") != "" {
			return false
		}
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i+1:]
		if port == "" {
			return false
		}
	}
	if strings.Trim(port, "0123456789") != "" {
		return false
	}
	if host == "" || strings.HasPrefix(host, "-") || strings.HasPrefix(host, ".") {
		return false
	}
	if strings.HasPrefix(s, "[") {
		return true
	}
	for _, r := range host {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}

// NormalizeRef returns ref as docker writes it in RepoTags and takes it from docker
// load: ":latest" added when the name has no tag ("app" → "app:latest"), the rest as
// given ("registry.example.com/team/app:1" stays as is). Names with a digest are refused.
func NormalizeRef(ref string) (string, error) {
	n, err := parseName(ref)
	if err != nil {
		return "", err
	}
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		return ref, nil
	}
	return ref + ":" + n.tag, nil
}

// SameImageName reports whether two image names denote the same repository and tag
// once docker's defaults are applied ("app" = "docker.io/library/app:latest").
func SameImageName(a, b string) bool {
	na, err := parseName(a)
	if err != nil {
		return false
	}
	nb, err := parseName(b)
	if err != nil {
		return false
	}
	return na.canonical() == nb.canonical()
}
