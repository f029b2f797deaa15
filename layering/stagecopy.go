package layering

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// copyArgs are a COPY's or ADD's flags and operands, variables expanded.
type copyArgs struct {
	sd       instructions.SourcesAndDest
	from     string
	chown    string
	chmod    string
	exclude  []string
	comments []string
	code     string
	add      bool
	unpack   bool
}

// presetDirective is the comment that makes a COPY split what it copies into layers by
// a preset ("# hubctl:layers=java").
const presetDirective = "hubctl:layers="

func presetOf(comments []string) string {
	for _, c := range comments {
		c = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(c), "#"))
		if v, ok := strings.CutPrefix(c, presetDirective); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func (in *interp) copy(ctx context.Context, st *stageState, a copyArgs, expand func(string) (string, error)) error {
	op := &copyOp{from: in.b.context, fromName: "build context", preserveModes: in.b.preserveModes}
	var err error
	if op.chmod, err = parseChmod(a.chmod); err != nil {
		return err
	}
	for _, e := range a.exclude {
		v, err := expand(e)
		if err != nil {
			return err
		}
		op.exclude = append(op.exclude, v)
	}
	if a.chown != "" {
		o, err := in.resolveOwner(ctx, st, a.chown)
		if err != nil {
			return err
		}
		op.owner = &o
	}
	op.sources = a.sd.SourcePaths
	for _, c := range a.sd.SourceContents {
		data := c.Data
		if c.Expand {
			if data, err = expandHeredoc(data, in, st); err != nil {
				return err
			}
		}
		op.contents = append(op.contents, inlineFile{name: c.Path, data: []byte(data)})
	}
	dest := a.sd.DestPath
	if !path.IsAbs(dest) {
		wd := st.config.WorkingDir
		if wd == "" {
			wd = "/"
		}
		trailing := strings.HasSuffix(dest, "/") || dest == "." || strings.HasSuffix(dest, "/.")
		dest = path.Join(wd, dest)
		if trailing {
			dest += "/"
		}
	}
	op.dest = dest
	op.existingDir = func(p string) bool { return st.tree.IsDir(p) || (st.base != nil && st.base.knownDir(p)) }
	if a.from != "" {
		if op.from, err = in.fromTree(ctx, st, a.from, a.sd.SourcePaths); err != nil {
			return err
		}
		op.fromName = a.from
	}
	if a.add && a.unpack {
		op.unpack = in.unpacker()
	}
	entries, err := op.entries()
	if err != nil {
		return err
	}
	preset := presetOf(a.comments)
	if preset == "" {
		return in.addLayer(st, entries, a.code, "copy")
	}
	rules, ok := in.b.presets(preset)
	if !ok {
		return fmt.Errorf("# %s%s: no such preset (have %s)", presetDirective, preset, strings.Join(PresetNames(), ", "))
	}
	cr, err := compileRules(rules)
	if err != nil {
		return err
	}
	destDir := cleanPath(dest)
	if !strings.HasSuffix(dest, "/") && len(entries) == 1 && entries[0].Kind != KindDir {
		destDir = path.Dir(destDir)
	}
	parts := cr.splitEntries(entries, destDir)
	for i, part := range parts {
		if len(part) == 0 {
			continue
		}
		if err := in.addLayer(st, part, a.code+" # layer "+cr.rules[i].Name, "preset "+preset+" "+cr.rules[i].Name); err != nil {
			return err
		}
	}
	return nil
}

// expandHeredoc expands variables in a heredoc's body as a shell would.
func expandHeredoc(data string, in *interp, st *stageState) (string, error) {
	v, _, err := in.lex.ProcessWord(data, st.env())
	if err != nil {
		return "", err
	}
	return v, nil
}

