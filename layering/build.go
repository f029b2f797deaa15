package layering

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hubctl/hubctl/internal/imagestore"
	"github.com/hubctl/hubctl/internal/progress"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The annotations a built image carries (OCI image spec, pre-defined keys).
const (
	AnnotationCreated    = ocispec.AnnotationCreated
	AnnotationSource     = ocispec.AnnotationSource
	AnnotationRevision   = ocispec.AnnotationRevision
	AnnotationBaseName   = ocispec.AnnotationBaseImageName
	AnnotationBaseDigest = ocispec.AnnotationBaseImageDigest
)

// Build builds one image (or an index of several platforms) from a context directory
// and a Dockerfile or layer rules. Make it with NewBuild and run it once.
type Build struct {
	contextDir     string
	dockerfile     string
	dockerfileData []byte
	spec           *Spec
	platforms      []ocispec.Platform
	buildPlatform  ocispec.Platform
	buildArgs      map[string]string
	target         string
	labels         map[string]string
	annotations    map[string]string
	epoch          time.Time
	preserveModes  bool
	compression    Compression
	cache          *Cache
	open           Opener
	progress       progress.Sink
	extraIgnore    []string

	context *Tree
	mu      sync.Mutex
	layers  map[digest.Digest]LayerBlob
	// opened are the image sources the build opened; the result (or a failure)
	// closes them.
	opened []imagestore.Source
}

func (b *Build) track(src imagestore.Source) {
	b.mu.Lock()
	b.opened = append(b.opened, src)
	b.mu.Unlock()
}

func (b *Build) closeOpened() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.opened {
		s.Close()
	}
	b.opened = nil
}

// Option configures a Build.
type Option func(*Build)

// WithDockerfile reads the Dockerfile from file (default CONTEXT/Dockerfile).
func WithDockerfile(file string) Option { return func(b *Build) { b.dockerfile = file } }

// WithDockerfileContent gives the Dockerfile's bytes directly (name is for messages).
func WithDockerfileContent(name string, data []byte) Option {
	return func(b *Build) { b.dockerfile, b.dockerfileData = name, data }
}

// WithSpec builds from layer rules and image settings instead of a Dockerfile
// (hubctl.yaml, --layer, --preset).
func WithSpec(s Spec) Option { return func(b *Build) { b.spec = &s } }

// WithPlatforms builds for these platforms (default: linux on this machine's
// architecture); more than one gives an index.
func WithPlatforms(p ...ocispec.Platform) Option { return func(b *Build) { b.platforms = p } }

// WithBuildArgs sets ARG values (--build-arg).
func WithBuildArgs(args map[string]string) Option { return func(b *Build) { b.buildArgs = args } }

// WithTarget builds the named stage instead of the last.
func WithTarget(stage string) Option { return func(b *Build) { b.target = stage } }

// WithLabels adds labels to the image config (--label).
func WithLabels(l map[string]string) Option { return func(b *Build) { b.labels = l } }

// WithAnnotations adds annotations to the manifests and the index (--annotation).
func WithAnnotations(a map[string]string) Option { return func(b *Build) { b.annotations = a } }

// WithEpoch sets every timestamp of the image (SOURCE_DATE_EPOCH; default the epoch).
func WithEpoch(t time.Time) Option { return func(b *Build) { b.epoch = t.UTC().Truncate(time.Second) } }

// WithPreserveModes keeps the context's file modes instead of 0644/0755.
func WithPreserveModes(v bool) Option { return func(b *Build) { b.preserveModes = v } }

// WithCompression sets the layer compression (default gzip).
func WithCompression(c Compression) Option { return func(b *Build) { b.compression = c } }

// WithCache keeps layers in c (required).
func WithCache(c *Cache) Option { return func(b *Build) { b.cache = c } }

// WithOpener opens base images (required unless every stage is FROM scratch).
func WithOpener(o Opener) Option { return func(b *Build) { b.open = o } }

// WithProgress receives what the build does, as Info events.
func WithProgress(s progress.Sink) Option { return func(b *Build) { b.progress = s } }

