package mirror

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// FieldError is one problem in a mirror spec: where it is and what is wrong.
type FieldError struct {
	// Line is the 1-based line in the spec file, 0 when unknown (a Spec built in code).
	Line int
	// Entry is the index of the entry in mirrors, or -1 when the problem is elsewhere.
	Entry int
	// Source is the source of that entry, as written.
	Source string
	// Field is the offending field, relative to the entry when there is one
	// ("tags.include[0]"); empty when the problem is the whole entry or document.
	Field string
	// Err says what is wrong.
	Err error
}

// Error reads "line 7: mirrors[1] (docker.io/library/alpine): tags.newest: …".
func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Entry >= 0 {
		fmt.Fprintf(&b, "mirrors[%d]", e.Entry)
		if e.Source != "" {
			fmt.Fprintf(&b, " (%s)", e.Source)
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns what is wrong.
func (e *FieldError) Unwrap() error { return e.Err }

// SpecError is every problem found in a mirror spec, in the order of the file.
type SpecError struct {
	// File is the path given to LoadFile, empty otherwise.
	File string
	// Problems holds at least one problem.
	Problems []*FieldError
}

// Error puts one problem on each line, each prefixed with the file when known.
func (e *SpecError) Error() string {
	prefix := "mirror spec: "
	if e.File != "" {
		prefix = e.File + ": "
	}
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = prefix + p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, so errors.As finds a *FieldError.
func (e *SpecError) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p
	}
	return errs
}

// problem is a FieldError before it knows its line: path is where in the document it
// is, as map keys (string) and sequence indexes (int): {"mirrors", 2, "tags", "newest"}.
type problem struct {
	path []any
	err  error
}

// specError resolves problems into a *SpecError; sources names the entries, doc
// (optional) gives line numbers.
func specError(file string, sources []string, doc *yaml.Node, probs ...problem) *SpecError {
	se := &SpecError{File: file}
	for _, p := range probs {
		fe := &FieldError{Entry: -1, Err: p.err, Field: renderPath(p.path)}
		if len(p.path) >= 2 && p.path[0] == "mirrors" {
			if i, ok := p.path[1].(int); ok {
				fe.Entry, fe.Field = i, renderPath(p.path[2:])
				if i < len(sources) {
					fe.Source = sources[i]
				}
			}
		}
		if doc != nil {
			fe.Line = lineOf(doc, p.path)
		}
		se.Problems = append(se.Problems, fe)
	}
	slices.SortStableFunc(se.Problems, func(a, b *FieldError) int { return a.Line - b.Line })
	se.Problems = truncateProblems(se.Problems)
	return se
}

// maxProblems is how many problems a SpecError lists before it only counts the
// rest: enough to fix a spec in one go, and a bound on the work a broken file costs.
const maxProblems = 20

func truncateProblems(probs []*FieldError) []*FieldError {
	if len(probs) <= maxProblems {
		return probs
	}
	more := len(probs) - maxProblems
	return append(probs[:maxProblems:maxProblems],
		&FieldError{Entry: -1, Err: fmt.Errorf("and %d more problems", more)})
}

// Validate reports every problem in s as a *SpecError, or returns nil. A Spec from
// Load is valid; Plan and Run call Validate for one built in code.
func (s *Spec) Validate() error {
	if s == nil {
		return specError("", nil, nil, problem{err: errors.New("no spec")})
	}
	var probs []problem
	if len(s.Mirrors) == 0 {
		probs = append(probs, problem{path: []any{"mirrors"}, err: errors.New("at least one entry is required")})
	}
	sources := make([]string, len(s.Mirrors))
	for i, m := range s.Mirrors {
		sources[i] = m.Source
		at := []any{"mirrors", i}
		probs = append(probs, checkPlatforms(m.Platforms, sub(at, "platforms"))...)
		probs = append(probs, checkFilter(m.Tags, sub(at, "tags"))...)
		probs = append(probs, checkRefs(m, at, !m.Tags.IsZero())...)
	}
	if len(probs) > 0 {
		return specError("", sources, nil, probs...)
	}
	return nil
}

// platformRe is os/arch or os/arch/variant.
var platformRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9_.-]+/[a-z0-9_.-]+(/[a-z0-9_.-]+)?$`) })

func checkPlatforms(platforms []string, at []any) []problem {
	var probs []problem
	seen := make(map[string]bool, len(platforms))
	for i, p := range platforms {
		switch {
		case !platformRe().MatchString(p):
			probs = append(probs, problem{path: sub(at, i),
				err: fmt.Errorf("%q must be os/arch or os/arch/variant, as in linux/arm64/v8", p)})
		case seen[p]:
			probs = append(probs, problem{path: sub(at, i), err: fmt.Errorf("%q is listed twice", p)})
		}
		seen[p] = true
	}
	return probs
}

func checkFilter(f TagFilter, at []any) []problem {
	_, probs := compileFilter(f)
	for i := range probs {
		probs[i].path = sub(at, probs[i].path...)
	}
	return probs
}

// checkRefs checks an entry's source and target and how they fit together; hasTags
// says whether the entry sets a tag filter of its own.
func checkRefs(m Mirror, at []any, hasTags bool) []problem {
	var probs []problem
	add := func(field string, err error) {
		probs = append(probs, problem{path: sub(at, field), err: err})
	}
	src, srcErr := parseRef(m.Source)
	if m.Source == "" {
		add("source", errors.New("is required"))
	} else if srcErr != nil {
		add("source", srcErr)
	}
	if m.Target == "" {
		// Without a source there is nothing to derive a target from; one error is enough.
		if m.Source != "" {
			add("target", errors.New("is required (or set defaults.target)"))
		}
		return probs
	}
	dst, err := parseRef(m.Target)
	switch {
	case err != nil:
		add("target", err)
	case dst.Digest != "":
		add("target", fmt.Errorf("%q must not have a digest: an image is pushed under a tag, or under its own digest when the target has no tag", m.Target))
	case srcErr != nil:
		// Already reported; the cases below compare with the source.
	case !src.exact() && dst.Tag != "":
		add("target", fmt.Errorf("%q must not have a tag: the source lists tags, which keep their names (give the source a tag to copy one image under another)", m.Target))
	case dst.Repo == src.Repo && (dst.Tag == "" || dst.Tag == src.Tag):
		add("target", fmt.Errorf("%q is the source itself", m.Target))
	}
	if srcErr == nil && src.exact() && hasTags {
		add("tags", errors.New("must not be set when the source names a tag or digest: that one image is copied"))
	}
	return probs
}

// sub returns path p extended by more, never sharing p's backing array.
func sub(p []any, more ...any) []any {
	return append(slices.Clip(p), more...)
}

// renderPath writes {"tags", "include", 0} as "tags.include[0]".
func renderPath(p []any) string {
	var b strings.Builder
	for _, e := range p {
		switch v := e.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", v)
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(v)
		}
	}
	return b.String()
}

// lineOf returns the line of the node at path in doc, or of its deepest ancestor
// there when the path goes further than the document (a required field left out).
func lineOf(doc *yaml.Node, path []any) int {
	n, _ := nodeAt(doc, path)
	return n.Line
}

// nodeAt returns the node at path in doc and true, or its deepest ancestor there
// and false.
func nodeAt(doc *yaml.Node, path []any) (*yaml.Node, bool) {
	n := doc
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, p := range path {
		for n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		var next *yaml.Node
		switch k := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == k {
						next = n.Content[i+1]
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && k < len(n.Content) {
				next = n.Content[k]
			}
		}
		if next == nil {
			return n, false
		}
		n = next
	}
	return n, true
}

// pathWhere returns the path of the one node for which match is true, given the
// node and the mapping key it is the value of (nil for the document's root and
// sequence items). It returns nil when no node or more than one matches (several
// fields on one line of a flow mapping), where naming one would be a guess.
func pathWhere(doc *yaml.Node, match func(key, val *yaml.Node) bool) []any {
	var found [][]any
	var walk func(key, n *yaml.Node, path []any)
	walk = func(key, n *yaml.Node, path []any) {
		if n.Kind != yaml.DocumentNode && match(key, n) {
			found = append(found, path)
		}
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(nil, c, path)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(nil, c, sub(path, i))
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i], n.Content[i+1], sub(path, n.Content[i].Value))
			}
		}
	}
	walk(nil, doc, []any{})
	if len(found) != 1 {
		return nil
	}
	return found[0]
}
