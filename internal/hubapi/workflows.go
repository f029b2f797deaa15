package hubapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/workflow"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

// Workflows belong to a namespace. Its administrators (the user whose namespace it
// is, an organisation's admins; never robots) apply and delete them; whoever may
// write to the whole namespace runs, cancels and reruns their runs; whoever may read
// it sees them. Outsiders get the answer of a workflow that does not exist. An access
// token also needs hub:workflows:read to read and hub:workflows:write to change;
// hub:workflows:run (or write) runs, approves, cancels and reruns.

// MaxWorkflowSize bounds the YAML of PUT /api/v1/workflows/{ns}/{name}.
const MaxWorkflowSize = workflow.MaxFileSize

// Bounds of the log long-poll and of the pages of runs and logs.
const (
	maxLogWait      = 30 * time.Second
	logPollStep     = 250 * time.Millisecond
	logPageChunks   = 500
	defaultRunsPage = 20
	maxRunsPage     = 200
)

// WorkflowStore is what the workflow endpoints need of the hub's store (sqlstore
// implements it).
type WorkflowStore interface {
	ApplyWorkflow(ctx context.Context, namespace, name string, source []byte, appliedBy int64, actor string) (wfengine.Workflow, error)
	GetWorkflow(ctx context.Context, namespace, name string) (wfengine.Workflow, error)
	ListWorkflows(ctx context.Context, namespace string) ([]wfengine.Workflow, error)
	DeleteWorkflow(ctx context.Context, namespace, name, actor string) error
	CreateWorkflowRun(ctx context.Context, workflowID int64, pr *wfengine.PlannedRun) (int64, error)
	GetWorkflowRun(ctx context.Context, id int64) (wfengine.Run, error)
	ListWorkflowRuns(ctx context.Context, workflowID int64, limit int) ([]wfengine.Run, error)
	ReadWorkflowLogs(ctx context.Context, jobID, after int64, limit int) ([]wfengine.LogChunk, error)
	CancelWorkflowRun(ctx context.Context, id int64) error
	RerunWorkflowRun(ctx context.Context, id int64, failedOnly bool) error
	// UserByID names who applied a workflow.
	UserByID(ctx context.Context, id int64) (accounts.User, error)
}

func (a *api) workflowRoutes() {
	a.route("/api/v1/workflows", map[string]handlerFunc{"GET": reads(scope.HubWorkflows, a.listWorkflows)})
	a.route("/api/v1/workflows/{ns}/{name}", map[string]handlerFunc{
		"GET":    reads(scope.HubWorkflows, a.getWorkflow),
		"PUT":    writes(scope.HubWorkflows, a.applyWorkflow),
		"DELETE": writes(scope.HubWorkflows, a.deleteWorkflow),
	})
	a.route("/api/v1/workflows/{ns}/{name}/runs", map[string]handlerFunc{
		"GET":  reads(scope.HubWorkflows, a.listWorkflowRuns),
		"POST": runs(scope.HubWorkflows, a.runWorkflow),
	})
	a.route("/api/v1/workflows/{ns}/{name}/hook-secret", map[string]handlerFunc{"POST": writes(scope.HubWorkflows, a.rotateHookSecret)})
	a.workflowSecretRoutes()
	a.route("/api/v1/runs", map[string]handlerFunc{"GET": reads(scope.HubWorkflows, a.listRuns)})
	a.route("/api/v1/runs/{id}", map[string]handlerFunc{"GET": reads(scope.HubWorkflows, a.getRun)})
	a.route("/api/v1/runs/{id}/logs", map[string]handlerFunc{"GET": reads(scope.HubWorkflows, a.runLogs)})
	a.route("/api/v1/runs/{id}/cancel", map[string]handlerFunc{"POST": runs(scope.HubWorkflows, a.cancelRun)})
	a.route("/api/v1/runs/{id}/rerun", map[string]handlerFunc{"POST": runs(scope.HubWorkflows, a.rerunRun)})
	a.workflowApprovalRoutes()
}

