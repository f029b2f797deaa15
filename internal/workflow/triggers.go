package workflow

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"

	"github.com/hubctl/hubctl/internal/reference"
	"github.com/hubctl/hubctl/internal/yamlstrict"
)

// Trigger names, the keys of `on:`.
const (
	TriggerPush     = "push"
	TriggerTag      = "tag"
	TriggerSchedule = "schedule"
	TriggerWebhook  = "webhook"
	TriggerManual   = "manual"
	TriggerWorkflow = "workflow"
)

var triggerNames = []string{TriggerPush, TriggerTag, TriggerSchedule, TriggerWebhook, TriggerManual, TriggerWorkflow}

// MaxSchedules bounds the cron entries of one workflow.
const MaxSchedules = 10

// cronParser reads the five standard fields and the descriptors (@daily, @every 1h).
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// triggers decodes `on:`: a trigger name, a list of names, or a mapping of names to
// their settings.
func (d *decoder) triggers(n *yaml.Node, t *Triggers) {
	var named int
	set := func(k, v *yaml.Node) {
		named++
		switch k.Value {
		case TriggerPush:
			t.Push = &PushTrigger{}
			d.pushTrigger(v, t.Push)
		case TriggerTag:
			t.Tag = &TagTrigger{}
			d.fieldsOrNull(v, "on: tag", map[string]func(k, v *yaml.Node){
				"repositories": func(k, v *yaml.Node) { t.Tag.Repositories = d.patterns(v, "on: tag: repositories") },
				"tags":         func(k, v *yaml.Node) { t.Tag.Tags = d.patterns(v, "on: tag: tags") },
			})
		case TriggerSchedule:
			t.Schedule = d.schedules(k, v)
		case TriggerWebhook:
			t.Webhook = &WebhookTrigger{}
			d.fieldsOrNull(v, "on: webhook", map[string]func(k, v *yaml.Node){
				"secret": func(k, v *yaml.Node) {
					t.Webhook.Secret, _ = d.name(v, "on: webhook: secret", envNameRe.MatchString, "letters, digits and '_', not starting with a digit")
				},
			})
		case TriggerManual:
			t.Manual = &ManualTrigger{}
			d.fieldsOrNull(v, "on: manual", map[string]func(k, v *yaml.Node){
				"inputs": func(k, v *yaml.Node) { t.Manual.Inputs = d.inputs(v) },
			})
		case TriggerWorkflow:
			t.Workflow = d.workflowTrigger(k, v)
		default:
			d.errf(k, "on: unknown trigger %q%s (triggers: %s)", yamlstrict.Clip(k.Value), yamlstrict.Suggest(k.Value, triggerNames), strings.Join(triggerNames, ", "))
		}
	}
	null := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
	switch n.Kind {
	case yaml.ScalarNode:
		if s, ok := d.str(n, "on"); ok {
			null.Line, null.Column = n.Line, n.Column
			set(&yaml.Node{Kind: yaml.ScalarNode, Value: s, Line: n.Line, Column: n.Column}, null)
		}
	case yaml.SequenceNode:
		seen := map[string]bool{}
		for _, it := range n.Content {
			if s, ok := d.str(it, "on entry"); ok {
				if seen[s] {
					d.errf(it, "on: %s is given twice", yamlstrict.Clip(s))
					continue
				}
				seen[s] = true
				null := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: it.Line, Column: it.Column}
				set(it, null)
			}
		}
	case yaml.MappingNode:
		for _, kv := range d.pairs(n, "on") {
			set(kv[0], kv[1])
		}
	default:
		d.errf(n, "on must be a trigger, a list of triggers or a mapping, not %s", yamlstrict.Describe(n))
		return
	}
	if named == 0 {
		d.errf(n, "on names no trigger (triggers: %s)", strings.Join(triggerNames, ", "))
	}
}

// fieldsOrNull is fields, where an empty value means every field left out.
func (d *decoder) fieldsOrNull(n *yaml.Node, what string, handlers map[string]func(k, v *yaml.Node)) {
	if yamlstrict.IsNull(n) {
		return
	}
	d.fields(n, what, handlers)
}

func (d *decoder) pushTrigger(n *yaml.Node, t *PushTrigger) {
	d.fieldsOrNull(n, "on: push", map[string]func(k, v *yaml.Node){
		"repositories": func(k, v *yaml.Node) { t.Repositories = d.patterns(v, "on: push: repositories") },
		"tags":         func(k, v *yaml.Node) { t.Tags = d.patterns(v, "on: push: tags") },
		"artifact-types": func(k, v *yaml.Node) {
			types, ps := d.strings(v, "on: push: artifact-types")
			for i, s := range types {
				if s != "image" && s != "chart" && s != "other" && !isMediaType(s) {
					d.errAt(ps[i], "on: push: artifact-types: %q is neither image, chart, other nor a media type (type/subtype)", yamlstrict.Clip(s))
				}
			}
			t.ArtifactTypes = types
		},
	})
}

