// Package ocilayout reads and writes images in the OCI image layout, either as a
// directory (`oci:DIR[:REF]`) or as a tar archive of one (`oci-archive:FILE[:REF]`),
// as the transfer engine's imagestore.Source and imagestore.Target.
//
// The layout is the one of the image-spec (image-layout.md): an oci-layout file, an
// index.json whose manifests carry their names in the org.opencontainers.image.ref.name
// annotation, and content-addressed blobs under blobs/<alg>/<hex>. The children of an
// index are stored as blobs only, never listed in index.json.
package ocilayout

import (
	"context"
	_ "crypto/sha256" // registers sha256 for digest.SHA256
	_ "crypto/sha512" // registers sha512 for digest.SHA512
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/hubctl/hubctl/internal/imagestore"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultTag is the name a target gives the image when its location has no REF.
const DefaultTag = "latest"

const (
	// maxManifestSize bounds what is read into memory as a manifest or index: the
	// distribution spec asks registries to accept at least 4 MiB, so nothing an image
	// can carry is larger.
	maxManifestSize = 4 << 20
	// maxIndexFileSize bounds index.json, which may list many tags.
	maxIndexFileSize = 64 << 20
)

// refNameRE is the grammar of org.opencontainers.image.ref.name in the image-spec
// (annotations.md); tagRE is a registry tag, which the engine may pass on and which
// that grammar does not always cover ("1.0_").
var (
	refNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9]+(?:(?:[-._:@/+]|--)[A-Za-z0-9]+)*$`) })
	tagRE     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`) })
)

// checkTag reports whether tag can name a manifest in index.json.
func checkTag(tag string) error {
	if isDigestLike(tag) {
		return fmt.Errorf("%q is a digest, not a name", tag)
	}
	if len(tag) > 255 || !(refNameRE().MatchString(tag) || tagRE().MatchString(tag)) {
		return fmt.Errorf("%q is not a valid ref name", tag)
	}
	return nil
}

// isDigestLike reports whether ref is meant as a digest (it starts with a known
// algorithm and a colon), so that a malformed one is reported as such, not as a
// missing tag.
func isDigestLike(ref string) bool {
	alg, _, ok := strings.Cut(ref, ":")
	return ok && (alg == "sha256" || alg == "sha512" || alg == "sha384")
}

// blobName returns the slash-separated name of d in a layout, blobs/<alg>/<hex>, after
// checking that d is well formed and of an algorithm the layout supports.
func blobName(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("digest %q: %w", d, err)
	}
	if alg := d.Algorithm(); alg != digest.SHA256 && alg != digest.SHA512 {
		return "", fmt.Errorf("digest %s: algorithm %s is not supported (sha256, sha512)", d, alg)
	}
	return path.Join(ocispec.ImageBlobsDir, string(d.Algorithm()), d.Encoded()), nil
}

// verifyBytes checks raw against the size and digest of desc.
func verifyBytes(raw []byte, desc ocispec.Descriptor) error {
	if int64(len(raw)) != desc.Size {
		return fmt.Errorf("%s is %d bytes, descriptor says %d: %w", desc.Digest, len(raw), desc.Size, imagestore.ErrDigest)
	}
	if got := desc.Digest.Algorithm().FromBytes(raw); got != desc.Digest {
		return fmt.Errorf("%s: content hashes to %s: %w", desc.Digest, got, imagestore.ErrDigest)
	}
	return nil
}

// readManifest reads a manifest of desc.Size bytes from r and verifies it.
func readManifest(r io.Reader, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Size < 0 || desc.Size > maxManifestSize {
		return nil, fmt.Errorf("%s: manifest size %d is out of range (max %d)", desc.Digest, desc.Size, maxManifestSize)
	}
	raw, err := io.ReadAll(io.LimitReader(r, desc.Size+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", desc.Digest, err)
	}
	if err := verifyBytes(raw, desc); err != nil {
		return nil, err
	}
	return raw, nil
}

// sniffMediaType returns the mediaType field of a manifest or index, for descriptors
// that do not say (a REF by digest of a blob index.json does not list).
func sniffMediaType(raw []byte) string {
	var m struct {
		MediaType string `json:"mediaType"`
	}
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	return m.MediaType
}

// parseLayoutFile checks the content of an oci-layout file.
func parseLayoutFile(raw []byte) error {
	var l ocispec.ImageLayout
	if err := json.Unmarshal(raw, &l); err != nil {
		return fmt.Errorf("%s: %w", ocispec.ImageLayoutFile, err)
	}
	// Versions are semver; 1.x readers read every 1.x layout.
	if !strings.HasPrefix(l.Version, "1.") {
		return fmt.Errorf("%s: unsupported imageLayoutVersion %q", ocispec.ImageLayoutFile, l.Version)
	}
	return nil
}

// layoutFileContent is the oci-layout file hubctl writes.
func layoutFileContent() []byte {
	raw, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	return raw
}

// parseIndex decodes index.json.
func parseIndex(raw []byte) (ocispec.Index, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return idx, fmt.Errorf("%s: %w", ocispec.ImageIndexFile, err)
	}
	if idx.SchemaVersion != 2 {
		return idx, fmt.Errorf("%s: schemaVersion is %d, want 2", ocispec.ImageIndexFile, idx.SchemaVersion)
	}
	return idx, nil
}