// namespaceRole is p's role on the whole namespace ns: admin in one's own namespace
// (and for site admins), a team's grant on the whole organisation, none else.
func (a *api) namespaceRole(ctx context.Context, p *authz.Principal, ns string) (accounts.Role, error) {
	if p.User == nil || p.User.Disabled {
		return accounts.RoleNone, nil
	}
	// "ns/" is a name no repository has: only grants on the whole namespace match it.
	return a.policy.RoleOn(ctx, p.User, ns+"/")
}

// workflowAccess checks that p may act on namespace ns with at least role need and
// returns nil, or the error to answer: not found for whoever may not even read it.
func (a *api) workflowAccess(ctx context.Context, p *authz.Principal, ns string, need accounts.Role, what string) error {
	role, err := a.namespaceRole(ctx, p, ns)
	if err != nil {
		return err
	}
	switch {
	case role.Rank() < accounts.RoleRead.Rank():
		return errNoWorkflows(ns)
	case need == accounts.RoleAdmin && p.User.Robot && !p.User.Admin:
		return denied("robots do not %s workflows", what)
	case role.Rank() < need.Rank():
		return denied("%s workflows of %s needs the %s role on the whole namespace", what, ns, need)
	}
	return nil
}

func errNoWorkflows(ns string) error { return notFound("namespace %s not found", ns) }

func workflowNotFound(ns, name string) error {
	return notFound("workflow %s/%s not found", ns, name)
}

func (a *api) workflowView(ctx context.Context, w wfengine.Workflow, source bool) hubtypes.Workflow {
	v := hubtypes.Workflow{Namespace: w.Namespace, Name: w.Name, Digest: w.Digest, Enabled: w.Enabled,
		CreatedAt: formatTime(w.CreatedAt), UpdatedAt: formatTime(w.UpdatedAt)}
	if u, err := a.workflows.UserByID(ctx, w.AppliedBy); err == nil {
		v.AppliedBy = u.Name
	}
	if source {
		v.Source = string(w.Source)
	}
	return v
}

// applyWorkflow answers PUT /api/v1/workflows/{ns}/{name}: the body is the YAML.
func (a *api) applyWorkflow(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if a.workflows == nil {
		return notFound("no API endpoint %s", r.URL.Path)
	}
	ns, name := r.PathValue("ns"), r.PathValue("name")
	if err := validWorkflowName(name); err != nil {
		return err
	}
	if err := a.workflowAccess(r.Context(), p, ns, accounts.RoleAdmin, "applying"); err != nil {
		return err
	}
	if _, err := a.store.GetNamespace(r.Context(), ns); errors.Is(err, accounts.ErrNotFound) {
		return errNoWorkflows(ns)
	} else if err != nil {
		return err
	}
	src, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWorkflowSize))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return errcode.New(InvalidRequest, "workflow file exceeds %d bytes", MaxWorkflowSize).WithStatus(http.StatusRequestEntityTooLarge)
	} else if err != nil {
		return invalid("read workflow: %v", err)
	}
	if len(src) == 0 {
		return invalid("request body is empty, want the workflow's YAML")
	}
	parsed, err := workflow.Parse(src)
	if err != nil {
		return workflowErrors(err)
	}
	if a.checkWF != nil {
		if err := a.checkWF(parsed); err != nil {
			return workflowErrors(err)
		}
	}
	if parsed.On.Webhook != nil && parsed.On.Webhook.Secret == "" && a.keyring == nil {
		return invalid("on: webhook needs a signing secret and this hub has no secrets keys to seal one: set HUBCTL_SECRETS_KEY or secrets.keys_file")
	}
	wf, err := a.workflows.ApplyWorkflow(r.Context(), ns, name, src, p.User.ID, p.Name())
	if err != nil {
		return workflowStoreError(err, ns+"/"+name)
	}
	v := a.workflowView(r.Context(), wf, false)
	if err := a.withHookSecret(r.Context(), wf, &v); err != nil {
		return err
	}
	return reply(w, http.StatusOK, v)
}

