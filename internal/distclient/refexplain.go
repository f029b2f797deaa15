package distclient

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/hubctl/hubctl/internal/reference"
)

// registryOnly reports whether s names a registry host and nothing else
// ("127.0.0.1:5000", "localhost:5000", "[::1]:5000", "registry.example.com:443"),
// which docker's grammar would read as a Docker Hub image with a numeric tag.
func registryOnly(s string) (string, bool) {
	if strings.ContainsAny(s, "/@") {
		return "", false
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", false
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", false
	}
	if host == "localhost" || net.ParseIP(host) != nil || strings.Contains(host, ".") {
		return s, true
	}
	return "", false
}

// explainRef says what is wrong with a reference go-containerregistry refused, and
// what was probably meant, in the words of docker's grammar; "" when it finds nothing
// more precise to say.
func explainRef(s string) string {
	rest, dgst, hasDigest := strings.Cut(s, "@")
	if hasDigest {
		if why := explainDigest(dgst); why != "" {
			return why
		}
	}
	name, tag, hasTag := rest, "", false
	if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		name, tag, hasTag = rest[:i], rest[i+1:], true
	}
	if hasTag {
		switch {
		case tag == "":
			return fmt.Sprintf("empty tag after ':'; write %q for latest, or a tag like %q", name, name+":1")
		case !reference.IsTag(tag):
			return fmt.Sprintf("tag %q may hold only letters, digits, '_', '.' and '-' (up to 128, not starting with '.' or '-')", tag)
		}
	}
	host, path := "", name
	if first, after, ok := strings.Cut(name, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		host, path = first, after
	}
	if path == "" {
		return "no repository after the registry host; name one, like " + host + "/team/app:1"
	}
	if strings.ToLower(path) != path {
		meant := strings.ToLower(path)
		if host != "" {
			meant = host + "/" + meant
		}
		if hasTag {
			meant += ":" + tag
		}
		if hasDigest {
			meant += "@" + dgst
		}
		return fmt.Sprintf("repository names are lower case; did you mean %q?", meant)
	}
	if strings.Contains(path, "//") || strings.HasPrefix(path, "/") || strings.HasSuffix(path, "/") {
		return fmt.Sprintf("empty path component in repository %q", path)
	}
	if err := reference.ValidateRepository(path); err != nil {
		return fmt.Sprintf("repository %q: components are lower-case letters and digits separated by '.', '_', '__' or '-'", path)
	}
	return ""
}

// explainDigest says what is wrong with the digest after '@', "" when it is fine.
func explainDigest(d string) string {
	if d == "" {
		return "nothing after '@': a digest looks like @sha256:<64 hex digits> ('hubctl digest REF' prints it)"
	}
	alg, hex, ok := strings.Cut(d, ":")
	if !ok {
		return fmt.Sprintf("digest %q lacks its algorithm: write @sha256:%s", d, d)
	}
	want := 0
	switch alg {
	case "sha256":
		want = 64
	case "sha512":
		want = 128
	default:
		return fmt.Sprintf("digest algorithm %q is not one hubctl reads: sha256 or sha512", alg)
	}
	if strings.Trim(hex, "0123456789abcdef") != "" {
		return fmt.Sprintf("digest %q: the part after %s: must be lower-case hex", d, alg)
	}
	if len(hex) != want {
		return fmt.Sprintf("digest %q has %d hex digits, %s has %d: was it shortened? Give the whole digest ('hubctl digest REF' prints it)", d, len(hex), alg, want)
	}
	return ""
}
