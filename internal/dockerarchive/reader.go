// Package dockerarchive reads and writes docker-archive files, the tar format of
// `docker save` and `docker load`, as an imagestore.Source and imagestore.Target.
package dockerarchive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/hubctl/hubctl/internal/imagestore"
	"github.com/klauspost/pgzip"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types of the Docker v2 schema 2 manifests a Reader synthesizes.
const (
	MediaTypeManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeConfig   = "application/vnd.docker.container.image.v1+json"
	MediaTypeLayer    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// Limits on the JSON files read into memory from an untrusted archive.
const (
	maxManifestJSON = 16 << 20
	maxConfigJSON   = 64 << 20
)

// manifestEntry is one image in manifest.json, as docker save writes it.
type manifestEntry struct {
	Config       string
	RepoTags     []string
	Layers       []string
	LayerSources map[digest.Digest]ocispec.Descriptor `json:",omitempty"`
}

// Reader is a docker-archive file opened as an imagestore.Source for one of its
// images. The manifest it serves is the one the archive's OCI layout holds for the
// image when its layers are there compressed (an engine on the containerd image
// store), else one synthesized from manifest.json and the config.
type Reader struct {
	file   string
	f      *os.File
	idx    *tarIndex
	remove []string // files Close deletes: a decompressed archive, compressed layers

	tags    []string
	config  []byte
	configD ocispec.Descriptor
	layers  []layerSource

	// Set once by prepare, under prepMu.
	prepMu   sync.Mutex
	prepared bool
	manifest []byte
	rootD    ocispec.Descriptor
	blobs    map[digest.Digest]func() io.Reader
	temps    []*os.File // compressed layers

	closeOnce sync.Once
	closeErr  error
}

// layerSource is a layer as manifest.json and the config describe it.
type layerSource struct {
	name    string
	entry   entry
	diffID  digest.Digest
	foreign *ocispec.Descriptor // from LayerSources: not distributable, described only
}

// Open opens the docker-archive file and selects the image tagged ref ("app" means
// "app:latest"; "docker.io/library/app:latest" matches "app:latest"), or the only
// image when ref is empty. A gzip-compressed archive is decompressed to a temp file.
func Open(file, ref string) (*Reader, error) {
	r := &Reader{file: file}
	if err := r.open(ref); err != nil {
		r.Close()
		return nil, fmt.Errorf("docker-archive %s: %w", file, err)
	}
	return r, nil
}

func (r *Reader) open(ref string) error {
	f, err := os.Open(r.file)
	if err != nil {
		return err
	}
	r.f = f
	if f, err = r.decompressed(f); err != nil {
		return err
	}
	if r.idx, err = indexTar(f); err != nil {
		return err
	}
	raw, err := r.idx.readAll("manifest.json", maxManifestJSON)
	if err != nil {
		return fmt.Errorf("%w (is this a docker save archive?)", err)
	}
	var entries []manifestEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		return fmt.Errorf("parse manifest.json: %w", err)
	}
	m, err := selectImage(entries, ref)
	if err != nil {
		return err
	}
	r.tags = m.RepoTags
	return r.load(m)
}

// decompressed returns f, or a temp file holding its decompressed content when f is
// gzip (`docker save | gzip`), which docker load accepts too.
func (r *Reader) decompressed(f *os.File) (*os.File, error) {
	var magic [2]byte
	if n, _ := f.ReadAt(magic[:], 0); n < 2 || magic != [2]byte{0x1f, 0x8b} {
		return f, nil
	}
	zr, err := pgzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	tmp, err := os.CreateTemp("", "hubctl-docker-archive-*.tar")
	if err != nil {
		return nil, err
	}
	r.remove = append(r.remove, tmp.Name())
	_, err = io.Copy(tmp, zr)
	r.f.Close()
	r.f = tmp
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	return tmp, nil
}

