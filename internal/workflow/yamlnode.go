package workflow

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hubctl/hubctl/internal/yamlstrict"
)

// decoder walks the YAML node tree, so every value keeps its line and column and
// every error can say where it is. It never stops at the first error.
type decoder struct {
	lines       []string // the source's lines, to place errors inside expressions
	matrixNodes map[*Matrix]*matrixNodes
	errs        Errors
}

func pos(n *yaml.Node) Pos { return Pos{Line: n.Line, Col: n.Column} }

func (d *decoder) errf(n *yaml.Node, format string, a ...any) {
	d.errAt(pos(n), format, a...)
}

func (d *decoder) errAt(p Pos, format string, a ...any) {
	if len(d.errs) >= 10*maxErrors {
		return // a file this broken is not worth reading on; Sorted() says how many were kept
	}
	d.errs = append(d.errs, Error{Pos: p, Msg: fmt.Sprintf(format, a...)})
}

// fields decodes the mapping n, calling the handler of each key; a key without a
// handler is an error naming the known ones. It reports whether n was a mapping.
func (d *decoder) fields(n *yaml.Node, what string, handlers map[string]func(k, v *yaml.Node)) bool {
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
		h(kv[0], kv[1])
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

// list returns the items of the sequence n.
func (d *decoder) list(n *yaml.Node, what string) ([]*yaml.Node, bool) {
	if n.Kind != yaml.SequenceNode {
		d.errf(n, "%s must be a list, not %s", what, yamlstrict.Describe(n))
		return nil, false
	}
	return n.Content, true
}

// str returns a scalar as text: strings, and numbers and booleans as written
// (env: {DEBUG: true} is "true"). Empty values and collections are errors.
func (d *decoder) str(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || yamlstrict.IsNull(n) {
		d.errf(n, "%s must be a string, not %s", what, yamlstrict.Describe(n))
		return "", false
	}
	return n.Value, true
}

// name returns a string that must match the rule re, described by rule.
func (d *decoder) name(n *yaml.Node, what string, ok func(string) bool, rule string) (string, bool) {
	s, good := d.str(n, what)
	if !good {
		return "", false
	}
	if !ok(s) {
		d.errf(n, "%s %q is not a valid name: %s", what, yamlstrict.Clip(s), rule)
		return s, false
	}
	return s, true
}

// maxListLen bounds every list of strings (needs, patterns, args, approvers, …), so
// the checks for entries given twice stay cheap.
const maxListLen = 256

// strings returns a string or a list of strings, with each one's position.
func (d *decoder) strings(n *yaml.Node, what string) ([]string, []Pos) {
	if n.Kind == yaml.ScalarNode && !yamlstrict.IsNull(n) {
		return []string{n.Value}, []Pos{pos(n)}
	}
	items, ok := d.list(n, what+" (a string or a list of strings)")
	if !ok {
		return nil, nil
	}
	if len(items) > maxListLen {
		d.errf(n, "%s: %d entries; at most %d", what, len(items), maxListLen)
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

func (d *decoder) boolean(n *yaml.Node, what string) (bool, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		d.errf(n, "%s must be true or false, not %s", what, yamlstrict.Describe(n))
		return false, false
	}
	b, err := strconv.ParseBool(n.Value)
	if err != nil {
		d.errf(n, "%s must be true or false, not %s", what, yamlstrict.Describe(n))
		return false, false
	}
	return b, true
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

// duration reads a Go duration ("90s", "30m", "1h30m") in (0, hi].
func (d *decoder) duration(n *yaml.Node, what string, hi time.Duration) (time.Duration, bool) {
	s, ok := d.str(n, what)
	if !ok {
		return 0, false
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.errf(n, "%s %q is not a duration (write 90s, 30m or 1h30m)", what, yamlstrict.Clip(s))
		return 0, false
	}
	if v <= 0 || v > hi {
		d.errf(n, "%s must be more than 0 and at most %s, not %s", what, fmtDuration(hi), yamlstrict.Clip(s))
		return 0, false
	}
	return v, true
}

// fmtDuration writes 72h0m0s as 72h.
func fmtDuration(v time.Duration) string {
	s := v.String()
	s = strings.TrimSuffix(s, "0s")
	return strings.TrimSuffix(s, "0m")
}
