package yamlstrict

import (
	"fmt"
	"strings"
	"testing"
)

// TestSorted: errors come out in source order, a problem reached twice is said once,
// and a flood is cut at MaxErrors with a last line saying how many more there were.
func TestSorted(t *testing.T) {
	es := Errors{
		{Pos: Pos{Line: 3, Col: 1}, Msg: "c"},
		{Pos: Pos{Line: 1, Col: 5}, Msg: "b"},
		{Pos: Pos{Line: 1, Col: 2}, Msg: "a"},
		{Pos: Pos{Line: 3, Col: 1}, Msg: "c"},
	}
	got := es.Sorted().Error()
	if want := "1:2: a\n1:5: b\n3:1: c"; got != want {
		t.Fatalf("Sorted:\n%s\nwant:\n%s", got, want)
	}
	var flood Errors
	for i := range MaxErrors + 7 {
		flood = append(flood, Error{Pos: Pos{Line: i + 1, Col: 1}, Msg: fmt.Sprint("e", i)})
	}
	out := flood.Sorted()
	if len(out) != MaxErrors+1 || !strings.Contains(out[MaxErrors].Msg, "7 more errors") {
		t.Fatalf("flood: %d errors, last %q", len(out), out[len(out)-1].Msg)
	}
}
