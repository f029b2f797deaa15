// Package selfimage builds container images of hubctl's own binary: FROM scratch,
// one layer holding the executable as /hubctl (and the empty directories a Spec
// names), the Spec's entrypoint. Every time in it is fixed, so one binary always
// makes the same digest. The deploy proxy (internal/deploy/proxyimage) and the
// workflow agent of the Kubernetes executor (internal/agentimage) are such images;
// an image is pushed to a registry, loaded into a Docker engine, or read as an
// imagestore.Source (docs/design/deploy.md, "The proxy container";
// docs/design/workflows.md, "The agent image").
package selfimage

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hubctl/hubctl/internal/imagestore"
	"github.com/hubctl/hubctl/layering"
)

// BinaryPath is where the hubctl executable lies in every image built here.
const BinaryPath = "/hubctl"

// Spec is what one kind of image of hubctl differs in: its name, command and the
// empty directories and ports it has. The layer holds the binary and those
// directories, nothing else.
type Spec struct {
	// Name names the image in errors and in its history ("proxy image").
	Name string
	// Entrypoint is the container's command; it starts with BinaryPath.
	Entrypoint []string
	// Dirs are empty directories made in the layer (absolute paths), mode 0755.
	Dirs []string
	// Ports are the TCP ports the image exposes.
	Ports []int
}

// epoch is every time in the image, so that the digest depends on the binary alone.
var epoch = time.Unix(0, 0).UTC()

// Option tunes Build.
type Option func(*options)

type options struct {
	binary string
	cache  *layering.Cache
	labels map[string]string
}

// WithBinary builds from this hubctl executable instead of the running one
// (os.Executable): a release binary for another architecture, or one built by a test.
func WithBinary(path string) Option { return func(o *options) { o.binary = path } }

// WithCache keeps the layer in c (default: the build cache, ~/.cache/hubctl/build).
func WithCache(c *layering.Cache) Option { return func(o *options) { o.cache = c } }

// WithLabels adds labels to the image config (they change the digest).
func WithLabels(l map[string]string) Option {
	return func(o *options) { o.labels = maps.Clone(l) }
}

// Image is a built image of hubctl. It serves the transfer engine as an
// imagestore.Source; its layer stays in the build cache.
type Image struct {
	// Desc and Raw are the OCI image manifest.
	Desc ocispec.Descriptor
	Raw  []byte
	// ConfigDesc and Config are the image config; its digest is the image ID a
	// Docker engine with the classic store gives the image.
	ConfigDesc ocispec.Descriptor
	Config     []byte
	// Layer is the one layer: /hubctl and /data.
	Layer    layering.LayerBlob
	Platform ocispec.Platform
	// Binary is the executable the image holds.
	Binary string
	// Name is the Spec's name.
	Name string

	cache *layering.Cache
}

// Build makes the image of spec from the hubctl executable. It refuses a binary that
// is not a static Linux ELF executable: FROM scratch has no libc nor dynamic loader.
func Build(ctx context.Context, spec Spec, opts ...Option) (*Image, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("%s: find the hubctl executable: %w", spec.Name, err)
		}
		o.binary = exe
	}
	platform, err := CheckBinary(o.binary)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec.Name, err)
	}
	if o.cache == nil {
		dir, err := layering.DefaultCacheDir()
		if err != nil {
			return nil, fmt.Errorf("%s: build cache: %w", spec.Name, err)
		}
		if o.cache, err = layering.OpenCache(dir); err != nil {
			return nil, fmt.Errorf("%s: %w", spec.Name, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fi, err := os.Stat(o.binary)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec.Name, err)
	}
	var entries []layering.Entry
	for _, d := range spec.Dirs {
		entries = append(entries, layering.Entry{Path: strings.TrimPrefix(d, "/"), Kind: layering.KindDir, Mode: 0o755})
	}
	entries = append(entries, layering.Entry{Path: strings.TrimPrefix(BinaryPath, "/"), Kind: layering.KindFile, Mode: 0o755, Size: fi.Size(), HostPath: o.binary})
	lb, err := o.cache.Layer("hubctl-self", entries, layering.Gzip, epoch)
	if err != nil {
		return nil, fmt.Errorf("%s: layer of %s: %w", spec.Name, o.binary, err)
	}
	_ = o.cache.Save() // the file-hash index only saves hashing the binary next time

	img := &Image{Layer: lb, Platform: platform, Binary: o.binary, Name: spec.Name, cache: o.cache}
	var ports map[string]struct{}
	for _, p := range spec.Ports {
		if ports == nil {
			ports = map[string]struct{}{}
		}
		ports[fmt.Sprintf("%d/tcp", p)] = struct{}{}
	}
	created := epoch
	cfg := ocispec.Image{
		Created:  &created,
		Platform: platform,
		Config: ocispec.ImageConfig{
			Entrypoint:   spec.Entrypoint,
			WorkingDir:   "/",
			ExposedPorts: ports,
			Labels:       o.labels,
		},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{lb.DiffID}},
		History: []ocispec.History{{
			Created:   &created,
			CreatedBy: "hubctl: the " + spec.Name + ", " + BinaryPath + " from the hubctl executable",
		}},
	}
	if img.Config, err = json.Marshal(cfg); err != nil {
		return nil, err
	}
	img.ConfigDesc = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(img.Config), Size: int64(len(img.Config))}
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    img.ConfigDesc,
		Layers:    []ocispec.Descriptor{{MediaType: lb.MediaType, Digest: lb.Digest, Size: lb.Size}},
	}
	m.SchemaVersion = 2
	if img.Raw, err = json.Marshal(m); err != nil {
		return nil, err
	}
	img.Desc = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(img.Raw), Size: int64(len(img.Raw)), Platform: &platform}
	return img, nil
}

