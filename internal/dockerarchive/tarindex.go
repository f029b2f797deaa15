package dockerarchive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// entry is where a regular file's bytes sit in the archive.
type entry struct {
	off, size int64
}

// tarIndex maps the names in a tar file to their content, so entries are read in
// place through io.SectionReader instead of being extracted.
type tarIndex struct {
	f     *os.File
	files map[string]entry
	links map[string]string // link name → target name, both cleaned
}

// maxLinkHops bounds symlink chains (docker save links duplicate layers once).
const maxLinkHops = 16

// indexTar scans f once. It relies on archive/tar reading headers straight from f
// with no read-ahead, so after Next the file offset is where the entry's data starts.
func indexTar(f *os.File) (*tarIndex, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	x := &tarIndex{f: f, files: map[string]entry{}, links: map[string]string{}}
	tr := tar.NewReader(f)
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if n == 0 {
				return nil, errors.New("not a tar archive: it is empty")
			}
			return x, nil
		}
		if err != nil {
			if n == 0 {
				return nil, fmt.Errorf("not a tar archive: %w", err)
			}
			return nil, fmt.Errorf("read tar: %w", err)
		}
		name := cleanName(hdr.Name)
		switch hdr.Typeflag {
		case tar.TypeReg:
			if isSparse(hdr) {
				// The sparse map sits in the data, so offsets would be wrong; docker
				// never writes sparse entries.
				continue
			}
			off, err := f.Seek(0, io.SeekCurrent)
			if err != nil {
				return nil, err
			}
			x.files[name] = entry{off: off, size: hdr.Size}
			delete(x.links, name)
		case tar.TypeSymlink:
			target := hdr.Linkname
			if !strings.HasPrefix(target, "/") {
				target = path.Join(path.Dir(name), target)
			}
			x.links[name] = cleanName(target)
			delete(x.files, name)
		case tar.TypeLink:
			x.links[name] = cleanName(hdr.Linkname)
			delete(x.files, name)
		}
	}
}

func isSparse(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// cleanName turns a tar or manifest.json path into the index key: no leading "./"
// or "/", no "..", no doubled slashes.
func cleanName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// lookup finds the regular file name refers to, following links.
func (x *tarIndex) lookup(name string) (entry, error) {
	name = cleanName(name)
	orig := name
	for range maxLinkHops {
		if e, ok := x.files[name]; ok {
			return e, nil
		}
		target, ok := x.links[name]
		if !ok {
			return entry{}, fmt.Errorf("%q is not in the archive", orig)
		}
		name = target
	}
	return entry{}, fmt.Errorf("%q: too many levels of links", orig)
}

// section returns a reader over an entry's bytes.
func (x *tarIndex) section(e entry) *io.SectionReader {
	return io.NewSectionReader(x.f, e.off, e.size)
}

// readAll reads a small entry (manifest.json, a config) whole, refusing ones over limit.
func (x *tarIndex) readAll(name string, limit int64) ([]byte, error) {
	e, err := x.lookup(name)
	if err != nil {
		return nil, err
	}
	if e.size > limit {
		return nil, fmt.Errorf("%q is %d bytes, more than the %d allowed", name, e.size, limit)
	}
	b := make([]byte, e.size)
	if _, err := x.f.ReadAt(b, e.off); err != nil {
		return nil, fmt.Errorf("read %q: %w", name, err)
	}
	return b, nil
}
