package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hubctl/hubctl/internal/workflow"
)

// Approvals (docs/design/workflows.md, "Approvals"): a job run whose environment names
// approvers waits in StateWaitingApproval when it would otherwise run, until Required
// of them approve (it is queued), one rejects or its timeout passes (it fails).

// ErrForbidden: the account may not make this decision (not a named approver, or the
// one who triggered the run while others are named).
var ErrForbidden = errors.New("workflow: forbidden")

// Decisions on a job run waiting for approval.
const (
	DecisionApprove = "approve"
	DecisionReject  = "reject"
)

// MaxApprovalComment bounds a decision's comment, in bytes.
const MaxApprovalComment = 1024

// Approval is one account's decision on one job run.
type Approval struct {
	JobID     int64
	AccountID int64
	// Account is the account's name when it decided, for display.
	Account  string
	Decision string
	Comment  string
	At       time.Time
}

// Decision is what DecideWorkflowApproval records.
type Decision struct {
	RunID     int64
	JobID     int64
	AccountID int64
	Account   string
	Decision  string // DecisionApprove or DecisionReject
	Comment   string
	// Approvers are the account ids the job's approvers name now (resolved at decision
	// time: an account deleted since the run started decides nothing).
	Approvers []int64
}

// ApprovalState is a job run's approvals as the API shows them.
type ApprovalState struct {
	Required  int
	Deadline  time.Time // zero: the job run has not waited
	Approved  bool
	Decisions []Approval
}

// ApprovalStore is what approvals need of the store (sqlstore implements it).
type ApprovalStore interface {
	// AwaitWorkflowApproval moves owner's running job run into StateWaitingApproval,
	// required approvals needed before deadline, and returns true; a job run whose
	// approvals are complete stays as it is and false comes back.
	AwaitWorkflowApproval(ctx context.Context, jobID int64, owner string, required int, deadline time.Time) (bool, error)
	// ExpireWorkflowApprovals fails the job runs still waiting for approval at now
	// past their deadline and returns how many.
	ExpireWorkflowApprovals(ctx context.Context, now time.Time) (int, error)
}

// CheckDecision refuses a decision that is malformed, before any store is asked.
func CheckDecision(d Decision) error {
	if d.Decision != DecisionApprove && d.Decision != DecisionReject {
		return fmt.Errorf("%w: decision %q: want approve or reject", ErrInvalid, d.Decision)
	}
	if len(d.Comment) > MaxApprovalComment {
		return fmt.Errorf("%w: the comment exceeds %d bytes", ErrInvalid, MaxApprovalComment)
	}
	for _, r := range d.Comment {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f {
			return fmt.Errorf("%w: the comment holds a control character", ErrInvalid)
		}
	}
	return nil
}

// MayDecide applies the rule of who decides on a job run, given the ids its approvers
// name now and the account that triggered the run (0: none known): a named approver,
// and not the triggering account while another account is named too.
func MayDecide(account int64, approvers []int64, triggeredBy int64) error {
	named, others := false, false
	for _, id := range approvers {
		if id == account {
			named = true
		} else {
			others = true
		}
	}
	switch {
	case !named:
		return fmt.Errorf("%w: you are not one of the job's approvers", ErrForbidden)
	case account == triggeredBy && others:
		return fmt.Errorf("%w: you started this run; another of its approvers must decide", ErrForbidden)
	}
	return nil
}

// JobEnvironment returns the environment of the job named job in the workflow source
// a run keeps, nil when it has none or the source no longer parses.
func JobEnvironment(source []byte, job string) *workflow.Environment {
	wf, err := workflow.Parse(source)
	if err != nil {
		return nil
	}
	j := wf.Job(job)
	if j == nil {
		return nil
	}
	return j.Environment
}

// awaitApproval parks claimed job run c in StateWaitingApproval when its environment
// names approvers whose approvals are not complete; true when it did (or the job run
// is no longer this engine's): the job must not run now.
func (e *Engine) awaitApproval(ctx context.Context, c Claim, j *workflow.Job, log *slog.Logger) bool {
	env := j.Environment
	if env == nil || len(env.Approvers) == 0 {
		return false
	}
	required := max(env.Required, 1)
	timeout := env.Timeout
	if timeout <= 0 {
		timeout = workflow.DefaultApprovalTTL
	}
	waiting, err := e.o.Store.AwaitWorkflowApproval(ctx, c.Job.ID, e.o.ID, required, e.now().Add(timeout))
	switch {
	case errors.Is(err, ErrLost):
		return true
	case err != nil:
		log.Error("wait for approval", "err", err) // the lease runs out and another try comes
		return true
	case waiting:
		log.Info("job run waits for approval", "environment", env.Name, "required", required)
	}
	return waiting
}

// expireApprovals fails the job runs whose approval timed out by the engine's clock.
func (e *Engine) expireApprovals(ctx context.Context) error {
	n, err := e.o.Store.ExpireWorkflowApprovals(ctx, e.now())
	if err != nil {
		return fmt.Errorf("expire approvals: %w", err)
	}
	if n > 0 {
		e.o.Logger.Info("job runs timed out waiting for approval", "count", n)
	}
	return nil
}