// addLayer builds (or takes from the cache) the layer of entries and adds it to the
// stage, with the WORKDIRs not yet created.
func (in *interp) addLayer(st *stageState, entries []Entry, createdBy, rule string) error {
	for _, d := range st.pendingDirs {
		entries = append([]Entry{{Path: d, Kind: KindDir, Mode: 0o755}}, entries...)
	}
	st.pendingDirs = nil
	entries = withBaseDirModes(entries)
	lb, err := in.b.cache.Layer(rule, entries, in.b.compression, in.b.epoch)
	if err != nil {
		return err
	}
	for _, e := range entries {
		st.tree.Add(e)
	}
	how := "built"
	if lb.Cached {
		how = "cached"
	}
	in.emit(fmt.Sprintf("[%s] %s: layer %s (%s, %d bytes)", in.stageLabel(st.index), createdBy, shortDigest(lb.Digest.String()), how, lb.Size))
	st.layers = append(st.layers, layerRef{desc: ocispec.Descriptor{MediaType: lb.MediaType, Digest: lb.Digest, Size: lb.Size}, diffID: lb.DiffID, name: rule})
	st.history = append(st.history, ocispec.History{Created: in.b.created(), CreatedBy: createdBy, Comment: "hubctl build"})
	in.b.built(lb)
	return nil
}

// withBaseDirModes adds the well-known directories whose modes a layer must not reset
// when it writes below them (/tmp is world-writable and sticky): a layer lists every
// parent of its files, and the base is not read to learn their modes.
func withBaseDirModes(entries []Entry) []Entry {
	has := map[string]bool{}
	for _, e := range entries {
		has[cleanPath(e.Path)] = true
	}
	for _, d := range []string{"tmp", "var/tmp"} {
		if has[d] {
			continue
		}
		for _, e := range entries {
			if strings.HasPrefix(cleanPath(e.Path), d+"/") {
				entries = append(entries, Entry{Path: d, Kind: KindDir, Mode: 0o777 | os.ModeSticky})
				break
			}
		}
	}
	return entries
}

func shortDigest(d string) string {
	if i := strings.IndexByte(d, ':'); i >= 0 && len(d) > i+13 {
		return d[:i+13]
	}
	return d
}

// fromTree is the tree COPY --from reads: a stage's files (its own layers over its
// base's files), or an image's files, streamed from just its layers.
func (in *interp) fromTree(ctx context.Context, st *stageState, from string, sources []string) (*Tree, error) {
	if j, ok := in.df.stageIndex(from, st.index); ok {
		src := in.stages[j]
		if src == nil {
			return nil, fmt.Errorf("COPY --from=%s: the stage was not built", from)
		}
		if src.base == nil || treeHasAll(src.tree, sources) {
			return src.tree, nil
		}
		t, err := src.base.readFiles(ctx, in.b.cache, sources)
		if err != nil {
			return nil, err
		}
		for _, p := range src.tree.Paths() {
			e, _ := src.tree.Get(p)
			t.Add(*e)
		}
		return t, nil
	}
	if strings.EqualFold(from, "scratch") {
		return NewTree(), nil
	}
	in.emit(fmt.Sprintf("[%s] COPY --from=%s: reading only the files it copies", in.stageLabel(st.index), from))
	base, err := openBase(ctx, in.b.open, in.b.track, from, st.platform)
	if err != nil {
		return nil, fmt.Errorf("COPY --from=%s: %w", from, err)
	}
	base.origin.Name = from
	return base.readFiles(ctx, in.b.cache, sources)
}

// treeHasAll reports whether every (non-glob) source is in t.
func treeHasAll(t *Tree, sources []string) bool {
	for _, s := range sources {
		if hasGlob(s) {
			return false
		}
		if _, ok := t.Get(s); !ok && !t.IsDir(s) {
			return false
		}
	}
	return true
}

// wantSources keeps the paths a COPY of sources may need: the sources, what is under
// them, and their parents (which symlinks and directory metadata need). A glob keeps
// everything under its fixed prefix.
func wantSources(sources []string) func(string) bool {
	var prefixes []string
	for _, s := range sources {
		s = cleanPath(s)
		if hasGlob(s) {
			var fixed []string
			for _, el := range strings.Split(s, "/") {
				if hasGlob(el) {
					break
				}
				fixed = append(fixed, el)
			}
			s = strings.Join(fixed, "/")
		}
		prefixes = append(prefixes, s)
	}
	return func(p string) bool {
		for _, pre := range prefixes {
			if pre == "" || p == pre || strings.HasPrefix(p, pre+"/") || strings.HasPrefix(pre, p+"/") {
				return true
			}
		}
		return false
	}
}

