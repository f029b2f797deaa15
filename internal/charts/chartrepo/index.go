package chartrepo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hubctl/hubctl/internal/charts"
	"github.com/hubctl/hubctl/internal/charts/chartstore"
)

// The classic index of a namespace is generated from the chart records, never from
// storage. A request reads the keys of the namespace's versions (one query, no
// metadata), keeps those the caller may pull, and derives the ETag from them: an
// unchanged repository answers If-None-Match with 304 without rendering anything, and
// a change is seen by the very next request. Bodies and the rendered entries are kept
// in memory by content, so the warm path renders nothing and a new version renders one
// entry.

// Index formats.
const (
	formatYAML = "yaml"
	formatJSON = "json"
)

// entryKey names one rendered index entry: the record (repository and manifest) in
// one format.
type entryKey struct {
	repo, digest, format string
}

// renderCache keeps rendered entries and bodies. Both are bounded; when a map is
// full it is dropped whole (cheap, and the next request refills it).
type renderCache struct {
	mu         sync.Mutex
	entries    map[entryKey][]byte
	bodies     map[string][]byte
	bodyBytes  int
	maxEntries int
	maxBytes   int
}

func newRenderCache() *renderCache {
	return &renderCache{entries: map[entryKey][]byte{}, bodies: map[string][]byte{}, maxEntries: 200_000, maxBytes: 256 << 20}
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
		if _, ok := c.entries[entryKey{v.Repository, v.Digest.String(), format}]; !ok {
			out = append(out, v)
		}
	}
	return out
}

func (c *renderCache) putEntry(k entryKey, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.maxEntries {
		c.entries = map[entryKey][]byte{}
	}
	c.entries[k] = b
}

func (c *renderCache) entry(k entryKey) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[k]
}

// etag is the ETag of an index of the versions vs in format: a digest of what they
// are, so equal contents get equal tags whoever asks.
func etag(format string, vs []chartstore.Version) string {
	h := sha256.New()
	buf := make([]byte, 0, 256)
	buf = append(append(append(buf, "index "...), format...), '\n')
	for _, v := range vs {
		buf = append(append(append(append(append(append(buf, v.Repository...), ' '), v.Digest...), ' '), v.Version...), '\n')
		if len(buf) > 32<<10 {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	h.Write(buf)
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

// renderEntry renders v's entry in format: a JSON object, or a YAML sequence item
// indented for its place under "entries: NAME:".
func renderEntry(v chartstore.Version, format string) ([]byte, error) {
	m, err := entryObject(v)
	if err != nil {
		return nil, err
	}
	if format == formatJSON {
		return json.Marshal(m)
	}
	var b bytes.Buffer
	writeMapping(&b, 4, "  - ", m)
	return b.Bytes(), nil
}

// renderIndex assembles the index of vs (the visible versions, each with its entry
// rendered in c) in format. Charts are in name order, versions newest first by semver,
// as helm sorts them; "generated" is the newest creation time, so the body depends on
// the versions alone.
func renderIndex(c *renderCache, vs []chartstore.Version, format string) ([]byte, error) {
	byName := map[string][]chartstore.Version{}
	var names []string
	var newest time.Time
	for _, v := range vs {
		if _, ok := byName[v.Name]; !ok {
			names = append(names, v.Name)
		}
		byName[v.Name] = append(byName[v.Name], v)
		if v.CreatedAt.After(newest) {
			newest = v.CreatedAt
		}
	}
	slices.Sort(names)
	generated := newest.UTC().Format(time.RFC3339Nano)
	var b bytes.Buffer
	if format == formatJSON {
		b.WriteString(`{"apiVersion":"v1","entries":{`)
	} else {
		b.WriteString("apiVersion: v1\nentries:")
		if len(names) == 0 {
			b.WriteString(" {}")
		}
		b.WriteByte('\n')
	}
	for i, name := range names {
		list := byName[name]
		slices.SortStableFunc(list, func(a, b chartstore.Version) int {
			switch {
			case charts.VersionLess(b.Version, a.Version):
				return -1
			case charts.VersionLess(a.Version, b.Version):
				return 1
			}
			return 0
		})
		if format == formatJSON {
			if i > 0 {
				b.WriteByte(',')
			}
			key, _ := json.Marshal(name)
			b.Write(key)
			b.WriteString(":[")
		} else {
			b.WriteString("  ")
			writeScalarString(&b, name)
			b.WriteString(":\n")
		}
		for j, v := range list {
			e := c.entry(entryKey{v.Repository, v.Digest.String(), format})
			if e == nil {
				return nil, fmt.Errorf("index entry of %s@%s was not rendered", v.Repository, v.Digest)
			}
			if format == formatJSON && j > 0 {
				b.WriteByte(',')
			}
			b.Write(e)
		}
		if format == formatJSON {
			b.WriteByte(']')
		}
	}
	if format == formatJSON {
		fmt.Fprintf(&b, `},"generated":%q}`, generated)
	} else {
		fmt.Fprintf(&b, "generated: %q\n", generated)
	}
	return b.Bytes(), nil
}

// index returns the index of the versions vs in format, with its ETag, rendering what
// the cache lacks. full reads the namespace's records with their metadata, called only
// when some entry is missing.
func (h *Handler) index(ctx context.Context, vs []chartstore.Version, format string, full func() ([]chartstore.Version, error)) ([]byte, string, error) {
	tag := etag(format, vs)
	if b := h.cache.body(tag); b != nil {
		return b, tag, nil
	}
	if miss := h.cache.missing(vs, format); len(miss) > 0 {
		all, err := full()
		if err != nil {
			return nil, "", err
		}
		want := map[entryKey]bool{}
		for _, v := range miss {
			want[entryKey{v.Repository, v.Digest.String(), format}] = true
		}
		for _, v := range all {
			k := entryKey{v.Repository, v.Digest.String(), format}
			if !want[k] {
				continue
			}
			e, err := renderEntry(v, format)
			if err != nil {
				return nil, "", err
			}
			h.cache.putEntry(k, e)
			delete(want, k)
		}
		if len(want) > 0 {
			// Deleted between the two reads: the next request sees the new state.
			return nil, "", fmt.Errorf("%w: the index changed while it was read", errRetry)
		}
	}
	b, err := renderIndex(h.cache, vs, format)
	if err != nil {
		return nil, "", err
	}
	h.cache.putBody(tag, b)
	return b, tag, nil
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
