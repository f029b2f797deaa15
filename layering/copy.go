package layering

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/patternmatcher"
)

// copyOp is one COPY or ADD, its variables expanded, ready to turn into entries.
type copyOp struct {
	// sources are paths in from (globs allowed); contents are heredoc files.
	sources  []string
	contents []inlineFile
	from     *Tree
	// fromName names the source in errors ("build context", "stage build").
	fromName string
	// dest is absolute ("/app/"); a trailing slash marks a directory.
	dest    string
	owner   *owner
	chmod   *fs.FileMode
	exclude []string
	// preserveModes keeps the source's modes instead of 0644/0755.
	preserveModes bool
	// unpack extracts local tar archives (ADD).
	unpack func(e *Entry, destDir string) ([]Entry, error)
	// existingDir reports whether the image already has a directory at a path, so a
	// file copied onto it lands inside it.
	existingDir func(p string) bool
}

type inlineFile struct {
	name string
	data []byte
}

type owner struct{ uid, gid int }

// errNoSource is a COPY whose sources match nothing.
var errNoSource = errors.New("no source files were specified")

// parseChmod reads --chmod: an octal mode (symbolic modes are not supported).
func parseChmod(s string) (*fs.FileMode, error) {
	if s == "" {
		return nil, nil
	}
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o7777 {
		return nil, fmt.Errorf("--chmod=%s: want an octal mode like 0755", s)
	}
	m := fileMode(int64(v))
	return &m, nil
}

func hasGlob(s string) bool { return strings.ContainsAny(s, "*?[") }

// entries turns the COPY into layer entries, following docker's rules: a directory's
// contents (not the directory) are copied; several sources or a glob need a
// destination ending in "/"; one file onto a path ending in "/" or an existing
// directory lands inside it, otherwise it is renamed to the destination.
func (op *copyOp) entries() ([]Entry, error) {
	type match struct {
		path    string // in op.from
		wasGlob bool
	}
	var matches []match
	for _, s := range op.sources {
		if hasGlob(s) {
			ps, err := op.from.Glob(s)
			if err != nil {
				return nil, err
			}
			for _, p := range ps {
				matches = append(matches, match{p, true})
			}
			continue
		}
		p := op.from.resolve(s)
		if _, ok := op.from.Get(p); !ok && !op.from.IsDir(p) {
			return nil, fmt.Errorf("%s: not found in the %s (or excluded by .dockerignore)", s, op.fromName)
		}
		matches = append(matches, match{path: p})
	}
	many := len(matches)+len(op.contents) > 1
	for _, m := range matches {
		many = many || m.wasGlob
	}
	if len(matches) == 0 && len(op.contents) == 0 {
		return nil, errNoSource
	}
	destDir := strings.HasSuffix(op.dest, "/") || (op.existingDir != nil && op.existingDir(op.dest))
	dest := cleanPath(op.dest)
	if many && !strings.HasSuffix(op.dest, "/") && !(op.existingDir != nil && op.existingDir(op.dest)) {
		return nil, fmt.Errorf("when using COPY with more than one source file, the destination must be a directory and end with a /")
	}
	var excl *patternmatcher.PatternMatcher
	if len(op.exclude) > 0 {
		var err error
		if excl, err = patternmatcher.New(op.exclude); err != nil {
			return nil, fmt.Errorf("--exclude: %w", err)
		}
	}
	excluded := func(rel string) bool {
		if excl == nil {
			return false
		}
		ok, _ := excl.MatchesOrParentMatches(rel)
		return ok
	}

	var out []Entry
	if (destDir || many) && dest != "" {
		// The destination directory is created with the copy's owner, as docker does.
		out = append(out, op.convert(Entry{Kind: KindDir, Mode: 0o755}, dest))
	}
	for _, m := range matches {
		src, isEntry := op.from.Get(m.path)
		if !isEntry || src.Kind == KindDir {
			// A directory: its contents go under dest, which docker creates 0755 (not
			// with the source directory's mode), owned as the copy says.
			if excluded(path.Base(m.path)) && m.wasGlob {
				continue
			}
			under := op.from.Under(m.path)
			out = slices.Grow(out, len(under)+1)
			out = append(out, op.convert(Entry{Kind: KindDir, Mode: 0o755}, dest))
			for _, e := range under {
				rel := strings.TrimPrefix(e.Path, m.path+"/")
				if m.path == "" {
					rel = e.Path
				}
				if excluded(rel) {
					continue
				}
				out = append(out, op.convert(*e, path.Join(dest, rel)))
			}
			continue
		}
		if excluded(path.Base(m.path)) {
			continue
		}
		target := dest
		if destDir || many {
			target = path.Join(dest, path.Base(m.path))
		}
		if op.unpack != nil && src.Kind == KindFile {
			ents, err := op.unpack(src, dest)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", m.path, err)
			}
			if ents != nil {
				for _, e := range ents {
					out = append(out, op.convert(e, e.Path))
				}
				continue
			}
		}
		out = append(out, op.convert(*src, target))
	}
	for _, c := range op.contents {
		target := dest
		if destDir || many {
			target = path.Join(dest, c.name)
		}
		out = append(out, op.convert(Entry{Kind: KindFile, Mode: 0o644, Data: c.data, Size: int64(len(c.data))}, target))
	}
	if len(out) == 0 {
		return nil, errNoSource
	}
	return out, nil
}

// convert places e at dest with the COPY's owner and mode rules.
func (op *copyOp) convert(e Entry, dest string) Entry {
	e.Path = dest
	switch {
	case op.chmod != nil && e.Kind != KindSymlink:
		e.Mode = *op.chmod
	case op.preserveModes:
	default:
		e.Mode = normaliseMode(e.Kind, e.Mode)
	}
	if e.Kind == KindSymlink {
		e.Mode = 0o777
	}
	e.UID, e.GID = 0, 0
	if op.owner != nil {
		e.UID, e.GID = op.owner.uid, op.owner.gid
	}
	return e
}
