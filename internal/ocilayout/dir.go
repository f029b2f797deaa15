package ocilayout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/hubctl/hubctl/internal/imagestore"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DirReader reads an image from an OCI layout directory: the Source of
// `oci:DIR[:REF]`.
type DirReader struct {
	dir  string
	root ocispec.Descriptor
}

var _ imagestore.Source = (*DirReader)(nil)

// OpenDir opens the layout at dir as a source. ref names the image: a name in
// index.json, a digest (of an entry in index.json or of a manifest blob), or empty
// for the only manifest index.json lists.
func OpenDir(dir, ref string) (*DirReader, error) {
	if dir == "" {
		return nil, errors.New("oci: empty directory path")
	}
	loc := "oci:" + dir
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: directory does not exist: %w", loc, imagestore.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s: not a directory", loc)
	}
	layoutRaw, err := readSmallFile(filepath.Join(dir, ocispec.ImageLayoutFile), 1<<16)
	if err != nil {
		return nil, fmt.Errorf("%s: not an OCI layout: %w", loc, err)
	}
	if err := parseLayoutFile(layoutRaw); err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	indexRaw, err := readSmallFile(filepath.Join(dir, ocispec.ImageIndexFile), maxIndexFileSize)
	if err != nil {
		return nil, fmt.Errorf("%s: not an OCI layout: %w", loc, err)
	}
	idx, err := parseIndex(indexRaw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	d := &DirReader{dir: dir}
	open := func(name string) (io.ReadCloser, error) {
		return os.Open(filepath.Join(dir, filepath.FromSlash(name)))
	}
	if d.root, err = resolve(idx, ref, open); err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	return d, nil
}

// Root returns the descriptor of the image the location names and its verified bytes.
func (d *DirReader) Root(ctx context.Context) (ocispec.Descriptor, []byte, error) {
	return readRoot(ctx, d.Manifest, d.root, "oci:"+d.dir)
}

// Manifest returns the bytes of the manifest or index desc names, verified.
func (d *DirReader) Manifest(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
	f, err := d.open(ctx, desc)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := readManifest(f, desc)
	if err != nil {
		return nil, fmt.Errorf("oci:%s: manifest %w", d.dir, err)
	}
	return raw, nil
}

// Blob opens a blob of the layout after checking its size against desc; the bytes are
// not hashed here (the engine hashes the stream).
func (d *DirReader) Blob(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	return d.open(ctx, desc)
}