// NewBuild returns a build of the context directory.
func NewBuild(contextDir string, opts ...Option) *Build {
	b := &Build{contextDir: contextDir, epoch: time.Unix(0, 0).UTC(), compression: Gzip,
		buildPlatform: DefaultPlatform(), layers: map[digest.Digest]LayerBlob{}}
	for _, o := range opts {
		o(b)
	}
	if len(b.platforms) == 0 {
		b.platforms = []ocispec.Platform{DefaultPlatform()}
	}
	if b.open == nil {
		b.open = func(_ context.Context, name string) (imagestore.Source, Origin, error) {
			return nil, Origin{}, fmt.Errorf("%s: no way to open base images in this build", name)
		}
	}
	return b
}

// DefaultPlatform is linux on this machine's architecture.
func DefaultPlatform() ocispec.Platform {
	p := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if p.Architecture == "arm" {
		p.Variant = "v7"
	}
	return p
}

// ParsePlatform reads os/arch[/variant].
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(strings.TrimSpace(s), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q: want os/arch[/variant], like linux/amd64", s)
	}
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

func (b *Build) created() *time.Time { t := b.epoch; return &t }

func (b *Build) built(lb LayerBlob) {
	b.mu.Lock()
	b.layers[lb.Digest] = lb
	b.mu.Unlock()
}

// presets returns the named rules: a built-in preset, or the spec's own rules.
func (b *Build) presets(name string) ([]Rule, bool) {
	if name == specRules && b.spec != nil {
		return b.spec.rules()
	}
	r, ok := Presets[name]
	return r, ok
}

// Run builds the image. The result serves the image's manifests and blobs to the
// transfer engine; close it when done.
func (b *Build) Run(ctx context.Context) (img *Image, err error) {
	if b.cache == nil {
		return nil, fmt.Errorf("build: no cache")
	}
	defer func() {
		if err != nil {
			b.closeOpened()
		}
	}()
	name, content, err := b.readDockerfile()
	if err != nil {
		return nil, err
	}
	df, err := ParseDockerfile(name, content)
	if err != nil {
		return nil, err
	}
	for _, w := range df.Warnings {
		b.info("warning: " + w)
	}
	if df.Syntax != "" && !strings.HasPrefix(df.Syntax, "docker/dockerfile") {
		b.info(fmt.Sprintf("%s: # syntax=%s ignored: hubctl reads the Dockerfile itself", name, df.Syntax))
	}
	target, err := df.targetIndex(b.target)
	if err != nil {
		return nil, err
	}

	// Everything that can be refused is checked, for every platform, before a layer
	// is written: RUN, remote ADD, bases that are missing or lack a platform, ONBUILD
	// triggers that run commands.
	interps := make([]*interp, len(b.platforms))
	needs := make([]map[int]bool, len(b.platforms))
	for i, p := range b.platforms {
		// Expanding variables rewrites the parsed instructions in place, so each
		// platform interprets its own parse.
		df, err := ParseDockerfile(name, content)
		if err != nil {
			return nil, err
		}
		in := &interp{b: b, df: df, platform: p, lex: shell.NewLex(df.Escape)}
		need, err := in.prepare(ctx, target)
		if err != nil {
			return nil, err
		}
		interps[i], needs[i] = in, need
	}
	if err := b.loadContext(name); err != nil {
		return nil, err
	}
	img = &Image{cache: b.cache, manifests: map[digest.Digest][]byte{}, configs: map[digest.Digest][]byte{},
		baseLayers: map[digest.Digest]*baseImage{}}
	for i, in := range interps {
		st, err := in.run(ctx, target, needs[i])
		if err != nil {
			return nil, err
		}
		if err := img.addPlatform(b, st); err != nil {
			return nil, err
		}
	}
	if err := b.cache.Save(); err != nil {
		b.info("could not save the file-hash cache: " + err.Error())
	}
	if err := img.finish(b); err != nil {
		return nil, err
	}
	img.opened, b.opened = b.opened, nil
	return img, nil
}

