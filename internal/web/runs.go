package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/hubapi"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

// Workflow runs: the runs of a namespace's workflows, a run's jobs with their logs,
// and the approve and reject buttons of approval gates. The live log is a stream of
// server-sent events that polls the store's log chunks, so it follows a job run
// executed by any replica; without JavaScript the page shows the log so far.

const (
	// runsPerWorkflow bounds the runs listed for each workflow.
	runsPerWorkflow = 20
	// logPageChunks is how many chunks one store read returns.
	logPageChunks = 500
	// maxPageLog bounds the log a run page shows inline; the stream sends the rest.
	maxPageLog = 1 << 20
	// logPoll is how often the stream asks the store for new chunks.
	logPoll = 250 * time.Millisecond
	// streamLife bounds one event stream; the browser reconnects with Last-Event-ID.
	streamLife = 5 * time.Minute
	// keepAlive is how often an idle stream sends a comment, so proxies keep it open.
	keepAlive = 15 * time.Second
)

// runRow is a run in a list.
type runRow struct {
	ID         int64
	Number     int64
	Workflow   string
	State      string
	Trigger    string
	QueuedAt   time.Time
	FinishedAt time.Time
}

// workflowRuns is a workflow with its newest runs.
type workflowRuns struct {
	Name string
	Runs []runRow
}

type runsPage struct {
	basePage
	Namespace string
	Workflows []workflowRuns
}

// runsList answers /settings/admin/runs?namespace=NS: NS's workflows with their
// newest runs, for whoever may read the whole namespace (GET /api/v1/runs's check).
func (h *Handler) runsList(w http.ResponseWriter, r *http.Request) {
	if !h.requireViewer(w, r) {
		return
	}
	if h.o.Workflows == nil {
		h.notFound(w, r)
		return
	}
	ctx := r.Context()
	v := viewerOf(r)
	ns := r.URL.Query().Get("namespace")
	if ns == "" {
		ns = v.user.Name
	}
	if verdict, err := h.access.Workflows(ctx, ptr(v.principal()), ns, accounts.RoleRead); err != nil {
		h.internal(w, r, err)
		return
	} else if verdict != hubapi.Allowed {
		h.notFound(w, r)
		return
	}
	wfs, err := h.o.Workflows.ListWorkflows(ctx, ns)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	p := runsPage{basePage: h.base(r, "Runs of "+ns), Namespace: ns}
	for _, wf := range wfs {
		runs, err := h.o.Workflows.ListWorkflowRuns(ctx, wf.ID, runsPerWorkflow)
		if err != nil {
			h.internal(w, r, err)
			return
		}
		wr := workflowRuns{Name: wf.Name}
		for _, run := range runs {
			wr.Runs = append(wr.Runs, runRow{ID: run.ID, Number: run.Number, Workflow: run.Workflow, State: run.State,
				Trigger: run.Trigger, QueuedAt: run.QueuedAt, FinishedAt: run.FinishedAt})
		}
		p.Workflows = append(p.Workflows, wr)
	}
	h.render(w, r, http.StatusOK, "runs", p)
}

// jobView is a job run on the run page.
type jobView struct {
	ID       int64
	Name     string
	State    string
	Error    string
	Selected bool
	Steps    []wfengine.Step
	Approval *approvalView
}

// approvalView is a job run's approval gate.
type approvalView struct {
	Environment string
	Approvers   []string
	Required    int
	Deadline    time.Time
	Approved    bool
	Decisions   []wfengine.Approval
	// Open: the job waits for a decision and the viewer may decide (write on the
	// namespace); whether the viewer is one of the approvers is the store's to say.
	Open bool
}

type runPage struct {
	basePage
	Run       runRow
	Namespace string
	Jobs      []jobView
	Job       *jobView // the job whose log is shown
	Log       string
	LogCursor int64
	LogCut    bool // the log is longer than the page shows
	LogDone   bool // the job run has ended and every chunk is on the page
	StreamURL string
	LogsJS    string
	Notice    string
	Error     string
}

// viewableRun returns the run of the path if the viewer may read its namespace's
// runs; it answers the page itself (404 alike for missing and hidden) and returns
// false otherwise.
func (h *Handler) viewableRun(w http.ResponseWriter, r *http.Request) (wfengine.Run, bool) {
	if h.o.Workflows == nil {
		h.notFound(w, r)
		return wfengine.Run{}, false
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		h.notFound(w, r)
		return wfengine.Run{}, false
	}
	run, err := h.o.Workflows.GetWorkflowRun(r.Context(), id)
	if errors.Is(err, wfengine.ErrNotFound) {
		h.notFound(w, r)
		return run, false
	} else if err != nil {
		h.internal(w, r, err)
		return run, false
	}
	verdict, err := h.access.Workflows(r.Context(), ptr(viewerOf(r).principal()), run.Namespace, accounts.RoleRead)
	if err != nil {
		h.internal(w, r, err)
		return run, false
	}
	if verdict != hubapi.Allowed {
		h.notFound(w, r)
		return run, false
	}
	return run, true
}

