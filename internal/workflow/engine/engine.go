// Package engine is the workflow scheduler (docs/design/workflows.md, "The engine"):
// it turns the events of the feed into runs, claims runnable job runs under a lease,
// runs their steps through an executor.Executor, keeps their logs and outputs, and
// moves them through their states: needs, if:, skips, retries, timeouts and
// cancellation. It talks to the store through Store and to what runs steps through
// the executor interface only: it never imports an executor.
package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/workflow"
	"github.com/hubctl/hubctl/internal/workflow/executor"
)

// Options configure an Engine; zero values take the defaults.
type Options struct {
	Store    Store
	Executor executor.Executor
	// MayPull says whether the account accountID may pull repository now: a push
	// starts a workflow only if the account that applied it may read what was pushed
	// (authz.Policy on a hub; a laptop's --local run allows all). Required.
	MayPull func(ctx context.Context, accountID int64, repository string) (bool, error)
	// Secrets resolves the secrets a job's steps name, in the run's namespace: the
	// values of those set (sqlstore's ResolveWorkflowSecrets on a hub). Nil: a job
	// naming a secret fails.
	Secrets func(ctx context.Context, namespace string, names []string) (map[string]string, error)
	// Tokens mints a job run's $HUBCTL_TOKEN (machinetoken.Minter on a hub); nil gives
	// jobs no token. An error fails the job with its reason.
	Tokens func(ctx context.Context, r TokenRequest) (JobToken, error)
	// TokenTTL is the lifetime of a job's token (0: the minter's, 15 min); TokenRenew
	// how often it is minted again while the job runs and written to
	// $HUBCTL_TOKEN_FILE (default 5 min; it must be shorter than TokenTTL when that is
	// set). Tests shorten both.
	TokenTTL   time.Duration
	TokenRenew time.Duration
	// Registry is the hub's host[:port] (or its URL, whose host is taken) as
	// executors pull from it: with Tokens, a job's images from there are pulled with
	// the job's token.
	Registry string
	// ID names this engine as the owner of the job runs it claims; a random one by
	// default. Two engines must never run under one at once. An engine given the ID
	// of an engine that stopped (a hub restarted on its data directory) takes that
	// engine's running job runs back at its first round, without waiting for their
	// leases to run out, and re-attaches to them.
	ID string
	// JobIDPrefix goes before the job run ids an executor names things by (its
	// containers): a store of its own on a shared Docker engine (run --local) needs
	// one, or its job run 1 would find another store's.
	JobIDPrefix string
	// Labels are put on everything the executor makes for a job (a hub's instance,
	// for people looking at a shared Docker engine); the executor's own labels win.
	Labels map[string]string
	// MaxJobs bounds the job runs this engine runs at once (default 4).
	MaxJobs int
	// Interval is the pause between two dispatch-and-claim rounds (default 1 s).
	Interval time.Duration
	// Lease is how long a claim holds without renewal (default 30 s); Renew is how
	// often a running job's lease is renewed and its run checked for cancellation
	// (default 10 s).
	Lease time.Duration
	Renew time.Duration
	// StopGrace is what a cancelled step gets between SIGTERM and SIGKILL (default 10 s).
	StopGrace time.Duration
	// Hub is the hub's URL as job containers reach it, given to every step as
	// HUBCTL_HUB; empty gives none.
	Hub    string
	Logger *slog.Logger
	// Artifacts configure artifacts, caches and the retention of finished runs
	// (artifacts.go).
	Artifacts ArtifactOptions
	// Now is the engine's clock (time.Now when nil): schedules' cron ticks, approval
	// timeouts and the retention purge are judged by it, so tests drive them. Leases
	// are judged by the database's clock.
	Now func() time.Time
}

// Engine schedules and runs workflow jobs. Any number of engines, in any number of
// processes sharing one database, may run at once: claims and transitions are the
// store's.
type Engine struct {
	o       Options
	pin     pinner
	running atomic.Int64
	wg      sync.WaitGroup
	// lastPurge is when the retention purge last ran (unix nanoseconds of Now).
	lastPurge atomic.Int64
	wake      chan struct{}
	// reclaimed is set once the engine took back the job runs its ID still held
	// (ReclaimWorkflowJobs): only before it starts any of its own.
	reclaimed atomic.Bool
}

