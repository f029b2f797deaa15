package layering

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"golang.org/x/sync/errgroup"
)

// Tree is a set of entries by path: a build context, what a stage has added, or the
// files read from a base image. Paths are clean and relative ("a/b").
type Tree struct {
	byPath map[string]*Entry
	sorted []string // nil when entries changed since the last sort
}

// NewTree returns an empty tree.
func NewTree() *Tree { return &Tree{byPath: map[string]*Entry{}} }

// Add puts e in the tree (replacing an entry of the same path).
func (t *Tree) Add(e Entry) {
	e.Path = cleanPath(e.Path)
	if e.Path == "" {
		return
	}
	if _, ok := t.byPath[e.Path]; !ok {
		t.sorted = nil
	}
	t.byPath[e.Path] = &e
}

// Remove deletes p and everything under it.
func (t *Tree) Remove(p string) {
	p = cleanPath(p)
	if p == "" {
		*t = *NewTree()
		return
	}
	if _, ok := t.byPath[p]; ok {
		delete(t.byPath, p)
		t.sorted = nil
	}
	if under := t.Under(p); len(under) > 0 {
		for _, e := range under {
			delete(t.byPath, e.Path)
		}
		t.sorted = nil
	}
}

// Get returns the entry at p.
func (t *Tree) Get(p string) (*Entry, bool) {
	e, ok := t.byPath[cleanPath(p)]
	return e, ok
}

// Len is the number of entries.
func (t *Tree) Len() int { return len(t.byPath) }

// Paths returns every path, sorted.
func (t *Tree) Paths() []string {
	if t.sorted == nil {
		t.sorted = make([]string, 0, len(t.byPath))
		for p := range t.byPath {
			t.sorted = append(t.sorted, p)
		}
		slices.Sort(t.sorted)
	}
	return t.sorted
}

// IsDir reports whether p is a directory of the tree: an entry of that kind, or the
// parent of some entry (a tree need not list every directory).
func (t *Tree) IsDir(p string) bool {
	p = cleanPath(p)
	if p == "" {
		return true
	}
	if e, ok := t.byPath[p]; ok {
		return e.Kind == KindDir
	}
	paths := t.Paths()
	i, _ := slices.BinarySearch(paths, p+"/")
	return i < len(paths) && strings.HasPrefix(paths[i], p+"/")
}

// Under returns the entries strictly below directory p, sorted.
func (t *Tree) Under(p string) []*Entry {
	p = cleanPath(p)
	paths := t.Paths()
	prefix := p + "/"
	start := 0
	if p != "" {
		start, _ = slices.BinarySearch(paths, prefix)
	} else {
		prefix = ""
	}
	end := start
	for end < len(paths) && strings.HasPrefix(paths[end], prefix) {
		end++
	}
	out := make([]*Entry, end-start)
	for i, q := range paths[start:end] {
		out[i] = t.byPath[q]
	}
	return out
}

// Glob returns the paths matching pattern, path.Match element by element as docker
// matches COPY sources (a * never crosses a /).
func (t *Tree) Glob(pattern string) ([]string, error) {
	pattern = cleanPath(pattern)
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, fmt.Errorf("bad pattern %q: %w", pattern, err)
	}
	seen := map[string]bool{}
	var out []string
	depth := strings.Count(pattern, "/")
	consider := func(p string) {
		if seen[p] || strings.Count(p, "/") != depth {
			return
		}
		if ok, _ := path.Match(pattern, p); ok {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, p := range t.Paths() {
		consider(p)
		// Directories that are only implied by their children match too.
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			consider(d)
		}
	}
	slices.Sort(out)
	return out, nil
}

// resolve follows symlinks in p inside the tree (at most 40 hops), as a COPY of a
// named source does; it returns the path of what p designates.
func (t *Tree) resolve(p string) string {
	p = cleanPath(p)
	for range 40 {
		e, ok := t.byPath[p]
		if !ok || e.Kind != KindSymlink {
			return p
		}
		target := e.Linkname
		if !strings.HasPrefix(target, "/") {
			target = path.Join(path.Dir(p), target)
		}
		p = cleanPath(target)
	}
	return p
}

