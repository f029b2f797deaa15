// Package proxyimage builds the image of hubctl's proxy mode from hubctl's own
// binary (internal/selfimage): FROM scratch, one layer holding the executable as
// /hubctl and the empty /data the state file lives in, `hubctl proxy run` as its
// entrypoint. One binary always makes the same digest. The image is pushed to a
// registry (the hub) for the hosts to pull by digest, or loaded straight into a
// Docker engine without a registry (docs/design/deploy.md, "The proxy container").
package proxyimage

import (
	"context"
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hubctl/hubctl/internal/reference"
	"github.com/hubctl/hubctl/internal/selfimage"
)

// Repository is the image's name under a registry namespace:
// <registry>/<namespace>/hubctl-proxy:<version>.
const Repository = "hubctl-proxy"

// Paths inside the image.
const (
	BinaryPath = selfimage.BinaryPath
	DataDir    = "/data"
	StateFile  = DataDir + "/state.json"
)

// Port is the proxy's plain-HTTP port inside the container.
const Port = 80

// Entrypoint is the proxy container's command: the public listener on Port and the
// state kept in StateFile (a named volume on DataDir keeps it across containers).
// The control secret comes from $HUBCTL_PROXY_SECRET; the control channel listens
// on the container's loopback, reached with `docker exec`.
func Entrypoint() []string {
	return []string{BinaryPath, "proxy", "run", "--listen", fmt.Sprintf(":%d", Port), "--state-file", StateFile}
}

// Spec is the proxy image's selfimage.Spec.
func Spec() selfimage.Spec {
	return selfimage.Spec{Name: "proxy image", Entrypoint: Entrypoint(), Dirs: []string{DataDir}, Ports: []int{Port}}
}

// Image is the built proxy image: an imagestore.Source that can also be pushed
// (Push) or loaded into an engine (Load).
type Image = selfimage.Image

// Option tunes Build.
type Option = selfimage.Option

// Build options (selfimage's).
var (
	// WithBinary builds from this hubctl executable instead of the running one.
	WithBinary = selfimage.WithBinary
	// WithCache keeps the layer in c (default: the build cache).
	WithCache = selfimage.WithCache
	// WithLabels adds labels to the image config (they change the digest).
	WithLabels = selfimage.WithLabels
)

// Build makes the proxy image from the hubctl executable; it refuses a binary that
// is not a static Linux ELF executable (selfimage.CheckBinary).
func Build(ctx context.Context, opts ...Option) (*Image, error) {
	return selfimage.Build(ctx, Spec(), opts...)
}

// CheckBinary returns the platform of a static Linux ELF executable, or why path is
// not one.
func CheckBinary(path string) (ocispec.Platform, error) { return selfimage.CheckBinary(path) }

// Tag makes a hubctl version a tag (selfimage.Tag).
func Tag(version string) string { return selfimage.Tag(version) }

// Reference is where the image of hubctl version goes in a registry:
// <registry>/<namespace>/hubctl-proxy:<tag>.
func Reference(registry, namespace, version string) (string, error) {
	registry = strings.TrimSuffix(strings.TrimSpace(registry), "/")
	namespace = strings.Trim(strings.TrimSpace(namespace), "/")
	if registry == "" || strings.ContainsAny(registry, "/@ ") {
		return "", fmt.Errorf("proxy image: registry %q: want host[:port]", registry)
	}
	repo := Repository
	if namespace != "" {
		repo = namespace + "/" + Repository
	}
	if err := reference.ValidateRepository(repo); err != nil {
		return "", fmt.Errorf("proxy image: namespace %q: %w", namespace, err)
	}
	return registry + "/" + repo + ":" + Tag(version), nil
}