// New returns an engine; Store and Executor are required.
func New(o Options) (*Engine, error) {
	if o.Store == nil || o.Executor == nil || o.MayPull == nil {
		return nil, errors.New("workflow engine: a store, an executor and MayPull are required")
	}
	if o.ID == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		o.ID = "engine-" + hex.EncodeToString(b)
	}
	if strings.Contains(o.Registry, "://") {
		u, err := url.Parse(o.Registry)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("workflow engine: registry %q is neither host[:port] nor a URL", o.Registry)
		}
		o.Registry = u.Host
	}
	if o.MaxJobs <= 0 {
		o.MaxJobs = 4
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Lease <= 0 {
		o.Lease = 30 * time.Second
	}
	if o.Renew <= 0 {
		o.Renew = 10 * time.Second
	}
	if o.Renew >= o.Lease {
		return nil, fmt.Errorf("workflow engine: renew interval %v must be shorter than the lease %v", o.Renew, o.Lease)
	}
	if o.StopGrace <= 0 {
		o.StopGrace = 10 * time.Second
	}
	if o.TokenRenew <= 0 {
		o.TokenRenew = DefaultTokenRenew
	}
	if o.TokenTTL > 0 && o.TokenRenew >= o.TokenTTL {
		return nil, fmt.Errorf("workflow engine: token renewal every %v must be shorter than the token's lifetime %v", o.TokenRenew, o.TokenTTL)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Artifacts.defaults()
	return &Engine{o: o, pin: pinner{x: o.Executor}, wake: make(chan struct{}, 1)}, nil
}

// ID is the owner name this engine claims job runs under.
func (e *Engine) ID() string { return e.o.ID }

// Run dispatches and claims every Interval until ctx ends, then waits for the jobs it
// started (which stop with ctx: their leases run out and another engine re-attaches).
func (e *Engine) Run(ctx context.Context) error {
	t := time.NewTicker(e.o.Interval)
	defer t.Stop()
	for {
		if err := e.Tick(ctx); err != nil && ctx.Err() == nil {
			e.o.Logger.Warn("workflow engine", "err", err)
		}
		select {
		case <-ctx.Done():
			e.wg.Wait()
			return nil
		case <-t.C:
		case <-e.wake:
		}
	}
}

// Tick is one round: dispatch the waiting events, then claim job runs up to MaxJobs
// and start them. The jobs run on after Tick returns; Wait waits for them.
func (e *Engine) Tick(ctx context.Context) error {
	e.purge(ctx)
	var dispatchErr error
	for {
		n, err := e.o.Store.DispatchWorkflows(ctx, events.MaxPage, func(w Workflow, ev events.Event) (*PlannedRun, error) {
			return e.plan(ctx, w, ev)
		})
		if err != nil {
			// The jobs already queued still run.
			dispatchErr = fmt.Errorf("dispatch: %w", err)
			break
		}
		if n < events.MaxPage {
			break
		}
	}
	if err := e.dispatchSchedules(ctx); err != nil {
		dispatchErr = errors.Join(dispatchErr, err)
	}
	if err := e.expireApprovals(ctx); err != nil {
		dispatchErr = errors.Join(dispatchErr, err)
	}
	free := e.o.MaxJobs - int(e.running.Load())
	if free <= 0 {
		return dispatchErr
	}
	pin, err := e.pin.get(ctx)
	if err != nil {
		return errors.Join(dispatchErr, fmt.Errorf("claim: %w", err))
	}
	var claims []Claim
	if e.running.Load() == 0 && e.reclaimed.CompareAndSwap(false, true) {
		// Nothing of this engine runs yet: every job run its ID holds is its previous
		// process's.
		if claims, err = e.o.Store.ReclaimWorkflowJobs(ctx, e.o.ID, free, e.o.Lease, pin); err != nil {
			e.reclaimed.Store(false)
			return errors.Join(dispatchErr, fmt.Errorf("re-claim: %w", err))
		}
		for _, c := range claims {
			e.o.Logger.Info("re-attaching to a job run this engine's previous process left running", "run", c.Run.ID, "job", c.Job.ID)
		}
		// More than free of them: the rest come back as their leases run out.
		free -= len(claims)
	}
	if free > 0 {
		more, err := e.o.Store.ClaimWorkflowJobs(ctx, e.o.ID, free, e.o.Lease, pin)
		if err != nil {
			e.startJobs(ctx, claims)
			return errors.Join(dispatchErr, fmt.Errorf("claim: %w", err))
		}
		claims = append(claims, more...)
	}
	e.startJobs(ctx, claims)
	return dispatchErr
}

// startJobs runs the claimed job runs, each in a goroutine of its own.
func (e *Engine) startJobs(ctx context.Context, claims []Claim) {
	for _, c := range claims {
		e.running.Add(1)
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			// A finished job frees a slot and may queue the jobs that need it.
			defer e.Wake()
			defer e.running.Add(-1)
			e.runJob(ctx, c)
		}()
	}
}

