package chartrepo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/charts"
	"github.com/hubctl/hubctl/internal/charts/chartstore"
)

// The classic index of a namespace is generated from the chart records, never from
// storage, and kept in memory per namespace behind the namespace's generation: a
// number the store changes in the same transaction as anything that changes what the
// index lists (migration 0016's triggers: a version recorded or deleted, a tag moved or
// deleted, a repository made public or private). A request asks the database for that
// number only; when it is the one in memory, the index is served from memory. Replicas
// share the database, so a change made through any of them is seen by the next request
// to every one. A changed generation reloads the keys of the namespace's versions (one
// query) and renders only the entries it has not rendered before (entries are kept by
// record: repository and manifest).
//
// Per request, what the caller may pull is decided per repository in memory: the
// repository's visibility comes with the keys, and a signed-in caller's role on the
// whole namespace is one lookup. The ETag is a digest of the namespace's content and
// of the repositories hidden from the caller, so equal listings get equal tags whoever
// asks; an unchanged repository answers If-None-Match with 304 without rendering.
// Bodies are kept by ETag.

// Index formats.
const (
	formatYAML = "yaml"
	formatJSON = "json"
)

// formats are the index formats.
var formats = []string{formatYAML, formatJSON}

// entryKey names one rendered index entry: the record (repository and manifest) in
// one format.
type entryKey struct {
	repo   string
	digest digest.Digest
	format string
}

// nsIndex is one namespace's index as of one generation.
type nsIndex struct {
	gen int64
	// versions are the keys of the listed versions in index order: by chart name, then
	// newest first by semver (as helm sorts them).
	versions []chartstore.Version
	// repos are the repositories of versions, in name order, with their visibility.
	repos  []string
	public map[string]bool
	// content is a digest of the versions' keys.
	content [sha256.Size]byte
}

// renderCache keeps the namespaces' indexes, rendered entries and bodies. All are
// bounded; when a map is full it is dropped whole (cheap, and the next request
// refills it).
type renderCache struct {
	mu         sync.Mutex
	indexes    map[string]*nsIndex
	entries    map[entryKey][]byte
	bodies     map[string][]byte
	bodyBytes  int
	maxIndexes int
	maxEntries int
	maxBytes   int
	parsed     map[string]*semver.Version
	// loading serialises the (re)loading of one namespace's index, so that concurrent
	// requests after a change render it once.
	loading map[string]*sync.Mutex
}

func newRenderCache() *renderCache {
	return &renderCache{
		indexes: map[string]*nsIndex{}, entries: map[entryKey][]byte{}, bodies: map[string][]byte{},
		parsed: map[string]*semver.Version{}, loading: map[string]*sync.Mutex{}, maxIndexes: 1024, maxEntries: 400_000, maxBytes: 256 << 20,
	}
}

func (c *renderCache) index(ns string) *nsIndex {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.indexes[ns]
}

func (c *renderCache) putIndex(ns string, ix *nsIndex) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.indexes[ns]; cur != nil && cur.gen > ix.gen {
		return
	}
	if _, ok := c.indexes[ns]; !ok && len(c.indexes) >= c.maxIndexes {
		c.indexes = map[string]*nsIndex{}
	}
	c.indexes[ns] = ix
}

func (c *renderCache) loadLock(ns string) *sync.Mutex {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.loading[ns]
	if m == nil {
		if len(c.loading) >= c.maxIndexes {
			c.loading = map[string]*sync.Mutex{}
		}
		m = &sync.Mutex{}
		c.loading[ns] = m
	}
	return m
}

func (c *renderCache) body(key string) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bodies[key]
}

func (c *renderCache) putBody(key string, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bodyBytes+len(b) > c.maxBytes {
		c.bodies, c.bodyBytes = map[string][]byte{}, 0
	}
	c.bodies[key] = b
	c.bodyBytes += len(b)
}

// missing returns the versions of vs whose entries are not rendered in format.
func (c *renderCache) missing(vs []chartstore.Version, format string) []chartstore.Version {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []chartstore.Version
	for _, v := range vs {
		if _, ok := c.entries[entryKey{v.Repository, v.Digest, format}]; !ok {
			out = append(out, v)
		}
	}
	return out
}

