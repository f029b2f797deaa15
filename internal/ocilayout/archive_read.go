package ocilayout

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/hubctl/hubctl/internal/imagestore"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ArchiveReader reads an image from a tar of an OCI layout, the Source of
// `oci-archive:FILE[:REF]`. It never extracts: OpenArchive indexes where each entry's
// bytes lie in the file, and blobs are read in place.
type ArchiveReader struct {
	file    string
	r       archiveData
	closer  io.Closer // the file, nil for archives in memory
	entries map[string]tarEntry
	root    ocispec.Descriptor
}

// archiveData is what an archive is read from: its headers in sequence, blobs at
// their offsets.
type archiveData interface {
	io.ReadSeeker
	io.ReaderAt
}

// tarEntry is where the content of a regular file lies in the archive.
type tarEntry struct {
	off, size int64
}

var _ imagestore.Source = (*ArchiveReader)(nil)

// OpenArchive opens the archive at file as a source, reading its tar headers once.
// ref names the image as for OpenDir. The layout must be at the root of the archive,
// as skopeo and crane write it.
func OpenArchive(file, ref string) (*ArchiveReader, error) {
	if file == "" {
		return nil, errors.New("oci-archive: empty file path")
	}
	loc := "oci-archive:" + file
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: file does not exist: %w", loc, imagestore.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = errors.New("not a regular file")
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	a, err := readArchive(file, f, fi.Size(), ref)
	if err != nil {
		f.Close()
		return nil, err
	}
	a.closer = f
	return a, nil
}

// readArchive indexes the entries of the archive in r (size bytes), checks the
// layout files and resolves ref. file names the archive in errors.
func readArchive(file string, r archiveData, size int64, ref string) (*ArchiveReader, error) {
	a := &ArchiveReader{file: file, r: r}
	if err := a.load(size, ref); err != nil {
		return nil, fmt.Errorf("oci-archive:%s: %w", file, err)
	}
	return a, nil
}

// load indexes the entries, checks the layout files and resolves ref.
func (a *ArchiveReader) load(size int64, ref string) error {
	var err error
	if a.entries, err = indexTar(a.r, size); err != nil {
		return err
	}
	layoutRaw, err := a.readSmall(ocispec.ImageLayoutFile, 1<<16)
	if err != nil {
		return err
	}
	if err := parseLayoutFile(layoutRaw); err != nil {
		return err
	}
	indexRaw, err := a.readSmall(ocispec.ImageIndexFile, maxIndexFileSize)
	if err != nil {
		return err
	}
	idx, err := parseIndex(indexRaw)
	if err != nil {
		return err
	}
	open := func(name string) (io.ReadCloser, error) {
		e, ok := a.entries[name]
		if !ok {
			return nil, fmt.Errorf("no entry %s: %w", name, fs.ErrNotExist)
		}
		return io.NopCloser(io.NewSectionReader(a.r, e.off, e.size)), nil
	}
	a.root, err = resolve(idx, ref, open)
	return err
}

// indexTar reads the headers of the tar in r (size bytes) and returns where each
// regular file's content lies. Seeking past the contents, archive/tar reads only
// headers, so a multi-gigabyte archive costs a few reads per entry.
func indexTar(r io.ReadSeeker, size int64) (map[string]tarEntry, error) {
	entries := make(map[string]tarEntry)
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read tar: %w", err)
		}
		name, err := cleanEntryName(hdr.Name)
		if err != nil {
			return nil, err
		}
		switch hdr.Typeflag {
		case tar.TypeDir, tar.TypeXGlobalHeader:
			continue
		case tar.TypeReg:
		default:
			return nil, fmt.Errorf("tar entry %q: unsupported type %q (only regular files and directories)", hdr.Name, hdr.Typeflag)
		}
		for k := range hdr.PAXRecords {
			// Sparse content is stored in a different shape than it reads, so it
			// cannot be served as a plain section of the file.
			if strings.HasPrefix(k, "GNU.sparse.") {
				return nil, fmt.Errorf("tar entry %q: sparse files are not supported", hdr.Name)
			}
		}
		// archive/tar reads exactly the header blocks, so the position is where
		// the content starts.
		off, err := r.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, fmt.Errorf("read tar: %w", err)
		}
		if off+hdr.Size > size {
			return nil, fmt.Errorf("tar entry %q: truncated (%d bytes at offset %d, file has %d)", hdr.Name, hdr.Size, off, size)
		}
		if _, dup := entries[name]; dup {
			return nil, fmt.Errorf("tar entry %q appears twice", name)
		}
		entries[name] = tarEntry{off: off, size: hdr.Size}
	}
	return entries, nil
}