// Wait waits for the jobs started by Tick.
func (e *Engine) Wait() { e.wg.Wait() }

// Running is the number of job runs this engine runs now.
func (e *Engine) Running() int { return int(e.running.Load()) }

// plan is the dispatcher's Planner: Plan, and the applier's right to pull the
// triggering repository checked now.
func (e *Engine) plan(ctx context.Context, w Workflow, ev events.Event) (*PlannedRun, error) {
	pr, err := Plan(w, ev)
	if err != nil {
		e.o.Logger.Error("workflow no longer parses: event not dispatched to it", "workflow", w.Namespace+"/"+w.Name,
			"event", ev.ID, "err", err)
		return nil, nil
	}
	if pr == nil {
		return nil, nil
	}
	if pr.Trigger == workflow.TriggerWorkflow {
		// Same namespace, no repository: nothing to pull.
		if pr.Refused != "" {
			e.o.Logger.Warn("workflow not started", "workflow", w.Namespace+"/"+w.Name, "event", ev.ID, "reason", pr.Refused)
		}
		return pr, nil
	}
	ok, err := e.o.MayPull(ctx, w.AppliedBy, ev.Repository)
	if err != nil {
		return nil, fmt.Errorf("workflow %s/%s: may account %d pull %s: %w", w.Namespace, w.Name, w.AppliedBy, ev.Repository, err)
	}
	if !ok {
		e.o.Logger.Warn("workflow not started: the account that applied it may not pull the pushed repository",
			"workflow", w.Namespace+"/"+w.Name, "account", w.AppliedBy, "repository", ev.Repository, "event", ev.ID)
		return nil, nil
	}
	return pr, nil
}

// MaxOutputs bounds the outputs a job run keeps (names and values), as the store does.
const MaxOutputs = 1 << 20 // bytes

// Causes of a job context's end.
var (
	errCancelled = errors.New("the run was cancelled")
	errTimeout   = errors.New("the job timed out")
)

