package workflow

import (
	"slices"
	"strconv"
	"strings"

	"github.com/hubctl/hubctl/internal/yamlstrict"
)

// validate checks what needs the whole file: needs and their cycles, the order of
// jobs, matrices, expressions, and references between triggers and jobs.
func (d *decoder) validate(w *Workflow) {
	if t := w.On.Workflow; t != nil && w.Name != "" && slices.Contains(t.Workflows, w.Name) {
		d.errAt(t.Pos, "on: workflow: a workflow cannot start itself (%s)", w.Name)
	}
	names := make([]string, len(w.Jobs))
	for i, j := range w.Jobs {
		names[i] = j.Name
	}
	for _, j := range w.Jobs {
		for i, n := range j.Needs {
			switch {
			case n == j.Name:
				d.errAt(j.NeedsPos[i], "job %s: needs itself (cycle %s → %s)", j.Name, n, n)
			case w.Job(n) == nil:
				d.errAt(j.NeedsPos[i], "job %s: needs %q, which is not a job of this workflow%s", yamlstrict.Clip(j.Name), yamlstrict.Clip(n), yamlstrict.Suggest(n, names))
			case slices.Contains(j.Needs[:i], n):
				d.errAt(j.NeedsPos[i], "job %s: needs %s twice", j.Name, n)
			}
		}
	}
	w.Order = d.order(w)
	for _, j := range w.Jobs {
		d.expand(j)
	}
	d.expressions(w)
}

// order returns the jobs in a topological order of their needs, taking at each step
// the first job in file order whose needs are done, and reports each cycle as
// a → b → a.
func (d *decoder) order(w *Workflow) []string {
	done := make(map[string]bool, len(w.Jobs))
	var order []string
	for len(order) < len(w.Jobs) {
		progress := false
		for _, j := range w.Jobs {
			if done[j.Name] {
				continue
			}
			ready := true
			for _, n := range j.Needs {
				// A need on an unknown job or on itself is reported already.
				if !done[n] && n != j.Name && w.Job(n) != nil {
					ready = false
					break
				}
			}
			if ready {
				done[j.Name] = true
				order = append(order, j.Name)
				progress = true
				break
			}
		}
		if !progress {
			d.cycles(w, done)
			return nil
		}
	}
	return order
}

// cycles reports the cycles among the jobs not done, by a depth-first search in file
// order: each edge back to a job on the stack closes one.
func (d *decoder) cycles(w *Workflow, done map[string]bool) {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var visit func(j *Job)
	visit = func(j *Job) {
		color[j.Name] = grey
		stack = append(stack, j.Name)
		for i, n := range j.Needs {
			dep := w.Job(n)
			if dep == nil || n == j.Name || done[n] {
				continue
			}
			switch color[n] {
			case grey:
				at := slices.Index(stack, n)
				cycle := append(slices.Clone(stack[at:]), n)
				// needs point backwards (j needs n): print the direction work flows.
				slices.Reverse(cycle)
				d.errAt(j.NeedsPos[i], "job %s: needs form a cycle: %s", j.Name, strings.Join(cycle, " → "))
			case white:
				visit(dep)
			}
		}
		stack = stack[:len(stack)-1]
		color[j.Name] = black
	}
	for _, j := range w.Jobs {
		if !done[j.Name] && color[j.Name] == white {
			visit(j)
		}
	}
}

// expressions compiles every if: and ${{ … }} against what it may read.
func (d *decoder) expressions(w *Workflow) {
	top := exprEnv(w, nil)
	for _, e := range w.Env {
		d.template(e.Pos, e.Value, top, "env "+e.Name)
	}
	if c := w.Concurrency; c != nil {
		d.template(c.GroupPos, c.Group, top, "concurrency: group")
	}
	for _, j := range w.Jobs {
		if len(j.Runs) == 0 {
			continue // its matrix is broken and reported: matrix.KEY cannot be checked
		}
		env := exprEnv(w, j)
		what := "job " + yamlstrict.Clip(j.Name)
		if j.If != "" {
			d.compileIf(w, j)
		}
		for _, e := range j.Env {
			d.template(e.Pos, e.Value, env, what+": env "+e.Name)
		}
		if hasTemplate(j.Image) {
			d.template(j.ImagePos, j.Image, env, what+": image")
		}
		if c := j.Concurrency; c != nil {
			d.template(c.GroupPos, c.Group, env, what+": concurrency: group")
		}
		if c := j.Cache; c != nil {
			d.template(c.KeyPos, c.Key, env, what+": cache: key")
		}
		for _, s := range j.Services {
			sw := what + ": services: " + s.Name
			d.template(s.ImagePos, s.Image, env, sw+": image")
			for _, e := range s.Env {
				d.template(e.Pos, e.Value, env, sw+": env "+e.Name)
			}
			for i, a := range s.Args {
				d.template(s.ArgsPos[i], a, env, sw+": args")
			}
		}
		for i, s := range j.Steps {
			sw := what + ": step " + strconv.Itoa(i+1)
			if hasTemplate(s.Run) {
				d.errAt(s.Pos, "%s: run: ${{ … }} is not allowed in a script (a value pasted into it could run commands); set env: NAME: ${{ … }} and use $NAME", sw)
			}
			if hasTemplate(s.Workdir) {
				d.errAt(s.Pos, "%s: workdir: ${{ … }} is not allowed here", sw)
			}
			d.template(s.ImagePos, s.Image, env, sw+": image")
			for i, a := range s.Args {
				d.template(s.ArgsPos[i], a, env, sw+": args")
			}
			for _, e := range s.Env {
				d.template(e.Pos, e.Value, env, sw+": env "+e.Name)
			}
		}
	}
}
