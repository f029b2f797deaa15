package ocilayout

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sync"
	"time"

	"github.com/hubctl/hubctl/internal/imagestore"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// epoch is the modification time of every entry, so the same image always makes the
// same bytes.
var epoch = time.Unix(0, 0)

// ArchiveWriter writes an image as a tar of an OCI layout, the Target of
// `oci-archive:FILE[:REF]`. Blobs are appended to a temp file next to FILE as they
// are put; Close(nil) appends oci-layout and index.json and renames the temp file to
// FILE, so FILE is either absent, the old file, or complete. The archive is
// deterministic: the same puts in the same order give the same bytes.
type ArchiveWriter struct {
	file string
	ref  string // the REF of the location, "" when it gave none

	mu      sync.Mutex // one entry at a time: a tar is a stream
	tmp     *os.File
	cw      *countingWriter
	tw      *tar.Writer
	written map[digest.Digest]int64 // blobs in the archive, by digest, with their sizes
	dirs    map[string]bool         // directory entries written
	tags    []taggedManifest
	err     error // why the archive cannot be finished
	closed  bool
}

var (
	_ imagestore.Target          = (*ArchiveWriter)(nil)
	_ imagestore.Sequential      = (*ArchiveWriter)(nil)
	_ imagestore.VerifiesDigests = (*ArchiveWriter)(nil)
)

// CreateArchive starts writing the archive at file. ref, when given, is the name
// every tagged manifest is recorded under (see PutManifest). Nothing is written at
// file itself before Close(nil).
func CreateArchive(file, ref string) (*ArchiveWriter, error) {
	if file == "" {
		return nil, errors.New("oci-archive: empty file path")
	}
	loc := "oci-archive:" + file
	if _, err := targetTag(ref); err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	if fi, err := os.Stat(file); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("%s: is a directory", loc)
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("%s: create temp file: %w", loc, err)
	}
	cw := &countingWriter{w: tmp}
	return &ArchiveWriter{
		file:    file,
		ref:     ref,
		tmp:     tmp,
		cw:      cw,
		tw:      tar.NewWriter(cw),
		written: make(map[digest.Digest]int64),
		dirs:    make(map[string]bool),
	}, nil
}

// countingWriter tracks the length of the archive, where a failed entry is cut off.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Tag returns the name the location gives its image: its REF, or DefaultTag.
func (a *ArchiveWriter) Tag() string {
	if a.ref == "" {
		return DefaultTag
	}
	return a.ref
}

// Sequential reports that blobs must be put one at a time: they go into one tar stream.
func (a *ArchiveWriter) Sequential() bool { return true }

// VerifiesDigests reports that PutBlob and PutManifest hash what they write.
func (a *ArchiveWriter) VerifiesDigests() bool { return true }

// HasBlob reports whether the blob was already written into this archive.
func (a *ArchiveWriter) HasBlob(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	size, ok := a.written[desc.Digest]
	return ok && size == desc.Size, nil
}

// HasManifest reports whether the manifest blob was already written into this archive.
func (a *ArchiveWriter) HasManifest(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	return a.HasBlob(ctx, desc)
}

// PutBlob appends the blob read from r as blobs/<alg>/<hex>, hashing it on the way. On a
// mismatch it returns an error wrapping imagestore.ErrDigest and cuts the entry off
// again, so the archive keeps nothing of it.
func (a *ArchiveWriter) PutBlob(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.usable(); err != nil {
		return err
	}
	if err := a.appendBlob(ctx, desc, r); err != nil {
		return fmt.Errorf("oci-archive:%s: put blob %w", a.file, err)
	}
	return nil
}

// PutManifest appends a manifest or index as a blob, verified against desc. With a
// non-empty tag it is also listed in index.json, under the location's REF when it had
// one and under tag otherwise, replacing the entry of that name.
func (a *ArchiveWriter) PutManifest(ctx context.Context, desc ocispec.Descriptor, raw []byte, tag string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.usable(); err != nil {
		return err
	}
	if err := verifyBytes(raw, desc); err != nil {
		return fmt.Errorf("oci-archive:%s: put manifest %w", a.file, err)
	}
	desc, err := manifestDescriptor(desc, raw)
	if err != nil {
		return fmt.Errorf("oci-archive:%s: put %w", a.file, err)
	}
	name := ""
	if tag != "" {
		if name = a.ref; name == "" {
			name = tag
		}
		if err := checkTag(name); err != nil {
			return fmt.Errorf("oci-archive:%s: put manifest %s: %w", a.file, desc.Digest, err)
		}
	}
	if err := a.appendBlob(ctx, desc, bytes.NewReader(raw)); err != nil {
		return fmt.Errorf("oci-archive:%s: put manifest %w", a.file, err)
	}
	if name != "" {
		a.tags = append(a.tags, taggedManifest{tag: name, desc: desc})
	}
	return nil
}