// semvers parses versions, remembering what it parsed (nil for a version that does
// not parse): an index reloaded after a change parses only new versions.
func (c *renderCache) semvers(vs []chartstore.Version) []*semver.Version {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.parsed)+len(vs) > c.maxEntries {
		c.parsed = map[string]*semver.Version{}
	}
	out := make([]*semver.Version, len(vs))
	for i, v := range vs {
		sv, ok := c.parsed[v.Version]
		if !ok {
			sv, _ = semver.NewVersion(v.Version)
			c.parsed[v.Version] = sv
		}
		out[i] = sv
	}
	return out
}

func (c *renderCache) putEntries(es map[entryKey][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries)+len(es) > c.maxEntries {
		c.entries = map[entryKey][]byte{}
	}
	for k, e := range es {
		c.entries[k] = e
	}
}

// entriesOf returns the entries of vs in format, nil for those not rendered.
func (c *renderCache) entriesOf(vs []chartstore.Version, format string) [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([][]byte, len(vs))
	for i, v := range vs {
		out[i] = c.entries[entryKey{v.Repository, v.Digest, format}]
	}
	return out
}

// loadIndex returns the index of namespace ns as of the store's generation now, with
// the entries of its versions rendered in format.
func (h *Handler) loadIndex(ctx context.Context, ns, format string) (*nsIndex, error) {
	cur := h.cache.index(ns)
	known := int64(-1)
	if cur != nil {
		known = cur.gen
	}
	// Without an index of the namespace in memory (a cold start), read what the
	// entries are rendered from at once: every entry will have to be rendered.
	got, err := h.o.Store.ChartIndex(ctx, ns, known, cur != nil)
	if err != nil {
		return nil, err
	}
	if got.Versions == nil {
		return cur, nil
	}
	lock := h.cache.loadLock(ns)
	lock.Lock()
	defer lock.Unlock()
	if cur := h.cache.index(ns); cur != nil && cur.gen >= got.Generation {
		return cur, nil // loaded by a concurrent request
	}
	vs := got.Versions
	if miss := h.cache.missing(vs, format); len(miss) > 0 {
		if miss[0].Metadata == nil {
			// Keys only: read the records of the missing entries.
			if miss, err = h.records(ctx, ns, miss); err != nil {
				return nil, err
			}
		}
		if err := h.render(miss, format); err != nil {
			return nil, err
		}
		// The other format's entries come from the same records (recorded with them,
		// or rendered after this answer), so that its first request finds them.
		for _, f := range formats {
			if f == format {
				continue
			}
			other := h.cache.missing(miss, f)
			stored := other[:0:0]
			var render []chartstore.Version
			for _, v := range other {
				if storedEntry(v, f) != nil {
					stored = append(stored, v)
				} else {
					render = append(render, v)
				}
			}
			if err := h.render(stored, f); err != nil {
				return nil, err
			}
			if len(render) > 0 {
				go func() {
					if err := h.render(render, f); err != nil {
						h.o.Log.Warn("render chart index entries", "namespace", ns, "error", err)
					}
				}()
			}
		}
	}
	ix := newNSIndex(got.Generation, vs, h.cache.semvers(vs))
	// A version deleted since the keys were read has no entry; the delete changed the
	// generation, so the next request reloads.
	es := h.cache.entriesOf(ix.versions, format)
	kept := ix.versions[:0]
	for i, v := range ix.versions {
		if es[i] != nil {
			kept = append(kept, v)
		}
	}
	ix.versions = kept
	h.cache.putIndex(ns, ix)
	return ix, nil
}

// maxListed bounds the manifests one query of records lists; beyond, the whole
// namespace is read (the plan of a long list depends on statistics a database that
// just grew may not have).
const maxListed = 256

// records reads the records (Query.Entries fields) of the versions vs of namespace ns.
func (h *Handler) records(ctx context.Context, ns string, vs []chartstore.Version) ([]chartstore.Version, error) {
	if len(vs) > maxListed {
		all, err := h.o.Store.Charts(ctx, chartstore.Query{Namespace: ns, Entries: true})
		if err != nil {
			return nil, err
		}
		want := make(map[entryKey]bool, len(vs))
		for _, v := range vs {
			want[entryKey{v.Repository, v.Digest, ""}] = true
		}
		out := all[:0]
		for _, v := range all {
			if want[entryKey{v.Repository, v.Digest, ""}] {
				out = append(out, v)
			}
		}
		return out, nil
	}
	ds := make([]digest.Digest, len(vs))
	for i, v := range vs {
		ds[i] = v.Digest
	}
	return h.o.Store.Charts(ctx, chartstore.Query{Namespace: ns, Manifests: ds, Entries: true})
}