// cleanEntryName normalises a tar entry name ("./index.json" is "index.json") and
// rejects absolute names and names that climb out of the archive.
func cleanEntryName(name string) (string, error) {
	switch {
	case name == "":
		return "", errors.New("tar entry with an empty name")
	case strings.HasPrefix(name, "/") || strings.HasPrefix(name, `\`):
		return "", fmt.Errorf("tar entry %q: absolute path", name)
	case len(name) >= 2 && name[1] == ':':
		return "", fmt.Errorf("tar entry %q: absolute path (drive letter)", name)
	}
	for _, part := range strings.FieldsFunc(name, func(r rune) bool { return r == '/' || r == '\\' }) {
		if part == ".." {
			return "", fmt.Errorf("tar entry %q: path contains ..", name)
		}
	}
	return path.Clean(name), nil
}

// readSmall reads a whole entry that must not exceed limit bytes.
func (a *ArchiveReader) readSmall(name string, limit int64) ([]byte, error) {
	e, ok := a.entries[name]
	if !ok {
		return nil, fmt.Errorf("not an OCI layout archive: no %s entry", name)
	}
	if e.size > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, limit)
	}
	raw := make([]byte, e.size)
	if _, err := a.r.ReadAt(raw, e.off); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return raw, nil
}

// Root returns the descriptor of the image the location names and its verified bytes.
func (a *ArchiveReader) Root(ctx context.Context) (ocispec.Descriptor, []byte, error) {
	return readRoot(ctx, a.Manifest, a.root, "oci-archive:"+a.file)
}

// Manifest returns the bytes of the manifest or index desc names, verified.
func (a *ArchiveReader) Manifest(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
	sr, err := a.section(ctx, desc)
	if err != nil {
		return nil, err
	}
	raw, err := readManifest(sr, desc)
	if err != nil {
		return nil, fmt.Errorf("oci-archive:%s: manifest %w", a.file, err)
	}
	return raw, nil
}

// Blob returns a reader over the blob's bytes inside the archive, after checking its
// size against desc. Readers may be used concurrently; the bytes are not hashed here.
func (a *ArchiveReader) Blob(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	sr, err := a.section(ctx, desc)
	if err != nil {
		return nil, err
	}
	return sectionReadCloser{sr}, nil
}

// sectionReadCloser is a blob inside the archive; it also seeks and reads at offsets.
type sectionReadCloser struct {
	*io.SectionReader
}

// Close does nothing: the archive file stays open until ArchiveReader.Close.
func (sectionReadCloser) Close() error { return nil }

// section finds the entry of desc and checks its size.
func (a *ArchiveReader) section(ctx context.Context, desc ocispec.Descriptor) (*io.SectionReader, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	name, err := blobName(desc.Digest)
	if err != nil {
		return nil, fmt.Errorf("oci-archive:%s: %w", a.file, err)
	}
	e, ok := a.entries[name]
	if !ok {
		return nil, fmt.Errorf("oci-archive:%s: blob %s: %w", a.file, desc.Digest, imagestore.ErrNotFound)
	}
	if e.size != desc.Size {
		return nil, fmt.Errorf("oci-archive:%s: blob %s is %d bytes, descriptor says %d: %w", a.file, desc.Digest, e.size, desc.Size, imagestore.ErrDigest)
	}
	return io.NewSectionReader(a.r, e.off, e.size), nil
}

// Close closes the archive file; readers from Blob stop working.
func (a *ArchiveReader) Close() error {
	if a.closer == nil {
		return nil
	}
	if err := a.closer.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("oci-archive:%s: %w", a.file, err)
	}
	return nil
}
