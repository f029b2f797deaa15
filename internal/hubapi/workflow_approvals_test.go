package hubapi_test

import (
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/workflow/engine"
)

const gatedWorkflow = `name: gate
on:
  manual: {}
jobs:
  deploy:
    image: alpine
    environment:
      name: production
      approvers: [alice, bob]
      required: 1
    steps:
      - run: echo deployed
  after:
    needs: [deploy]
    image: alpine
    steps:
      - run: echo after
`

// waitJob polls run id as a until done holds for it.
func (f *fixture) waitRun(a auth, id int64, what string, done func(hubtypes.WorkflowRun) bool) hubtypes.WorkflowRun {
	f.t.Helper()
	var run hubtypes.WorkflowRun
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		run = decodeAs[hubtypes.WorkflowRun](f.t, f.want(f.do(a, "GET", "/api/v1/runs/"+itoa(id), nil), 200, ""))
		if done(run) {
			return run
		}
	}
	f.t.Fatalf("run %d never %s: %+v", id, what, run)
	return run
}

func jobNamed(run hubtypes.WorkflowRun, name string) hubtypes.WorkflowJob {
	for _, j := range run.Jobs {
		if j.Display == name {
			return j
		}
	}
	return hubtypes.WorkflowJob{}
}

func waitingApproval(run hubtypes.WorkflowRun) bool {
	return jobNamed(run, "deploy").State == engine.StateWaitingApproval
}