// appendBlob writes one blob entry unless the archive has it already. Called with mu held.
func (a *ArchiveWriter) appendBlob(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	name, err := blobName(desc.Digest)
	if err != nil {
		return err
	}
	if size, ok := a.written[desc.Digest]; ok && size == desc.Size {
		return nil
	}
	if err := a.ensureDirs(path.Dir(name)); err != nil {
		return a.fail(err)
	}
	// Flush pads the previous entry, so start is where a new entry begins and where
	// a failed one is cut off.
	if err := a.tw.Flush(); err != nil {
		return a.fail(err)
	}
	start := a.cw.n
	if err := a.tw.WriteHeader(fileHeader(name, desc.Size)); err != nil {
		return a.rollback(start, fmt.Errorf("%s: %w", desc.Digest, err))
	}
	if err := copyVerified(ctx, a.tw, r, desc); err != nil {
		return a.rollback(start, err)
	}
	if err := a.tw.Flush(); err != nil {
		return a.rollback(start, fmt.Errorf("%s: %w", desc.Digest, err))
	}
	a.written[desc.Digest] = desc.Size
	return nil
}

// ensureDirs writes the directory entries above a blob (blobs/, blobs/<alg>/), which
// the layout does not need but extractors that do not create parents do.
func (a *ArchiveWriter) ensureDirs(dir string) error {
	if dir == "." || a.dirs[dir] {
		return nil
	}
	if err := a.ensureDirs(path.Dir(dir)); err != nil {
		return err
	}
	hdr := &tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: epoch}
	if err := a.tw.WriteHeader(hdr); err != nil {
		return err
	}
	a.dirs[dir] = true
	return nil
}

// fileHeader is the header of every file entry: only name and size vary.
func fileHeader(name string, size int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: epoch}
}

// rollback cuts the archive back to start, dropping a failed entry, and returns cause.
// If that is impossible the archive is marked failed. Called with mu held.
func (a *ArchiveWriter) rollback(start int64, cause error) error {
	if err := a.tmp.Truncate(start); err != nil {
		a.fail(err)
		return cause
	}
	if _, err := a.tmp.Seek(start, io.SeekStart); err != nil {
		a.fail(err)
		return cause
	}
	a.cw.n = start
	a.tw = tar.NewWriter(a.cw)
	return cause
}

// fail records that the archive cannot be completed and returns err.
func (a *ArchiveWriter) fail(err error) error {
	if a.err == nil {
		a.err = err
	}
	return err
}

// usable refuses calls after Close or after a failure. Called with mu held.
func (a *ArchiveWriter) usable() error {
	switch {
	case a.closed:
		return fmt.Errorf("oci-archive:%s: target is closed", a.file)
	case a.err != nil:
		return fmt.Errorf("oci-archive:%s: archive failed earlier: %w", a.file, a.err)
	}
	return nil
}

// Close with a nil err appends oci-layout and index.json, syncs the temp file and
// renames it to FILE. With an error, or after a failure, it removes the temp file and
// leaves FILE as it was.
func (a *ArchiveWriter) Close(err error) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	if err != nil {
		return a.discard()
	}
	if a.err != nil {
		derr := a.discard()
		return errors.Join(fmt.Errorf("oci-archive:%s: archive failed earlier: %w", a.file, a.err), derr)
	}
	if ferr := a.finish(); ferr != nil {
		derr := a.discard()
		return errors.Join(fmt.Errorf("oci-archive:%s: %w", a.file, ferr), derr)
	}
	return nil
}

// finish writes the layout files and the tar trailer and moves the archive into place.
func (a *ArchiveWriter) finish() error {
	idx := newIndex()
	for _, t := range a.tags {
		idx = setTag(idx, t.desc, t.tag)
	}
	indexRaw, err := marshalIndex(idx)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		raw  []byte
	}{
		{ocispec.ImageLayoutFile, layoutFileContent()},
		{ocispec.ImageIndexFile, indexRaw},
	} {
		if err := a.tw.WriteHeader(fileHeader(f.name, int64(len(f.raw)))); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
		if _, err := a.tw.Write(f.raw); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	if err := a.tw.Close(); err != nil {
		return err
	}
	return finishFile(a.tmp, a.file)
}

// discard closes and removes the temp file.
func (a *ArchiveWriter) discard() error {
	a.tmp.Close()
	if err := os.Remove(a.tmp.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("oci-archive:%s: remove temp file: %w", a.file, err)
	}
	return nil
}