// isMediaType accepts type/subtype with the characters RFC 6838 allows.
func isMediaType(s string) bool {
	typ, sub, ok := strings.Cut(s, "/")
	valid := func(p string) bool {
		if p == "" || len(p) > 127 {
			return false
		}
		for _, r := range p {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$&-^_.+", r)) {
				return false
			}
		}
		return true
	}
	return ok && valid(typ) && valid(sub)
}

// patterns decodes a glob or "re:" pattern, or a list of them.
func (d *decoder) patterns(n *yaml.Node, what string) []Pattern {
	texts, ps := d.strings(n, what)
	var out []Pattern
	for i, s := range texts {
		p, err := ParsePattern(s)
		if err != nil {
			d.errAt(ps[i], "%s: %v", what, err)
			continue
		}
		out = append(out, p)
	}
	return out
}

// schedules decodes a list of {cron, timezone} (or one of them).
func (d *decoder) schedules(k, n *yaml.Node) []Schedule {
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	if len(items) == 0 || yamlstrict.IsNull(n) {
		d.errf(k, "on: schedule needs a cron entry, e.g. schedule: [{cron: \"0 3 * * *\"}]")
		return nil
	}
	if len(items) > MaxSchedules {
		d.errf(n, "on: schedule has %d entries; at most %d", len(items), MaxSchedules)
		return nil
	}
	var out []Schedule
	for _, it := range items {
		s := Schedule{Pos: pos(it)}
		var cronNode *yaml.Node
		if !d.fields(it, "on: schedule entry", map[string]func(k, v *yaml.Node){
			"cron":     func(k, v *yaml.Node) { cronNode = v; s.Cron, _ = d.str(v, "on: schedule: cron") },
			"timezone": func(k, v *yaml.Node) { s.Timezone, _ = d.str(v, "on: schedule: timezone") },
		}) {
			continue
		}
		if cronNode == nil {
			d.errf(it, "on: schedule entry has no cron")
			continue
		}
		if d.parseCron(cronNode, &s) {
			out = append(out, s)
		}
	}
	return out
}

// parseCron checks a cron entry: it parses, fires at all, and not more than once a
// minute.
func (d *decoder) parseCron(n *yaml.Node, s *Schedule) bool {
	if strings.Contains(s.Cron, "TZ=") {
		d.errf(n, "on: schedule: cron %q: give the time zone as timezone:, not in the expression", yamlstrict.Clip(s.Cron))
		return false
	}
	loc := time.UTC
	if s.Timezone != "" {
		l, err := time.LoadLocation(s.Timezone)
		if err != nil || s.Timezone == "Local" {
			d.errf(n, "on: schedule: timezone %q is not an IANA time zone name (e.g. Europe/Paris)", yamlstrict.Clip(s.Timezone))
			return false
		}
		loc = l
	}
	spec, err := cronParser.Parse(s.Cron)
	if err != nil {
		d.errf(n, "on: schedule: cron %q: %v", yamlstrict.Clip(s.Cron), err)
		return false
	}
	switch c := spec.(type) {
	case cron.ConstantDelaySchedule:
		if c.Delay < time.Minute {
			d.errf(n, "on: schedule: cron %q: a schedule fires at most once a minute", yamlstrict.Clip(s.Cron))
			return false
		}
	case *cron.SpecSchedule:
		c.Location = loc
		// robfig/cron gives up after five years: a date that never comes (30 February)
		// never fires.
		if c.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
			d.errf(n, "on: schedule: cron %q never fires", yamlstrict.Clip(s.Cron))
			return false
		}
	}
	s.Spec = spec
	return true
}

