package distclient

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/hubctl/hubctl/internal/credentials"
	"github.com/hubctl/hubctl/internal/reference"
)

// ErrInvalidReference is wrapped by the errors of ParseRef.
var ErrInvalidReference = errors.New("invalid image reference")

// Repo is a repository on a registry.
type Repo struct {
	// Host is the registry's host[:port] as the user wrote it (Docker Hub is
	// "index.docker.io").
	Host string
	// Path is the repository name ("library/alpine").
	Path string
}

// String is "host/path", the form users write.
func (r Repo) String() string { return r.Host + "/" + r.Path }

// Ref is a reference to a manifest: a repository and a tag, a digest, or both.
type Ref struct {
	Repo
	Tag    string
	Digest string
}

// String is "host/path:tag", "host/path@digest" or "host/path:tag@digest".
func (r Ref) String() string {
	s := r.Repo.String()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// Identifier is what goes after /manifests/: the digest when there is one, else the tag.
func (r Ref) Identifier() string {
	if r.Digest != "" {
		return r.Digest
	}
	return r.Tag
}

// ParseRef reads an image reference the way docker does ("alpine" is
// index.docker.io/library/alpine:latest), using go-containerregistry's parser.
func ParseRef(s string) (Ref, error) {
	s = strings.TrimPrefix(s, "docker://")
	if host, ok := registryOnly(s); ok {
		return Ref{}, fmt.Errorf("%w %q: %s names a registry, not an image: add a repository, like %s/team/app:1 ('hubctl ls %s' lists them)", ErrInvalidReference, s, host, host, host)
	}
	r, err := name.ParseReference(s)
	if err != nil {
		if why := explainRef(s); why != "" {
			return Ref{}, fmt.Errorf("%w %q: %s", ErrInvalidReference, s, why)
		}
		return Ref{}, fmt.Errorf("%w %q: %w", ErrInvalidReference, s, err)
	}
	out := Ref{Repo: Repo{Host: r.Context().RegistryStr(), Path: r.Context().RepositoryStr()}}
	if err := checkRepo(s, out.Repo); err != nil {
		return Ref{}, err
	}
	switch v := r.(type) {
	case name.Tag:
		out.Tag = v.TagStr()
	case name.Digest:
		out.Digest = v.DigestStr()
		// name.Digest drops a tag written before the digest; keep it for display.
		if before, _, ok := strings.Cut(s, "@"); ok {
			if t, err := name.NewTag(before); err == nil && strings.Contains(lastPathElem(before), ":") {
				out.Tag = t.TagStr()
			}
		}
	}
	return out, nil
}

// ParseRepo reads a repository name without tag or digest ("alpine",
// "127.0.0.1:5000/team/app").
func ParseRepo(s string) (Repo, error) {
	s = strings.TrimPrefix(s, "docker://")
	if host, ok := registryOnly(s); ok {
		return Repo{}, fmt.Errorf("invalid repository %q: %s names a registry, not a repository: add one, like %s/team/app ('hubctl ls %s' lists them)", s, host, host, host)
	}
	r, err := name.NewRepository(s)
	if err != nil {
		if why := explainRef(s); why != "" {
			return Repo{}, fmt.Errorf("invalid repository %q: %s", s, why)
		}
		return Repo{}, fmt.Errorf("invalid repository %q: %w", s, err)
	}
	repo := Repo{Host: r.RegistryStr(), Path: r.RepositoryStr()}
	if err := checkRepo(s, repo); err != nil {
		return Repo{}, err
	}
	return repo, nil
}

// hostRe is a registry host: a DNS name or IPv4 address, or a bracketed IPv6 address,
// with an optional port.
var hostRe = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(:[0-9]{1,5})?$`)
})

// checkRepo holds a parsed name to the distribution spec's grammar, which
// go-containerregistry checks only for its characters ("a//b" and "a/../b" pass there).
func checkRepo(s string, r Repo) error {
	if !hostRe().MatchString(r.Host) {
		return fmt.Errorf("invalid image reference %q: bad registry host %q", s, r.Host)
	}
	if err := reference.ValidateRepository(r.Path); err != nil {
		if why := explainRef(s); why != "" {
			return fmt.Errorf("%w %q: %s", ErrInvalidReference, s, why)
		}
		return fmt.Errorf("%w %q: %w", ErrInvalidReference, s, err)
	}
	return nil
}

func lastPathElem(s string) string {
	if i := strings.LastIndex(s, "/"); i >= 0 {
		return s[i+1:]
	}
	return s
}

// apiHost is the host that serves the registry's /v2/ API: Docker Hub's index name
// answers on registry-1.docker.io.
func apiHost(host string) string {
	return credentials.RegistryHost(host)
}