// open opens the blob desc names and checks that it has desc.Size bytes.
func (d *DirReader) open(ctx context.Context, desc ocispec.Descriptor) (*os.File, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	name, err := blobName(desc.Digest)
	if err != nil {
		return nil, fmt.Errorf("oci:%s: %w", d.dir, err)
	}
	p := filepath.Join(d.dir, filepath.FromSlash(name))
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("oci:%s: blob %s: %w", d.dir, desc.Digest, imagestore.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("oci:%s: blob %s: %w", d.dir, desc.Digest, err)
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
		err = fmt.Errorf("oci:%s: blob %s: %w", d.dir, desc.Digest, err)
	case !fi.Mode().IsRegular():
		err = fmt.Errorf("oci:%s: blob %s: %s is not a regular file", d.dir, desc.Digest, p)
	case fi.Size() != desc.Size:
		err = fmt.Errorf("oci:%s: blob %s is %d bytes, descriptor says %d: %w", d.dir, desc.Digest, fi.Size(), desc.Size, imagestore.ErrDigest)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Close releases the source; a directory holds nothing open between calls.
func (d *DirReader) Close() error { return nil }

// DirWriter writes images into an OCI layout directory, new or existing: the Target of
// `oci:DIR[:REF]`. Blobs and manifests are written atomically as they come and may be
// put concurrently; index.json is rewritten atomically by Close(nil).
type DirWriter struct {
	dir     string
	ref     string // the REF of the location, "" when it gave none
	created bool   // dir did not exist: Close(err) removes it

	mu     sync.Mutex
	tags   []taggedManifest
	closed bool
}

var (
	_ imagestore.Target          = (*DirWriter)(nil)
	_ imagestore.VerifiesDigests = (*DirWriter)(nil)
)

// CreateDir opens dir as a target, creating it with its oci-layout and index.json
// when missing, or adding to the layout already there. ref, when given, is the name
// every tagged manifest is recorded under (see PutManifest).
func CreateDir(dir, ref string) (*DirWriter, error) {
	if dir == "" {
		return nil, errors.New("oci: empty directory path")
	}
	loc := "oci:" + dir
	if _, err := targetTag(ref); err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	w := &DirWriter{dir: dir, ref: ref}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		w.created = true
	case err != nil:
		return nil, fmt.Errorf("%s: %w", loc, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("%s: exists and is not a directory", loc)
	}
	if err := w.initLayout(); err != nil {
		if w.created {
			os.RemoveAll(dir)
		}
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	return w, nil
}

// initLayout makes dir a valid layout (possibly empty), checking an existing one.
func (w *DirWriter) initLayout() error {
	if err := os.MkdirAll(filepath.Join(w.dir, ocispec.ImageBlobsDir), 0o755); err != nil {
		return err
	}
	layoutPath := filepath.Join(w.dir, ocispec.ImageLayoutFile)
	raw, err := readSmallFile(layoutPath, 1<<16)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// An unrelated directory (a home directory, say) is not silently turned into
		// a layout: only an empty one is.
		entries, err := os.ReadDir(w.dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.Name() != ocispec.ImageBlobsDir {
				return fmt.Errorf("directory is not empty and has no %s: not an OCI layout", ocispec.ImageLayoutFile)
			}
		}
		if err := writeFileAtomic(layoutPath, layoutFileContent()); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		if err := parseLayoutFile(raw); err != nil {
			return err
		}
	}
	indexPath := filepath.Join(w.dir, ocispec.ImageIndexFile)
	raw, err = readSmallFile(indexPath, maxIndexFileSize)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		raw, err := marshalIndex(newIndex())
		if err != nil {
			return err
		}
		return writeFileAtomic(indexPath, raw)
	case err != nil:
		return err
	}
	_, err = parseIndex(raw)
	return err
}

// Tag returns the name the location gives its image: its REF, or DefaultTag.
func (w *DirWriter) Tag() string {
	if w.ref == "" {
		return DefaultTag
	}
	return w.ref
}

// VerifiesDigests reports that PutBlob and PutManifest hash what they store.
func (w *DirWriter) VerifiesDigests() bool { return true }

// HasBlob reports whether the layout holds a file for desc with desc.Size bytes.
func (w *DirWriter) HasBlob(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	name, err := blobName(desc.Digest)
	if err != nil {
		return false, fmt.Errorf("oci:%s: %w", w.dir, err)
	}
	fi, err := os.Stat(filepath.Join(w.dir, filepath.FromSlash(name)))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("oci:%s: %w", w.dir, err)
	}
	return fi.Mode().IsRegular() && fi.Size() == desc.Size, nil
}

// HasManifest reports whether the layout holds the manifest blob; it says nothing
// about names in index.json.
func (w *DirWriter) HasManifest(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	return w.HasBlob(ctx, desc)
}

// PutBlob stores the blob read from r under blobs/<alg>/<hex>, verified against desc.
// On a mismatch it returns an error wrapping imagestore.ErrDigest and leaves no file.
// Calls may run concurrently, for the same digest too.
func (w *DirWriter) PutBlob(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	if err := w.usable(); err != nil {
		return err
	}
	if err := w.writeBlob(ctx, desc, r); err != nil {
		return fmt.Errorf("oci:%s: put blob %w", w.dir, err)
	}
	return nil
}

