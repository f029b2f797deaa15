package layering

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// sortEntries returns entries sorted by path, the last of any duplicate path kept, with
// every missing parent directory added (0755, root-owned): the order and content a
// reproducible layer needs.
func sortEntries(entries []Entry) []Entry {
	byPath := make(map[string]int, len(entries))
	out := make([]Entry, 0, len(entries))
	for _, e := range entries {
		e.Path = cleanPath(e.Path)
		if e.Path == "" {
			continue // the root itself is never an entry
		}
		if i, ok := byPath[e.Path]; ok {
			out[i] = e
			continue
		}
		byPath[e.Path] = len(out)
		out = append(out, e)
	}
	for _, e := range out[:len(out):len(out)] {
		for dir := path.Dir(e.Path); dir != "." && dir != "/"; dir = path.Dir(dir) {
			if _, ok := byPath[dir]; ok {
				break
			}
			byPath[dir] = len(out)
			out = append(out, Entry{Path: dir, Kind: KindDir, Mode: 0o755})
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// tarMode converts fs.FileMode permission and special bits to a tar header's mode.
func tarMode(m fs.FileMode) int64 {
	v := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}

// fileMode converts a tar header's mode to fs.FileMode bits.
func fileMode(v int64) fs.FileMode {
	m := fs.FileMode(v) & fs.ModePerm
	if v&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if v&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if v&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// writeTar writes entries (already sorted by sortEntries) as a tar stream with every
// time set to mtime, no user or group names and no PAX records beyond what long names
// need, so the same entries give the same bytes on any machine.
func writeTar(w io.Writer, entries []Entry, mtime time.Time) error {
	tw := tar.NewWriter(w)
	for i := range entries {
		e := &entries[i]
		hdr := &tar.Header{
			Name:    e.Path,
			Mode:    tarMode(e.Mode),
			Uid:     e.UID,
			Gid:     e.GID,
			ModTime: mtime,
		}
		switch e.Kind {
		case KindDir:
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		case KindSymlink:
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname = e.Linkname
		default:
			hdr.Typeflag = tar.TypeReg
			hdr.Size = e.Size
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
		if e.Kind != KindFile {
			continue
		}
		rc, err := e.Open()
		if err != nil {
			return err
		}
		n, err := io.Copy(tw, io.LimitReader(rc, e.Size+1))
		rc.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
		if n != e.Size {
			return fmt.Errorf("%s changed while the layer was written (%d bytes, was %d)", e.Path, n, e.Size)
		}
	}
	return tw.Close()
}
