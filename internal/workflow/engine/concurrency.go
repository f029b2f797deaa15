package engine

import (
	"fmt"

	"github.com/hubctl/hubctl/internal/workflow"
)

// Concurrency groups (docs/design/workflows.md, "Concurrency"): a run (or job run)
// with a group waits while another of the group, in the same namespace, is running;
// at most Queue wait (the oldest is cancelled as superseded when one more comes);
// with CancelInProgress a newcomer cancels the one running instead. The store decides
// in the transaction that claims, so two engines never start two members at once.

// StateWaiting is the state of a run that its concurrency group holds back.
const StateWaiting = "waiting"

// Group is a run's or job run's concurrency group, its name evaluated at dispatch.
type Group struct {
	// Name is "namespace/group": groups never span namespaces.
	Name             string
	Queue            int
	CancelInProgress bool
}

// MaxGroupName bounds a group's evaluated name (namespace excluded), in bytes.
const MaxGroupName = 512

// ResultSuperseded is the result of a run cancelled because newer ones filled its
// group's queue.
const ResultSuperseded = "superseded"

// planConcurrency evaluates the concurrency groups of wf's run pr and of its job runs
// (the expressions read inputs, event, matrix and run's workflow and namespace; a
// run's id, number and the needs are not known at dispatch and read as empty).
func planConcurrency(w Workflow, wf *workflow.Workflow, pr *PlannedRun) error {
	base := map[string]any{
		"inputs": nonNil(pr.Inputs),
		"event":  nonNil(pr.Event),
		"run":    map[string]any{"id": "", "number": 0, "attempt": 1, "workflow": w.Name, "namespace": w.Namespace},
		"matrix": map[string]any{},
		"needs":  map[string]any{},
	}
	group := func(c *workflow.Concurrency, vals map[string]any, what string) (*Group, error) {
		if c == nil {
			return nil, nil
		}
		name, err := expand(c.Group, vals)
		if err != nil {
			return nil, fmt.Errorf("%s: concurrency: group: %w", what, err)
		}
		if name == "" {
			return nil, fmt.Errorf("%s: concurrency: group %q is empty for this run", what, c.Group)
		}
		if len(name) > MaxGroupName {
			return nil, fmt.Errorf("%s: concurrency: group is longer than %d bytes", what, MaxGroupName)
		}
		return &Group{Name: w.Namespace + "/" + name, Queue: c.Queue, CancelInProgress: c.CancelInProgress}, nil
	}
	var err error
	if pr.Concurrency, err = group(wf.Concurrency, base, "workflow"); err != nil {
		return err
	}
	for i := range pr.Jobs {
		pj := &pr.Jobs[i]
		j := wf.Job(pj.Job)
		if j == nil || j.Concurrency == nil {
			continue
		}
		vals := map[string]any{}
		for k, v := range base {
			vals[k] = v
		}
		matrix := map[string]any{}
		for k, v := range pj.Matrix {
			matrix[k] = v
		}
		vals["matrix"] = matrix
		if pj.Concurrency, err = group(j.Concurrency, vals, "job "+pj.Display); err != nil {
			return err
		}
	}
	return nil
}
