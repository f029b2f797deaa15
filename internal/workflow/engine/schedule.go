package engine

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/hubctl/hubctl/internal/workflow"
)

// This file is the schedule trigger (docs/design/workflows.md, "Dispatch"): a row per
// cron entry of each workflow holds the entry's next tick; the dispatcher claims the
// due rows, starts one run per row and moves the row to the entry's next tick after
// now, in one transaction. Ticks missed while no hub ran are not made up: a row due
// long ago starts one run (for the tick it was due at), then moves past now.

// DueSchedule is a cron entry whose tick has come.
type DueSchedule struct {
	Workflow Workflow
	// Entry is the index of the entry in the workflow's on.schedule.
	Entry    int
	Cron     string
	Timezone string
	// Due is the tick the row was waiting for.
	Due time.Time
}

// SchedulePlanner plans the run of a due entry, and says when the entry fires next
// (after now). A nil run starts nothing (the entry is gone from the workflow); a zero
// next time drops the row.
type SchedulePlanner func(d DueSchedule) (run *PlannedRun, next time.Time, err error)

// ScheduleStore is what the schedule trigger needs of the store (sqlstore implements
// it). An engine whose store lacks it starts no scheduled run.
type ScheduleStore interface {
	// DispatchWorkflowSchedules claims up to limit rows due at now (FOR UPDATE SKIP
	// LOCKED where the database has it), inserts the run plan makes of each (event id
	// ScheduleEventID: unique per workflow, so no tick starts twice) and moves the row
	// to its next tick, in one transaction; it returns how many rows it claimed.
	DispatchWorkflowSchedules(ctx context.Context, now time.Time, limit int, plan SchedulePlanner) (int, error)
}

// ScheduleEventID is the event id of the run of entry's tick at due.
func ScheduleEventID(entry int, due time.Time) string {
	return "schedule:" + strconv.Itoa(entry) + ":" + due.UTC().Format(time.RFC3339)
}

// NextTick is when schedule s fires next after t (zero when never).
func NextTick(s workflow.Schedule, t time.Time) time.Time {
	if s.Spec == nil {
		return time.Time{}
	}
	return s.Spec.Next(t)
}

// schedulePageSize bounds the rows one dispatch claims.
const schedulePageSize = 100

// now is the engine's clock.
func (e *Engine) now() time.Time {
	if e.o.Now != nil {
		return e.o.Now()
	}
	return time.Now()
}

// dispatchSchedules starts the runs of every due cron entry.
func (e *Engine) dispatchSchedules(ctx context.Context) error {
	ss, ok := e.o.Store.(ScheduleStore)
	if !ok {
		return nil
	}
	now := e.now()
	for {
		n, err := ss.DispatchWorkflowSchedules(ctx, now, schedulePageSize, func(d DueSchedule) (*PlannedRun, time.Time, error) {
			return e.planSchedule(d, now)
		})
		if err != nil {
			return fmt.Errorf("schedules: %w", err)
		}
		if n < schedulePageSize {
			return nil
		}
	}
}

// planSchedule plans the run of due entry d; the entry fires next after now.
func (e *Engine) planSchedule(d DueSchedule, now time.Time) (*PlannedRun, time.Time, error) {
	pr, next, err := PlanSchedule(d, now)
	if err != nil {
		e.o.Logger.Error("workflow no longer parses: its schedule is dropped until it is applied again",
			"workflow", d.Workflow.Namespace+"/"+d.Workflow.Name, "err", err)
		return nil, time.Time{}, nil
	}
	return pr, next, nil
}

// PlanSchedule plans the run of due entry d of its workflow and returns when the
// entry fires next after now: one run however many ticks were missed.
func PlanSchedule(d DueSchedule, now time.Time) (*PlannedRun, time.Time, error) {
	wf, err := workflow.Parse(d.Workflow.Source)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("workflow %s/%s: %w", d.Workflow.Namespace, d.Workflow.Name, err)
	}
	if d.Entry >= len(wf.On.Schedule) {
		return nil, time.Time{}, nil
	}
	s := wf.On.Schedule[d.Entry]
	next := NextTick(s, now)
	if s.Cron != d.Cron || s.Timezone != d.Timezone {
		// Applied again meanwhile: the apply wrote the row anew; this one is stale.
		return nil, next, nil
	}
	ev := map[string]any{"trigger": workflow.TriggerSchedule, "id": "", "cron": s.Cron}
	pr := &PlannedRun{Trigger: workflow.TriggerSchedule, EventID: ScheduleEventID(d.Entry, d.Due), Event: ev,
		Inputs: DefaultInputs(wf)}
	return planJobs(wf, pr), next, nil
}

// DefaultInputs are the inputs of a run not started by hand: each manual input's
// default.
func DefaultInputs(wf *workflow.Workflow) map[string]any {
	inputs := map[string]any{}
	if wf.On.Manual != nil {
		for _, in := range wf.On.Manual.Inputs {
			inputs[in.Name] = in.Default
		}
	}
	return inputs
}