// workflowErrors is the 400 of a workflow that does not parse: one line:col message
// per problem, and the list as the error's detail.
func workflowErrors(err error) error {
	var es workflow.Errors
	if !errors.As(err, &es) {
		return invalid("workflow: %v", err)
	}
	list := make([]hubtypes.WorkflowError, len(es))
	for i, e := range es {
		list[i] = hubtypes.WorkflowError{Line: e.Line, Column: e.Col, Message: e.Msg}
	}
	return errcode.New(InvalidRequest, "workflow has %d errors:\n%s", len(es), es.Error()).WithDetail(list)
}

func validWorkflowName(name string) error {
	if !workflow.ValidName(name) {
		return invalid("workflow name %q: want lower-case letters, digits, '.', '_' and '-', starting and ending with a letter or digit, at most 64 characters", name)
	}
	return nil
}

// workflowStoreError maps the store's errors to answers.
func workflowStoreError(err error, what string) error {
	switch {
	case errors.Is(err, wfengine.ErrNotFound):
		return notFound("%s not found", what)
	case errors.Is(err, wfengine.ErrInvalid):
		return invalid("%v", err)
	}
	return err
}

// listWorkflows answers GET /api/v1/workflows[?namespace=NS]: the workflows the
// caller may read.
func (a *api) listWorkflows(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if a.workflows == nil {
		return notFound("no API endpoint %s", r.URL.Path)
	}
	ns := r.URL.Query().Get("namespace")
	if ns != "" {
		if err := a.workflowAccess(r.Context(), p, ns, accounts.RoleRead, "reading"); err != nil {
			return err
		}
	}
	wfs, err := a.workflows.ListWorkflows(r.Context(), ns)
	if err != nil {
		return err
	}
	out := []hubtypes.Workflow{}
	may := map[string]bool{}
	for _, wf := range wfs {
		ok, seen := may[wf.Namespace]
		if !seen {
			role, err := a.namespaceRole(r.Context(), p, wf.Namespace)
			if err != nil {
				return err
			}
			ok = role.Rank() >= accounts.RoleRead.Rank()
			may[wf.Namespace] = ok
		}
		if ok {
			out = append(out, a.workflowView(r.Context(), wf, false))
		}
	}
	return reply(w, http.StatusOK, out)
}

// readableWorkflow returns the workflow of the path if p may act on it with need.
func (a *api) readableWorkflow(r *http.Request, p *authz.Principal, need accounts.Role, what string) (wfengine.Workflow, error) {
	ns, name := r.PathValue("ns"), r.PathValue("name")
	if err := a.workflowAccess(r.Context(), p, ns, accounts.RoleRead, "reading"); err != nil {
		return wfengine.Workflow{}, workflowNotFound(ns, name)
	}
	wf, err := a.workflows.GetWorkflow(r.Context(), ns, name)
	if errors.Is(err, wfengine.ErrNotFound) {
		return wf, workflowNotFound(ns, name)
	} else if err != nil {
		return wf, err
	}
	if need != accounts.RoleRead {
		if err := a.workflowAccess(r.Context(), p, ns, need, what); err != nil {
			return wf, err
		}
	}
	return wf, nil
}

func (a *api) getWorkflow(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if a.workflows == nil {
		return notFound("no API endpoint %s", r.URL.Path)
	}
	wf, err := a.readableWorkflow(r, p, accounts.RoleRead, "reading")
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, a.workflowView(r.Context(), wf, true))
}

func (a *api) deleteWorkflow(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if a.workflows == nil {
		return notFound("no API endpoint %s", r.URL.Path)
	}
	wf, err := a.readableWorkflow(r, p, accounts.RoleAdmin, "deleting")
	if err != nil {
		return err
	}
	if err := a.workflows.DeleteWorkflow(r.Context(), wf.Namespace, wf.Name, p.Name()); err != nil {
		return workflowStoreError(err, "workflow "+wf.Namespace+"/"+wf.Name)
	}
	return noContent(w)
}

