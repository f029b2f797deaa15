package transfer

import (
	"context"
	"fmt"
	"strings"

	"github.com/hubctl/hubctl/internal/credentials"
	"github.com/hubctl/hubctl/internal/distclient"
	"github.com/hubctl/hubctl/internal/dockerarchive"
	"github.com/hubctl/hubctl/internal/dockerdaemon"
	"github.com/hubctl/hubctl/internal/imagestore"
	"github.com/hubctl/hubctl/internal/ocilayout"
	"github.com/opencontainers/go-digest"
)

// Kind is the form of a location.
type Kind string

// The location forms, named by their prefix (skopeo's transport names).
const (
	KindRegistry      Kind = "docker"
	KindOCI           Kind = "oci"
	KindOCIArchive    Kind = "oci-archive"
	KindDockerArchive Kind = "docker-archive"
	KindDockerDaemon  Kind = "docker-daemon"
	// kindBuilt is an image served by a Source given to CopyFrom (a build).
	kindBuilt Kind = "built"
)

// Location is where an image is: a registry reference or a local form.
type Location struct {
	Kind Kind
	// Ref is the registry reference (KindRegistry).
	Ref distclient.Ref
	// Path is the directory or file of a local form; for docker-daemon, empty.
	Path string
	// Name is the tag or digest inside a local form, or the image name in the engine.
	Name string
	raw  string
	// src and dst are the stores of a KindCustom location.
	src imagestore.Source
	dst imagestore.Target
}

// ParseLocation reads "oci:DIR[:REF]", "oci-archive:FILE[:REF]",
// "docker-archive:FILE[:REF]", "docker-daemon:IMAGE" or a registry reference
// ("docker://" prefix optional).
func ParseLocation(s string) (Location, error) {
	l := Location{raw: s}
	prefix, rest, ok := strings.Cut(s, ":")
	switch {
	case ok && prefix == string(KindOCI):
		l.Kind = KindOCI
		l.Path, l.Name = ocilayout.ParseRef(rest)
	case ok && prefix == string(KindOCIArchive):
		l.Kind = KindOCIArchive
		l.Path, l.Name = ocilayout.ParseRef(rest)
	case ok && prefix == string(KindDockerArchive):
		// As skopeo reads it: the path ends at the first colon, and the rest is a
		// docker reference, which has colons of its own.
		l.Kind = KindDockerArchive
		l.Path, l.Name, _ = strings.Cut(rest, ":")
	case ok && prefix == string(KindDockerDaemon):
		l.Kind = KindDockerDaemon
		l.Name = rest
		if rest == "" {
			return Location{}, fmt.Errorf("docker-daemon: needs an image name, like docker-daemon:app:1")
		}
		if _, err := distclient.ParseRef(rest); err != nil {
			return Location{}, err
		}
	default:
		ref, err := distclient.ParseRef(s)
		if err != nil {
			if looksLikePath(s) {
				const forms = "local forms: oci:DIR, oci-archive:FILE, docker-archive:FILE, docker-daemon:IMAGE"
				if prefix, _, ok := strings.Cut(s, ":"); ok && !strings.ContainsAny(prefix, "./~") {
					return Location{}, fmt.Errorf("%q: %s: is no location form (%s)", s, prefix, forms)
				}
				return Location{}, fmt.Errorf("%w (%s)", err, forms)
			}
			return Location{}, err
		}
		l.Kind, l.Ref = KindRegistry, ref
		return l, nil
	}
	if l.Kind != KindDockerDaemon && l.Path == "" {
		return Location{}, fmt.Errorf("%s: needs a path, like %s:./image", l.Kind, l.Kind)
	}
	return l, nil
}

// looksLikePath reports whether s, which is no registry reference, looks like a file
// or a mistyped local form ("./app", "/tmp/app.tar", "ocidir:./app"), so the error
// lists the local forms.
func looksLikePath(s string) bool {
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "/") || strings.HasPrefix(s, "~") || strings.HasSuffix(s, ".tar") {
		return true
	}
	prefix, rest, ok := strings.Cut(s, ":")
	return ok && prefix != string(KindRegistry) && strings.Trim(prefix, "abcdefghijklmnopqrstuvwxyz-") == "" &&
		(strings.HasPrefix(rest, ".") || strings.HasPrefix(rest, "/") || strings.HasPrefix(rest, "~"))
}