func (h *Handler) runPage(w http.ResponseWriter, r *http.Request) {
	if !h.requireViewer(w, r) {
		return
	}
	run, ok := h.viewableRun(w, r)
	if !ok {
		return
	}
	h.renderRun(w, r, http.StatusOK, run, r.URL.Query().Get("job"), r.URL.Query().Get("done"), "")
}

func (h *Handler) renderRun(w http.ResponseWriter, r *http.Request, status int, run wfengine.Run, jobRef, done, problem string) {
	ctx := r.Context()
	v := viewerOf(r)
	p := runPage{basePage: h.base(r, fmt.Sprintf("%s/%s #%d", run.Namespace, run.Workflow, run.Number)), Namespace: run.Namespace,
		Run: runRow{ID: run.ID, Number: run.Number, Workflow: run.Workflow, State: run.State, Trigger: run.Trigger,
			QueuedAt: run.QueuedAt, FinishedAt: run.FinishedAt},
		LogsJS: h.assets.url("logs.js"), Error: problem}
	switch done {
	case "approve":
		p.Notice = "Your approval was recorded."
	case "reject":
		p.Notice = "Your rejection was recorded."
	}
	states, err := h.o.Workflows.WorkflowApprovals(ctx, run.ID)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	mayDecide := false
	if verdict, err := h.access.Workflows(ctx, ptr(v.principal()), run.Namespace, accounts.RoleWrite); err != nil {
		h.internal(w, r, err)
		return
	} else {
		mayDecide = verdict == hubapi.Allowed
	}
	for _, j := range run.Jobs {
		jv := jobView{ID: j.ID, Name: j.Display, State: j.State, Error: j.Error, Steps: j.Steps}
		if jv.Name == "" {
			jv.Name = j.Job
		}
		if st := states[j.ID]; st != nil {
			av := &approvalView{Required: st.Required, Deadline: st.Deadline, Approved: st.Approved, Decisions: st.Decisions,
				Open: mayDecide && j.State == wfengine.StateWaitingApproval}
			if env := wfengine.JobEnvironment(run.Source, j.Job); env != nil {
				av.Environment, av.Approvers = env.Name, env.Approvers
			}
			jv.Approval = av
		} else if j.State == wfengine.StateWaitingApproval {
			jv.Approval = &approvalView{Open: mayDecide}
			if env := wfengine.JobEnvironment(run.Source, j.Job); env != nil {
				jv.Approval.Environment, jv.Approval.Approvers, jv.Approval.Required = env.Name, env.Approvers, env.Required
			}
		}
		p.Jobs = append(p.Jobs, jv)
	}
	sel := -1
	for i, j := range p.Jobs {
		if jobRef != "" && (strconv.FormatInt(j.ID, 10) == jobRef || j.Name == jobRef) {
			sel = i
		}
	}
	if sel < 0 && len(p.Jobs) > 0 {
		sel = 0
	}
	if sel >= 0 {
		p.Jobs[sel].Selected = true
		p.Job = &p.Jobs[sel]
		// The state is read before the chunks: a job that ended then has written its
		// last chunk, so "done" never hides one.
		ended := wfengine.Terminal(p.Job.State)
		var b strings.Builder
		for b.Len() < maxPageLog {
			chunks, err := h.o.Workflows.ReadWorkflowLogs(ctx, p.Job.ID, p.LogCursor, logPageChunks)
			if err != nil {
				h.internal(w, r, err)
				return
			}
			for _, c := range chunks {
				b.Write(c.Data)
				p.LogCursor = c.Seq
			}
			if len(chunks) < logPageChunks {
				p.LogDone = ended
				break
			}
		}
		p.LogCut = !p.LogDone && ended
		p.Log = strings.ToValidUTF8(b.String(), "\uFFFD")
		if !p.LogDone {
			p.StreamURL = fmt.Sprintf("/settings/admin/runs/%d/logs?job=%d&after=%d", run.ID, p.Job.ID, p.LogCursor)
		}
	}
	h.render(w, r, status, "run", p)
}

// logEvent is one chunk as the event stream sends it.
type logEvent struct {
	Seq  int64  `json:"seq"`
	Data string `json:"data"`
}

