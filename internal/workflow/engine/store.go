package engine

import (
	"context"
	"errors"
	"time"

	"github.com/hubctl/hubctl/internal/events"
)

// Errors of the store a caller branches on.
var (
	// ErrNotFound: no such workflow, run or job.
	ErrNotFound = errors.New("workflow: not found")
	// ErrInvalid: a request the store refuses as it stands.
	ErrInvalid = errors.New("workflow: invalid")
	// ErrLost: the job run is no longer this engine's (its lease ran out and another
	// replica took it, or it was cancelled and finished): stop without writing.
	ErrLost = errors.New("workflow: job run no longer owned")
)

// Job-run states (docs/design/workflows.md, "States").
const (
	StatePending         = "pending"
	StateWaitingApproval = "waiting_approval"
	StateQueued          = "queued"
	StateRunning         = "running"
	StateSucceeded       = "succeeded"
	StateFailed          = "failed"
	StateCancelled       = "cancelled"
	StateSkipped         = "skipped"
	StateTimedOut        = "timed_out"
)

// Terminal reports whether a job-run or step state is final.
func Terminal(state string) bool {
	switch state {
	case StateSucceeded, StateFailed, StateCancelled, StateSkipped, StateTimedOut:
		return true
	}
	return false
}

// Workflow is a workflow as stored: the YAML applied and who applied it.
type Workflow struct {
	ID        int64
	Namespace string
	Name      string
	Source    []byte
	// Digest is "sha256:" and the hex sha256 of Source.
	Digest    string
	AppliedBy int64
	Enabled   bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// PlannedRun is what the dispatcher inserts for one event and workflow.
type PlannedRun struct {
	Trigger string
	// EventID is unique per workflow: the event's id, or a new one for a manual run.
	EventID string
	// Event and Inputs are the values of the run's expressions (event.*, inputs.*).
	Event  map[string]any
	Inputs map[string]any
	Jobs   []PlannedJob
	// TriggeredBy is the account that started the run (0: none known); Concurrency
	// the run's group, nil without one (concurrency.go).
	TriggeredBy int64
	Concurrency *Group
	// Refused, when set, says why the run is not started (a chain of workflow
	// triggers too deep): the dispatcher records it in the audit log instead.
	Refused string
}

// PlannedJob is one job run of a planned run.
type PlannedJob struct {
	Job     string // the job's name
	Key     string // the matrix combination's key; "" without a matrix
	Display string
	Matrix  map[string]string
	// Needs are the names of the jobs (every run of each) this one waits for.
	Needs []string
	Steps []string // step names, in order
	// Concurrency is the job run's own group, nil without one.
	Concurrency *Group
}

// Planner decides whether workflow w starts a run for event e, and plans it; a nil
// run means "not for this workflow". An error aborts the dispatch, which is tried
// again (a permission check that could not be made); what is wrong with w itself (a
// workflow that no longer parses) the planner reports on its own and returns nil.
type Planner func(w Workflow, e events.Event) (*PlannedRun, error)

// Run is one run of a workflow.
type Run struct {
	ID         int64
	WorkflowID int64
	// AppliedBy is the account that applied the workflow last (its current applier):
	// the run's $HUBCTL_TOKEN acts for it.
	AppliedBy       int64
	Namespace       string
	Workflow        string
	Digest          string
	Source          []byte
	Number          int64
	Trigger         string
	EventID         string
	Event           map[string]any
	Inputs          map[string]any
	State           string
	Result          string
	Attempt         int
	CancelRequested bool
	QueuedAt        time.Time
	StartedAt       time.Time
	FinishedAt      time.Time
	// Jobs are the run's job runs, in id order (only when read with them).
	Jobs []Job
}

// Job is one job run.
type Job struct {
	ID      int64
	RunID   int64
	Job     string
	Key     string
	Display string
	Matrix  map[string]string
	// Needs are the ids of the job runs this one waits for.
	Needs []int64
	State string
	// Attempt counts every try of the job run; Tries those since the run last
	// started (retries: bounds them).
	Attempt    int
	Tries      int
	Owner      string
	Outputs    map[string]string
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time
	Steps      []Step
}

// Result is the job's result as needs.<job>.result reads it: success, failure,
// cancelled, skipped; "" while it has not ended.
func (j *Job) Result() string {
	switch j.State {
	case StateSucceeded:
		return "success"
	case StateFailed, StateTimedOut:
		return "failure"
	case StateCancelled:
		return "cancelled"
	case StateSkipped:
		return "skipped"
	}
	return ""
}

// Step is one step of a job run.
type Step struct {
	Index      int
	Name       string
	State      string
	ExitCode   int
	Starts     int
	LogBytes   int64
	StartedAt  time.Time
	FinishedAt time.Time
}

// Claim is a job run an engine now owns, with its run.
type Claim struct {
	Run Run
	Job Job
	// Reattach is true when the job was running under an owner whose lease ran out:
	// the executor may know steps already started.
	Reattach bool
}

// Pin is the executor a job run's steps run on (workflow_jobs.executor and
// executor_ref): its name ("docker", "kube") and its identity (the Docker engine's
// ID; "" for an executor every replica reaches alike). See executor.Identified.
type Pin struct {
	Executor string
	Ref      string
}

// Finish is how a job run ends.
type Finish struct {
	// State is a terminal state, or StateQueued to retry the job (attempt + 1).
	State   string
	Outputs map[string]string
	Error   string
}

// LogChunk is one stored piece of a job's log.
type LogChunk struct {
	Seq     int64
	Step    int
	Attempt int
	Data    []byte
	At      time.Time
}

// MaxLogChunk is the largest chunk appended at once; MaxJobLog caps a job run's log.
const (
	MaxLogChunk = 64 << 10
	MaxJobLog   = 16 << 20
)

// Store is what the engine needs of the hub's SQL store (sqlstore implements it).
// Every transition is one UPDATE … WHERE state = <expected>, so a transition that
// lost a race changes nothing and reports ErrLost.
type Store interface {
	// DispatchWorkflows reads the next events of the feed after the workflow cursor
	// and inserts the runs plan makes of them; it returns how many events it read.
	DispatchWorkflows(ctx context.Context, limit int, plan Planner) (int, error)
	// ClaimWorkflowJobs takes up to n runnable job runs for owner, leased for lease.
	// With a Pin (at most one), the claimed job runs record it, and a running job run
	// whose lease ran out is re-claimed only with the same Pin; without one, only
	// those claimed without one.
	ClaimWorkflowJobs(ctx context.Context, owner string, n int, lease time.Duration, pin ...Pin) ([]Claim, error)
	// ReclaimWorkflowJobs takes back up to n job runs still running under owner with
	// pin p, whatever their lease: called once, when an engine starts under the owner
	// name of its previous process, before it runs any job.
	ReclaimWorkflowJobs(ctx context.Context, owner string, n int, lease time.Duration, p Pin) ([]Claim, error)
	// RenewWorkflowJob extends owner's lease and says whether the run was cancelled.
	RenewWorkflowJob(ctx context.Context, jobID int64, owner string, lease time.Duration) (cancel bool, err error)
	// GetWorkflowRun returns a run with its jobs and steps.
	GetWorkflowRun(ctx context.Context, id int64) (Run, error)
	// StartWorkflowStep marks a pending step running and counts the start.
	StartWorkflowStep(ctx context.Context, jobID int64, owner string, step int) error
	// FinishWorkflowStep records a running step's end.
	FinishWorkflowStep(ctx context.Context, jobID int64, owner string, step int, state string, exitCode int) error
	// AppendWorkflowLog appends a chunk of step's log; past MaxJobLog it stores a
	// last "truncated" chunk and then nothing. consumed is how many bytes of the
	// step's output data stands for (secrets masked, data may be shorter): the step's
	// LogBytes, where a re-attached tail resumes, advances by it.
	AppendWorkflowLog(ctx context.Context, jobID int64, owner string, step int, data []byte, consumed int64) error
	// FinishWorkflowJob ends (or requeues) owner's job run, queues the job runs whose
	// needs are now done and finishes the run when every job run has.
	FinishWorkflowJob(ctx context.Context, jobID int64, owner string, f Finish) error
	// CancelWorkflowRun asks a run to stop: job runs not started are cancelled at
	// once, running ones by their engines.
	CancelWorkflowRun(ctx context.Context, runID int64) error
	ApprovalStore
}
