// Package reference validates the names the distribution spec allows: repository
// names, tags, and digests of the algorithms hubctl serves.
package reference

import (
	// go-digest only knows the algorithms whose hash is linked in.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
)

// MaxNameLength bounds a repository name. The spec recommends clients keep the whole
// reference (host and name) under 255 characters; we hold the name to that.
const MaxNameLength = 255

// The expressions compile on first use, not at start: every command of the binary
// links this package, and most never match a name.
var (
	// nameRe is the distribution spec's <name> grammar.
	nameRe = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	})
	// tagRe is the distribution spec's <reference> grammar for tags.
	tagRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`) })
)

// ErrInvalidDigest reports a digest that is malformed or uses an algorithm we do not serve.
var ErrInvalidDigest = errors.New("invalid digest")

// ValidateRepository reports why name is not a valid repository name, or nil.
func ValidateRepository(name string) error {
	switch {
	case name == "":
		return errors.New("repository name is empty")
	case len(name) > MaxNameLength:
		return fmt.Errorf("repository name is %d characters long, the limit is %d", len(name), MaxNameLength)
	case !nameRe().MatchString(name):
		return fmt.Errorf("repository name %q must match %s", name, nameRe().String())
	}
	return nil
}

// IsTag reports whether s is a valid tag.
func IsTag(s string) bool { return tagRe().MatchString(s) }

// ParseDigest parses s as a sha256 or sha512 digest and validates its encoding.
func ParseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrInvalidDigest, s, err)
	}
	switch d.Algorithm() {
	case digest.SHA256, digest.SHA512:
		return d, nil
	}
	return "", fmt.Errorf("%w: %q: unsupported algorithm %s", ErrInvalidDigest, s, d.Algorithm())
}

// IsDigest reports whether s looks like a digest (algorithm:encoded) rather than a tag.
func IsDigest(s string) bool { return strings.Contains(s, ":") }
