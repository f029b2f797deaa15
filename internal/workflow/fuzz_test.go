package workflow

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: no input panics, every error has a position and a message, and what
// parses keeps the bounds: every job ordered once, 1 to MaxCombinations runs a job.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(minimal))
	f.Add([]byte("name: w\non: manual\njobs:\n  a: {needs: b, image: alpine, steps: [{run: x}]}\n  b: {needs: a, image: alpine, steps: [{run: x}]}\n"))
	f.Add([]byte("name: w\non: {manual: {inputs: {x: {type: choice, options: [a]}}}}\njobs:\n  a:\n    image: alpine\n    matrix: {os: [a, b], include: [{os: c}], exclude: [{os: a}]}\n    if: inputs.x == matrix.os\n    steps: [{run: x}]\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		w, err := Parse(src)
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 || w != nil {
				t.Fatalf("error %T %v, workflow %v", err, err, w != nil)
			}
			for _, e := range es {
				if e.Line < 1 || e.Col < 1 || e.Msg == "" {
					t.Fatalf("error without a position or message: %#v", e)
				}
			}
			return
		}
		if len(w.Order) != len(w.Jobs) || len(w.Jobs) == 0 || len(w.Jobs) > MaxJobs {
			t.Fatalf("%d jobs, order %v", len(w.Jobs), w.Order)
		}
		for _, j := range w.Jobs {
			if len(j.Runs) < 1 || len(j.Runs) > MaxCombinations || len(j.Steps) == 0 {
				t.Fatalf("job %s: %d runs, %d steps", j.Name, len(j.Runs), len(j.Steps))
			}
		}
	})
}
