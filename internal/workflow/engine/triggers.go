package engine

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/workflow"
)

// This file is the workflow and webhook triggers (docs/design/workflows.md,
// "Dispatch"): a run that finishes writes workflow.finished to the outbox in the
// transaction that finishes it, which the dispatcher hands to the workflows of the
// namespace naming it in on.workflow; a call of a workflow's incoming URL becomes a
// run through PlanWebhook.

// MaxChainDepth is how many runs may start each other through workflow triggers: a
// run started by a workflow.finished event of depth greater than this is not started
// (logged, and recorded in the audit log as workflow.chain_stopped), so two workflows
// naming each other stop.
const MaxChainDepth = 10

// FinishedEvent is what a workflow.finished event says of the run that finished.
type FinishedEvent struct {
	Namespace, Workflow string
	RunID               int64
	Number              int64
	Trigger, Result     string
	// Depth is 1 for a run not started by another, one more than its own for a run
	// that was.
	Depth int
}

// NewFinishedEvent is the workflow.finished event of run (its Result set).
func NewFinishedEvent(run *Run) events.Event {
	depth := 1
	if run.Trigger == workflow.TriggerWorkflow {
		depth = detailInt(run.Event, "depth") + 1
	}
	return events.Event{Type: events.WorkflowFinished, Detail: map[string]any{
		"namespace": run.Namespace, "workflow": run.Workflow, "workflowId": run.WorkflowID, "runId": run.ID,
		"number": run.Number, "trigger": run.Trigger, "result": run.Result, "depth": depth}}
}

// ReadFinishedEvent reads a workflow.finished event; ok is false for another type.
func ReadFinishedEvent(e events.Event) (FinishedEvent, bool) {
	if e.Type != events.WorkflowFinished {
		return FinishedEvent{}, false
	}
	str := func(k string) string { s, _ := e.Detail[k].(string); return s }
	return FinishedEvent{Namespace: str("namespace"), Workflow: str("workflow"), RunID: int64(detailInt(e.Detail, "runId")),
		Number: int64(detailInt(e.Detail, "number")), Trigger: str("trigger"), Result: str("result"),
		Depth: detailInt(e.Detail, "depth")}, true
}

// detailInt reads a number of a JSON-decoded map (float64) or of one made in Go.
func detailInt(m map[string]any, k string) int {
	switch v := m[k].(type) {
	case float64:
		return int(v)
	case int:
		return v
	case int64:
		return int(v)
	}
	return 0
}

// EventNamespace is the namespace whose workflows see e: its repository's, or for
// workflow.finished the finished run's; "" for the hub-wide events no workflow sees.
func EventNamespace(e events.Event) string {
	if f, ok := ReadFinishedEvent(e); ok {
		return f.Namespace
	}
	if e.Repository == "" {
		return ""
	}
	ns, _, _ := cutNamespace(e.Repository)
	return ns
}

func cutNamespace(repo string) (string, string, bool) {
	for i := 0; i < len(repo); i++ {
		if repo[i] == '/' {
			return repo[:i], repo[i+1:], true
		}
	}
	return repo, "", false
}

// Matches reports whether trigger t starts a run for the finished run f: a workflow
// it names, of its namespace, finished with one of its results.
func workflowTriggerMatches(t *workflow.WorkflowTrigger, namespace string, f FinishedEvent) bool {
	return t != nil && f.Namespace == namespace && slices.Contains(t.Workflows, f.Workflow) && slices.Contains(t.Results, f.Result)
}

// planFinished plans the run of wf (stored as w) for the workflow.finished event e,
// or nil when its on.workflow does not match. A chain deeper than MaxChainDepth gives
// a run with Refused set and no jobs.
func planFinished(w Workflow, wf *workflow.Workflow, e events.Event) *PlannedRun {
	f, ok := ReadFinishedEvent(e)
	if !ok || !workflowTriggerMatches(wf.On.Workflow, w.Namespace, f) {
		return nil
	}
	ev := map[string]any{"trigger": workflow.TriggerWorkflow, "id": e.ID, "type": string(e.Type), "workflow": f.Workflow,
		"result": f.Result, "runId": strconv.FormatInt(f.RunID, 10), "depth": f.Depth, "actor": e.Actor}
	pr := &PlannedRun{Trigger: workflow.TriggerWorkflow, EventID: e.ID, Event: ev, Inputs: DefaultInputs(wf)}
	if f.Depth > MaxChainDepth {
		pr.Refused = fmt.Sprintf("not started by run %d of %s/%s: a chain of %d runs starting each other exceeds %d",
			f.RunID, f.Namespace, f.Workflow, f.Depth, MaxChainDepth)
		return pr
	}
	return planJobs(wf, pr)
}

// MaxWebhookIDLength bounds the webhook-id of an incoming call.
const MaxWebhookIDLength = 256

// PlanWebhook plans a run of w for a verified call of its incoming URL: id is the
// call's webhook-id (the run's event id is "webhook:" and it, so a replay starts
// nothing), body its decoded JSON (event.body), actor who called ("webhook").
func PlanWebhook(w Workflow, id string, body any) (*PlannedRun, error) {
	wf, err := workflow.Parse(w.Source)
	if err != nil {
		return nil, fmt.Errorf("workflow %s/%s: %w", w.Namespace, w.Name, err)
	}
	if wf.On.Webhook == nil {
		return nil, fmt.Errorf("workflow %s/%s: %w: it has no webhook trigger", w.Namespace, w.Name, ErrInvalid)
	}
	if id == "" || len(id) > MaxWebhookIDLength {
		return nil, fmt.Errorf("%w: webhook-id must be 1 to %d bytes", ErrInvalid, MaxWebhookIDLength)
	}
	ev := map[string]any{"trigger": workflow.TriggerWebhook, "id": id, "actor": "webhook", "body": body}
	return planJobs(wf, &PlannedRun{Trigger: workflow.TriggerWebhook, EventID: WebhookEventID(id), Event: ev,
		Inputs: DefaultInputs(wf)}), nil
}

// WebhookEventID is the event id of the run of the call with webhook-id id.
func WebhookEventID(id string) string { return "webhook:" + id }