// newIndex returns an empty index.json.
func newIndex() ocispec.Index {
	return ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{},
	}
}

// marshalIndex encodes index.json; the manifests list is never null, as the spec
// requires the field.
func marshalIndex(idx ocispec.Index) ([]byte, error) {
	if idx.Manifests == nil {
		idx.Manifests = []ocispec.Descriptor{}
	}
	raw, err := json.Marshal(idx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ocispec.ImageIndexFile, err)
	}
	return raw, nil
}

// setTag returns idx with desc listed under tag: an entry with the same name is
// replaced in place, entries with other names stay.
func setTag(idx ocispec.Index, desc ocispec.Descriptor, tag string) ocispec.Index {
	ann := make(map[string]string, len(desc.Annotations)+1)
	for k, v := range desc.Annotations {
		ann[k] = v
	}
	ann[ocispec.AnnotationRefName] = tag
	desc.Annotations = ann

	out := make([]ocispec.Descriptor, 0, len(idx.Manifests)+1)
	placed := false
	for _, m := range idx.Manifests {
		if m.Annotations[ocispec.AnnotationRefName] != tag {
			out = append(out, m)
		} else if !placed {
			out = append(out, desc)
			placed = true
		}
	}
	if !placed {
		out = append(out, desc)
	}
	idx.Manifests = out
	return idx
}

// taggedManifest is a manifest recorded under a name by a target.
type taggedManifest struct {
	tag  string
	desc ocispec.Descriptor
}

// manifestNames lists the entries of index.json for error messages: their names, or
// their digests when unnamed.
func manifestNames(idx ocispec.Index) string {
	names := make([]string, 0, len(idx.Manifests))
	for _, m := range idx.Manifests {
		if n := m.Annotations[ocispec.AnnotationRefName]; n != "" {
			names = append(names, n)
		} else {
			names = append(names, m.Digest.String())
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// blobReader opens the named blob of a layout for resolve; it returns an error
// wrapping fs.ErrNotExist when the layout lacks it.
type blobReader func(name string) (io.ReadCloser, error)

// resolve finds the manifest REF names in idx: a name, a digest (listed in index.json
// or just present as a blob), or, for an empty REF, the only manifest listed.
func resolve(idx ocispec.Index, ref string, open blobReader) (ocispec.Descriptor, error) {
	switch {
	case ref == "":
		if len(idx.Manifests) != 1 {
			if len(idx.Manifests) == 0 {
				return ocispec.Descriptor{}, fmt.Errorf("%s lists no manifest: %w", ocispec.ImageIndexFile, imagestore.ErrNotFound)
			}
			return ocispec.Descriptor{}, fmt.Errorf("%s lists %d manifests (%s): name one", ocispec.ImageIndexFile, len(idx.Manifests), manifestNames(idx))
		}
		return idx.Manifests[0], nil
	case isDigestLike(ref):
		return resolveDigest(idx, ref, open)
	}
	var found []ocispec.Descriptor
	for _, m := range idx.Manifests {
		if m.Annotations[ocispec.AnnotationRefName] == ref {
			found = append(found, m)
		}
	}
	switch len(found) {
	case 0:
		return ocispec.Descriptor{}, fmt.Errorf("no manifest named %q in %s (names: %s): %w", ref, ocispec.ImageIndexFile, manifestNames(idx), imagestore.ErrNotFound)
	case 1:
		return found[0], nil
	}
	digests := make([]string, len(found))
	for i, m := range found {
		digests[i] = m.Digest.String()
	}
	return ocispec.Descriptor{}, fmt.Errorf("%d manifests named %q in %s (%s): name one by digest", len(found), ref, ocispec.ImageIndexFile, strings.Join(digests, ", "))
}

// resolveDigest finds the manifest with digest ref, in index.json or among the blobs
// (a child of an index is stored as a blob only).
func resolveDigest(idx ocispec.Index, ref string, open blobReader) (ocispec.Descriptor, error) {
	d, err := digest.Parse(ref)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("invalid digest %q: %w", ref, err)
	}
	if i := slices.IndexFunc(idx.Manifests, func(m ocispec.Descriptor) bool { return m.Digest == d }); i >= 0 {
		return idx.Manifests[i], nil
	}
	name, err := blobName(d)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	rc, err := open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return ocispec.Descriptor{}, fmt.Errorf("manifest %s is neither in %s nor a blob: %w", d, ocispec.ImageIndexFile, imagestore.ErrNotFound)
	}
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("manifest %s: %w", d, err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, maxManifestSize+1))
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("manifest %s: %w", d, err)
	}
	if len(raw) > maxManifestSize {
		return ocispec.Descriptor{}, fmt.Errorf("manifest %s: larger than %d bytes", d, maxManifestSize)
	}
	desc := ocispec.Descriptor{Digest: d, Size: int64(len(raw)), MediaType: sniffMediaType(raw)}
	if err := verifyBytes(raw, desc); err != nil {
		return ocispec.Descriptor{}, err
	}
	if desc.MediaType == "" {
		return ocispec.Descriptor{}, fmt.Errorf("blob %s has no mediaType: not a manifest or index", d)
	}
	return desc, nil
}

