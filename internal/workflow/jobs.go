package workflow

import (
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"gopkg.in/yaml.v3"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/yamlstrict"
)

// jobs decodes the jobs mapping, in file order.
func (d *decoder) jobs(n *yaml.Node) []*Job {
	pairs := d.pairs(n, "jobs")
	if n.Kind == yaml.MappingNode && len(pairs) == 0 {
		d.errf(n, "jobs is empty: a workflow has at least one job")
	}
	if len(pairs) > MaxJobs {
		d.errf(n, "jobs: %d jobs; a workflow has at most %d", len(pairs), MaxJobs)
		return nil
	}
	var out []*Job
	for _, kv := range pairs {
		j := &Job{Name: kv[0].Value, Pos: pos(kv[0]), Timeout: DefaultTimeout}
		if !jobNameRe.MatchString(j.Name) {
			d.errf(kv[0], "jobs: %q is not a valid job name: letters, digits, '_' and '-', starting with a letter or '_', at most 64 characters", yamlstrict.Clip(j.Name))
		}
		d.job(kv[1], j)
		out = append(out, j)
	}
	return out
}

func (d *decoder) job(n *yaml.Node, j *Job) {
	what := "job " + yamlstrict.Clip(j.Name)
	var sawSteps bool
	if !d.fields(n, what, map[string]func(k, v *yaml.Node){
		"needs": func(k, v *yaml.Node) { j.Needs, j.NeedsPos = d.strings(v, what+": needs") },
		"if": func(k, v *yaml.Node) {
			j.IfPos = pos(v)
			if s, ok := d.str(v, what+": if"); ok && strings.TrimSpace(s) == "" {
				d.errf(v, "%s: if is empty", what)
			} else {
				j.If = s
			}
		},
		"matrix":      func(k, v *yaml.Node) { j.Matrix = d.matrix(v, what+": matrix") },
		"timeout":     func(k, v *yaml.Node) { j.Timeout, _ = d.duration(v, what+": timeout", MaxTimeout) },
		"retries":     func(k, v *yaml.Node) { j.Retries, _ = d.integer(v, what+": retries", 0, MaxRetries) },
		"concurrency": func(k, v *yaml.Node) { j.Concurrency = d.concurrency(v, what+": concurrency") },
		"environment": func(k, v *yaml.Node) { j.Environment = d.environment(v, what+": environment") },
		"image":       func(k, v *yaml.Node) { j.Image, j.ImagePos = d.image(v, what+": image"), pos(v) },
		"resources":   func(k, v *yaml.Node) { d.resources(v, what+": resources", &j.Resources) },
		"env":         func(k, v *yaml.Node) { j.Env = d.env(v, what+": env") },
		"services":    func(k, v *yaml.Node) { j.Services = d.services(v, what+": services") },
		"steps":       func(k, v *yaml.Node) { sawSteps = true; j.Steps = d.steps(v, what) },
		"outputs": func(k, v *yaml.Node) {
			names, ps := d.strings(v, what+": outputs")
			for i, s := range names {
				switch {
				case !identRe.MatchString(s):
					d.errAt(ps[i], "%s: outputs: %q is not a valid output name: letters, digits and '_', not starting with a digit", what, yamlstrict.Clip(s))
				case slices.Contains(names[:i], s):
					d.errAt(ps[i], "%s: outputs: %s is given twice", what, s)
				}
			}
			if len(names) > 100 {
				d.errf(v, "%s: outputs: at most 100", what)
			}
			j.Outputs = names
		},
		"artifacts": func(k, v *yaml.Node) { j.Artifacts = d.artifacts(v, what+": artifacts") },
		"cache":     func(k, v *yaml.Node) { j.Cache = d.cache(v, what+": cache") },
	}) {
		return
	}
	if !sawSteps {
		d.errf(n, "%s has no steps", what)
	}
	for i, s := range j.Steps {
		if s.Image == "" && j.Image == "" && s.Run != "" {
			d.errAt(s.Pos, "%s: step %d has no image: set image on the step or on the job", what, i+1)
		}
	}
}

// image checks an image reference; one built from ${{ … }} is checked when it runs.
func (d *decoder) image(n *yaml.Node, what string) string {
	s, ok := d.str(n, what)
	if !ok {
		return ""
	}
	if !strings.Contains(s, "${{") {
		if _, err := name.ParseReference(s); err != nil {
			d.errf(n, "%s %q is not an image reference: %v", what, yamlstrict.Clip(s), err)
		}
	}
	return s
}