// TestWorkflowApprovalsAPI: POST …/jobs/{job}/approve|reject. Deciding needs write on
// the namespace, being a named approver (by account, resolved now), and not being the
// one who started the run while another is named; refusals record nothing; a
// rejection fails the job and skips what needs it; the run shows who decided; an
// access token needs hub:workflows:run (or write).
func TestWorkflowApprovalsAPI(t *testing.T) {
	f := newFixture(t)
	startLocalEngine(t, f)
	f.want(f.do(asAdmin, "POST", "/api/v1/users", map[string]any{"name": "carol", "password": "carol-password"}), 201, "")
	asCarol := basic("carol", "carol-password")
	f.want(f.do(asAlice, "POST", "/api/v1/orgs", map[string]any{"name": "acme"}), 201, "")
	f.want(f.do(asAlice, "POST", "/api/v1/orgs/acme/teams", map[string]any{"name": "devs"}), 201, "")
	for _, m := range []string{"bob", "carol"} {
		f.want(f.do(asAlice, "PUT", "/api/v1/orgs/acme/teams/devs/members/"+m, nil), 204, "")
	}
	f.want(f.do(asAlice, "PUT", "/api/v1/orgs/acme/teams/devs/grants", map[string]any{"repository": "", "role": "write"}), 200, "")
	f.want(f.do(asAlice, "PUT", "/api/v1/workflows/acme/gate", gatedWorkflow), 200, "")

	// Bob starts a run: its deploy job waits for alice or bob.
	run := decodeAs[hubtypes.WorkflowRun](t, f.want(f.do(asBob, "POST", "/api/v1/workflows/acme/gate/runs", nil), 201, ""))
	if e := f.wantAudit("workflow.run", "bob", "acme/gate"); !strings.HasPrefix(e.Detail, "run "+itoa(run.ID)+" (#1)") {
		t.Errorf("workflow.run detail %q", e.Detail)
	}
	run = f.waitRun(asBob, run.ID, "waiting for approval", waitingApproval)
	deploy := jobNamed(run, "deploy")
	if a := deploy.Approval; a == nil || a.Required != 1 || a.Environment != "production" || len(a.Approvers) != 2 || a.Deadline == "" {
		t.Fatalf("approval %+v", deploy.Approval)
	}
	base := "/api/v1/runs/" + itoa(run.ID) + "/jobs/"

	// Carol may write but is no approver; bob started the run and alice is named too.
	f.want(f.do(asCarol, "POST", base+"deploy/approve", map[string]any{"comment": "me?"}), 403, "DENIED")
	f.want(f.do(asBob, "POST", base+"deploy/approve", nil), 403, "DENIED")
	f.want(f.do(asBob, "POST", base+"deploy/reject", nil), 403, "DENIED")
	// An outsider (no role on acme) finds no such run, whatever it names.
	f.want(f.do(asAdmin, "POST", "/api/v1/users", map[string]any{"name": "dave", "password": "dave-password"}), 201, "")
	f.want(f.do(basic("dave", "dave-password"), "POST", base+"deploy/approve", nil), 404, "NAME_UNKNOWN")
	if n := len(f.audited("workflow.approve")) + len(f.audited("workflow.reject")); n != 0 {
		t.Fatalf("%d audit entries for refused decisions", n)
	}
	if a := jobNamed(f.waitRun(asBob, run.ID, "read", func(hubtypes.WorkflowRun) bool { return true }), "deploy").Approval; len(a.Decisions) != 0 {
		t.Fatalf("refused decisions recorded: %+v", a.Decisions)
	}
	// A token of alice's that may only read decides nothing; the right job must be named.
	reader := f.token(asAlice, "wf-read", "hub:workflows:read")
	runner := f.token(asAlice, "wf-run", "hub:workflows:run")
	if r := f.want(f.do(bearer(reader), "POST", base+"deploy/approve", nil), 403, "DENIED"); !strings.Contains(string(r.body), "hub:workflows:run") {
		t.Errorf("refusal %s", r.body)
	}
	f.want(f.do(bearer(runner), "POST", base+"nope/approve", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(bearer(runner), "POST", base+"after/approve", nil), 409, "CONFLICT")
	f.want(f.do(bearer(runner), "POST", base+"deploy/approve", map[string]any{"comment": strings.Repeat("x", 2000)}), 400, "INVALID_REQUEST")
	f.want(f.do(asBob, "POST", "/api/v1/runs/"+itoa(run.ID)+"/jobs/"+itoa(deploy.ID)+"/maybe", nil), 404, "NAME_UNKNOWN")

	// Alice approves (by job id, with a token that may run): it runs.
	got := decodeAs[hubtypes.WorkflowRun](t, f.want(f.do(bearer(runner), "POST", base+itoa(deploy.ID)+"/approve",
		map[string]any{"comment": "looks good"}), 200, ""))
	if a := jobNamed(got, "deploy").Approval; a == nil || len(a.Decisions) != 1 || a.Decisions[0].Account != "alice" ||
		a.Decisions[0].Comment != "looks good" || !a.Approved {
		t.Fatalf("after alice's approval: %+v", jobNamed(got, "deploy"))
	}
	if e := f.wantAudit("workflow.approve", "alice", "acme/gate"); !strings.Contains(e.Detail, "job deploy: looks good") ||
		!strings.Contains(e.Detail, "wf-run") {
		t.Errorf("workflow.approve detail %q", e.Detail)
	}
	f.want(f.do(asAlice, "POST", base+"deploy/approve", nil), 409, "CONFLICT")
	run = f.waitRun(asBob, run.ID, "finished", func(r hubtypes.WorkflowRun) bool { return engine.Terminal(r.State) })
	if run.State != engine.StateSucceeded {
		t.Fatalf("approved run %+v", run)
	}

	// Alice starts one; bob (named too) rejects it: deploy fails, after is skipped.
	run = decodeAs[hubtypes.WorkflowRun](t, f.want(f.do(asAlice, "POST", "/api/v1/workflows/acme/gate/runs", nil), 201, ""))
	f.waitRun(asAlice, run.ID, "waiting for approval", waitingApproval)
	f.want(f.do(asAlice, "POST", "/api/v1/runs/"+itoa(run.ID)+"/jobs/deploy/approve", nil), 403, "DENIED")
	// A job run of another run is not this run's, even by id.
	f.want(f.do(asBob, "POST", "/api/v1/runs/"+itoa(run.ID)+"/jobs/"+itoa(deploy.ID)+"/approve", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asBob, "POST", "/api/v1/runs/"+itoa(run.ID)+"/jobs/deploy/reject", map[string]any{"comment": "freeze"}), 200, "")
	f.wantAudit("workflow.reject", "bob", "acme/gate")
	run = f.waitRun(asAlice, run.ID, "finished", func(r hubtypes.WorkflowRun) bool { return engine.Terminal(r.State) })
	if run.State != engine.StateFailed || jobNamed(run, "deploy").Error != "rejected by bob: freeze" || jobNamed(run, "after").State != engine.StateSkipped {
		t.Fatalf("rejected run %+v", run)
	}
}

// TestWorkflowRunActionsAudited: a manual run, a cancel, a rerun and a decision whose
// audit entry cannot be written do not happen.
func TestWorkflowRunActionsAudited(t *testing.T) {
	f := newFixture(t)
	f.want(f.do(asAlice, "PUT", "/api/v1/workflows/alice/gate", strings.ReplaceAll(gatedWorkflow, "[alice, bob]", "[alice]")), 200, "")
	run := decodeAs[hubtypes.WorkflowRun](t, f.want(f.do(asAlice, "POST", "/api/v1/workflows/alice/gate/runs", nil), 201, ""))
	db, err := sql.Open("sqlite", f.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log WHEN NEW.action LIKE 'workflow.%'
		BEGIN SELECT RAISE(ABORT, 'audit refused'); END`); err != nil {
		t.Fatal(err)
	}
	f.want(f.do(asAlice, "POST", "/api/v1/workflows/alice/gate/runs", nil), 500, "UNKNOWN")
	runs := decodeAs[[]hubtypes.WorkflowRun](t, f.want(f.do(asAlice, "GET", "/api/v1/runs?workflow=alice/gate", nil), 200, ""))
	if len(runs) != 1 {
		t.Fatalf("%d runs after a run whose audit failed, want 1", len(runs))
	}
	f.want(f.do(asAlice, "POST", "/api/v1/runs/"+itoa(run.ID)+"/cancel", nil), 500, "UNKNOWN")
	if got := decodeAs[hubtypes.WorkflowRun](t, f.want(f.do(asAlice, "GET", "/api/v1/runs/"+itoa(run.ID), nil), 200, "")); got.CancelRequested || engine.Terminal(got.State) {
		t.Fatalf("cancelled although its audit failed: %+v", got)
	}
	if _, err := db.Exec(`DROP TRIGGER refuse_audit`); err != nil {
		t.Fatal(err)
	}
	f.want(f.do(asAlice, "POST", "/api/v1/runs/"+itoa(run.ID)+"/cancel", nil), 202, "")
	if _, err := db.Exec(`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log WHEN NEW.action LIKE 'workflow.%'
		BEGIN SELECT RAISE(ABORT, 'audit refused'); END`); err != nil {
		t.Fatal(err)
	}
	f.want(f.do(asAlice, "POST", "/api/v1/runs/"+itoa(run.ID)+"/rerun", nil), 500, "UNKNOWN")
	if got := decodeAs[hubtypes.WorkflowRun](t, f.want(f.do(asAlice, "GET", "/api/v1/runs/"+itoa(run.ID), nil), 200, "")); got.Attempt != 1 || got.State != engine.StateCancelled {
		t.Fatalf("rerun although its audit failed: %+v", got)
	}
}
