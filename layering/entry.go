package layering

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// Kind is the type of a filesystem entry in a layer.
type Kind uint8

// The entry kinds a layer holds.
const (
	KindFile Kind = iota
	KindDir
	KindSymlink
)

func (k Kind) String() string {
	switch k {
	case KindDir:
		return "dir"
	case KindSymlink:
		return "symlink"
	}
	return "file"
}

// Entry is one file, directory or symlink of a layer (or of a source tree a COPY reads
// from). Its bytes come from a host file or from memory.
type Entry struct {
	// Path is slash-separated and relative to the image root ("app/bin/x").
	Path string
	Kind Kind
	// Mode holds the permission bits and setuid/setgid/sticky (fs.FileMode bits).
	Mode     fs.FileMode
	UID, GID int
	// Linkname is a symlink's target.
	Linkname string
	Size     int64
	// HostPath is the file holding the content (context file, cached extraction).
	HostPath string
	// Data is the content when it is held in memory (heredocs, small files).
	Data []byte
	// Digest is the sha256 of the content ("sha256:…"); filled when the layer is keyed.
	Digest string

	// hostStat is the host file's size, mtime and mode when the context was walked,
	// so the hash cache needs no second stat.
	hostStat *fileHash
}

// Open returns the content of a file entry.
func (e *Entry) Open() (io.ReadCloser, error) {
	if e.HostPath == "" {
		return io.NopCloser(bytes.NewReader(e.Data)), nil
	}
	return os.Open(e.HostPath)
}

// cleanPath makes p a clean image path without the leading slash ("" for the root).
func cleanPath(p string) string {
	if isClean(p) {
		return p // the common case, without allocating
	}
	p = path.Clean("/" + strings.ReplaceAll(p, "\\", "/"))
	return strings.TrimPrefix(p, "/")
}

// isClean reports whether p is already what cleanPath makes of it.
func isClean(p string) bool {
	if p == "" || p[0] == '/' || p[len(p)-1] == '/' || strings.ContainsRune(p, '\\') {
		return false
	}
	start := 0
	for i := 0; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			switch p[start:i] {
			case "", ".", "..":
				return false
			}
			start = i + 1
		}
	}
	return true
}

// normaliseMode is what a layer records for mode when modes are normalised: 0755 for
// directories and for files with any execute bit, 0644 otherwise, as jib and ko do.
func normaliseMode(k Kind, mode fs.FileMode) fs.FileMode {
	switch {
	case k == KindSymlink:
		return 0o777
	case k == KindDir || mode&0o111 != 0:
		return 0o755
	}
	return 0o644
}