// runWorkflow answers POST /api/v1/workflows/{ns}/{name}/runs: a manual run, its
// inputs checked against the workflow's.
func (a *api) runWorkflow(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if a.workflows == nil {
		return notFound("no API endpoint %s", r.URL.Path)
	}
	wf, err := a.readableWorkflow(r, p, accounts.RoleWrite, "running")
	if err != nil {
		return err
	}
	var req hubtypes.RunWorkflowRequest
	if r.ContentLength != 0 {
		if err := decode(w, r, &req); err != nil {
			return err
		}
	}
	pr, err := wfengine.PlanManual(wf, "manual-"+uuid.NewString(), req.Inputs, p.Name())
	if err != nil {
		return invalid("%v", err)
	}
	pr.TriggeredBy = p.User.ID
	// The store puts the run's id and number first in the entry's detail.
	ctx := a.audited(r, p, "workflow.run", wf.Namespace+"/"+wf.Name, "")
	id, err := a.workflows.CreateWorkflowRun(ctx, wf.ID, pr)
	if err != nil {
		return workflowStoreError(err, "workflow "+wf.Namespace+"/"+wf.Name)
	}
	return a.replyRun(w, r, id, http.StatusCreated)
}

// auditWorkflow records an action whose store call writes no audit entry of its
// own, after the change (a failure to write it is logged). Runs, cancels, reruns and
// decisions pass theirs to the store instead (a.audited), written in the change's
// transaction.
func (a *api) auditWorkflow(r *http.Request, p *authz.Principal, action, target, detail string) {
	e := accounts.AuditEntry{Time: a.now(), Actor: p.Name(), Action: action, Target: target, Remote: remoteAddr(r), Detail: detail}
	if p.Token != nil {
		e.Detail += " (token " + p.Token.Name + ")"
	}
	if err := a.store.Audit(context.WithoutCancel(r.Context()), e); err != nil {
		a.log.Error("audit workflow action", "action", action, "target", target, "err", err)
	}
}

// runTime formats a run's, job's or step's time to the millisecond the store keeps
// (RFC 3339 with a fraction): the time from a push to a step's start is well under a
// second, and whole seconds would hide it.
func runTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

func runView(run wfengine.Run) hubtypes.WorkflowRun {
	v := hubtypes.WorkflowRun{ID: run.ID, Namespace: run.Namespace, Workflow: run.Workflow, Number: run.Number, Digest: run.Digest,
		Trigger: run.Trigger, EventID: run.EventID, Inputs: run.Inputs, State: run.State, Result: run.Result, Attempt: run.Attempt,
		CancelRequested: run.CancelRequested, QueuedAt: runTime(run.QueuedAt), StartedAt: runTime(run.StartedAt),
		FinishedAt: runTime(run.FinishedAt)}
	for _, j := range run.Jobs {
		jv := hubtypes.WorkflowJob{ID: j.ID, Job: j.Job, Key: j.Key, Display: j.Display, Matrix: j.Matrix, State: j.State,
			Result: j.Result(), Attempt: j.Attempt, Outputs: j.Outputs, Error: j.Error, StartedAt: runTime(j.StartedAt),
			FinishedAt: runTime(j.FinishedAt), Steps: []hubtypes.WorkflowStep{}}
		for _, s := range j.Steps {
			jv.Steps = append(jv.Steps, hubtypes.WorkflowStep{Index: s.Index, Name: s.Name, State: s.State, ExitCode: s.ExitCode,
				Starts: s.Starts, LogBytes: s.LogBytes, StartedAt: runTime(s.StartedAt), FinishedAt: runTime(s.FinishedAt)})
		}
		v.Jobs = append(v.Jobs, jv)
	}
	return v
}

// listWorkflowRuns answers GET /api/v1/workflows/{ns}/{name}/runs, as GET
// /api/v1/runs?workflow=ns/name does.
func (a *api) listWorkflowRuns(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if a.workflows == nil {
		return notFound("no API endpoint %s", r.URL.Path)
	}
	return a.replyRuns(w, r, p, r.PathValue("ns"), r.PathValue("name"))
}

// listRuns answers GET /api/v1/runs?workflow=NS/NAME[&state=S][&limit=N]: the newest
// runs of the workflow (limit before the state filter), without their jobs.
func (a *api) listRuns(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if a.workflows == nil {
		return notFound("no API endpoint %s", r.URL.Path)
	}
	ns, name, ok := cutWorkflow(r.URL.Query().Get("workflow"))
	if !ok {
		return invalid("workflow: want NAMESPACE/NAME")
	}
	return a.replyRuns(w, r, p, ns, name)
}