// selectImage picks the manifest.json entry for ref.
func selectImage(entries []manifestEntry, ref string) (manifestEntry, error) {
	var all []string
	for _, e := range entries {
		all = append(all, e.RepoTags...)
	}
	if ref == "" {
		switch len(entries) {
		case 0:
			return manifestEntry{}, fmt.Errorf("manifest.json lists no image: %w", imagestore.ErrNotFound)
		case 1:
			return entries[0], nil
		}
		return manifestEntry{}, fmt.Errorf("it holds %d images (%s); name one as docker-archive:FILE:REF", len(entries), listTags(all))
	}
	if _, err := parseName(ref); err != nil {
		return manifestEntry{}, err
	}
	for _, e := range entries {
		for _, t := range e.RepoTags {
			if SameImageName(t, ref) {
				return e, nil
			}
		}
	}
	return manifestEntry{}, fmt.Errorf("no image tagged %s (it holds %s): %w", ref, listTags(all), imagestore.ErrNotFound)
}

func listTags(tags []string) string {
	if len(tags) == 0 {
		return "only untagged images"
	}
	return strings.Join(tags, ", ")
}

// load reads the chosen image's config and locates its layers.
func (r *Reader) load(m manifestEntry) error {
	if m.Config == "" {
		return errors.New("manifest.json: image has no Config")
	}
	cfg, err := r.idx.readAll(m.Config, maxConfigJSON)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var c struct {
		RootFS struct {
			DiffIDs []digest.Digest `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(cfg, &c); err != nil {
		return fmt.Errorf("parse config %s: %w", m.Config, err)
	}
	if len(c.RootFS.DiffIDs) != len(m.Layers) {
		return fmt.Errorf("config %s lists %d diff_ids for %d layers in manifest.json", m.Config, len(c.RootFS.DiffIDs), len(m.Layers))
	}
	r.config = cfg
	r.configD = ocispec.Descriptor{MediaType: MediaTypeConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))}
	for i, name := range m.Layers {
		diffID := c.RootFS.DiffIDs[i]
		if err := diffID.Validate(); err != nil {
			return fmt.Errorf("config %s: diff_id %d: %w", m.Config, i, err)
		}
		l := layerSource{name: name, diffID: diffID}
		if src, ok := m.LayerSources[diffID]; ok {
			l.foreign = &src
		} else if l.entry, err = r.idx.lookup(name); err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		r.layers = append(r.layers, l)
	}
	return nil
}

// Tags returns the RepoTags of the selected image, as the archive spells them.
func (r *Reader) Tags() []string { return append([]string(nil), r.tags...) }

// Root returns the image's manifest: the archive's own (see Reader), or a Docker v2
// schema 2 manifest synthesized for it, for which the first call hashes the layers
// and compresses the uncompressed ones, in parallel.
func (r *Reader) Root(ctx context.Context) (ocispec.Descriptor, []byte, error) {
	if err := r.prepare(ctx); err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	return r.rootD, r.manifest, nil
}

// Manifest returns the synthesized manifest when desc names it.
func (r *Reader) Manifest(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
	if err := r.prepare(ctx); err != nil {
		return nil, err
	}
	if desc.Digest != r.rootD.Digest {
		return nil, fmt.Errorf("docker-archive %s: manifest %s: %w", r.file, desc.Digest, imagestore.ErrNotFound)
	}
	return bytes.Clone(r.manifest), nil
}

// Blob opens the config or a layer of the image, as the manifest describes it.
func (r *Reader) Blob(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if desc.Digest == r.configD.Digest {
		return io.NopCloser(bytes.NewReader(r.config)), nil
	}
	if err := r.prepare(ctx); err != nil {
		return nil, err
	}
	r.prepMu.Lock()
	open, ok := r.blobs[desc.Digest]
	r.prepMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("docker-archive %s: blob %s: %w", r.file, desc.Digest, imagestore.ErrNotFound)
	}
	return io.NopCloser(&ctxReader{ctx: ctx, r: open()}), nil
}

// Close closes the archive and deletes the temp files the Reader made.
func (r *Reader) Close() error {
	r.closeOnce.Do(func() {
		if r.f != nil {
			r.closeErr = r.f.Close()
		}
		r.prepMu.Lock()
		defer r.prepMu.Unlock()
		for _, f := range r.temps {
			f.Close()
		}
		r.temps, r.idx = nil, nil
		for _, name := range r.remove {
			if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) && r.closeErr == nil {
				r.closeErr = err
			}
		}
		r.remove = nil
	})
	return r.closeErr
}

// ctxReader stops reading once ctx is done, so a cancelled copy ends promptly.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
