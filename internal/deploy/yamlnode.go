package deploy

// The strict YAML walk below follows internal/workflow's (yamlnode.go): the same
// rules (unknown keys and keys given twice are errors naming the known ones, no
// aliases, no custom tags, every error at its line:column). What both walkers share
// without state (errors, Describe, Clip, Suggest, CheckTree) is internal/yamlstrict;
// the decoding methods differ in their bounds and messages and stay per package.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hubctl/hubctl/internal/yamlstrict"
)

type decoder struct {
	errs Errors
}

func pos(n *yaml.Node) Pos { return Pos{Line: n.Line, Col: n.Column} }

func (d *decoder) errf(n *yaml.Node, format string, a ...any) {
	d.errAt(pos(n), format, a...)
}

func (d *decoder) errAt(p Pos, format string, a ...any) {
	if len(d.errs) >= 10*maxErrors {
		return
	}
	d.errs = append(d.errs, Error{Pos: p, Msg: fmt.Sprintf(format, a...)})
}

var yamlErrRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML reads the one YAML document of src as a node tree.
func parseYAML(src []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{Pos: Pos{Line: 1, Col: 1}, Msg: "the file is empty"}}
		}
		return nil, Errors{yamlError(err)}
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, Errors{{Pos: Pos{Line: next.Line, Col: next.Column}, Msg: "a deploy file holds one YAML document; remove the second (after ---)"}}
	case !errors.Is(err, io.EOF):
		return nil, Errors{yamlError(err)}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, Errors{{Pos: Pos{Line: 1, Col: 1}, Msg: "the file is empty"}}
	}
	return doc.Content[0], nil
}

func yamlError(err error) Error {
	if m := yamlErrRe.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Error{Pos: Pos{Line: line, Col: 1}, Msg: "YAML: " + m[2]}
	}
	return Error{Pos: Pos{Line: 1, Col: 1}, Msg: "YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
}

// fields decodes the mapping n, calling the handler of each key; a key without a
// handler is an error naming the known ones. It reports whether n was a mapping.
func (d *decoder) fields(n *yaml.Node, what string, handlers map[string]func(v *yaml.Node)) bool {
	if n.Kind != yaml.MappingNode {
		d.errf(n, "%s must be a mapping, not %s", what, yamlstrict.Describe(n))
		return false
	}
	for _, kv := range d.pairs(n, what) {
		h, ok := handlers[kv[0].Value]
		if !ok {
			known := slices.Sorted(maps.Keys(handlers))
			d.errf(kv[0], "%s: unknown key %q%s (known keys: %s)", what, yamlstrict.Clip(kv[0].Value), yamlstrict.Suggest(kv[0].Value, known), strings.Join(known, ", "))
			continue
		}
		h(kv[1])
	}
	return true
}

// pairs returns the key/value pairs of the mapping n, refusing keys given twice and
// keys that are not strings.
func (d *decoder) pairs(n *yaml.Node, what string) [][2]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		d.errf(n, "%s must be a mapping, not %s", what, yamlstrict.Describe(n))
		return nil
	}
	seen := make(map[string]bool, len(n.Content)/2)
	var out [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || yamlstrict.IsNull(k) {
			d.errf(k, "%s: a key must be a string, not %s", what, yamlstrict.Describe(k))
			continue
		}
		if seen[k.Value] {
			d.errf(k, "%s: %q is given twice", what, yamlstrict.Clip(k.Value))
			continue
		}
		seen[k.Value] = true
		out = append(out, [2]*yaml.Node{k, v})
	}
	return out
}

func (d *decoder) list(n *yaml.Node, what string) ([]*yaml.Node, bool) {
	if n.Kind != yaml.SequenceNode {
		d.errf(n, "%s must be a list, not %s", what, yamlstrict.Describe(n))
		return nil, false
	}
	if len(n.Content) > maxListLen {
		d.errf(n, "%s: %d entries; at most %d", what, len(n.Content), maxListLen)
		return nil, false
	}
	return n.Content, true
}

// maxListLen bounds every list and mapping of the spec.
const maxListLen = 256

// str returns a scalar as text: strings, and numbers and booleans as written.
func (d *decoder) str(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || yamlstrict.IsNull(n) {
		d.errf(n, "%s must be a string, not %s", what, yamlstrict.Describe(n))
		return "", false
	}
	return n.Value, true
}

// strings returns a string or a list of strings.
func (d *decoder) strings(n *yaml.Node, what string) ([]string, []Pos) {
	if n.Kind == yaml.ScalarNode && !yamlstrict.IsNull(n) {
		return []string{n.Value}, []Pos{pos(n)}
	}
	items, ok := d.list(n, what+" (a string or a list of strings)")
	if !ok {
		return nil, nil
	}
	var out []string
	var ps []Pos
	for _, it := range items {
		if s, ok := d.str(it, what+" entry"); ok {
			out = append(out, s)
			ps = append(ps, pos(it))
		}
	}
	return out, ps
}

func (d *decoder) integer(n *yaml.Node, what string, lo, hi int) (int, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		d.errf(n, "%s must be a whole number, not %s", what, yamlstrict.Describe(n))
		return 0, false
	}
	i, err := strconv.ParseInt(n.Value, 0, 64)
	if err != nil || i < int64(lo) || i > int64(hi) {
		d.errf(n, "%s must be between %d and %d, not %s", what, lo, hi, yamlstrict.Clip(n.Value))
		return 0, false
	}
	return int(i), true
}

// duration reads a Go duration ("90s", "30m", "1h30m") in [lo, hi].
func (d *decoder) duration(n *yaml.Node, what string, lo, hi time.Duration) (time.Duration, bool) {
	s, ok := d.str(n, what)
	if !ok {
		return 0, false
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.errf(n, "%s %q is not a duration (write 500ms, 90s or 5m)", what, yamlstrict.Clip(s))
		return 0, false
	}
	if v < lo || v > hi {
		d.errf(n, "%s must be between %s and %s, not %s", what, lo, hi, yamlstrict.Clip(s))
		return 0, false
	}
	return v, true
}