// resolveOwner reads --chown=user[:group]: numbers as they are, names from the stage's
// /etc/passwd and /etc/group (its own files first, then its base's, streamed from just
// the layers that hold them). A user without a group gets the user's id as gid, as
// docker does.
func (in *interp) resolveOwner(ctx context.Context, st *stageState, spec string) (owner, error) {
	user, group, hasGroup := strings.Cut(spec, ":")
	uid, uerr := strconv.Atoi(user)
	var o owner
	if uerr == nil {
		o.uid = uid
	} else {
		data, err := in.stageFile(ctx, st, "etc/passwd")
		if err != nil {
			return o, err
		}
		id, ok := lookupID(data, user, 2)
		if !ok {
			return o, fmt.Errorf("--chown=%s: no user %q in /etc/passwd", spec, user)
		}
		o.uid = id
	}
	if !hasGroup {
		o.gid = o.uid
		return o, nil
	}
	if gid, err := strconv.Atoi(group); err == nil {
		o.gid = gid
		return o, nil
	}
	data, err := in.stageFile(ctx, st, "etc/group")
	if err != nil {
		return o, err
	}
	id, ok := lookupID(data, group, 2)
	if !ok {
		return o, fmt.Errorf("--chown=%s: no group %q in /etc/group", spec, group)
	}
	o.gid = id
	return o, nil
}

func (in *interp) stageFile(ctx context.Context, st *stageState, name string) ([]byte, error) {
	if e, ok := st.tree.Get(name); ok && e.Kind == KindFile {
		rc, err := e.Open()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(io.LimitReader(rc, 16<<20))
	}
	if st.base == nil {
		return nil, nil
	}
	if st.base.accounts == nil {
		in.emit(fmt.Sprintf("[%s] reading /etc/passwd and /etc/group from %s (only the layers down to the ones that hold them)", in.stageLabel(st.index), st.base.origin.Name))
		files, err := st.base.readSmallFiles(ctx, "etc/passwd", "etc/group")
		if err != nil {
			return nil, err
		}
		st.base.accounts = files
	}
	return st.base.accounts[name], nil
}

// lookupID finds name in a passwd or group file and returns field idx as a number.
func lookupID(data []byte, name string, idx int) (int, bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) > idx && f[0] == name {
			n, err := strconv.Atoi(f[idx])
			return n, err == nil
		}
	}
	return 0, false
}

// unpacker extracts a local tar archive (plain, gzip, bzip2 or zstd) that ADD copies
// into destDir, as docker does; it returns nil entries for a file that is not an
// archive, which ADD then copies as it is.
func (in *interp) unpacker() func(e *Entry, destDir string) ([]Entry, error) {
	return func(e *Entry, destDir string) ([]Entry, error) {
		rc, err := e.Open()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		r, err := decompress(rc)
		if err != nil {
			return nil, err
		}
		br := bufio.NewReaderSize(r, 1024)
		head, _ := br.Peek(512)
		if len(head) < 512 || !isTarHeader(head) {
			return nil, nil
		}
		t := NewTree()
		tr := tar.NewReader(br)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, err
			}
			if err := applyTarEntry(in.b.cache, t, hdr, tr, func(string) bool { return true }); err != nil {
				return nil, err
			}
		}
		var out []Entry
		for _, p := range t.Paths() {
			x, _ := t.Get(p)
			x.Path = path.Join(cleanPath(destDir), p)
			out = append(out, *x)
		}
		if len(out) == 0 {
			out = []Entry{{Path: cleanPath(destDir), Kind: KindDir, Mode: 0o755}}
		}
		return out, nil
	}
}

// isTarHeader reports whether a 512-byte block is a tar header: its checksum holds.
func isTarHeader(b []byte) bool {
	if string(b[257:262]) == "ustar" {
		return true
	}
	field := strings.TrimRight(strings.TrimSpace(string(b[148:156])), "\x00 ")
	want, err := strconv.ParseInt(field, 8, 64)
	if err != nil {
		return false
	}
	var sum int64
	for i, c := range b[:512] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += int64(c)
	}
	return sum == want
}
