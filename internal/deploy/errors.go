package deploy

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a place in a deploy file: 1-based line and column.
type Pos struct {
	Line int `json:"line"`
	Col  int `json:"column"`
}

// Error is one problem in a deploy file, at Pos.
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

// maxErrors bounds the list a hostile or badly broken file can produce.
const maxErrors = 100

func (es Errors) sorted() Errors {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Col < es[j].Col
	})
	out := es[:0]
	for i, e := range es {
		if i > 0 && e == es[i-1] {
			continue
		}
		out = append(out, e)
	}
	if len(out) > maxErrors {
		more := len(out) - maxErrors
		out = append(out[:maxErrors], Error{Pos: out[maxErrors].Pos, Msg: fmt.Sprintf("… and %d more errors", more)})
	}
	return out
}
