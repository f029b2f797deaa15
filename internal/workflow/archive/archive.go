// Package archive checks and extracts the tar streams that carry workflow artifacts
// and caches between a job's workspace and the hub's blob store (docs/workflows.md,
// "Artifacts and caches"). A tar made inside a job is the job's own writing, so it is
// read as an attacker's: Check refuses, and Extract never writes, an entry with an
// absolute name, a ".." element, a link whose target leaves the tree, a device, FIFO
// or other special file, or more than a configured number of bytes or entries.
package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ErrUnsafe is what Check and Extract wrap when an entry is refused.
var ErrUnsafe = errors.New("unsafe tar entry")

// ErrTooLarge is what Check and Extract wrap when the content passes its limits.
var ErrTooLarge = errors.New("archive too large")

// Limits bound what one archive may hold; zero fields take the defaults.
type Limits struct {
	// Bytes bounds the sum of the regular files' sizes (default 1 GiB).
	Bytes int64
	// Entries bounds the number of entries (default 100,000).
	Entries int
	// StripTop drops the first element of every name (the exported path's base
	// name), so a cache directory's content is extracted into the cache path itself.
	StripTop bool
}

func (l Limits) withDefaults() Limits {
	if l.Bytes <= 0 {
		l.Bytes = 1 << 30
	}
	if l.Entries <= 0 {
		l.Entries = 100_000
	}
	return l
}

// cleanName returns the entry's name as a clean relative slash path, or an error when
// it is absolute or climbs out with "..".
func cleanName(name string) (string, error) {
	if name == "" || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("%w: empty name or NUL in %q", ErrUnsafe, name)
	}
	n := strings.ReplaceAll(name, "\\", "/")
	if strings.HasPrefix(n, "/") || filepath.IsAbs(name) || (len(n) > 1 && n[1] == ':') {
		return "", fmt.Errorf("%w: %q is an absolute path", ErrUnsafe, name)
	}
	for _, el := range strings.Split(n, "/") {
		if el == ".." {
			return "", fmt.Errorf("%w: %q climbs out with ..", ErrUnsafe, name)
		}
	}
	c := path.Clean(n)
	if c == "." {
		return ".", nil
	}
	return c, nil
}

// linkInside reports whether a symbolic link at name (clean, relative) pointing to
// target stays inside the tree: a relative target that, resolved from the link's
// directory, never leaves it.
func linkInside(name, target string) bool {
	if target == "" || strings.HasPrefix(target, "/") || strings.ContainsRune(target, 0) {
		return false
	}
	depth := strings.Count(name, "/") // directories above the link, inside the tree
	for _, el := range strings.Split(target, "/") {
		switch el {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return false
			}
		default:
			depth++
		}
	}
	return true
}

// checker follows one archive's entries and refuses what is unsafe.
type checker struct {
	lim     Limits
	entries int
	bytes   int64
	// links are the names of symbolic links seen: an entry under one would be
	// written through it.
	links map[string]bool
}

func newChecker(l Limits) *checker { return &checker{lim: l.withDefaults(), links: map[string]bool{}} }

// check returns the entry's clean name, or why it is refused.
func (c *checker) check(h *tar.Header) (string, error) {
	c.entries++
	if c.entries > c.lim.Entries {
		return "", fmt.Errorf("%w: more than %d entries", ErrTooLarge, c.lim.Entries)
	}
	name, err := cleanName(h.Name)
	if err != nil {
		return "", err
	}
	if c.lim.StripTop {
		if name = strip(name); name == "." {
			if h.Typeflag != tar.TypeDir {
				return "", fmt.Errorf("%w: %q is not a directory", ErrUnsafe, h.Name)
			}
			return "", nil
		}
	}
	for dir := path.Dir(name); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if c.links[dir] {
			return "", fmt.Errorf("%w: %q lies under the symbolic link %q", ErrUnsafe, h.Name, dir)
		}
	}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA:
		if h.Size < 0 {
			return "", fmt.Errorf("%w: %q has a negative size", ErrUnsafe, h.Name)
		}
		c.bytes += h.Size
		if c.bytes > c.lim.Bytes {
			return "", fmt.Errorf("%w: more than %d bytes of files", ErrTooLarge, c.lim.Bytes)
		}
	case tar.TypeDir:
	case tar.TypeSymlink:
		if name == "." || !linkInside(name, h.Linkname) {
			return "", fmt.Errorf("%w: symbolic link %q -> %q points outside the archive", ErrUnsafe, h.Name, h.Linkname)
		}
		c.links[name] = true
	case tar.TypeLink:
		target, err := c.linkTarget(h.Linkname)
		if err != nil || target == "." {
			return "", fmt.Errorf("%w: hard link %q -> %q points outside the archive", ErrUnsafe, h.Name, h.Linkname)
		}
	case tar.TypeXGlobalHeader:
		return "", nil
	default:
		return "", fmt.Errorf("%w: %q is a device, FIFO or other special file (type %q)", ErrUnsafe, h.Name, h.Typeflag)
	}
	return name, nil
}

// strip drops a clean name's first element.
func strip(name string) string {
	if i := strings.IndexByte(name, '/'); i >= 0 {
		return name[i+1:]
	}
	return "."
}