func cutWorkflow(s string) (ns, name string, ok bool) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return s[:i], s[i+1:], i > 0 && i < len(s)-1
		}
	}
	return "", "", false
}

func (a *api) replyRuns(w http.ResponseWriter, r *http.Request, p *authz.Principal, ns, name string) error {
	r.SetPathValue("ns", ns)
	r.SetPathValue("name", name)
	wf, err := a.readableWorkflow(r, p, accounts.RoleRead, "reading")
	if err != nil {
		return err
	}
	limit := defaultRunsPage
	if s := r.URL.Query().Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > maxRunsPage {
			return invalid("limit %q: want 1 to %d", s, maxRunsPage)
		}
	}
	state := r.URL.Query().Get("state")
	switch state {
	case "", "queued", "waiting", "running", wfengine.StateSucceeded, wfengine.StateFailed, wfengine.StateCancelled, wfengine.StateTimedOut:
	default:
		return invalid("state %q: want queued, waiting, running, succeeded, failed, cancelled or timed_out", state)
	}
	runs, err := a.workflows.ListWorkflowRuns(r.Context(), wf.ID, limit)
	if err != nil {
		return err
	}
	out := []hubtypes.WorkflowRun{}
	for _, run := range runs {
		if state == "" || run.State == state {
			out = append(out, runView(run))
		}
	}
	return reply(w, http.StatusOK, out)
}

// readableRun returns the run of the path if p may act on it with need; one answer,
// not found, for a run that is missing and one p may not read.
func (a *api) readableRun(r *http.Request, p *authz.Principal, need accounts.Role, what string) (wfengine.Run, error) {
	s := r.PathValue("id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return wfengine.Run{}, notFound("run %s not found", s)
	}
	run, err := a.workflows.GetWorkflowRun(r.Context(), id)
	if errors.Is(err, wfengine.ErrNotFound) {
		return run, notFound("run %d not found", id)
	} else if err != nil {
		return run, err
	}
	if err := a.workflowAccess(r.Context(), p, run.Namespace, accounts.RoleRead, "reading"); err != nil {
		return run, notFound("run %d not found", id)
	}
	if need != accounts.RoleRead {
		if err := a.workflowAccess(r.Context(), p, run.Namespace, need, what); err != nil {
			return run, err
		}
	}
	return run, nil
}

func (a *api) getRun(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if a.workflows == nil {
		return notFound("no API endpoint %s", r.URL.Path)
	}
	run, err := a.readableRun(r, p, accounts.RoleRead, "reading")
	if err != nil {
		return err
	}
	v := runView(run)
	if err := a.withApprovals(r.Context(), &v, run); err != nil {
		return err
	}
	return reply(w, http.StatusOK, v)
}

func (a *api) cancelRun(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if a.workflows == nil {
		return notFound("no API endpoint %s", r.URL.Path)
	}
	run, err := a.readableRun(r, p, accounts.RoleWrite, "cancelling runs of")
	if err != nil {
		return err
	}
	ctx := a.audited(r, p, "workflow.cancel", run.Namespace+"/"+run.Workflow, "")
	if err := a.workflows.CancelWorkflowRun(ctx, run.ID); err != nil {
		return workflowStoreError(err, fmt.Sprintf("run %d", run.ID))
	}
	return a.replyRun(w, r, run.ID, http.StatusAccepted)
}

func (a *api) rerunRun(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if a.workflows == nil {
		return notFound("no API endpoint %s", r.URL.Path)
	}
	failed := false
	if s := r.URL.Query().Get("failed"); s != "" {
		var err error
		if failed, err = strconv.ParseBool(s); err != nil {
			return invalid("failed %q: want true or false", s)
		}
	}
	run, err := a.readableRun(r, p, accounts.RoleWrite, "rerunning runs of")
	if err != nil {
		return err
	}
	detail := ""
	if failed {
		detail = "failed jobs"
	}
	ctx := a.audited(r, p, "workflow.rerun", run.Namespace+"/"+run.Workflow, detail)
	if err := a.workflows.RerunWorkflowRun(ctx, run.ID, failed); err != nil {
		return workflowStoreError(err, fmt.Sprintf("run %d", run.ID))
	}
	return a.replyRun(w, r, run.ID, http.StatusAccepted)
}

