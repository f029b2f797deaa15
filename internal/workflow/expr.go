package workflow

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/types"

	"github.com/hubctl/hubctl/internal/yamlstrict"
)

// EventType is what an expression may read of the event that started a run
// (event.repository, event.digest, …). Fields a trigger does not set are empty.
var EventType = types.Map{
	"trigger":      types.String, // push, tag, schedule, webhook, manual, workflow
	"id":           types.String, // the event's id (a UUIDv7); "" for schedule and manual
	"type":         types.String, // manifest.pushed, tag.deleted, …
	"repository":   types.String,
	"tag":          types.String,
	"digest":       types.String,
	"image":        types.String, // HOST/REPOSITORY@DIGEST: exactly what was pushed
	"platforms":    types.Array(types.String),
	"artifactType": types.String,
	"mediaType":    types.String,
	"kind":         types.String, // image, chart, other
	"actor":        types.String,
	"cron":         types.String, // the schedule that fired
	"workflow":     types.String, // the workflow whose run finished
	"result":       types.String, // and its result
	"runId":        types.String, // and the id of that run
	"depth":        types.Int,    // how many finished runs chained to start this one
	"body":         types.Any,    // a webhook trigger's JSON body
}

// RunType is what an expression may read of the run itself.
var RunType = types.Map{
	"id":        types.String,
	"number":    types.Int,
	"attempt":   types.Int,
	"workflow":  types.String,
	"namespace": types.String,
}

// Status functions of a job's if:. At validation they are declared only; the
// scheduler compiles again with the run's answers.
var statusFuncs = []string{"success", "failure", "cancelled", "always"}

func statusOptions() []expr.Option {
	opts := make([]expr.Option, len(statusFuncs))
	for i, name := range statusFuncs {
		opts[i] = expr.Function(name, func(...any) (any, error) { return false, nil }, new(func() bool))
	}
	return opts
}

// exprEnv is the environment of the expressions of job j (nil: the workflow's own,
// in env and concurrency): inputs, event and run, and for a job matrix and the needs
// it names.
func exprEnv(w *Workflow, j *Job) types.Map {
	inputs := types.Map{}
	if w.On.Manual != nil {
		for _, in := range w.On.Manual.Inputs {
			if in.Type == InputBoolean {
				inputs[in.Name] = types.Bool
			} else {
				inputs[in.Name] = types.String
			}
		}
	}
	env := types.Map{"inputs": inputs, "event": EventType, "run": RunType}
	if j == nil {
		return env
	}
	matrix := types.Map{}
	for _, k := range j.MatrixKeys() {
		matrix[k] = types.String
	}
	env["matrix"] = matrix
	needs := types.Map{}
	for _, name := range j.Needs {
		dep := w.Job(name)
		if dep == nil {
			continue
		}
		outputs := types.Map{}
		for _, o := range dep.Outputs {
			outputs[o] = types.String
		}
		n := types.Map{"result": types.String}
		if dep.Matrix == nil {
			n["outputs"] = outputs
		} else {
			runs := types.Map{}
			for _, r := range dep.Runs {
				runs[r.Key] = types.Map{"result": types.String, "outputs": outputs}
			}
			n["runs"] = runs
		}
		needs[name] = n
	}
	env["needs"] = needs
	return env
}

// compileIf checks a job's if: and reports whether it calls a status function.
func (d *decoder) compileIf(w *Workflow, j *Job) {
	opts := append([]expr.Option{expr.Env(exprEnv(w, j)), expr.AsBool()}, statusOptions()...)
	prog, err := expr.Compile(j.If, opts...)
	if err != nil {
		d.exprError(j.IfPos, j.If, 0, "job "+yamlstrict.Clip(j.Name)+": if", err)
		return
	}
	v := &statusVisitor{}
	node := prog.Node()
	ast.Walk(&node, v)
	j.IfStatus = v.found
}

type statusVisitor struct{ found bool }

func (v *statusVisitor) Visit(n *ast.Node) {
	if c, ok := (*n).(*ast.CallNode); ok {
		if id, ok := c.Callee.(*ast.IdentifierNode); ok {
			for _, s := range statusFuncs {
				if id.Value == s {
					v.found = true
				}
			}
		}
	}
}

// template checks the ${{ … }} of a string value at p.
func (d *decoder) template(p Pos, s string, env types.Map, what string) {
	rest, off := s, 0
	for {
		i := strings.Index(rest, "${{")
		if i < 0 {
			return
		}
		j := strings.Index(rest[i+3:], "}}")
		if j < 0 {
			d.errAt(d.exprPos(p, s, off+utf8.RuneCountInString(rest[:i]), 0), "%s: ${{ is not closed by }}", what)
			return
		}
		src := rest[i+3 : i+3+j]
		start := off + utf8.RuneCountInString(rest[:i+3])
		if strings.TrimSpace(src) == "" {
			d.errAt(d.exprPos(p, s, start-3, 0), "%s: ${{ }} is empty", what)
		} else if _, err := expr.Compile(src, expr.Env(env)); err != nil {
			d.exprError(p, s, start, what, err)
		}
		off = start + utf8.RuneCountInString(rest[i+3:i+3+j+2])
		rest = rest[i+3+j+2:]
	}
}

// hasTemplate reports whether s holds ${{.
func hasTemplate(s string) bool { return strings.Contains(s, "${{") }

// exprError reports an expression's compile error at its place in the file.
func (d *decoder) exprError(p Pos, value string, offset int, what string, err error) {
	var fe *file.Error
	if errors.As(err, &fe) {
		col := fe.Column
		if fe.Line != 1 {
			col = -1
		}
		d.errAt(d.exprPos(p, value, offset, col), "%s: %s%s", what, fe.Message, hyphenHint(value))
		return
	}
	d.errAt(p, "%s: %v", what, err)
}

// exprPos is the position of the rune offset+col of value, a scalar starting at p,
// when value is written on p's line as is (plain or quoted without escapes); else p.
func (d *decoder) exprPos(p Pos, value string, offset, col int) Pos {
	if col < 0 || strings.Contains(value, "\n") || p.Line < 1 || p.Line > len(d.lines) {
		return p
	}
	line := []rune(d.lines[p.Line-1])
	start := p.Col - 1
	if start < 0 || start > len(line) {
		return p
	}
	if start < len(line) && (line[start] == '"' || line[start] == '\'') {
		start++
	}
	prefix := []rune(value)
	if n := offset + col; n <= len(prefix) {
		prefix = prefix[:n]
	}
	if start+len(prefix) > len(line) || string(line[start:start+len(prefix)]) != string(prefix) {
		return p
	}
	return Pos{Line: p.Line, Col: start + len(prefix) + 1}
}

var hyphenNeedRe = regexp.MustCompile(`needs\.([A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)+)`)

// hyphenHint explains an unknown name caused by a job name with '-' written after a
// dot, which an expression reads as a subtraction.
func hyphenHint(src string) string {
	if m := hyphenNeedRe.FindStringSubmatch(src); m != nil {
		return fmt.Sprintf(" (write needs[%q]: after a dot, '-' is a subtraction)", m[1])
	}
	return ""
}
