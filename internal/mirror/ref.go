package mirror

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/hubctl/hubctl/internal/reference"
)

// imageRef is a reference as a mirror spec writes it, split into its parts.
type imageRef struct {
	// Repo is "host[:port]/path".
	Repo   string
	Tag    string
	Digest string
}

// exact reports whether the reference names one manifest rather than a repository.
func (r imageRef) exact() bool { return r.Tag != "" || r.Digest != "" }

// hostRe is a registry host: a DNS name, an IPv4 address or a bracketed IPv6 address,
// with an optional port.
var hostRe = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:[0-9]{1,5})?$`)
})
var errNoHost = errors.New(`must start with a registry host, as in "docker.io/library/alpine"`)

// parseRef splits "host[:port]/path[:tag][@digest]". Unlike docker, it requires the
// host: a mirror spec says exactly which registry it reads and writes, and Docker Hub
// is not assumed.
func parseRef(s string) (imageRef, error) {
	switch {
	case s == "":
		return imageRef{}, errors.New("is empty")
	case strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return imageRef{}, fmt.Errorf("%q must not contain spaces or control characters", s)
	case strings.Contains(s, "://"):
		return imageRef{}, fmt.Errorf("%q must not have a scheme: write host/path", s)
	}
	var r imageRef
	name := s
	if before, dgst, ok := strings.Cut(s, "@"); ok {
		if _, err := reference.ParseDigest(dgst); err != nil {
			return imageRef{}, err
		}
		r.Digest, name = dgst, before
	}
	host, path, ok := strings.Cut(name, "/")
	if !ok || !hostRe().MatchString(host) ||
		!(strings.ContainsAny(host, ".:") || host == "localhost") {
		return imageRef{}, fmt.Errorf("%q %w", s, errNoHost)
	}
	// The host is split off, so a colon left in the path can only start a tag.
	if i := strings.LastIndexByte(path, ':'); i >= 0 {
		tag := path[i+1:]
		if !reference.IsTag(tag) {
			return imageRef{}, fmt.Errorf("%q has an invalid tag %q", s, tag)
		}
		r.Tag, path = tag, path[:i]
	}
	if err := reference.ValidateRepository(path); err != nil {
		return imageRef{}, err
	}
	r.Repo = host + "/" + path
	return r, nil
}
