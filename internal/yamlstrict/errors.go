// Package yamlstrict holds what the strict YAML readers of hubctl's files (workflows,
// deploy specs) share: errors that say where, at line:column.
package yamlstrict

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a place in a file: 1-based line and column.
type Pos struct {
	Line int `json:"line"`
	Col  int `json:"column"`
}

// Error is one problem in a file, at Pos.
type Error struct {
	Pos
	Msg string `json:"message"`
}

func (e Error) Error() string { return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg) }

// Errors are every problem found in one file, in source order. Parse returns them as
// its error; errors.As recovers the list.
type Errors []Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// MaxErrors bounds the list a hostile or badly broken file can produce.
const MaxErrors = 100

// Sorted returns the errors in source order, each once, at most MaxErrors of them (the
// last saying how many more there were).
func (es Errors) Sorted() Errors {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Col < es[j].Col
	})
	// The same problem reached twice (a key both unknown and misplaced) is said once.
	out := es[:0]
	for i, e := range es {
		if i > 0 && e == es[i-1] {
			continue
		}
		out = append(out, e)
	}
	if len(out) > MaxErrors {
		more := len(out) - MaxErrors
		out = append(out[:MaxErrors], Error{Pos: out[MaxErrors].Pos, Msg: fmt.Sprintf("… and %d more errors", more)})
	}
	return out
}