// CheckBinary returns the platform of a static Linux ELF executable, or why path is
// not one.
func CheckBinary(path string) (ocispec.Platform, error) {
	f, err := elf.Open(path)
	if err != nil {
		var fe *elf.FormatError
		if errors.As(err, &fe) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return ocispec.Platform{}, fmt.Errorf("%s is not an ELF executable: an image of hubctl needs a Linux hubctl binary (GOOS=linux CGO_ENABLED=0 go build ./cmd/hubctl)", path)
		}
		return ocispec.Platform{}, err
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return ocispec.Platform{}, fmt.Errorf("%s is an ELF %s, not an executable", path, f.Type)
	}
	if f.OSABI != elf.ELFOSABI_NONE && f.OSABI != elf.ELFOSABI_LINUX {
		return ocispec.Platform{}, fmt.Errorf("%s is built for %s, not Linux: an image of hubctl needs a Linux hubctl binary (GOOS=linux CGO_ENABLED=0 go build ./cmd/hubctl)", path, f.OSABI)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp := "a dynamic loader"
			if b, err := io.ReadAll(io.LimitReader(p.Open(), 256)); err == nil {
				interp = strings.TrimRight(string(b), "\x00")
			}
			return ocispec.Platform{}, fmt.Errorf("%s is dynamically linked (it needs %s), and an image of hubctl is FROM scratch, without libc: use a static hubctl (CGO_ENABLED=0 go build ./cmd/hubctl, as the release binaries are)", path, interp)
		}
	}
	p := ocispec.Platform{OS: "linux"}
	switch f.Machine {
	case elf.EM_X86_64:
		p.Architecture = "amd64"
	case elf.EM_AARCH64:
		p.Architecture = "arm64"
	case elf.EM_386:
		p.Architecture = "386"
	case elf.EM_ARM:
		p.Architecture, p.Variant = "arm", "v7"
	case elf.EM_PPC64:
		p.Architecture = "ppc64"
		if f.ByteOrder.String() == "LittleEndian" {
			p.Architecture = "ppc64le"
		}
	case elf.EM_S390:
		p.Architecture = "s390x"
	case elf.EM_RISCV:
		p.Architecture = "riscv64"
	default:
		return ocispec.Platform{}, fmt.Errorf("%s is for the %s architecture, which an image of hubctl does not know", path, f.Machine)
	}
	return p, nil
}

var tagUnsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// Tag makes a hubctl version a tag: "v1.4.0" stays, "v1.4.0+dirty" becomes
// "v1.4.0-dirty", and an empty version is "dev".
func Tag(version string) string {
	t := strings.Trim(tagUnsafe.ReplaceAllString(version, "-"), ".-")
	if len(t) > 128 {
		t = strings.TrimRight(t[:128], ".-")
	}
	if t == "" {
		return "dev"
	}
	return t
}

// Root returns the manifest.
func (img *Image) Root(context.Context) (ocispec.Descriptor, []byte, error) {
	return img.Desc, img.Raw, nil
}

// Manifest returns the manifest when desc names it.
func (img *Image) Manifest(_ context.Context, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Digest != img.Desc.Digest {
		return nil, fmt.Errorf("%s: manifest %s: %w", img.Name, desc.Digest, imagestore.ErrNotFound)
	}
	return img.Raw, nil
}

// Blob opens the config or the layer.
func (img *Image) Blob(_ context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	switch desc.Digest {
	case img.ConfigDesc.Digest:
		return io.NopCloser(bytes.NewReader(img.Config)), nil
	case img.Layer.Digest:
		f, err := os.Open(img.cache.BlobPath(img.Layer.Digest))
		if err != nil {
			return nil, fmt.Errorf("%s: layer %s: %w", img.Name, img.Layer.Digest, err)
		}
		return f, nil
	}
	return nil, fmt.Errorf("%s: blob %s: %w", img.Name, desc.Digest, imagestore.ErrNotFound)
}

// Close releases nothing: the layer stays in the build cache.
func (img *Image) Close() error { return nil }

var _ imagestore.Source = (*Image)(nil)
