package yamlstrict

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// PosOf is where node n starts.
func PosOf(n *yaml.Node) Pos { return Pos{Line: n.Line, Col: n.Column} }

// Describe names what a node is, for "must be a list, not a mapping".
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "empty"
		case "!!bool":
			return "a boolean"
		case "!!int", "!!float":
			return "a number"
		}
		return fmt.Sprintf("the string %q", Clip(n.Value))
	}
	return "something else"
}

// Clip shortens a value quoted in an error, so a megabyte string is not repeated.
func Clip(s string) string {
	if r := []rune(s); len(r) > 60 {
		return string(r[:57]) + "…"
	}
	return s
}

// IsNull reports whether n is YAML's null (an empty value).
func IsNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// Suggest returns ` (did you mean "x"?)` when a known word is close to s.
func Suggest(s string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(strings.ToLower(s), k); d < bestD && d < len(s) {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance, bounded to short words.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// CheckTree refuses what the strict walkers do not handle: aliases (a small file could
// expand to a huge one, and every value should be written where it applies), tags
// other than YAML's own, and nesting deeper than 64 levels. It returns at most
// 10 × MaxErrors errors, unsorted.
func CheckTree(n *yaml.Node) Errors {
	var errs Errors
	checkTree(n, 0, &errs)
	return errs
}

func checkTree(n *yaml.Node, depth int, errs *Errors) {
	errf := func(format string, a ...any) {
		if len(*errs) < 10*MaxErrors {
			*errs = append(*errs, Error{Pos: PosOf(n), Msg: fmt.Sprintf(format, a...)})
		}
	}
	if depth > 64 {
		errf("the document is nested more than 64 levels deep")
		return
	}
	switch n.Kind {
	case yaml.AliasNode:
		errf("YAML aliases (*%s) are not supported: write the value out", Clip(n.Value))
		return
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str", "!!int", "!!float", "!!bool", "!!null", "!!timestamp":
		default:
			errf("the tag %s is not supported", Clip(n.Tag))
		}
	case yaml.MappingNode:
		if n.Tag != "!!map" {
			errf("the tag %s is not supported", Clip(n.Tag))
		}
	case yaml.SequenceNode:
		if n.Tag != "!!seq" {
			errf("the tag %s is not supported", Clip(n.Tag))
		}
	}
	for _, c := range n.Content {
		checkTree(c, depth+1, errs)
	}
}