// PutManifest stores a manifest or index as a blob, verified against desc. With a
// non-empty tag it is also listed in index.json, under the location's REF when it had
// one and under tag otherwise, replacing the entry of that name; Close(nil) writes
// index.json.
func (w *DirWriter) PutManifest(ctx context.Context, desc ocispec.Descriptor, raw []byte, tag string) error {
	if err := w.usable(); err != nil {
		return err
	}
	if err := verifyBytes(raw, desc); err != nil {
		return fmt.Errorf("oci:%s: put manifest %w", w.dir, err)
	}
	desc, err := manifestDescriptor(desc, raw)
	if err != nil {
		return fmt.Errorf("oci:%s: put %w", w.dir, err)
	}
	name := ""
	if tag != "" {
		if name = w.ref; name == "" {
			name = tag
		}
		if err := checkTag(name); err != nil {
			return fmt.Errorf("oci:%s: put manifest %s: %w", w.dir, desc.Digest, err)
		}
	}
	if err := w.writeBlob(ctx, desc, bytes.NewReader(raw)); err != nil {
		return fmt.Errorf("oci:%s: put manifest %w", w.dir, err)
	}
	if name != "" {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.tags = append(w.tags, taggedManifest{tag: name, desc: desc})
	}
	return nil
}

// writeBlob streams r into a temp file next to the blob's place while hashing it, and
// renames it into place once size and digest match.
func (w *DirWriter) writeBlob(ctx context.Context, desc ocispec.Descriptor, r io.Reader) (err error) {
	name, err := blobName(desc.Digest)
	if err != nil {
		return err
	}
	final := filepath.Join(w.dir, filepath.FromSlash(name))
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%s: %w", desc.Digest, err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-"+desc.Digest.Encoded()[:16]+"-*")
	if err != nil {
		return fmt.Errorf("%s: %w", desc.Digest, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := copyVerified(ctx, tmp, r, desc); err != nil {
		return err
	}
	if err := finishFile(tmp, final); err != nil {
		// Another writer may have put the same content in place first (Windows
		// refuses to rename over a file that is open).
		if fi, serr := os.Stat(final); serr == nil && fi.Size() == desc.Size {
			os.Remove(tmp.Name())
			return nil
		}
		return fmt.Errorf("%s: %w", desc.Digest, err)
	}
	return nil
}

// usable refuses calls after Close.
func (w *DirWriter) usable() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("oci:%s: target is closed", w.dir)
	}
	return nil
}

// Close with a nil err records the tagged manifests in index.json (re-read now, so
// entries another writer added meanwhile stay) and replaces it atomically. With an
// error it leaves index.json alone, and removes the directory if CreateDir made it;
// blobs already written to an existing layout stay, complete and verified, for a retry.
func (w *DirWriter) Close(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	if err != nil {
		if w.created {
			if rerr := os.RemoveAll(w.dir); rerr != nil {
				return fmt.Errorf("oci:%s: discard: %w", w.dir, rerr)
			}
		}
		return nil
	}
	if len(w.tags) == 0 {
		return nil
	}
	indexPath := filepath.Join(w.dir, ocispec.ImageIndexFile)
	idx := newIndex()
	raw, rerr := readSmallFile(indexPath, maxIndexFileSize)
	switch {
	case rerr == nil:
		if idx, rerr = parseIndex(raw); rerr != nil {
			return fmt.Errorf("oci:%s: %w", w.dir, rerr)
		}
	case !errors.Is(rerr, fs.ErrNotExist):
		return fmt.Errorf("oci:%s: %w", w.dir, rerr)
	}
	for _, t := range w.tags {
		idx = setTag(idx, t.desc, t.tag)
	}
	if raw, rerr = marshalIndex(idx); rerr != nil {
		return fmt.Errorf("oci:%s: %w", w.dir, rerr)
	}
	if rerr := writeFileAtomic(indexPath, raw); rerr != nil {
		return fmt.Errorf("oci:%s: write %s: %w", w.dir, ocispec.ImageIndexFile, rerr)
	}
	return nil
}