// targetTag returns the name a target records its root under: ref, or DefaultTag.
func targetTag(ref string) (string, error) {
	if ref == "" {
		return DefaultTag, nil
	}
	if err := checkTag(ref); err != nil {
		return "", fmt.Errorf("target name: %w", err)
	}
	return ref, nil
}

// ctxReader stops a copy promptly when its context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// copyVerified copies exactly desc.Size bytes from r to w while hashing them, and
// checks that r ends there and that the bytes match desc.Digest. The caller has
// checked the digest with blobName.
func copyVerified(ctx context.Context, w io.Writer, r io.Reader, desc ocispec.Descriptor) error {
	if desc.Size < 0 {
		return fmt.Errorf("%s: negative size %d", desc.Digest, desc.Size)
	}
	h := desc.Digest.Algorithm().Hash()
	src := ctxReader{ctx: ctx, r: r}
	// A larger buffer than io.Copy's 32 KiB halves the syscalls on layer-sized blobs.
	buf := make([]byte, min(desc.Size+1, 256<<10))
	n, err := io.CopyBuffer(io.MultiWriter(w, h), io.LimitReader(src, desc.Size), buf)
	if err == nil && n < desc.Size {
		err = io.EOF
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: stream ended after %d of %d bytes: %w", desc.Digest, n, desc.Size, imagestore.ErrDigest)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", desc.Digest, err)
	}
	var one [1]byte
	if m, _ := io.ReadFull(src, one[:]); m > 0 {
		return fmt.Errorf("%s: stream is longer than %d bytes: %w", desc.Digest, desc.Size, imagestore.ErrDigest)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", desc.Digest, err)
	}
	if got := digest.NewDigest(desc.Digest.Algorithm(), h); got != desc.Digest {
		return fmt.Errorf("%s: content hashes to %s: %w", desc.Digest, got, imagestore.ErrDigest)
	}
	return nil
}

// manifestDescriptor fills in a missing mediaType from the manifest's own field.
func manifestDescriptor(desc ocispec.Descriptor, raw []byte) (ocispec.Descriptor, error) {
	if desc.MediaType == "" {
		desc.MediaType = sniffMediaType(raw)
		if desc.MediaType == "" {
			return desc, fmt.Errorf("manifest %s: no mediaType in descriptor or content", desc.Digest)
		}
	}
	return desc, nil
}

// readRoot reads the root manifest through a reader's Manifest and completes its
// descriptor from the bytes; loc names the layout in errors.
func readRoot(ctx context.Context, manifest func(context.Context, ocispec.Descriptor) ([]byte, error), root ocispec.Descriptor, loc string) (ocispec.Descriptor, []byte, error) {
	raw, err := manifest(ctx, root)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	desc, err := manifestDescriptor(root, raw)
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("%s: %w", loc, err)
	}
	return desc, raw, nil
}
