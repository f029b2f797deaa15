package hubapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/hubtypes"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

// Approvals of job runs (docs/design/workflows.md, "Approvals"): POST
// /api/v1/runs/{id}/jobs/{job}/approve|reject, {job} a job run's id or its name.
// Deciding needs write on the whole namespace (and hub:workflows:run or write on an
// access token), and being one of the job's approvers as the run's YAML names them,
// resolved to account ids now; the account that started the run decides only when
// no one else is named. Each decision is audited in its own transaction.

// WorkflowApprovalStore is what approvals need of the store beyond WorkflowStore
// (sqlstore implements it).
type WorkflowApprovalStore interface {
	DecideWorkflowApproval(ctx context.Context, d wfengine.Decision) (string, error)
	WorkflowApprovals(ctx context.Context, runID int64) (map[int64]*wfengine.ApprovalState, error)
}

// runs wraps a handler that starts, stops or approves runs: an access token needs
// hub:AREA:run or hub:AREA:write.
func runs(area string, h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
		if p.Token != nil && !scope.HubAllows(p.TokenScopes, area, scope.HubRun) && !scope.HubAllows(p.TokenScopes, area, scope.HubWrite) {
			return denied("this access token may not run, approve or cancel %s: that needs a token with the scope hub:%s:run or hub:%s:write, or a password login",
				area, area, area)
		}
		return h(w, r, p)
	}
}

func (a *api) workflowApprovalRoutes() {
	a.route("/api/v1/runs/{id}/jobs/{job}/approve", map[string]handlerFunc{"POST": runs(scope.HubWorkflows, func(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
		return a.decideJob(w, r, p, wfengine.DecisionApprove)
	})})
	a.route("/api/v1/runs/{id}/jobs/{job}/reject", map[string]handlerFunc{"POST": runs(scope.HubWorkflows, func(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
		return a.decideJob(w, r, p, wfengine.DecisionReject)
	})})
}

// decideJob records p's decision on a job run waiting for approval.
func (a *api) decideJob(w http.ResponseWriter, r *http.Request, p *authz.Principal, decision string) error {
	store, ok := a.workflows.(WorkflowApprovalStore)
	if !ok {
		return notFound("no API endpoint %s", r.URL.Path)
	}
	run, err := a.readableRun(r, p, accounts.RoleWrite, "approving jobs of")
	if err != nil {
		return err
	}
	var req hubtypes.ApprovalRequest
	if r.ContentLength != 0 {
		if err := decode(w, r, &req); err != nil {
			return err
		}
	}
	if err := a.decide(r, p, store, run, r.PathValue("job"), decision, req.Comment); err != nil {
		return err
	}
	return a.replyRun(w, r, run.ID, http.StatusOK)
}

// decide records p's decision on the job run of run that jobRef names, audited in
// its own transaction; p's access to run has been checked. The hub API and the web
// UI both decide through it.
func (a *api) decide(r *http.Request, p *authz.Principal, store WorkflowApprovalStore, run wfengine.Run, jobRef, decision, comment string) error {
	job, err := findJobRun(run, jobRef)
	if err != nil {
		return err
	}
	if !utf8.ValidString(comment) {
		return invalid("comment: not UTF-8")
	}
	env := wfengine.JobEnvironment(run.Source, job.Job)
	if env == nil || len(env.Approvers) == 0 {
		return errcode.New(Conflict, "job %s of run %d needs no approval", job.Display, run.ID)
	}
	d := wfengine.Decision{RunID: run.ID, JobID: job.ID, AccountID: p.User.ID, Account: p.User.Name, Decision: decision,
		Comment: comment}
	if err := wfengine.CheckDecision(d); err != nil {
		return invalid("%v", err)
	}
	for _, name := range env.Approvers {
		u, err := a.store.GetUser(r.Context(), name)
		if errors.Is(err, accounts.ErrNotFound) {
			continue // deleted since: it decides nothing, and no one takes its name's place
		}
		if err != nil {
			return err
		}
		if !u.Disabled {
			d.Approvers = append(d.Approvers, u.ID)
		}
	}
	detail := fmt.Sprintf("run %d (#%d) job %s", run.ID, run.Number, job.Display)
	if c := strings.TrimSpace(comment); c != "" {
		detail += ": " + clipComment(c)
	}
	ctx := a.audited(r, p, "workflow."+decision, run.Namespace+"/"+run.Workflow, detail)
	if _, err := store.DecideWorkflowApproval(ctx, d); err != nil {
		switch {
		case errors.Is(err, wfengine.ErrForbidden):
			return denied("%s job %s of run %d: %s", decision, job.Display, run.ID, strings.TrimPrefix(clientMessage(err), "decide on workflow job "+strconv.FormatInt(job.ID, 10)+": "))
		case errors.Is(err, wfengine.ErrInvalid):
			return errcode.New(Conflict, "%s", clientMessage(err))
		case errors.Is(err, wfengine.ErrNotFound):
			return notFound("job %s of run %d not found", jobRef, run.ID)
		}
		return err
	}
	return nil
}

// clipComment keeps an audit detail's comment short.
func clipComment(s string) string {
	if len(s) <= 200 {
		return s
	}
	for i := 200; i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i] + "…"
		}
	}
	return ""
}

// findJobRun returns the job run of run that ref names: its id, or its name (the
// display name of a matrix combination, or the job's name when it has one run).
func findJobRun(run wfengine.Run, ref string) (wfengine.Job, error) {
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		for _, j := range run.Jobs {
			if j.ID == id {
				return j, nil
			}
		}
	}
	var found []wfengine.Job
	for _, j := range run.Jobs {
		if j.Display == ref {
			return j, nil
		}
		if j.Job == ref {
			found = append(found, j)
		}
	}
	switch len(found) {
	case 0:
		return wfengine.Job{}, notFound("job %s of run %d not found", ref, run.ID)
	case 1:
		return found[0], nil
	}
	var waiting []string
	for _, j := range found {
		if j.State == wfengine.StateWaitingApproval {
			waiting = append(waiting, fmt.Sprintf("%d (%s)", j.ID, j.Display))
		}
	}
	if len(waiting) == 1 {
		for _, j := range found {
			if j.State == wfengine.StateWaitingApproval {
				return j, nil
			}
		}
	}
	return wfengine.Job{}, invalid("job %s of run %d has %d runs (%s waiting for approval): name one by its id", ref, run.ID,
		len(found), strings.Join(waiting, ", "))
}

// withApprovals adds to v the approvals of its job runs that waited for approval.
func (a *api) withApprovals(ctx context.Context, v *hubtypes.WorkflowRun, run wfengine.Run) error {
	store, ok := a.workflows.(WorkflowApprovalStore)
	if !ok {
		return nil
	}
	states, err := store.WorkflowApprovals(ctx, v.ID)
	if err != nil {
		return err
	}
	for i := range v.Jobs {
		jv := &v.Jobs[i]
		st := states[jv.ID]
		if st == nil {
			continue
		}
		av := &hubtypes.WorkflowApproval{Required: st.Required, Deadline: formatTime(st.Deadline), Approved: st.Approved,
			Decisions: []hubtypes.WorkflowDecision{}}
		if env := wfengine.JobEnvironment(run.Source, jv.Job); env != nil {
			av.Environment, av.Approvers = env.Name, env.Approvers
		}
		for _, d := range st.Decisions {
			av.Decisions = append(av.Decisions, hubtypes.WorkflowDecision{Account: d.Account, Decision: d.Decision, Comment: d.Comment,
				At: formatTime(d.At)})
		}
		jv.Approval = av
	}
	return nil
}