// runJob runs one claimed job run to its end (or until the engine loses it).
func (e *Engine) runJob(ctx context.Context, c Claim) {
	log := e.o.Logger.With("run", c.Run.ID, "job", c.Job.ID, "name", c.Job.Display)
	bg := context.WithoutCancel(ctx)
	finish := func(f Finish) {
		if err := e.o.Store.FinishWorkflowJob(bg, c.Job.ID, e.o.ID, f); err != nil {
			if errors.Is(err, ErrLost) {
				log.Info("job run taken over by another engine")
				return
			}
			log.Error("finish job run", "err", err)
		}
	}
	wf, err := workflow.Parse(c.Run.Source)
	if err != nil {
		finish(Finish{State: StateFailed, Error: "the workflow no longer parses: " + err.Error()})
		return
	}
	j := wf.Job(c.Job.Job)
	if j == nil || len(j.Steps) != len(c.Job.Steps) {
		finish(Finish{State: StateFailed, Error: "the job is not in the run's workflow as planned"})
		return
	}
	run, err := e.o.Store.GetWorkflowRun(ctx, c.Run.ID)
	if err != nil {
		log.Error("read run", "err", err) // the lease runs out and another try comes
		return
	}
	if state, msg := decide(&run, wf, j, &c.Job); state != "" {
		finish(Finish{State: state, Error: msg})
		return
	}
	if e.awaitApproval(ctx, c, j, log) {
		return
	}

	jobCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timeout := j.Timeout
	if timeout <= 0 {
		timeout = workflow.DefaultTimeout
	}
	jobCtx, stop := context.WithDeadlineCause(jobCtx, jobDeadline(&c, timeout), errTimeout)
	defer stop()
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		t := time.NewTicker(e.o.Renew)
		defer t.Stop()
		for {
			select {
			case <-jobCtx.Done():
				return
			case <-t.C:
			}
			cancelled, err := e.o.Store.RenewWorkflowJob(jobCtx, c.Job.ID, e.o.ID, e.o.Lease)
			switch {
			case errors.Is(err, ErrLost):
				cancel(ErrLost)
				return
			case err != nil:
				log.Warn("renew lease", "err", err)
			case cancelled:
				cancel(errCancelled)
				return
			}
		}
	}()

	state, outputs, msg := e.execute(jobCtx, &run, wf, j, &c)
	cancel(nil)
	<-renewDone
	if errors.Is(context.Cause(jobCtx), ErrLost) || ctx.Err() != nil {
		// Lost to another engine, or this one is stopping: whoever holds the job next
		// re-attaches to it; this engine writes nothing more.
		log.Info("job run left to the next engine", "cause", context.Cause(jobCtx))
		return
	}
	kept, size := map[string]string{}, 0
	for _, name := range j.Outputs {
		if v, ok := outputs[name]; ok {
			kept[name] = v
			size += len(name) + len(v)
		}
	}
	if size > MaxOutputs && state == StateSucceeded {
		state, kept, msg = StateFailed, nil, fmt.Sprintf("the job's outputs exceed %d bytes", MaxOutputs)
	}
	if (state == StateFailed || state == StateTimedOut) && c.Job.Tries <= j.Retries {
		log.Info("job run failed: retrying", "try", c.Job.Tries, "err", msg)
		finish(Finish{State: StateQueued, Error: msg})
		return
	}
	finish(Finish{State: state, Outputs: kept, Error: msg})
}

