package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hubctl/hubctl/internal/workflow/executor"
)

// pinner asks the executor, once, what its job runs are pinned to (docs/design/
// workflows.md, "Claim"): an executor.Identified executor's name and identity, which
// the claim records with each job run and requires of whoever re-claims one whose
// lease ran out. Other executors (local) pin to their name and "": their steps die
// with their engine, so a re-claim by any engine of that kind finds nothing either
// way and fails the steps that had started.
type pinner struct {
	x executor.Executor

	mu  sync.Mutex
	pin *Pin
}

// get returns the pin, asking the executor until it once answers.
func (p *pinner) get(ctx context.Context) (Pin, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pin != nil {
		return *p.pin, nil
	}
	pin := Pin{Executor: p.x.Name()}
	if id, ok := p.x.(executor.Identified); ok {
		ref, err := id.Identity(ctx)
		if err != nil {
			return Pin{}, fmt.Errorf("the %s executor's identity: %w", pin.Executor, err)
		}
		pin.Ref = ref
	}
	p.pin = &pin
	return pin, nil
}

// outlives reports whether the executor's steps outlive this engine, so that a job
// left by a stopping engine is left running for the next one to re-attach to.
func outlives(x executor.Executor) bool {
	_, ok := x.(executor.Identified)
	return ok
}

// leftToNext reports whether job context ctx ended because this engine leaves the
// job run to the next one (its lease lost, or the engine stopping) rather than
// because the job ended here (its timeout, a cancel): what an executor whose steps
// outlive the engine runs is then left running, for the next engine to re-attach to.
func leftToNext(ctx context.Context) bool {
	if ctx.Err() == nil {
		return false
	}
	cause := context.Cause(ctx)
	return !errors.Is(cause, errTimeout) && !errors.Is(cause, errCancelled) && !errors.Is(cause, errStepTimeout)
}