func (b *Build) info(msg string) {
	if b.progress != nil {
		b.progress(progress.Event{Kind: progress.Info, Message: msg})
	}
}

// readDockerfile returns the Dockerfile's name and bytes: given, generated from the
// spec, or read from the file.
func (b *Build) readDockerfile() (string, []byte, error) {
	if b.dockerfileData != nil {
		return b.dockerfile, b.dockerfileData, nil
	}
	if b.spec != nil {
		data, err := b.spec.dockerfile()
		return b.spec.Name, data, err
	}
	file := b.dockerfile
	if file == "" {
		file = filepath.Join(b.contextDir, "Dockerfile")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", nil, fmt.Errorf("read Dockerfile: %w", err)
	}
	return filepath.Base(file), data, nil
}

// loadContext reads the context, without what .dockerignore (or
// <Dockerfile>.dockerignore next to the Dockerfile) excludes.
func (b *Build) loadContext(dfName string) error {
	var ignore []string
	var err error
	if b.dockerfile != "" && b.dockerfileData == nil {
		ignore, err = ReadIgnoreFile(b.dockerfile + ".dockerignore")
		if err != nil {
			return err
		}
	}
	if ignore == nil {
		if ignore, err = ReadIgnoreFile(filepath.Join(b.contextDir, ".dockerignore")); err != nil {
			return err
		}
	}
	if b.spec != nil {
		ignore = append(ignore, b.spec.Exclude...)
	}
	b.context, err = LoadContext(b.contextDir, ignore)
	return err
}

// Image is a built image: a manifest, or an index of one manifest per platform, whose
// new layers are in the cache and whose base layers stay where the base is. It serves
// the transfer engine as an imagestore.Source.
type Image struct {
	// Desc and Raw are the root manifest or index.
	Desc ocispec.Descriptor
	Raw  []byte
	// Manifests are the per-platform manifests, in the order of the platforms.
	Manifests []PlatformManifest
	// Layers are the layers this build made (cached or new), by digest.
	Layers []LayerBlob

	cache      *Cache
	manifests  map[digest.Digest][]byte
	configs    map[digest.Digest][]byte
	baseLayers map[digest.Digest]*baseImage
	opened     []imagestore.Source
	// fetchBase makes base layers come through the cache (local outputs need their
	// bytes; fetch them once).
	fetchBase bool
}

// PlatformManifest is one platform's manifest of a build.
type PlatformManifest struct {
	Platform   ocispec.Platform
	Desc       ocispec.Descriptor
	BaseName   string
	BaseDigest string
}

var _ imagestore.Source = (*Image)(nil)