// runLogStream answers GET /settings/admin/runs/{id}/logs?job=J&after=SEQ with
// server-sent events: a "chunk" event (id: its seq) per log chunk after SEQ (or after
// the Last-Event-ID a reconnecting browser sends), read from the store as they are
// written wherever the job runs, and an "end" event once the job run has ended and
// its whole log was sent.
func (h *Handler) runLogStream(w http.ResponseWriter, r *http.Request) {
	if viewerOf(r).user == nil {
		h.fail(w, r, http.StatusUnauthorized, "Sign in to follow a log.")
		return
	}
	run, ok := h.viewableRun(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	var job *wfengine.Job
	for i := range run.Jobs {
		if strconv.FormatInt(run.Jobs[i].ID, 10) == q.Get("job") {
			job = &run.Jobs[i]
		}
	}
	if job == nil {
		h.notFound(w, r)
		return
	}
	after, err := strconv.ParseInt(q.Get("after"), 10, 64)
	if q.Get("after") == "" {
		after, err = 0, nil
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		after, err = strconv.ParseInt(id, 10, 64)
	}
	if err != nil || after < 0 {
		h.fail(w, r, http.StatusBadRequest, "after: want a log position from the page.")
		return
	}
	release, ok := h.streams.acquire(viewerOf(r).session.ID)
	if !ok {
		w.Header().Set("Retry-After", "10")
		h.fail(w, r, http.StatusTooManyRequests, "Too many live logs are open; close some and try again.")
		return
	}
	defer release()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return
	}
	_ = rc.Flush()
	ctx := r.Context()
	deadline := time.Now().Add(streamLife)
	lastWrite := time.Now()
	tick := time.NewTicker(logPoll)
	defer tick.Stop()
	jobID, state := job.ID, job.State
	for {
		ended := wfengine.Terminal(state)
		chunks, err := h.o.Workflows.ReadWorkflowLogs(ctx, jobID, after, logPageChunks)
		if err != nil {
			if ctx.Err() == nil {
				h.o.Log.ErrorContext(ctx, "web: read workflow log", "job_id", jobID, "err", err)
			}
			return
		}
		for _, c := range chunks {
			b, _ := json.Marshal(logEvent{Seq: c.Seq, Data: strings.ToValidUTF8(string(c.Data), "\uFFFD")})
			if _, err := fmt.Fprintf(w, "id: %d\nevent: chunk\ndata: %s\n\n", c.Seq, b); err != nil {
				return
			}
			after = c.Seq
		}
		if len(chunks) > 0 {
			lastWrite = time.Now()
			if rc.Flush() != nil {
				return
			}
		}
		if len(chunks) == logPageChunks {
			continue
		}
		if ended {
			b, _ := json.Marshal(map[string]string{"state": state})
			fmt.Fprintf(w, "event: end\ndata: %s\n\n", b)
			_ = rc.Flush()
			return
		}
		if time.Now().After(deadline) {
			return
		}
		if time.Since(lastWrite) >= keepAlive {
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
			lastWrite = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		fresh, err := h.o.Workflows.GetWorkflowRun(ctx, run.ID)
		if err != nil {
			return
		}
		for _, j := range fresh.Jobs {
			if j.ID == jobID {
				state = j.State
			}
		}
	}
}

// Bounds on open live-log streams, each a goroutine polling the store: in all, and
// per web session (a browser opens one per run page).
const (
	maxStreams           = 256
	maxStreamsPerSession = 8
)

// streamLimit counts open live-log streams.
type streamLimit struct {
	mu    sync.Mutex
	total int
	per   map[int64]int
}

// acquire takes a stream for session, or reports false when a bound is reached;
// release gives it back.
func (l *streamLimit) acquire(session int64) (release func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.per == nil {
		l.per = map[int64]int{}
	}
	if l.total >= maxStreams || l.per[session] >= maxStreamsPerSession {
		return nil, false
	}
	l.total++
	l.per[session]++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.total--
		if l.per[session]--; l.per[session] <= 0 {
			delete(l.per, session)
		}
	}, true
}

// maxComment bounds a decision's comment.
const maxComment = 1000

// runDecide records the viewer's approval or rejection of a job run waiting for it,
// through the hub API's own check and audit (hubapi.Access.Decide).
func (h *Handler) runDecide(w http.ResponseWriter, r *http.Request) {
	if !h.checkForm(w, r) {
		return
	}
	decision := r.PathValue("decision")
	if decision != wfengine.DecisionApprove && decision != wfengine.DecisionReject {
		h.notFound(w, r)
		return
	}
	run, ok := h.viewableRun(w, r)
	if !ok {
		return
	}
	comment := strings.TrimSpace(r.PostForm.Get("comment"))
	if len(comment) > maxComment || !utf8.ValidString(comment) {
		h.renderRun(w, r, http.StatusBadRequest, run, r.PathValue("job"), "", fmt.Sprintf("A comment is at most %d characters of text.", maxComment))
		return
	}
	err := h.access.Decide(r, ptr(viewerOf(r).principal()), run, r.PathValue("job"), decision, comment)
	if err != nil {
		msg, status := hubapi.Message(err)
		if msg == "" {
			h.internal(w, r, err)
			return
		}
		if v, _ := h.access.Workflows(r.Context(), ptr(viewerOf(r).principal()), run.Namespace, accounts.RoleRead); v != hubapi.Allowed {
			h.notFound(w, r)
			return
		}
		if fresh, ferr := h.o.Workflows.GetWorkflowRun(r.Context(), run.ID); ferr == nil {
			run = fresh
		}
		h.renderRun(w, r, status, run, r.PathValue("job"), "", msg)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/settings/admin/runs/%d?job=%s&done=%s", run.ID, url.QueryEscape(r.PathValue("job")), decision),
		http.StatusSeeOther)
}