// ReadIgnoreFile reads .dockerignore-style patterns from file; a missing file is no
// patterns.
func ReadIgnoreFile(file string) ([]string, error) {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ignorefile.ReadAll(f)
}

// LoadContext walks dir and returns its files as a tree, without those the ignore
// patterns (.dockerignore syntax) exclude. Contents are not read: entries point at
// the host files. Modes are the host's; COPY decides what to keep.
func LoadContext(dir string, ignore []string) (*Tree, error) {
	var pm *patternmatcher.PatternMatcher
	if len(ignore) > 0 {
		var err error
		if pm, err = patternmatcher.New(ignore); err != nil {
			return nil, fmt.Errorf(".dockerignore: %w", err)
		}
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(root); err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("build context %s is not a directory", dir)
	}
	w := &contextWalker{pm: pm}
	var g errgroup.Group
	// Directories are read by up to one goroutine per core: a no-op rebuild of a
	// node_modules tree is mostly lstat(2) calls, which run in parallel in the kernel.
	g.SetLimit(runtime.GOMAXPROCS(0))
	w.tryGo = g.TryGo
	err = w.walk(root, "")
	if werr := g.Wait(); err == nil {
		err = werr
	}
	if err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	n := 0
	for _, part := range w.parts {
		n += len(part)
	}
	t := &Tree{byPath: make(map[string]*Entry, n)}
	for _, part := range w.parts {
		for _, e := range part {
			t.Add(e)
		}
	}
	return t, nil
}

// contextWalker reads a build context's directories concurrently; each directory's
// entries go to parts as one slice, added to the tree once the walk is over.
type contextWalker struct {
	tryGo  func(func() error) bool
	failed atomic.Bool
	mu     sync.Mutex // guards parts, and pm: its patterns compile on first use
	pm     *patternmatcher.PatternMatcher
	parts  [][]Entry
}

// ignored reports whether .dockerignore leaves rel out.
func (w *contextWalker) ignored(rel string) (bool, error) {
	if w.pm == nil {
		return false, nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pm.MatchesOrParentMatches(rel)
}

// walk reads directory dir (rel in the context; "" for the root), records its
// entries and walks its subdirectories, on another goroutine where one is free.
func (w *contextWalker) walk(dir, rel string) error {
	if w.failed.Load() {
		return nil // another directory failed; its error is the walk's
	}
	err := w.readDir(dir, rel)
	if err != nil {
		w.failed.Store(true)
	}
	return err
}

func (w *contextWalker) readDir(dir, rel string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	ents, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return err
	}
	out := make([]Entry, 0, len(ents))
	for _, d := range ents {
		name := d.Name()
		p, r := filepath.Join(dir, name), name
		if rel != "" {
			r = rel + "/" + name
		}
		skip, err := w.ignored(r)
		if err != nil {
			return err
		}
		if skip && (!d.IsDir() || !w.pm.Exclusions()) {
			continue
		}
		if d.IsDir() {
			if !w.tryGo(func() error { return w.walk(p, r) }) {
				if err := w.walk(p, r); err != nil {
					return err
				}
			}
			if skip {
				continue // excluded itself, but an exception may bring back what it holds
			}
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		e := Entry{Path: r, Mode: fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)}
		switch {
		case fi.Mode().IsRegular():
			e.Kind, e.HostPath, e.Size = KindFile, p, fi.Size()
			e.hostStat = &fileHash{Size: fi.Size(), ModTime: fi.ModTime().UnixNano(), Mode: uint32(fi.Mode())}
		case fi.IsDir():
			e.Kind = KindDir
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			e.Kind, e.Linkname = KindSymlink, filepath.ToSlash(target)
		default:
			continue // sockets, devices, pipes: docker skips them too
		}
		out = append(out, e)
	}
	w.mu.Lock()
	w.parts = append(w.parts, out)
	w.mu.Unlock()
	return nil
}