func (d *decoder) steps(n *yaml.Node, what string) []Step {
	items, ok := d.list(n, what+": steps")
	if !ok {
		return nil
	}
	if len(items) == 0 {
		d.errf(n, "%s: steps is empty", what)
	}
	if len(items) > MaxStepsPerJob {
		d.errf(n, "%s: %d steps; a job has at most %d", what, len(items), MaxStepsPerJob)
		return nil
	}
	var out []Step
	for i, it := range items {
		s := Step{Pos: pos(it)}
		sw := what + ": step " + strconv.Itoa(i+1)
		var sawRun, sawArgs *yaml.Node
		if !d.fields(it, sw, map[string]func(k, v *yaml.Node){
			"name": func(k, v *yaml.Node) {
				if s.Name, ok = d.str(v, sw+": name"); ok && (len(s.Name) > 128 || strings.ContainsFunc(s.Name, isControl)) {
					d.errf(v, "%s: name is at most 128 characters, without control characters", sw)
				}
			},
			"image": func(k, v *yaml.Node) { s.Image, s.ImagePos = d.image(v, sw+": image"), pos(v) },
			"run": func(k, v *yaml.Node) {
				sawRun = v
				if s.Run, ok = d.str(v, sw+": run"); ok && strings.TrimSpace(s.Run) == "" {
					d.errf(v, "%s: run is empty", sw)
				}
			},
			"args":    func(k, v *yaml.Node) { sawArgs = v; s.Args, s.ArgsPos = d.strings(v, sw+": args") },
			"env":     func(k, v *yaml.Node) { s.Env = d.env(v, sw+": env") },
			"secrets": func(k, v *yaml.Node) { s.Secrets = d.secrets(v, sw+": secrets") },
			"workdir": func(k, v *yaml.Node) { s.Workdir = d.relPath(v, sw+": workdir") },
			"timeout": func(k, v *yaml.Node) { s.Timeout, _ = d.duration(v, sw+": timeout", MaxTimeout) },
		}) {
			continue
		}
		switch {
		case sawRun == nil && s.Image == "":
			d.errf(it, "%s needs run (a shell script) or image (to run its entrypoint)", sw)
		case sawRun != nil && sawArgs != nil:
			d.errf(sawArgs, "%s: args are for an image's entrypoint; with run, write them in the script", sw)
		}
		for _, sec := range s.Secrets {
			if slices.ContainsFunc(s.Env, func(e EnvVar) bool { return e.Name == sec }) {
				d.errf(it, "%s: %s is both in env and in secrets", sw, sec)
			}
		}
		out = append(out, s)
	}
	return out
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// secrets decodes a list of secret names, each exposed as the variable of that name.
func (d *decoder) secrets(n *yaml.Node, what string) []string {
	names, ps := d.strings(n, what)
	for i, s := range names {
		switch {
		case !envNameRe.MatchString(s):
			d.errAt(ps[i], "%s: %q is not a valid secret name: letters, digits and '_', not starting with a digit", what, yamlstrict.Clip(s))
		case strings.HasPrefix(s, "HUBCTL_"):
			d.errAt(ps[i], "%s: %s: names starting with HUBCTL_ are set by the hub", what, s)
		case slices.Contains(names[:i], s):
			d.errAt(ps[i], "%s: %s is given twice", what, s)
		}
	}
	return names
}

// relPath checks a path inside the workspace: relative, without "..".
func (d *decoder) relPath(n *yaml.Node, what string) string {
	s, ok := d.str(n, what)
	if !ok {
		return ""
	}
	if s == "" || path.IsAbs(s) || slices.Contains(strings.Split(s, "/"), "..") || strings.ContainsFunc(s, isControl) || len(s) > 1024 {
		d.errf(n, "%s %q must be a relative path inside the workspace, without ..", what, yamlstrict.Clip(s))
	}
	return s
}

func (d *decoder) services(n *yaml.Node, what string) []Service {
	pairs := d.pairs(n, what)
	if len(pairs) > MaxServicesPerJob {
		d.errf(n, "%s: at most %d services", what, MaxServicesPerJob)
		return nil
	}
	var out []Service
	for _, kv := range pairs {
		s := Service{Name: kv[0].Value, Pos: pos(kv[0])}
		sw := what + ": " + yamlstrict.Clip(s.Name)
		if !serviceNameRe.MatchString(s.Name) {
			d.errf(kv[0], "%s: %q is not a valid service name: lower-case letters, digits and '-' (it is the service's host name)", what, yamlstrict.Clip(s.Name))
		}
		if d.fields(kv[1], sw, map[string]func(k, v *yaml.Node){
			"image": func(k, v *yaml.Node) { s.Image, s.ImagePos = d.image(v, sw+": image"), pos(v) },
			"env":   func(k, v *yaml.Node) { s.Env = d.env(v, sw+": env") },
			"args":  func(k, v *yaml.Node) { s.Args, s.ArgsPos = d.strings(v, sw+": args") },
		}) && s.Image == "" {
			d.errf(kv[1], "%s has no image", sw)
		}
		out = append(out, s)
	}
	return out
}

// environment decodes a name, or {name, approvers, required, timeout}.
func (d *decoder) environment(n *yaml.Node, what string) *Environment {
	e := &Environment{Pos: pos(n), Timeout: DefaultApprovalTTL}
	envName := func(v *yaml.Node) {
		e.Name, _ = d.name(v, what, artifactNameRe.MatchString, "letters, digits, '.', '_' and '-', at most 64 characters")
	}
	if n.Kind == yaml.ScalarNode {
		envName(n)
		return e
	}
	var approvers, required *yaml.Node
	if !d.fields(n, what, map[string]func(k, v *yaml.Node){
		"name": func(k, v *yaml.Node) { envName(v) },
		"approvers": func(k, v *yaml.Node) {
			approvers = v
			names, ps := d.strings(v, what+": approvers")
			for i, s := range names {
				if err := accounts.CheckName(s); err != nil {
					d.errAt(ps[i], "%s: approvers: %q is not an account name", what, yamlstrict.Clip(s))
				} else if slices.Contains(names[:i], s) {
					d.errAt(ps[i], "%s: approvers: %s is given twice", what, s)
				}
			}
			if len(names) > MaxApprovers {
				d.errf(v, "%s: at most %d approvers", what, MaxApprovers)
			}
			e.Approvers = names
		},
		"required": func(k, v *yaml.Node) { required = v; e.Required, _ = d.integer(v, what+": required", 1, MaxApprovers) },
		"timeout":  func(k, v *yaml.Node) { e.Timeout, _ = d.duration(v, what+": timeout", MaxApprovalTimeout) },
	}) {
		return nil
	}
	if e.Name == "" {
		d.errf(n, "%s has no name", what)
	}
	switch {
	case approvers == nil && required != nil:
		d.errf(required, "%s: required needs approvers", what)
	case approvers != nil && len(e.Approvers) == 0:
		d.errf(approvers, "%s: approvers is empty", what)
	case required == nil && len(e.Approvers) > 0:
		e.Required = 1
	case e.Required > len(e.Approvers):
		d.errf(required, "%s: required is %d but there are only %d approvers", what, e.Required, len(e.Approvers))
	}
	return e
}

// resources decodes {cpu, memory}: cpu as 1.5 or 1500m, memory as 512Mi, 2Gi, 256M.
func (d *decoder) resources(n *yaml.Node, what string, r *Resources) {
	d.fields(n, what, map[string]func(k, v *yaml.Node){
		"cpu": func(k, v *yaml.Node) {
			s, ok := d.str(v, what+": cpu")
			if !ok {
				return
			}
			if r.MilliCPU = yamlstrict.MilliCPU(s); r.MilliCPU <= 0 || r.MilliCPU > 256_000 {
				d.errf(v, "%s: cpu %q: write CPUs as 0.5, 2 or 500m (at most 256)", what, yamlstrict.Clip(s))
			}
		},
		"memory": func(k, v *yaml.Node) {
			s, ok := d.str(v, what+": memory")
			if !ok {
				return
			}
			if r.Memory = yamlstrict.Bytes(s); r.Memory < 4<<20 || r.Memory > 1<<40 {
				d.errf(v, "%s: memory %q: write it as 512Mi, 2Gi or 256M (between 4Mi and 1Ti)", what, yamlstrict.Clip(s))
			}
		},
	})
}

func (d *decoder) artifacts(n *yaml.Node, what string) []Artifact {
	items, ok := d.list(n, what)
	if !ok {
		return nil
	}
	if len(items) > 20 {
		d.errf(n, "%s: at most 20", what)
		return nil
	}
	var out []Artifact
	for _, it := range items {
		a := Artifact{Pos: pos(it)}
		if !d.fields(it, what+" entry", map[string]func(k, v *yaml.Node){
			"name": func(k, v *yaml.Node) {
				a.Name, _ = d.name(v, what+": name", artifactNameRe.MatchString, "letters, digits, '.', '_' and '-', at most 64 characters")
			},
			"path": func(k, v *yaml.Node) { a.Path = d.relPath(v, what+": path") },
		}) {
			continue
		}
		switch {
		case a.Name == "" || a.Path == "":
			d.errf(it, "%s: an artifact has a name and a path", what)
		case slices.ContainsFunc(out, func(b Artifact) bool { return b.Name == a.Name }):
			d.errf(it, "%s: %s is given twice", what, a.Name)
		}
		out = append(out, a)
	}
	return out
}

func (d *decoder) cache(n *yaml.Node, what string) *Cache {
	c := &Cache{Path: DefaultCachePath, Pos: pos(n)}
	if !d.fields(n, what, map[string]func(k, v *yaml.Node){
		"key": func(k, v *yaml.Node) {
			c.KeyPos = pos(v)
			if c.Key, _ = d.str(v, what+": key"); len(c.Key) > 512 {
				d.errf(v, "%s: key is at most 512 characters", what)
			}
		},
		"path": func(k, v *yaml.Node) {
			s, ok := d.str(v, what+": path")
			if ok && (!path.IsAbs(s) || path.Clean(s) != s || s == "/" || len(s) > 1024) {
				d.errf(v, "%s: path %q must be a clean absolute path in the container, not /", what, yamlstrict.Clip(s))
			}
			c.Path = s
		},
	}) {
		return nil
	}
	if strings.TrimSpace(c.Key) == "" {
		d.errf(n, "%s has no key", what)
	}
	return c
}