// inputs decodes the typed inputs of a manual trigger.
func (d *decoder) inputs(n *yaml.Node) []Input {
	pairs := d.pairs(n, "on: manual: inputs")
	if len(pairs) > MaxInputs {
		d.errf(n, "on: manual: inputs: %d inputs; at most %d", len(pairs), MaxInputs)
		return nil
	}
	var out []Input
	for _, kv := range pairs {
		in := Input{Name: kv[0].Value, Type: InputString, Pos: pos(kv[0])}
		what := "input " + yamlstrict.Clip(in.Name)
		if !identRe.MatchString(in.Name) {
			d.errf(kv[0], "on: manual: inputs: %q is not a valid input name: letters, digits and '_', not starting with a digit (it is read as inputs.NAME)", yamlstrict.Clip(in.Name))
		}
		var def, opts *yaml.Node
		if !yamlstrict.IsNull(kv[1]) && !d.fields(kv[1], what, map[string]func(k, v *yaml.Node){
			"type": func(k, v *yaml.Node) {
				if s, ok := d.str(v, what+": type"); ok {
					if s != InputString && s != InputChoice && s != InputBoolean {
						d.errf(v, "%s: type %q: want string, choice or boolean", what, yamlstrict.Clip(s))
					}
					in.Type = s
				}
			},
			"description": func(k, v *yaml.Node) { in.Description, _ = d.str(v, what+": description") },
			"required":    func(k, v *yaml.Node) { in.Required, _ = d.boolean(v, what+": required") },
			"default":     func(k, v *yaml.Node) { def = v },
			"options":     func(k, v *yaml.Node) { opts = v },
		}) {
			continue
		}
		d.inputValues(&in, def, opts, what)
		out = append(out, in)
	}
	return out
}

// inputValues checks an input's options and default against its type.
func (d *decoder) inputValues(in *Input, def, opts *yaml.Node, what string) {
	switch {
	case in.Type == InputChoice && opts == nil:
		d.errAt(in.Pos, "%s: a choice input needs options", what)
	case in.Type != InputChoice && opts != nil:
		d.errf(opts, "%s: options are for choice inputs, not %s", what, in.Type)
	case opts != nil:
		names, ps := d.strings(opts, what+": options")
		if len(names) == 0 && opts.Kind == yaml.SequenceNode {
			d.errf(opts, "%s: options is empty", what)
		}
		if len(names) > 100 {
			d.errf(opts, "%s: at most 100 options", what)
		}
		for i, o := range names {
			if slices.Contains(names[:i], o) {
				d.errAt(ps[i], "%s: option %q is given twice", what, yamlstrict.Clip(o))
			}
		}
		in.Options = names
	}
	switch in.Type {
	case InputBoolean:
		in.Default = false
		if def != nil {
			in.Default, _ = d.boolean(def, what+": default")
		}
	case InputString, InputChoice:
		in.Default = ""
		if def == nil {
			if in.Type == InputChoice && len(in.Options) > 0 {
				in.Default = in.Options[0]
			}
			return
		}
		s, ok := d.str(def, what+": default")
		if !ok {
			return
		}
		in.Default = s
		if in.Type == InputChoice && len(in.Options) > 0 && !slices.Contains(in.Options, s) {
			d.errf(def, "%s: default %q is not one of the options (%s)", what, yamlstrict.Clip(s), strings.Join(in.Options, ", "))
		}
	}
}

// workflowTrigger decodes {workflows: [...], results: [...]}.
func (d *decoder) workflowTrigger(k, n *yaml.Node) *WorkflowTrigger {
	t := &WorkflowTrigger{Results: []string{ResultSuccess}, Pos: pos(k)}
	var saw bool
	if yamlstrict.IsNull(n) {
		d.errf(k, "on: workflow needs workflows: the names of the workflows whose runs start this one")
		return t
	}
	d.fields(n, "on: workflow", map[string]func(k, v *yaml.Node){
		"workflows": func(k, v *yaml.Node) {
			saw = true
			names, ps := d.strings(v, "on: workflow: workflows")
			for i, s := range names {
				if !workflowNameRe.MatchString(s) {
					d.errAt(ps[i], "on: workflow: workflows: %q is not a workflow name", yamlstrict.Clip(s))
				}
			}
			if len(names) == 0 {
				d.errf(v, "on: workflow: workflows is empty")
			}
			t.Workflows = names
		},
		"results": func(k, v *yaml.Node) {
			rs, ps := d.strings(v, "on: workflow: results")
			for i, s := range rs {
				if s != ResultSuccess && s != ResultFailure && s != ResultCancelled {
					d.errAt(ps[i], "on: workflow: results: %q: want success, failure or cancelled", yamlstrict.Clip(s))
				}
			}
			if len(rs) == 0 {
				d.errf(v, "on: workflow: results is empty")
			}
			t.Results = rs
		},
	})
	if !saw && n.Kind == yaml.MappingNode {
		d.errf(n, "on: workflow needs workflows: the names of the workflows whose runs start this one")
	}
	return t
}

// checkRepoPattern accepts what an access token's repository scope accepts: a
// repository name, PREFIX/* or *.
func checkRepoPattern(s string) error {
	if s == "*" {
		return nil
	}
	name := strings.TrimSuffix(s, "/*")
	if err := reference.ValidateRepository(name); err != nil {
		return fmt.Errorf("%q is not a repository name, NAMESPACE/* or *", yamlstrict.Clip(s))
	}
	return nil
}