// execute runs the steps of job run c in order and returns how the job ended.
func (e *Engine) execute(ctx context.Context, run *Run, wf *workflow.Workflow, j *workflow.Job, c *Claim) (state string, outputs map[string]string, msg string) {
	bg := context.WithoutCancel(ctx)
	vals := values(run, wf, j, &c.Job)
	spec := &executor.JobSpec{
		RunID: strconv.FormatInt(run.ID, 10), JobID: e.o.JobIDPrefix + strconv.FormatInt(c.Job.ID, 10), Name: c.Job.Display,
		Namespace: run.Namespace, Workflow: run.Workflow, StopGrace: e.o.StopGrace,
		Resources: executor.Resources{MilliCPU: j.Resources.MilliCPU, Memory: j.Resources.Memory},
		Labels:    map[string]string{"hubctl.run": strconv.FormatInt(run.ID, 10), "hubctl.job": strconv.FormatInt(c.Job.ID, 10)},
	}
	for k, v := range e.o.Labels {
		if _, ok := spec.Labels[k]; !ok {
			spec.Labels[k] = v
		}
	}
	var err error
	if spec.Image, err = expand(j.Image, vals); err != nil {
		return StateFailed, nil, "image: " + err.Error()
	}
	spec.Env = hubEnv(run, spec)
	if e.o.Hub != "" {
		spec.Env = append(spec.Env, executor.EnvVar{Name: "HUBCTL_HUB", Value: e.o.Hub})
	}
	for _, list := range [][]workflow.EnvVar{wf.Env, j.Env} {
		for _, v := range list {
			val, err := expand(v.Value, vals)
			if err != nil {
				return StateFailed, nil, "env " + v.Name + ": " + err.Error()
			}
			spec.Env = append(spec.Env, executor.EnvVar{Name: v.Name, Value: val})
		}
	}
	hidden, tok, err := e.credentials(ctx, run, wf, j, c, spec)
	if err != nil {
		return StateFailed, nil, err.Error()
	}
	fl, err := e.newFiles(ctx, run, j, c, spec, vals)
	if err != nil {
		return StateFailed, nil, err.Error()
	}
	mask := newMasker(hidden)
	defer func() {
		for k, v := range outputs {
			outputs[k] = mask.String(v)
		}
		msg = mask.String(msg) // an executor's error quoting a step's environment
	}()
	spec.Timeout = j.Timeout
	if spec.Timeout <= 0 {
		spec.Timeout = workflow.DefaultTimeout
	}
	// Every step is expanded before the first starts: an executor that declares the
	// steps up front (kube) gets them all in spec.Steps.
	spec.Steps = make([]executor.StepSpec, len(j.Steps))
	for i := range j.Steps {
		if msg, err := stepSpec(&spec.Steps[i], i, &j.Steps[i], c.Job.Steps[i].Name, vals); err != nil {
			return StateFailed, nil, msg
		}
	}
	if err := e.o.Executor.SetupWorkflow(ctx, spec); err != nil {
		return StateFailed, nil, "set up the job: " + err.Error()
	}
	defer func() {
		if outlives(e.o.Executor) && leftToNext(ctx) {
			return // the next engine re-attaches to what runs
		}
		if err := e.o.Executor.DestroyWorkflow(bg, spec); err != nil {
			e.o.Logger.Warn("destroy job", "job", c.Job.ID, "err", err)
		}
	}()
	if tok != nil {
		stopRenewal, err := e.renewToken(ctx, spec, tok, mask)
		if err != nil {
			return StateFailed, nil, err.Error()
		}
		defer stopRenewal()
	}
	var known map[int]*executor.StepState
	if c.Reattach {
		if known, err = e.o.Executor.Find(ctx, spec); err != nil {
			return StateFailed, nil, "re-attach: " + err.Error()
		}
	}
	if !c.Reattach || !anyStarted(c.Job.Steps) {
		if err := fl.restore(ctx); err != nil {
			return StateFailed, nil, err.Error()
		}
	}
	outputs = map[string]string{}
	for i := range j.Steps {
		row := c.Job.Steps[i]
		if row.State == StateSucceeded {
			continue // done before a re-attach
		}
		ss := &spec.Steps[i]
		if tok != nil && spec.Registry != nil {
			// The step's image is pulled with the token as it is now.
			spec.Registry = &executor.RegistryAuth{Registry: spec.Registry.Registry, Token: tok.get()}
		}
		state, msg := e.step(ctx, c, spec, ss, row, known, outputs, mask)
		if state != StateSucceeded {
			return state, outputs, msg
		}
	}
	if err := fl.save(ctx); err != nil {
		return StateFailed, outputs, err.Error()
	}
	return StateSucceeded, outputs, ""
}

// stepSpec expands step i of the job with the run's values into ss; on an error it
// returns the job's failure message.
func stepSpec(ss *executor.StepSpec, i int, st *workflow.Step, name string, vals map[string]any) (string, error) {
	*ss = executor.StepSpec{Index: i, Name: name, Run: st.Run, Secrets: st.Secrets, Workdir: st.Workdir, Timeout: st.Timeout}
	var err error
	if ss.Image, err = expand(st.Image, vals); err != nil {
		return fmt.Sprintf("step %d image: %v", i+1, err), err
	}
	for _, a := range st.Args {
		v, err := expand(a, vals)
		if err != nil {
			return fmt.Sprintf("step %d args: %v", i+1, err), err
		}
		ss.Args = append(ss.Args, v)
	}
	for _, v := range st.Env {
		val, err := expand(v.Value, vals)
		if err != nil {
			return fmt.Sprintf("step %d env %s: %v", i+1, v.Name, err), err
		}
		ss.Env = append(ss.Env, executor.EnvVar{Name: v.Name, Value: val})
	}
	return "", nil
}

