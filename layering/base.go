package layering

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/hubctl/hubctl/internal/imagestore"
	"github.com/klauspost/compress/zstd"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Origin says where an opened image lives, so its layers can be mounted instead of
// copied: the registry host and repository path, both empty for a local image.
type Origin struct {
	Host, Repo string
	// Name is the image as written ("alpine:3.20", "oci:./base").
	Name string
}

// Opener opens an image named in FROM or COPY --from: a registry reference or a local
// form (oci:DIR). The command gives one built on the transfer engine, so bases are read
// with the same credentials as every other verb.
type Opener func(ctx context.Context, name string) (imagestore.Source, Origin, error)

// baseImage is an image a stage builds on (or copies from), for one platform. Only its
// manifest and config are read up front; layers are streamed when something needs
// their files.
type baseImage struct {
	origin   Origin
	src      imagestore.Source
	rootDesc ocispec.Descriptor // what the name resolved to (an index or a manifest)
	desc     ocispec.Descriptor // the manifest for the platform
	manifest ocispec.Manifest
	config   dockerspec.DockerOCIImage
	// accounts caches /etc/passwd and /etc/group once read for --chown names.
	accounts map[string][]byte
}

const (
	mediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
)

func isIndexType(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == mediaTypeDockerList
}

// openBase opens name and picks the manifest for platform from an index.
// track, when not nil, is given every source opened, for the build to close.
func openBase(ctx context.Context, open Opener, track func(imagestore.Source), name string, platform ocispec.Platform) (*baseImage, error) {
	src, origin, err := open(ctx, name)
	if err != nil {
		return nil, err
	}
	if track != nil {
		track(src)
	}
	b := &baseImage{origin: origin, src: src}
	desc, raw, err := src.Root(ctx)
	if err != nil {
		return nil, err
	}
	b.rootDesc = desc
	if isIndexType(desc.MediaType) {
		var idx ocispec.Index
		if err := json.Unmarshal(raw, &idx); err != nil {
			return nil, fmt.Errorf("%s: parse index: %w", name, err)
		}
		child, ok := pickPlatform(idx.Manifests, platform)
		if !ok {
			var have []string
			for _, m := range idx.Manifests {
				if m.Platform != nil && m.Platform.OS != "unknown" {
					have = append(have, platformString(*m.Platform))
				}
			}
			return nil, fmt.Errorf("%s has no image for %s (it has %s)", name, platformString(platform), strings.Join(have, ", "))
		}
		if raw, err = src.Manifest(ctx, child); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		desc = ocispec.Descriptor{MediaType: child.MediaType, Digest: child.Digest, Size: child.Size}
	}
	b.desc = desc
	if err := json.Unmarshal(raw, &b.manifest); err != nil {
		return nil, fmt.Errorf("%s: parse manifest: %w", name, err)
	}
	rc, err := src.Blob(ctx, b.manifest.Config)
	if err != nil {
		return nil, fmt.Errorf("%s: read config: %w", name, err)
	}
	defer rc.Close()
	craw, err := io.ReadAll(io.LimitReader(rc, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: read config: %w", name, err)
	}
	if digest.FromBytes(craw) != b.manifest.Config.Digest {
		return nil, fmt.Errorf("%s: config %s does not match its digest", name, b.manifest.Config.Digest)
	}
	if err := json.Unmarshal(craw, &b.config); err != nil {
		return nil, fmt.Errorf("%s: parse config: %w", name, err)
	}
	if len(b.config.RootFS.DiffIDs) != len(b.manifest.Layers) {
		return nil, fmt.Errorf("%s: config lists %d layers, manifest %d", name, len(b.config.RootFS.DiffIDs), len(b.manifest.Layers))
	}
	if !isIndexType(b.rootDesc.MediaType) && b.config.OS != "" &&
		(b.config.OS != platform.OS || normArch(b.config.Architecture, b.config.Variant) != normArch(platform.Architecture, platform.Variant)) {
		return nil, fmt.Errorf("%s is a %s image, not %s", name, platformString(b.config.Platform), platformString(platform))
	}
	return b, nil
}

func normArch(arch, variant string) string {
	if arch == "arm64" && variant == "" {
		variant = "v8"
	}
	if variant == "" {
		return arch
	}
	return arch + "/" + variant
}

func platformString(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// pickPlatform finds the manifest for p in an index; a child without a variant matches
// any variant asked (as docker pull chooses), arm64 means arm64/v8.
func pickPlatform(ms []ocispec.Descriptor, p ocispec.Platform) (ocispec.Descriptor, bool) {
	var loose *ocispec.Descriptor
	for i, m := range ms {
		if m.Platform == nil || m.Platform.OS != p.OS || m.Platform.Architecture != p.Architecture {
			continue
		}
		if normArch(m.Platform.Architecture, m.Platform.Variant) == normArch(p.Architecture, p.Variant) {
			return m, true
		}
		if m.Platform.Variant == "" || p.Variant == "" {
			loose = &ms[i]
		}
	}
	if loose != nil {
		return *loose, true
	}
	return ocispec.Descriptor{}, false
}

// standardDirs are directories every Linux base image has (the FHS), which a COPY of
// one file without a trailing slash lands inside, as docker would find them in the
// base's filesystem; hubctl does not read the base's layers to find out.
var standardDirs = map[string]bool{
	"bin": true, "sbin": true, "lib": true, "lib64": true, "etc": true, "opt": true, "srv": true,
	"home": true, "root": true, "tmp": true, "run": true, "mnt": true, "media": true,
	"usr": true, "usr/bin": true, "usr/sbin": true, "usr/lib": true, "usr/share": true, "usr/include": true,
	"usr/local": true, "usr/local/bin": true, "usr/local/sbin": true, "usr/local/lib": true,
	"usr/local/share": true, "usr/local/etc": true, "var": true, "var/lib": true, "var/log": true,
	"var/tmp": true, "var/cache": true, "var/run": true, "var/www": true, "etc/ssl": true, "etc/ssl/certs": true,
}

// knownDir reports whether p is a directory of the base as far as its config tells
// (its WORKDIR and volumes) or the FHS promises.
func (b *baseImage) knownDir(p string) bool {
	p = cleanPath(p)
	if standardDirs[p] {
		return true
	}
	if wd := cleanPath(b.config.Config.WorkingDir); wd != "" && (wd == p || strings.HasPrefix(wd, p+"/")) {
		return true
	}
	for v := range b.config.Config.Volumes {
		if v := cleanPath(v); v == p || strings.HasPrefix(v, p+"/") {
			return true
		}
	}
	return false
}

// openLayer returns the uncompressed tar stream of a layer, whatever its compression.
func openLayer(ctx context.Context, src imagestore.Source, desc ocispec.Descriptor) (io.ReadCloser, error) {
	rc, err := src.Blob(ctx, desc)
	if err != nil {
		return nil, err
	}
	r, err := decompress(rc)
	if err != nil {
		rc.Close()
		return nil, fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{r, rc}, nil
}

// decompress sniffs gzip, zstd and bzip2 and returns the plain stream.
func decompress(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return gzip.NewReader(br)
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	case bytes.HasPrefix(head, []byte("BZh")):
		return bzip2.NewReader(br), nil
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X'}):
		return nil, errors.New("xz compression is not supported; use gzip, zstd or bzip2")
	}
	return br, nil
}

// whiteout prefixes of the OCI layer format.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// applyTarEntry applies one tar header (and its content) to tree t as a layer applies to
// the filesystem below it: whiteouts delete, other entries replace. want filters the
// paths kept; file contents go to the cache.
func applyTarEntry(c *Cache, t *Tree, hdr *tar.Header, r io.Reader, want func(string) bool) error {
	name := cleanPath(hdr.Name)
	if name == "" {
		return nil
	}
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	if base == whiteoutOpaque {
		for _, e := range t.Under(dir) {
			t.Remove(e.Path)
		}
		return nil
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		t.Remove(path.Join(dir, strings.TrimPrefix(base, whiteoutPrefix)))
		return nil
	}
	if !want(name) {
		return nil
	}
	e := Entry{Path: name, Mode: fileMode(hdr.Mode), UID: hdr.Uid, GID: hdr.Gid}
	switch hdr.Typeflag {
	case tar.TypeDir:
		e.Kind = KindDir
	case tar.TypeSymlink:
		e.Kind, e.Linkname = KindSymlink, hdr.Linkname
	case tar.TypeLink:
		// A hard link becomes a copy of what it links to.
		target, ok := t.Get(hdr.Linkname)
		if !ok {
			return nil
		}
		e = *target
		e.Path = name
	case tar.TypeReg, tar.TypeRegA:
		p, d, n, err := c.storeFile(r)
		if err != nil {
			return err
		}
		e.Kind, e.HostPath, e.Digest, e.Size = KindFile, p, d, n
	default:
		return nil // devices and fifos are not copied
	}
	if old, ok := t.Get(name); ok && old.Kind == KindDir && e.Kind != KindDir {
		t.Remove(name)
	}
	t.Add(e)
	return nil
}

// readFiles returns the files a COPY of sources needs from the base (COPY
// --from=<image>), their contents in the cache. Layers are read from the top down, as
// the filesystem shows them: an upper entry hides the lower ones of its path,
// whiteouts and opaque directories hide what is below them. Once every source has been
// found as a file or symlink (or deleted), no lower layer is read; a directory or glob
// source reads every layer.
func (b *baseImage) readFiles(ctx context.Context, c *Cache, sources []string) (*Tree, error) {
	want := wantSources(sources)
	var exact []string
	for _, s := range sources {
		if hasGlob(s) {
			exact = nil
			break
		}
		exact = append(exact, cleanPath(s))
	}
	t := NewTree()
	hidden := map[string]bool{} // paths whose lower entries (and children) are gone
	opaque := map[string]bool{} // directories whose lower children are gone
	isHidden := func(p string) bool {
		if hidden[p] {
			return true
		}
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if hidden[d] || opaque[d] {
				return true
			}
		}
		return opaque[""] || opaque["."]
	}
	settled := func() bool {
		if len(exact) == 0 {
			return false
		}
		for _, s := range exact {
			if e, ok := t.Get(s); ok && e.Kind != KindDir {
				continue
			}
			if isHidden(s) {
				if _, ok := t.Get(s); !ok {
					continue // deleted above
				}
			}
			return false
		}
		return true
	}
	for i := len(b.manifest.Layers) - 1; i >= 0 && !settled(); i-- {
		var newHidden, newOpaque []string
		links := map[string]string{} // wanted hard links whose target was not kept: name → target
		keep := func(hdr *tar.Header, r io.Reader, name string) error {
			e := Entry{Path: name, Mode: fileMode(hdr.Mode), UID: hdr.Uid, GID: hdr.Gid}
			switch hdr.Typeflag {
			case tar.TypeDir:
				e.Kind = KindDir
			case tar.TypeSymlink:
				e.Kind, e.Linkname = KindSymlink, hdr.Linkname
			case tar.TypeReg, tar.TypeRegA:
				p, d, n, err := c.storeFile(r)
				if err != nil {
					return err
				}
				e.Kind, e.HostPath, e.Digest, e.Size = KindFile, p, d, n
			default:
				return nil // devices and fifos are not copied
			}
			t.Add(e)
			if e.Kind != KindDir {
				newHidden = append(newHidden, name)
			}
			return nil
		}
		err := b.walkLayer(ctx, b.manifest.Layers[i], func(hdr *tar.Header, r io.Reader) (bool, error) {
			name := cleanPath(hdr.Name)
			if name == "" {
				return false, nil
			}
			dir, base := path.Split(name)
			dir = cleanPath(dir)
			switch {
			case base == whiteoutOpaque:
				newOpaque = append(newOpaque, dir)
				return false, nil
			case strings.HasPrefix(base, whiteoutPrefix):
				newHidden = append(newHidden, path.Join(dir, strings.TrimPrefix(base, whiteoutPrefix)))
				return false, nil
			}
			if !want(name) || isHidden(name) {
				return false, nil
			}
			if _, ok := t.Get(name); ok {
				return false, nil // an upper layer has it
			}
			if hdr.Typeflag == tar.TypeLink {
				target := cleanPath(hdr.Linkname)
				if e, ok := t.Get(target); ok && e.Kind == KindFile {
					x := *e
					x.Path, x.Mode, x.UID, x.GID = name, fileMode(hdr.Mode), hdr.Uid, hdr.Gid
					t.Add(x)
					newHidden = append(newHidden, name)
				} else {
					links[name] = target
				}
				return false, nil
			}
			return false, keep(hdr, r, name)
		})
		if err != nil {
			return nil, err
		}
		if len(links) > 0 {
			// A hard link to a file the COPY does not name (busybox's applets): read the
			// layer again for the targets' contents.
			targets := map[string][]string{}
			for name, target := range links {
				targets[target] = append(targets[target], name)
			}
			err := b.walkLayer(ctx, b.manifest.Layers[i], func(hdr *tar.Header, r io.Reader) (bool, error) {
				names := targets[cleanPath(hdr.Name)]
				if len(names) == 0 || (hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA) {
					return false, nil
				}
				p, d, n, err := c.storeFile(r)
				if err != nil {
					return true, err
				}
				for _, name := range names {
					t.Add(Entry{Path: name, Kind: KindFile, Mode: fileMode(hdr.Mode), UID: hdr.Uid, GID: hdr.Gid, HostPath: p, Digest: d, Size: n})
					newHidden = append(newHidden, name)
				}
				return false, nil
			})
			if err != nil {
				return nil, err
			}
		}
		for _, h := range newHidden {
			hidden[h] = true
		}
		for _, o := range newOpaque {
			opaque[o] = true
		}
	}
	return t, nil
}

// readSmallFiles returns the contents of a few files of the base (absent ones are
// missing from the map), reading layers from the top down and stopping once every
// file is found or deleted: --chown=name reads /etc/passwd and /etc/group so, streaming
// only the layers above and including the ones that hold them.
func (b *baseImage) readSmallFiles(ctx context.Context, names ...string) (map[string][]byte, error) {
	out := map[string][]byte{}
	settled := map[string]bool{}
	for i := range names {
		names[i] = cleanPath(names[i])
	}
	for i := len(b.manifest.Layers) - 1; i >= 0 && len(settled) < len(names); i-- {
		err := b.walkLayer(ctx, b.manifest.Layers[i], func(hdr *tar.Header, r io.Reader) (bool, error) {
			n := cleanPath(hdr.Name)
			for _, name := range names {
				if settled[name] {
					continue
				}
				dir, base := path.Split(name)
				switch {
				case n == name && (hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeRegA):
					data, err := io.ReadAll(io.LimitReader(r, 16<<20))
					if err != nil {
						return true, err
					}
					out[name], settled[name] = data, true
				case n == cleanPath(dir+whiteoutPrefix+base) || n == cleanPath(dir+whiteoutOpaque):
					settled[name] = true
				}
			}
			return len(settled) == len(names), nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (b *baseImage) walkLayer(ctx context.Context, l ocispec.Descriptor, fn func(*tar.Header, io.Reader) (stop bool, err error)) error {
	rc, err := openLayer(ctx, b.src, l)
	if err != nil {
		return fmt.Errorf("%s: %w", b.origin.Name, err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: layer %s: %w", b.origin.Name, l.Digest, err)
		}
		stop, err := fn(hdr, tr)
		if err != nil || stop {
			return err
		}
	}
}
