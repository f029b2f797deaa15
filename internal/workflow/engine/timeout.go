package engine

import (
	"context"
	"errors"
	"time"

	"github.com/hubctl/hubctl/internal/workflow/executor"
)

// errStepTimeout is the cause of a step's end at its own timeout: (the job's is
// errTimeout).
var errStepTimeout = errors.New("the step timed out")

// jobDeadline is when job run c times out: timeout after it started. A job run
// re-attached after its engine stopped keeps the deadline it had: its attempt started
// when its first step did (the steps' times restart with each attempt), so a restart
// does not give a job a new timeout.
func jobDeadline(c *Claim, timeout time.Duration) time.Time {
	start := time.Now()
	if c.Reattach {
		for _, st := range c.Job.Steps {
			if !st.StartedAt.IsZero() && st.StartedAt.Before(start) {
				start = st.StartedAt
			}
		}
	}
	return start.Add(timeout)
}

// stepContext bounds the wait for step ss by its timeout:, counted from when the step
// was marked running (kept in the store, so a re-attached wait keeps the bound). The
// executor may stop the step at its Timeout itself (StepState.TimedOut); this bound
// holds for every executor.
func stepContext(ctx context.Context, ss *executor.StepSpec, row Step) (context.Context, context.CancelFunc) {
	if ss.Timeout <= 0 {
		return ctx, func() {}
	}
	start := time.Now()
	if row.State == StateRunning && !row.StartedAt.IsZero() {
		start = row.StartedAt
	}
	return context.WithDeadlineCause(ctx, start.Add(ss.Timeout), errStepTimeout)
}

// note appends a line of the engine's own to the job's log, under step ss: why a step
// ended, where a reader of the log looks first. It counts no byte of the step's
// output, so a re-attached tail resumes where it was.
func (e *Engine) note(c *Claim, ss *executor.StepSpec, line string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.o.Store.AppendWorkflowLog(ctx, c.Job.ID, e.o.ID, ss.Index, []byte("[hubctl] "+line+"\n"), 0); err != nil {
		e.o.Logger.Warn("store log", "job", c.Job.ID, "step", ss.Index, "err", err)
	}
}
