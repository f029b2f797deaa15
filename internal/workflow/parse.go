package workflow

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/yamlstrict"
)

// Parse decodes and validates a workflow file. Its error, when not nil, is Errors:
// every problem found, in source order, each with its line and column.
func Parse(src []byte) (*Workflow, error) {
	if len(src) > MaxFileSize {
		return nil, Errors{{Pos: Pos{Line: 1, Col: 1}, Msg: fmt.Sprintf("the file is larger than %d bytes (1 MiB), the most a workflow may be", MaxFileSize)}}
	}
	root, err := parseYAML(src)
	if err != nil {
		return nil, err
	}
	d := &decoder{lines: strings.Split(string(src), "\n"), matrixNodes: map[*Matrix]*matrixNodes{}}
	d.errs = append(d.errs, yamlstrict.CheckTree(root)...)
	if len(d.errs) > 0 {
		return nil, d.errs.Sorted()
	}
	w := d.workflow(root)
	if w != nil {
		d.validate(w)
	}
	if len(d.errs) > 0 {
		return nil, d.errs.Sorted()
	}
	return w, nil
}

var yamlErrRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML reads the one YAML document of src as a node tree.
func parseYAML(src []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{Pos: Pos{Line: 1, Col: 1}, Msg: "the file is empty"}}
		}
		return nil, Errors{yamlError(err)}
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, Errors{{Pos: Pos{Line: next.Line, Col: next.Column}, Msg: "a workflow file holds one YAML document; remove the second (after ---)"}}
	case !errors.Is(err, io.EOF):
		return nil, Errors{yamlError(err)}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, Errors{{Pos: Pos{Line: 1, Col: 1}, Msg: "the file is empty"}}
	}
	return doc.Content[0], nil
}

// yamlError places a syntax error of the YAML library; it gives a line only.
func yamlError(err error) Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlErrRe.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Error{Pos: Pos{Line: line, Col: 1}, Msg: "YAML: " + m[2]}
	}
	return Error{Pos: Pos{Line: 1, Col: 1}, Msg: "YAML: " + msg}
}

// workflow decodes the top level.
func (d *decoder) workflow(n *yaml.Node) *Workflow {
	w := &Workflow{}
	var sawName, sawOn, sawJobs bool
	ok := d.fields(n, "the workflow", map[string]func(k, v *yaml.Node){
		"name": func(k, v *yaml.Node) {
			sawName = true
			w.Name, _ = d.name(v, "name", workflowNameRe.MatchString, "lower-case letters, digits, '.', '_' and '-', starting and ending with a letter or digit, at most 64 characters")
		},
		"on":          func(k, v *yaml.Node) { sawOn = true; d.triggers(v, &w.On) },
		"env":         func(k, v *yaml.Node) { w.Env = d.env(v, "env") },
		"concurrency": func(k, v *yaml.Node) { w.Concurrency = d.concurrency(v, "concurrency") },
		"permissions": func(k, v *yaml.Node) { d.permissions(v, &w.Permissions) },
		"jobs":        func(k, v *yaml.Node) { sawJobs = true; w.Jobs = d.jobs(v) },
	})
	if !ok {
		return nil
	}
	for _, req := range []struct {
		saw  bool
		name string
	}{{sawName, "name"}, {sawOn, "on"}, {sawJobs, "jobs"}} {
		if !req.saw {
			d.errf(n, "the workflow has no %s", req.name)
		}
	}
	return w
}

// env decodes an env mapping: NAME: value, in file order.
func (d *decoder) env(n *yaml.Node, what string) []EnvVar {
	var out []EnvVar
	for _, kv := range d.pairs(n, what) {
		k := kv[0].Value
		switch {
		case !envNameRe.MatchString(k):
			d.errf(kv[0], "%s: %q is not a valid variable name: letters, digits and '_', not starting with a digit", what, yamlstrict.Clip(k))
			continue
		case strings.HasPrefix(k, "HUBCTL_"):
			d.errf(kv[0], "%s: %s: names starting with HUBCTL_ are set by the hub", what, k)
			continue
		}
		if v, ok := d.str(kv[1], what+" "+k); ok {
			out = append(out, EnvVar{Name: k, Value: v, Pos: pos(kv[1])})
		}
	}
	return out
}

// concurrency decodes a group name or {group, cancel-in-progress, queue}.
func (d *decoder) concurrency(n *yaml.Node, what string) *Concurrency {
	c := &Concurrency{Queue: DefaultQueue, Pos: pos(n)}
	c.GroupPos = pos(n)
	if n.Kind == yaml.ScalarNode {
		c.Group, _ = d.str(n, what)
	} else {
		var saw bool
		if !d.fields(n, what, map[string]func(k, v *yaml.Node){
			"group": func(k, v *yaml.Node) {
				saw = true
				c.Group, _ = d.str(v, what+": group")
				c.GroupPos = pos(v)
			},
			"cancel-in-progress": func(k, v *yaml.Node) { c.CancelInProgress, _ = d.boolean(v, what+": cancel-in-progress") },
			"queue":              func(k, v *yaml.Node) { c.Queue, _ = d.integer(v, what+": queue", 0, MaxQueue) },
		}) {
			return nil
		}
		if !saw {
			d.errf(n, "%s has no group", what)
		}
	}
	if len(c.Group) > 256 {
		d.errf(n, "%s: a group name is at most 256 characters", what)
	}
	return c
}

// permissions decodes {pull: [...], push: [...], deploy: [...]}.
func (d *decoder) permissions(n *yaml.Node, p *Permissions) {
	repos := func(v *yaml.Node, what string) []string {
		names, ps := d.strings(v, what)
		for i, s := range names {
			if err := checkRepoPattern(s); err != nil {
				d.errAt(ps[i], "%s: %v", what, err)
			}
		}
		return names
	}
	d.fields(n, "permissions", map[string]func(k, v *yaml.Node){
		"pull": func(k, v *yaml.Node) { p.Pull = repos(v, "permissions: pull") },
		"push": func(k, v *yaml.Node) { p.Push = repos(v, "permissions: push") },
		"deploy": func(k, v *yaml.Node) {
			names, ps := d.strings(v, "permissions: deploy")
			for i, s := range names {
				if err := scope.CheckDeployPattern(s); err != nil {
					d.errAt(ps[i], "permissions: deploy: %q: want a service of this namespace by name, PREFIX* or *", s)
				}
			}
			p.Deploy = names
		},
	})
}