func (img *Image) addPlatform(b *Build, st *stageState) error {
	cfg := dockerspec.DockerOCIImage{
		Image: ocispec.Image{
			Created:  b.created(),
			Author:   st.author,
			Platform: ocispec.Platform{OS: st.platform.OS, Architecture: st.platform.Architecture, Variant: st.platform.Variant},
			RootFS:   ocispec.RootFS{Type: "layers"},
			History:  st.history,
		},
		Config: st.config,
	}
	if st.base != nil {
		cfg.OSVersion = st.base.config.OSVersion
		cfg.OSFeatures = st.base.config.OSFeatures
	}
	if len(b.labels) > 0 {
		if cfg.Config.Labels == nil {
			cfg.Config.Labels = map[string]string{}
		}
		for k, v := range b.labels {
			cfg.Config.Labels[k] = v
		}
	}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest}
	for _, l := range st.layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
		m.Layers = append(m.Layers, l.desc)
		if l.base != nil {
			img.baseLayers[l.desc.Digest] = l.base
		}
	}
	craw, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	m.Config = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(craw), Size: int64(len(craw))}
	img.configs[m.Config.Digest] = craw
	m.Annotations = map[string]string{AnnotationCreated: b.epoch.Format(time.RFC3339)}
	pm := PlatformManifest{Platform: cfg.Platform}
	if st.base != nil {
		pm.BaseName, pm.BaseDigest = st.base.origin.Name, st.base.desc.Digest.String()
		m.Annotations[AnnotationBaseName] = pm.BaseName
		m.Annotations[AnnotationBaseDigest] = pm.BaseDigest
	}
	for k, v := range b.annotations {
		m.Annotations[k] = v
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	pm.Desc = ocispec.Descriptor{MediaType: m.MediaType, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
	img.manifests[pm.Desc.Digest] = raw
	img.Manifests = append(img.Manifests, pm)
	return nil
}

// finish sets the root: the one manifest, or an index of them.
func (img *Image) finish(b *Build) error {
	for _, lb := range b.layers {
		img.Layers = append(img.Layers, lb)
	}
	slices.SortFunc(img.Layers, func(a, c LayerBlob) int { return strings.Compare(a.Digest.String(), c.Digest.String()) })
	if len(img.Manifests) == 1 {
		img.Desc = img.Manifests[0].Desc
		img.Raw = img.manifests[img.Desc.Digest]
		return nil
	}
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Annotations: map[string]string{AnnotationCreated: b.epoch.Format(time.RFC3339)}}
	for k, v := range b.annotations {
		idx.Annotations[k] = v
	}
	for _, pm := range img.Manifests {
		d := pm.Desc
		p := pm.Platform
		d.Platform = &p
		idx.Manifests = append(idx.Manifests, d)
	}
	raw, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	img.Desc = ocispec.Descriptor{MediaType: idx.MediaType, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
	img.Raw = raw
	img.manifests[img.Desc.Digest] = raw
	return nil
}

// FetchBase makes the image read base layers through the cache: a local output needs
// their bytes, and the cache keeps them for the next build.
func (img *Image) FetchBase(v bool) { img.fetchBase = v }

// Config returns the config of a platform's manifest.
func (img *Image) Config(pm PlatformManifest) (dockerspec.DockerOCIImage, error) {
	var m ocispec.Manifest
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(img.manifests[pm.Desc.Digest], &m); err != nil {
		return cfg, err
	}
	err := json.Unmarshal(img.configs[m.Config.Digest], &cfg)
	return cfg, err
}

// Root returns the image's manifest or index.
func (img *Image) Root(context.Context) (ocispec.Descriptor, []byte, error) {
	return img.Desc, img.Raw, nil
}

// Manifest returns a manifest of the image by digest.
func (img *Image) Manifest(_ context.Context, desc ocispec.Descriptor) ([]byte, error) {
	raw, ok := img.manifests[desc.Digest]
	if !ok {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, imagestore.ErrNotFound)
	}
	return raw, nil
}

// Blob opens a config or layer: configs from memory, built layers from the cache, base
// layers from the base (through the cache when FetchBase is on).
func (img *Image) Blob(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if raw, ok := img.configs[desc.Digest]; ok {
		return io.NopCloser(strings.NewReader(string(raw))), nil
	}
	if base, ok := img.baseLayers[desc.Digest]; ok {
		if !img.fetchBase {
			return base.src.Blob(ctx, desc)
		}
		if !img.cache.HasBlob(desc.Digest, desc.Size) {
			rc, err := base.src.Blob(ctx, desc)
			if err != nil {
				return nil, err
			}
			_, err = img.cache.storeBlob(rc, desc.Digest, desc.Size)
			rc.Close()
			if err != nil {
				return nil, err
			}
		}
	}
	f, err := os.Open(img.cache.BlobPath(desc.Digest))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", desc.Digest, imagestore.ErrNotFound)
	}
	return f, nil
}

// BlobOrigin names the registry repository a base layer can be mounted from.
func (img *Image) BlobOrigin(desc ocispec.Descriptor) (host, repo string, ok bool) {
	base, found := img.baseLayers[desc.Digest]
	if !found || base.origin.Host == "" {
		return "", "", false
	}
	return base.origin.Host, base.origin.Repo, true
}

// Close releases the base images' sources.
func (img *Image) Close() error {
	for _, s := range img.opened {
		s.Close()
	}
	img.opened = nil
	return nil
}