// render renders the entries of vs (records with their metadata) in format, on two
// goroutines when there are many (a cold index of thousands of versions).
func (h *Handler) render(vs []chartstore.Version, format string) error {
	parts := 1
	if len(vs) >= 1000 {
		parts = 2
	}
	var wg sync.WaitGroup
	errs := make([]error, parts)
	for p := range parts {
		wg.Go(func() {
			part := vs[p*len(vs)/parts : (p+1)*len(vs)/parts]
			es := make(map[entryKey][]byte, len(part))
			for _, v := range part {
				e, err := renderEntry(v, format)
				if err != nil {
					errs[p] = err
					return
				}
				es[entryKey{v.Repository, v.Digest, format}] = e
			}
			h.cache.putEntries(es)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// newNSIndex orders vs (keys), whose parsed versions are svs, as the index lists
// them and digests them.
func newNSIndex(gen int64, vs []chartstore.Version, svs []*semver.Version) *nsIndex {
	type sorted struct {
		v  chartstore.Version
		sv *semver.Version // nil when the version does not parse
	}
	ss := make([]sorted, len(vs))
	for i, v := range vs {
		v.Metadata, v.EntryYAML, v.EntryJSON = nil, nil, nil
		ss[i] = sorted{v, svs[i]}
	}
	slices.SortFunc(ss, func(a, b sorted) int {
		if c := strings.Compare(a.v.Name, b.v.Name); c != 0 {
			return c
		}
		if c := strings.Compare(a.v.Repository, b.v.Repository); c != 0 {
			return c
		}
		// Newest first: the reverse of charts.VersionLess.
		switch {
		case a.sv == nil && b.sv == nil:
		case a.sv == nil:
			return 1
		case b.sv == nil:
			return -1
		default:
			if c := b.sv.Compare(a.sv); c != 0 {
				return c
			}
		}
		return strings.Compare(b.v.Version, a.v.Version)
	})
	ix := &nsIndex{gen: gen, versions: make([]chartstore.Version, len(ss)), public: map[string]bool{}}
	h := sha256.New()
	buf := make([]byte, 0, 64<<10)
	for i, s := range ss {
		v := s.v
		ix.versions[i] = v
		if _, ok := ix.public[v.Repository]; !ok {
			ix.repos = append(ix.repos, v.Repository)
		}
		ix.public[v.Repository] = v.Public
		buf = append(append(append(append(append(append(buf, v.Repository...), ' '), v.Digest...), ' '), v.Version...), '\n')
		if len(buf) > 60<<10 {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	h.Write(buf)
	h.Sum(ix.content[:0])
	slices.Sort(ix.repos)
	return ix
}

// entryFormat is the version of the entry renderer (renderEntry and yaml.go): entries
// stored by another are rendered again. Change it with the renderer's output.
const entryFormat = 1

// IndexEntries renders v's classic index entries into v (EntryYAML, EntryJSON,
// EntryFormat), to be recorded with it: a cold index then reads them rather than
// rendering every entry.
func IndexEntries(v *chartstore.Version) error {
	m, err := entryObject(*v)
	if err != nil {
		return err
	}
	if v.EntryYAML, err = renderObject(m, formatYAML); err != nil {
		return err
	}
	if v.EntryJSON, err = renderObject(m, formatJSON); err != nil {
		return err
	}
	v.EntryFormat = entryFormat
	return nil
}

// storedEntry is v's entry in format as recorded, nil when it was recorded without
// one or by another renderer.
func storedEntry(v chartstore.Version, format string) []byte {
	if v.EntryFormat != entryFormat {
		return nil
	}
	if format == formatJSON {
		return v.EntryJSON
	}
	return v.EntryYAML
}

// etag is the ETag of ix in format for a caller from whom the repositories hidden
// (sorted) are hidden: equal listings get equal tags whoever asks.
func etag(ix *nsIndex, format string, hidden []string) string {
	h := sha256.New()
	h.Write([]byte("index " + format + "\n"))
	h.Write(ix.content[:])
	for _, r := range hidden {
		h.Write([]byte("\n" + r))
	}
	return `"` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`
}

// entryObject is the index entry of v as a JSON object: Chart.yaml's fields with the
// index's own (urls, created, digest), as helm's repo.ChartVersion has them.
func entryObject(v chartstore.Version) (map[string]any, error) {
	m := map[string]any{}
	dec := json.NewDecoder(bytes.NewReader(v.Metadata))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("chart %s@%s: metadata: %w", v.Repository, v.Digest, err)
	}
	m["urls"] = []any{url.PathEscape(charts.FileName(v.Name, v.Version))}
	m["created"] = v.CreatedAt.UTC().Format(time.RFC3339Nano)
	m["digest"] = v.ChartDigest.Encoded()
	// The index is keyed by the record, not by what Chart.yaml might claim.
	m["name"], m["version"] = v.Name, v.Version
	return m, nil
}

// renderEntry returns the entry of v in format: the recorded one, or rendered now.
func renderEntry(v chartstore.Version, format string) ([]byte, error) {
	if e := storedEntry(v, format); e != nil {
		return e, nil
	}
	m, err := entryObject(v)
	if err != nil {
		return nil, err
	}
	return renderObject(m, format)
}

// renderObject renders the entry object m in format: a JSON object, or a YAML
// sequence item indented for its place under "entries: NAME:".
func renderObject(m map[string]any, format string) ([]byte, error) {
	if format == formatJSON {
		return json.Marshal(m)
	}
	var b bytes.Buffer
	writeMapping(&b, 4, "  - ", m)
	return b.Bytes(), nil
}

// indexBody returns the body of ix in format without the repositories hidden, whose
// ETag is tag, assembling it from the rendered entries when it is not kept.
func (h *Handler) indexBody(ctx context.Context, ns string, ix *nsIndex, format string, hidden []string, tag string) ([]byte, error) {
	if b := h.cache.body(tag); b != nil {
		return b, nil
	}
	vs := ix.versions
	if len(hidden) > 0 {
		vs = make([]chartstore.Version, 0, len(ix.versions))
		for _, v := range ix.versions {
			if _, found := slices.BinarySearch(hidden, v.Repository); !found {
				vs = append(vs, v)
			}
		}
	}
	es := h.cache.entriesOf(vs, format)
	if hasNil(es) {
		// Dropped from a full cache since the index was loaded: render them again.
		var miss []chartstore.Version
		for i, e := range es {
			if e == nil {
				miss = append(miss, vs[i])
			}
		}
		recs, err := h.records(ctx, ns, miss)
		if err != nil {
			return nil, err
		}
		if err := h.render(recs, format); err != nil {
			return nil, err
		}
		if es = h.cache.entriesOf(vs, format); hasNil(es) {
			return nil, fmt.Errorf("%w: the index changed while it was read", errRetry)
		}
	}
	b := assemble(vs, es, format)
	h.cache.putBody(tag, b)
	return b, nil
}

func hasNil(es [][]byte) bool {
	return slices.IndexFunc(es, func(e []byte) bool { return e == nil }) >= 0
}

// assemble writes the index of vs (in index order) from their entries es in format.
// "generated" is the newest creation time, so the body depends on the versions alone.
func assemble(vs []chartstore.Version, es [][]byte, format string) []byte {
	size := 128
	var newest time.Time
	for i, v := range vs {
		size += len(es[i]) + 1
		if v.CreatedAt.After(newest) {
			newest = v.CreatedAt
		}
	}
	generated := newest.UTC().Format(time.RFC3339Nano)
	b := bytes.NewBuffer(make([]byte, 0, size+64*len(vs)/10))
	if format == formatJSON {
		b.WriteString(`{"apiVersion":"v1","entries":{`)
	} else {
		b.WriteString("apiVersion: v1\nentries:")
		if len(vs) == 0 {
			b.WriteString(" {}")
		}
		b.WriteByte('\n')
	}
	for i, v := range vs {
		first := i == 0 || vs[i-1].Name != v.Name
		switch {
		case format == formatJSON && first:
			if i > 0 {
				b.WriteString("],")
			}
			key, _ := json.Marshal(v.Name)
			b.Write(key)
			b.WriteString(":[")
		case format == formatJSON:
			b.WriteByte(',')
		case first:
			b.WriteString("  ")
			writeScalarString(b, v.Name)
			b.WriteString(":\n")
		}
		b.Write(es[i])
	}
	if format == formatJSON {
		if len(vs) > 0 {
			b.WriteByte(']')
		}
		fmt.Fprintf(b, `},"generated":%q}`, generated)
	} else {
		fmt.Fprintf(b, "generated: %q\n", generated)
	}
	return b.Bytes()
}

// matchesETag reports whether an If-None-Match header names tag (or is "*").
func matchesETag(header, tag string) bool {
	for _, part := range strings.Split(header, ",") {
		p := strings.TrimSpace(part)
		p = strings.TrimPrefix(p, "W/")
		if p == "*" || p == tag {
			return true
		}
	}
	return false
}