// step runs one step: marked running (and counted) in the store before the executor
// starts it, its log stored as it comes, its end recorded.
func (e *Engine) step(ctx context.Context, c *Claim, spec *executor.JobSpec, ss *executor.StepSpec, row Step,
	known map[int]*executor.StepState, outputs map[string]string, mask *masker) (string, string) {
	bg := context.WithoutCancel(ctx)
	endStep := func(state string, code int) {
		if err := e.o.Store.FinishWorkflowStep(bg, c.Job.ID, e.o.ID, ss.Index, state, code); err != nil && !errors.Is(err, ErrLost) {
			e.o.Logger.Warn("finish step", "job", c.Job.ID, "step", ss.Index, "err", err)
		}
	}
	if row.State == StateRunning {
		// Started by an engine that stopped: only the executor can say whether it runs.
		if known[ss.Index] == nil {
			endStep(StateFailed, -1)
			return StateFailed, fmt.Sprintf("step %d was started by an engine that stopped, and the %s executor no longer knows it",
				ss.Index+1, e.o.Executor.Name())
		}
		// Known: StartStep finds it started, or starts a container that the stopped
		// engine created but never started (it never ran).
		if err := e.o.Executor.StartStep(ctx, spec, ss); err != nil {
			endStep(StateFailed, -1)
			return StateFailed, fmt.Sprintf("step %d: re-attach: %v", ss.Index+1, err)
		}
	} else {
		if err := e.o.Store.StartWorkflowStep(ctx, c.Job.ID, e.o.ID, ss.Index); err != nil {
			return StateFailed, "start step: " + err.Error()
		}
		if err := e.o.Executor.StartStep(ctx, spec, ss); err != nil {
			endStep(StateFailed, -1)
			return StateFailed, fmt.Sprintf("step %d: %v", ss.Index+1, err)
		}
	}
	tailDone := make(chan struct{})
	scan := &jobOutScanner{outputs: map[string]string{}}
	go func() {
		defer close(tailDone)
		rc, err := e.o.Executor.TailStep(ctx, spec, ss, row.LogBytes)
		if err != nil {
			e.o.Logger.Warn("tail step", "job", c.Job.ID, "step", ss.Index, "err", err)
			return
		}
		defer rc.Close()
		store := func(data []byte, consumed int) {
			if consumed == 0 {
				return
			}
			scan.Write(data)
			if err := e.o.Store.AppendWorkflowLog(bg, c.Job.ID, e.o.ID, ss.Index, data, int64(consumed)); err != nil {
				e.o.Logger.Warn("store log", "job", c.Job.ID, "step", ss.Index, "err", err)
			}
		}
		buf := make([]byte, 32<<10)
		for {
			n, err := rc.Read(buf)
			if n > 0 {
				if mask == nil {
					store(buf[:n], n)
				} else {
					store(mask.Write(buf[:n]))
				}
			}
			if err != nil {
				if mask != nil {
					// The step's log ended (or the tail stopped): what was held back
					// for a value split across reads is stored now.
					store(mask.Flush())
				}
				if err != io.EOF && ctx.Err() == nil {
					e.o.Logger.Warn("tail step", "job", c.Job.ID, "step", ss.Index, "err", err)
				}
				return
			}
		}
	}()
	waitCtx, stopWait := stepContext(ctx, ss, row)
	defer stopWait()
	st, err := e.o.Executor.WaitStep(waitCtx, spec, ss)
	if err != nil {
		if outlives(e.o.Executor) && leftToNext(waitCtx) {
			// The next engine re-attaches to the step: it runs on.
			<-tailDone
			return StateCancelled, "the engine stopped"
		}
		if derr := e.o.Executor.DestroyStep(bg, spec, ss); derr != nil {
			e.o.Logger.Warn("destroy step", "job", c.Job.ID, "step", ss.Index, "err", derr)
		}
		cause := context.Cause(waitCtx)
		if errors.Is(cause, errStepTimeout) {
			// Only the step's own bound ended: the tail ends with its stopped container.
			<-tailDone
			e.note(c, ss, fmt.Sprintf("step %d timed out after %s: stopped", ss.Index+1, ss.Timeout))
			endStep(StateTimedOut, -1)
			return StateTimedOut, fmt.Sprintf("step %d timed out after %s", ss.Index+1, ss.Timeout)
		}
		<-tailDone
		cause = context.Cause(ctx)
		switch {
		case errors.Is(cause, errTimeout):
			e.note(c, ss, fmt.Sprintf("the job timed out: step %d stopped", ss.Index+1))
			endStep(StateTimedOut, -1)
			return StateTimedOut, fmt.Sprintf("step %d: the job timed out", ss.Index+1)
		case errors.Is(cause, errCancelled), errors.Is(cause, ErrLost):
			endStep(StateCancelled, -1)
			return StateCancelled, fmt.Sprintf("step %d: %v", ss.Index+1, cause)
		case ctx.Err() != nil:
			// The engine is stopping: the lease runs out and another engine re-attaches.
			return StateCancelled, "the engine stopped"
		}
		endStep(StateFailed, -1)
		return StateFailed, fmt.Sprintf("step %d: %v", ss.Index+1, err)
	}
	<-tailDone
	scan.Close()
	for k, v := range scan.outputs {
		outputs[k] = v
	}
	parseOutputFile(st.Output, outputs)
	switch {
	case st.TimedOut:
		e.note(c, ss, fmt.Sprintf("step %d timed out after %s: stopped", ss.Index+1, ss.Timeout))
		endStep(StateTimedOut, st.ExitCode)
		return StateTimedOut, fmt.Sprintf("step %d timed out after %s", ss.Index+1, ss.Timeout)
	case st.Error != "":
		endStep(StateFailed, st.ExitCode)
		return StateFailed, fmt.Sprintf("step %d: %s", ss.Index+1, st.Error)
	case st.OOMKilled:
		endStep(StateFailed, st.ExitCode)
		return StateFailed, fmt.Sprintf("step %d was killed: out of memory", ss.Index+1)
	case st.ExitCode != 0:
		endStep(StateFailed, st.ExitCode)
		return StateFailed, fmt.Sprintf("step %d exited with code %d", ss.Index+1, st.ExitCode)
	}
	endStep(StateSucceeded, 0)
	return StateSucceeded, ""
}

