package workflow

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/hubctl/hubctl/internal/yamlstrict"
)

// matrixRow is an include or exclude entry with the positions of its keys.
type matrixRow struct {
	values map[string]string
	keys   []*yaml.Node // in file order
	pos    Pos
}

// matrixNodes keeps what expansion needs to place its errors.
type matrixNodes struct {
	include, exclude []matrixRow
	// broken is set when decoding the matrix failed: expanding it would only repeat
	// the error in other words.
	broken bool
}

// matrix decodes axes (KEY: [values]) and include/exclude lists. Values are scalars,
// kept as the text written.
func (d *decoder) matrix(n *yaml.Node, what string) *Matrix {
	m := &Matrix{Pos: pos(n)}
	mn := &matrixNodes{}
	errs := len(d.errs)
	defer func() { mn.broken = len(d.errs) > errs }()
	for _, kv := range d.pairs(n, what) {
		k, v := kv[0], kv[1]
		switch k.Value {
		case "include":
			mn.include = d.matrixRows(v, what+": include")
		case "exclude":
			mn.exclude = d.matrixRows(v, what+": exclude")
		default:
			if !identRe.MatchString(k.Value) {
				d.errf(k, "%s: %q is not a valid matrix key: letters, digits and '_', not starting with a digit (it is read as matrix.KEY)", what, yamlstrict.Clip(k.Value))
				continue
			}
			items, ok := d.list(v, what+": "+k.Value)
			if !ok {
				continue
			}
			if len(items) == 0 {
				d.errf(v, "%s: %s has no values", what, k.Value)
				continue
			}
			if len(items) > MaxCombinations {
				d.errf(v, "%s: %s has %d values; at most %d", what, k.Value, len(items), MaxCombinations)
				continue
			}
			ax := Axis{Name: k.Value}
			for _, it := range items {
				s, ok := d.str(it, what+": "+k.Value+" value")
				if !ok {
					continue
				}
				if slices.Contains(ax.Values, s) {
					d.errf(it, "%s: %s: %q is given twice", what, k.Value, yamlstrict.Clip(s))
					continue
				}
				ax.Values = append(ax.Values, s)
			}
			m.Axes = append(m.Axes, ax)
		}
	}
	for _, r := range mn.include {
		m.Include = append(m.Include, r.values)
	}
	for _, r := range mn.exclude {
		m.Exclude = append(m.Exclude, r.values)
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 0 {
		d.errf(n, "%s has no keys and no include", what)
		return nil
	}
	d.matrixNodes[m] = mn
	return m
}

func (d *decoder) matrixRows(n *yaml.Node, what string) []matrixRow {
	items, ok := d.list(n, what)
	if !ok {
		return nil
	}
	if len(items) > MaxCombinations {
		d.errf(n, "%s: at most %d entries", what, MaxCombinations)
		return nil
	}
	var out []matrixRow
	for _, it := range items {
		r := matrixRow{values: map[string]string{}, pos: pos(it)}
		for _, kv := range d.pairs(it, what+" entry") {
			if s, ok := d.str(kv[1], what+": "+yamlstrict.Clip(kv[0].Value)); ok {
				r.values[kv[0].Value] = s
				r.keys = append(r.keys, kv[0])
			}
		}
		if it.Kind == yaml.MappingNode && len(it.Content) == 0 {
			d.errf(it, "%s: an entry is empty", what)
			continue
		}
		out = append(out, r)
	}
	return out
}

// expand makes the runs of job j: the product of its axes in file order (the first
// axis varies slowest), less the combinations an exclude entry matches on every key
// it gives, then the include entries in order.
func (d *decoder) expand(j *Job) {
	m := j.Matrix
	if m == nil {
		j.Runs = []JobRun{{Name: j.Name}}
		return
	}
	what := "job " + yamlstrict.Clip(j.Name) + ": matrix"
	mn := d.matrixNodes[m]
	if mn.broken {
		return
	}
	axes := make([]string, len(m.Axes))
	product := 1
	for i, ax := range m.Axes {
		axes[i] = ax.Name
		product *= len(ax.Values) // each ≤ MaxCombinations: checked below before it can overflow
		if product > maxProduct {
			d.errAt(m.Pos, "%s: its keys make more than %d combinations before exclusions; a job runs at most %d", what, maxProduct, MaxCombinations)
			return
		}
	}
	bad := false
	for _, r := range mn.exclude {
		for _, k := range r.keys {
			ax := slices.IndexFunc(m.Axes, func(a Axis) bool { return a.Name == k.Value })
			switch {
			case ax < 0:
				d.errf(k, "%s: exclude: %q is not a key of the matrix (keys: %s)", what, yamlstrict.Clip(k.Value), strings.Join(axes, ", "))
				bad = true
			case !slices.Contains(m.Axes[ax].Values, r.values[k.Value]):
				d.errf(k, "%s: exclude: %s: %q is not one of its values, so the entry excludes nothing", what, k.Value, yamlstrict.Clip(r.values[k.Value]))
				bad = true
			}
		}
	}
	keys := axes
	if len(axes) == 0 && len(mn.include) > 0 {
		keys = slices.Collect(func(yield func(string) bool) {
			for _, k := range mn.include[0].keys {
				if !yield(k.Value) {
					return
				}
			}
		})
	}
	for _, r := range mn.include {
		for _, k := range r.keys {
			if !slices.Contains(keys, k.Value) {
				d.errf(k, "%s: include: %q is not a key of the matrix (keys: %s); an include entry gives a value for every key", what, yamlstrict.Clip(k.Value), strings.Join(keys, ", "))
				bad = true
			}
		}
		for _, k := range keys {
			if _, ok := r.values[k]; !ok {
				d.errAt(r.pos, "%s: include: the entry has no %s; an include entry gives a value for every key", what, k)
				bad = true
			}
		}
	}
	if bad {
		return
	}
	m.Keys = keys
	var combos []map[string]string
	if len(axes) > 0 {
		idx := make([]int, len(axes))
		for {
			c := make(map[string]string, len(axes))
			for i, ax := range m.Axes {
				c[ax.Name] = ax.Values[idx[i]]
			}
			if !slices.ContainsFunc(m.Exclude, func(x map[string]string) bool { return subset(x, c) }) {
				combos = append(combos, c)
			}
			i := len(idx) - 1
			for ; i >= 0; i-- {
				if idx[i]++; idx[i] < len(m.Axes[i].Values) {
					break
				}
				idx[i] = 0
			}
			if i < 0 {
				break
			}
		}
	}
	for _, r := range mn.include {
		if slices.ContainsFunc(combos, func(c map[string]string) bool { return maps.Equal(c, r.values) }) {
			d.errAt(r.pos, "%s: include: this combination is already in the matrix", what)
			return
		}
		combos = append(combos, r.values)
	}
	switch {
	case len(combos) == 0:
		d.errAt(m.Pos, "%s: every combination is excluded", what)
		return
	case len(combos) > MaxCombinations:
		d.errAt(m.Pos, "%s: %d combinations; a job runs at most %d", what, len(combos), MaxCombinations)
		return
	}
	seen := map[string]bool{}
	for _, c := range combos {
		vals := make([]string, len(keys))
		for i, k := range keys {
			vals[i] = c[k]
		}
		key := strings.Join(vals, ", ")
		if seen[key] {
			d.errAt(m.Pos, "%s: two combinations are both named %q; avoid \", \" in values", what, yamlstrict.Clip(key))
			return
		}
		seen[key] = true
		j.Runs = append(j.Runs, JobRun{Name: fmt.Sprintf("%s (%s)", j.Name, key), Key: key, Matrix: c})
	}
}

// MatrixKeys are the keys a run of j has in matrix.KEY, in file order.
func (j *Job) MatrixKeys() []string {
	if j.Matrix == nil {
		return nil
	}
	return j.Matrix.Keys
}

// subset reports whether every key of x has the same value in c.
func subset(x, c map[string]string) bool {
	for k, v := range x {
		if c[k] != v {
			return false
		}
	}
	return true
}