// linkTarget is a hard link's target as the entry names are written.
func (c *checker) linkTarget(target string) (string, error) {
	t, err := cleanName(target)
	if err != nil {
		return "", err
	}
	if c.lim.StripTop {
		t = strip(t)
	}
	return t, nil
}

// Check copies the tar stream r to w, refusing (with ErrUnsafe or ErrTooLarge, after
// which w holds a truncated stream that must be discarded) the first entry Extract
// would refuse. Entries are rewritten with their clean names and without owners, so
// what an executor extracts is what Check saw.
func Check(w io.Writer, r io.Reader, l Limits) error {
	c := newChecker(l)
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return tw.Close()
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		name, err := c.check(h)
		if err != nil {
			return err
		}
		if name == "" {
			continue
		}
		out := &tar.Header{Typeflag: h.Typeflag, Name: name, Linkname: h.Linkname, Size: h.Size,
			Mode: h.Mode & 0o777, ModTime: h.ModTime, Format: tar.FormatPAX}
		switch h.Typeflag {
		case tar.TypeRegA:
			out.Typeflag = tar.TypeReg
		case tar.TypeDir:
			out.Name = name + "/"
			out.Size = 0
		case tar.TypeLink:
			out.Linkname, _ = c.linkTarget(h.Linkname)
			out.Size = 0
		case tar.TypeSymlink:
			out.Size = 0
		}
		if err := tw.WriteHeader(out); err != nil {
			return fmt.Errorf("write tar: %w", err)
		}
		if out.Typeflag == tar.TypeReg {
			if _, err := io.CopyN(tw, tr, h.Size); err != nil {
				return fmt.Errorf("copy %s: %w", name, err)
			}
		}
	}
}

// Extract writes the tar stream r under dir (made if missing), refusing unsafe entries
// (ErrUnsafe) and content past l (ErrTooLarge). It never follows a symbolic link
// that is already on disk under dir out of it: every parent of an entry is checked
// to be a real directory inside dir before anything is written there.
func Extract(r io.Reader, dir string, l Limits) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	c := newChecker(l)
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		name, err := c.check(h)
		if err != nil {
			return err
		}
		if name == "" || name == "." {
			continue
		}
		target := h.Linkname
		if h.Typeflag == tar.TypeLink {
			target, _ = c.linkTarget(h.Linkname)
		}
		if err := extractOne(root, tr, h, name, target); err != nil {
			return fmt.Errorf("extract %s: %w", name, err)
		}
	}
}

// extractOne writes one checked entry through root, which refuses any path that
// resolves outside it (a symbolic link made by an earlier entry, or on disk already).
func extractOne(root *os.Root, tr io.Reader, h *tar.Header, name, target string) error {
	if d := path.Dir(name); d != "." {
		if err := root.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	mode := os.FileMode(h.Mode & 0o777)
	switch h.Typeflag {
	case tar.TypeDir:
		if mode == 0 {
			mode = 0o755
		}
		if err := root.Mkdir(name, mode|0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		return nil
	case tar.TypeReg, tar.TypeRegA:
		_ = root.Remove(name) // a link or file in the way is replaced, not written through
		f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode|0o600)
		if err != nil {
			return err
		}
		if _, err := io.CopyN(f, tr, h.Size); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	case tar.TypeSymlink:
		_ = root.Remove(name)
		return root.Symlink(target, name)
	case tar.TypeLink:
		_ = root.Remove(name)
		return root.Link(target, name)
	}
	return nil
}

// Create writes to w a tar of rel (a slash path inside dir, "." for dir itself),
// its entries named from rel's base name down ("dist/a.txt" for rel "build/dist"), as
// docker's archive API names them. Symbolic links are stored as links, never
// followed, and nothing outside dir is read; past l it stops with ErrTooLarge.
func Create(w io.Writer, dir, rel string, l Limits) error {
	lim := l.withDefaults()
	rel, err := cleanName(rel)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	if _, err := root.Lstat(rel); err != nil {
		return err
	}
	base := path.Base(rel)
	if rel == "." {
		base = "."
	}
	tw := tar.NewWriter(w)
	var size int64
	entries := 0
	err = fs.WalkDir(root.FS(), rel, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		entries++
		if entries > lim.Entries {
			return fmt.Errorf("%w: more than %d entries", ErrTooLarge, lim.Entries)
		}
		name := base
		if p != rel {
			name = path.Join(base, strings.TrimPrefix(p, rel+"/"))
			if rel == "." {
				name = p
			}
		}
		info, err := root.Lstat(p)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: name, Mode: int64(info.Mode().Perm()), ModTime: info.ModTime(), Format: tar.FormatPAX}
		switch {
		case info.Mode().IsRegular():
			h.Typeflag, h.Size = tar.TypeReg, info.Size()
			size += h.Size
			if size > lim.Bytes {
				return fmt.Errorf("%w: more than %d bytes of files", ErrTooLarge, lim.Bytes)
			}
		case info.IsDir():
			if name == "." {
				return nil
			}
			h.Typeflag, h.Name = tar.TypeDir, name+"/"
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := root.Readlink(p)
			if err != nil {
				return err
			}
			h.Typeflag, h.Linkname = tar.TypeSymlink, target
		default:
			return nil // sockets, FIFOs, devices: not content
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			return nil
		}
		f, err := root.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		// A file that grew since Lstat is cut at the size in the header.
		_, err = io.CopyN(tw, f, h.Size)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