func (a *api) replyRun(w http.ResponseWriter, r *http.Request, id int64, status int) error {
	run, err := a.workflows.GetWorkflowRun(r.Context(), id)
	if err != nil {
		return err
	}
	v := runView(run)
	if err := a.withApprovals(r.Context(), &v, run); err != nil {
		return err
	}
	return reply(w, status, v)
}

// runLogs answers GET /api/v1/runs/{id}/logs?job=J&after=SEQ[&wait=SECONDS]: the
// chunks of job run J's log after the cursor (J is a job run's id, its display name
// or its job's name; it may be left out when the run has one job run). With wait (at
// most 30) it answers as soon as there is a chunk or the job run ended.
func (a *api) runLogs(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if a.workflows == nil {
		return notFound("no API endpoint %s", r.URL.Path)
	}
	run, err := a.readableRun(r, p, accounts.RoleRead, "reading")
	if err != nil {
		return err
	}
	v := r.URL.Query()
	job, err := pickJob(run, v.Get("job"))
	if err != nil {
		return err
	}
	var after int64
	if s := v.Get("after"); s != "" {
		if after, err = strconv.ParseInt(s, 10, 64); err != nil || after < 0 {
			return invalid("after %q: want a cursor (a number) from an earlier answer", s)
		}
	}
	var wait time.Duration
	if s := v.Get("wait"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || time.Duration(n)*time.Second > maxLogWait {
			return invalid("wait %q: want 0 to %d seconds", s, int(maxLogWait/time.Second))
		}
		wait = time.Duration(n) * time.Second
	}
	deadline := time.Now().Add(wait)
	for {
		// The state is read before the chunks: a job that ended then has written its
		// last chunk, so "done" never hides one.
		ended := wfengine.Terminal(job.State)
		chunks, err := a.workflows.ReadWorkflowLogs(r.Context(), job.ID, after, logPageChunks)
		if err != nil {
			return err
		}
		page := hubtypes.WorkflowLogs{Job: job.ID, Chunks: []hubtypes.WorkflowLogChunk{}, Next: after}
		for _, c := range chunks {
			page.Chunks = append(page.Chunks, hubtypes.WorkflowLogChunk{Seq: c.Seq, Step: c.Step, Attempt: c.Attempt, Data: string(c.Data),
				At: c.At.UTC().Format(time.RFC3339Nano)})
			page.Next = c.Seq
		}
		page.Done = ended && len(chunks) < logPageChunks
		if len(chunks) > 0 || ended || !time.Now().Add(logPollStep).Before(deadline) {
			return reply(w, http.StatusOK, page)
		}
		t := time.NewTimer(logPollStep)
		select {
		case <-r.Context().Done():
			t.Stop()
			return r.Context().Err()
		case <-t.C:
		}
		fresh, err := a.workflows.GetWorkflowRun(r.Context(), run.ID)
		if err != nil {
			return err
		}
		if job, err = pickJob(fresh, strconv.FormatInt(job.ID, 10)); err != nil {
			return err
		}
	}
}

// pickJob finds the job run named by s in run: its id, display name or job name.
func pickJob(run wfengine.Run, s string) (wfengine.Job, error) {
	if s == "" {
		if len(run.Jobs) == 1 {
			return run.Jobs[0], nil
		}
		names := ""
		for i, j := range run.Jobs {
			if i > 0 {
				names += ", "
			}
			names += j.Display
		}
		return wfengine.Job{}, invalid("run %d has %d job runs: say which with job= (one of %s)", run.ID, len(run.Jobs), names)
	}
	var match []wfengine.Job
	for _, j := range run.Jobs {
		if strconv.FormatInt(j.ID, 10) == s || j.Display == s {
			return j, nil
		}
		if j.Job == s {
			match = append(match, j)
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return wfengine.Job{}, notFound("run %d has no job %s", run.ID, s)
	}
	return wfengine.Job{}, invalid("job %s of run %d has %d runs (a matrix): name one by its id or display name", s, run.ID, len(match))
}