// hubEnv is the HUBCTL_* variables of a job run (docs/workflows.md, "What a step
// gets"); the executor adds HUBCTL_OUTPUT and HUBCTL_WORKSPACE.
func hubEnv(run *Run, spec *executor.JobSpec) []executor.EnvVar {
	env := []executor.EnvVar{
		{Name: "HUBCTL_RUN_ID", Value: spec.RunID},
		{Name: "HUBCTL_JOB_ID", Value: spec.JobID},
		{Name: "HUBCTL_WORKFLOW", Value: run.Namespace + "/" + run.Workflow},
	}
	if run.Trigger != workflow.TriggerPush {
		return env
	}
	str := func(k string) string { v, _ := run.Event[k].(string); return v }
	var platforms []string
	if ps, ok := run.Event["platforms"].([]any); ok {
		for _, p := range ps {
			if s, ok := p.(string); ok {
				platforms = append(platforms, s)
			}
		}
	}
	return append(env,
		executor.EnvVar{Name: "HUBCTL_REPOSITORY", Value: str("repository")},
		executor.EnvVar{Name: "HUBCTL_TAG", Value: str("tag")},
		executor.EnvVar{Name: "HUBCTL_DIGEST", Value: str("digest")},
		executor.EnvVar{Name: "HUBCTL_IMAGE", Value: str("image")},
		executor.EnvVar{Name: "HUBCTL_PLATFORMS", Value: strings.Join(platforms, ",")})
}