// IsLocalForm reports whether s names a local form by its prefix (oci:, oci-archive:,
// docker-archive:, docker-daemon:), whether or not the rest is valid.
func IsLocalForm(s string) bool {
	prefix, _, ok := strings.Cut(s, ":")
	switch Kind(prefix) {
	case KindOCI, KindOCIArchive, KindDockerArchive, KindDockerDaemon:
		return ok
	}
	return false
}

// String is the location as the user wrote it.
func (l Location) String() string {
	if l.Kind == KindRegistry {
		return l.Ref.String()
	}
	return l.raw
}

// Tag is the tag the location names, "" for a digest or an untagged form.
func (l Location) Tag() string {
	switch l.Kind {
	case KindRegistry:
		return l.Ref.Tag
	case KindDockerDaemon:
		return ""
	}
	if strings.Contains(l.Name, ":") && digest.Digest(l.Name).Validate() == nil {
		return ""
	}
	return l.Name
}

// WithDigest is the location pinned to d, for the final line of output.
func (l Location) WithDigest(d digest.Digest) string {
	switch l.Kind {
	case KindRegistry:
		r := l.Ref
		r.Digest = d.String()
		return r.String()
	case KindOCI, KindOCIArchive:
		// "oci:DIR@sha256:…" reads back as that manifest of that layout.
		return string(l.Kind) + ":" + l.Path + "@" + d.String()
	}
	return l.raw + "@" + d.String()
}

// IsRegistry reports whether the location is on a registry.
func (l Location) IsRegistry() bool { return l.Kind == KindRegistry }

// DockerConnector opens the Docker engine client on first use.
type DockerConnector func() (*dockerdaemon.Client, error)

func sameRegistry(a, b string) bool {
	return credentials.NormalizeHost(a) == credentials.NormalizeHost(b)
}

func (e *Engine) docker() (*dockerdaemon.Client, error) {
	if e.Docker != nil {
		return e.Docker()
	}
	return dockerdaemon.New()
}

func (e *Engine) openSource(ctx context.Context, l Location) (imagestore.Source, error) {
	switch l.Kind {
	case KindRegistry:
		return registrySource{&registryStore{c: e.Client, ref: l.Ref}}, nil
	case KindOCI:
		return ocilayout.OpenDir(l.Path, l.Name)
	case KindOCIArchive:
		return ocilayout.OpenArchive(l.Path, l.Name)
	case KindDockerArchive:
		return dockerarchive.Open(l.Path, l.Name)
	case KindDockerDaemon:
		c, err := e.docker()
		if err != nil {
			return nil, err
		}
		return dockerdaemon.OpenSource(ctx, c, l.Name)
	case KindCustom:
		if l.src == nil {
			return nil, fmt.Errorf("%s cannot be read", l.raw)
		}
		return l.src, nil
	}
	return nil, fmt.Errorf("unknown location kind %q", l.Kind)
}

func (e *Engine) openTarget(ctx context.Context, l Location) (imagestore.Target, error) {
	switch l.Kind {
	case KindRegistry:
		if l.Ref.Tag == "" && l.Ref.Digest == "" {
			l.Ref.Tag = "latest"
		}
		return &registryStore{c: e.Client, ref: l.Ref}, nil
	case KindOCI:
		return ocilayout.CreateDir(l.Path, l.Name)
	case KindOCIArchive:
		return ocilayout.CreateArchive(l.Path, l.Name)
	case KindDockerArchive:
		return dockerarchive.Create(l.Path, l.Name)
	case KindDockerDaemon:
		c, err := e.docker()
		if err != nil {
			return nil, err
		}
		return dockerdaemon.OpenTarget(ctx, c, l.Name)
	case KindCustom:
		if l.dst == nil {
			return nil, fmt.Errorf("%s cannot be written", l.raw)
		}
		return l.dst, nil
	}
	return nil, fmt.Errorf("unknown location kind %q", l.Kind)
}

// Open opens a location for reading, for inspection verbs. The caller closes it.
func (e *Engine) Open(ctx context.Context, l Location) (imagestore.Source, error) {
	return e.openSource(ctx, l)
}
