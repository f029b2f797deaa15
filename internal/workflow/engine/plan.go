package engine

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/workflow"
)

// Plan decides whether the stored workflow w starts a run for event e (its push or tag
// trigger Matches e) and, if so, plans the run: one job run per JobRun of each job's
// expansion, in the order of the needs DAG. A nil run means "not for this workflow";
// an error means w no longer parses (it parsed when applied: a newer hub may refuse
// what an older one took).
func Plan(w Workflow, e events.Event) (*PlannedRun, error) {
	wf, err := workflow.Parse(w.Source)
	if err != nil {
		return nil, fmt.Errorf("workflow %s/%s: %w", w.Namespace, w.Name, err)
	}
	if e.Type == events.WorkflowFinished {
		return planFinished(w, wf, e), nil
	}
	trigger := ""
	switch {
	case wf.On.Push.Matches(e):
		trigger = workflow.TriggerPush
	case wf.On.Tag.Matches(e):
		trigger = workflow.TriggerTag
	default:
		return nil, nil
	}
	return planJobs(wf, &PlannedRun{Trigger: trigger, EventID: e.ID, Event: EventValues(trigger, e), Inputs: map[string]any{}}), nil
}

// PlanManual plans a manual run of w with inputs (checked by the caller against the
// workflow's inputs); eventID makes it unique.
func PlanManual(w Workflow, eventID string, inputs map[string]any, actor string) (*PlannedRun, error) {
	wf, err := workflow.Parse(w.Source)
	if err != nil {
		return nil, fmt.Errorf("workflow %s/%s: %w", w.Namespace, w.Name, err)
	}
	if wf.On.Manual == nil {
		return nil, fmt.Errorf("workflow %s/%s: %w: it has no manual trigger", w.Namespace, w.Name, ErrInvalid)
	}
	if err := checkInputs(wf.On.Manual.Inputs, inputs); err != nil {
		return nil, fmt.Errorf("workflow %s/%s: %w", w.Namespace, w.Name, err)
	}
	given := inputs
	inputs = map[string]any{}
	for _, in := range wf.On.Manual.Inputs {
		inputs[in.Name] = in.Default // the parser sets one for every input
		if v, ok := given[in.Name]; ok {
			inputs[in.Name] = v
		}
	}
	ev := map[string]any{"trigger": workflow.TriggerManual, "id": "", "actor": actor}
	return planJobs(wf, &PlannedRun{Trigger: workflow.TriggerManual, EventID: eventID, Event: ev, Inputs: inputs}), nil
}

// checkInputs refuses inputs the workflow does not declare, of the wrong type, not
// among a choice's options, or missing when required.
func checkInputs(decl []workflow.Input, inputs map[string]any) error {
	known := map[string]workflow.Input{}
	for _, in := range decl {
		known[in.Name] = in
	}
	for name, v := range inputs {
		in, ok := known[name]
		if !ok {
			return fmt.Errorf("%w: unknown input %q", ErrInvalid, name)
		}
		switch in.Type {
		case workflow.InputBoolean:
			if _, ok := v.(bool); !ok {
				return fmt.Errorf("%w: input %s is a boolean", ErrInvalid, name)
			}
		default:
			s, ok := v.(string)
			if !ok {
				return fmt.Errorf("%w: input %s is a string", ErrInvalid, name)
			}
			if in.Type == workflow.InputChoice && !slices.Contains(in.Options, s) {
				return fmt.Errorf("%w: input %s must be one of %s", ErrInvalid, name, strings.Join(in.Options, ", "))
			}
		}
	}
	for _, in := range decl {
		if _, ok := inputs[in.Name]; !ok && in.Required {
			return fmt.Errorf("%w: input %s is required", ErrInvalid, in.Name)
		}
	}
	return nil
}

func planJobs(wf *workflow.Workflow, pr *PlannedRun) *PlannedRun {
	for _, name := range wf.Order {
		j := wf.Job(name)
		steps := make([]string, len(j.Steps))
		for i, st := range j.Steps {
			steps[i] = st.Name
			if steps[i] == "" {
				steps[i] = "step " + strconv.Itoa(i+1)
			}
		}
		for _, r := range j.Runs {
			pr.Jobs = append(pr.Jobs, PlannedJob{Job: j.Name, Key: r.Key, Display: r.Name, Matrix: r.Matrix,
				Needs: j.Needs, Steps: steps})
		}
	}
	return pr
}

// EventValues are what event.* reads of e in a run started by trigger
// (workflow.EventType).
func EventValues(trigger string, e events.Event) map[string]any {
	image := ""
	if e.Repository != "" && e.Digest != "" {
		image = e.Repository + "@" + e.Digest
	}
	platforms := make([]any, len(e.Platforms))
	for i, p := range e.Platforms {
		platforms[i] = p
	}
	return map[string]any{
		"trigger": trigger, "id": e.ID, "type": string(e.Type), "repository": e.Repository, "tag": e.Tag,
		"digest": e.Digest, "image": image, "platforms": platforms, "artifactType": e.ArtifactType,
		"mediaType": e.MediaType, "kind": e.Kind, "actor": e.Actor,
	}
}
