package hubapi_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/workflow/engine"
	"github.com/hubctl/hubctl/internal/workflow/executor/local"
)

const manualWorkflow = `name: greet
on:
  manual:
    inputs:
      who:
        type: string
        required: true
jobs:
  hello:
    image: alpine
    outputs: [said]
    env:
      WHO: "${{ inputs.who }}"
    steps:
      - run: |
          echo "hello $WHO"
          echo "said=$WHO" >> "$HUBCTL_OUTPUT"
`

// startLocalEngine runs the workflow engine with the local executor on the fixture's
// store until the test ends.
func startLocalEngine(t *testing.T, f *fixture) {
	t.Helper()
	x, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(engine.Options{Store: f.store, Executor: x, Interval: 50 * time.Millisecond,
		MayPull: func(context.Context, int64, string) (bool, error) { return true, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestWorkflowAPI(t *testing.T) {
	f := newFixture(t)
	startLocalEngine(t, f)

	// Apply: the body is the YAML; the parser's errors come back as line:col.
	got := decodeAs[hubtypes.Workflow](t, f.want(f.do(asAlice, "PUT", "/api/v1/workflows/alice/greet", manualWorkflow), 200, ""))
	if got.Namespace != "alice" || got.Name != "greet" || !strings.HasPrefix(got.Digest, "sha256:") || got.AppliedBy != "alice" {
		t.Fatalf("applied %+v", got)
	}
	f.wantAudit("workflow.apply", "alice", "alice/greet")
	bad := f.want(f.do(asAlice, "PUT", "/api/v1/workflows/alice/bad", "name: bad\non: {manual: {}}\njobs:\n  a:\n    steps: 3\n"), 400, "INVALID_REQUEST")
	if !strings.Contains(string(bad.body), `"line":5`) || !strings.Contains(string(bad.body), "5:") {
		t.Fatalf("errors: %s", bad.body)
	}
	f.want(f.do(asAlice, "PUT", "/api/v1/workflows/alice/Bad!", manualWorkflow), 400, "INVALID_REQUEST")
	f.want(f.do(asAlice, "PUT", "/api/v1/workflows/alice/empty", ""), 400, "INVALID_REQUEST")
	huge := manualWorkflow + "# " + strings.Repeat("x", 1<<20) + "\n"
	if r := f.do(asAlice, "PUT", "/api/v1/workflows/alice/huge", huge); r.status != 413 {
		t.Fatalf("oversized workflow: %d %s", r.status, r.body)
	}
	f.want(f.do(asAlice, "GET", "/api/v1/workflows/alice/huge", nil), 404, "NAME_UNKNOWN")

	// Listing and reading.
	list := decodeAs[[]hubtypes.Workflow](t, f.want(f.do(asAlice, "GET", "/api/v1/workflows?namespace=alice", nil), 200, ""))
	if len(list) != 1 || list[0].Name != "greet" || list[0].Source != "" {
		t.Fatalf("list %+v", list)
	}
	one := decodeAs[hubtypes.Workflow](t, f.want(f.do(asAlice, "GET", "/api/v1/workflows/alice/greet", nil), 200, ""))
	if one.Source != manualWorkflow {
		t.Fatalf("source %q", one.Source)
	}

	// Bob sees nothing of alice's namespace, and can neither run nor apply there.
	f.want(f.do(asBob, "GET", "/api/v1/workflows/alice/greet", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asBob, "GET", "/api/v1/workflows?namespace=alice", nil), 404, "NAME_UNKNOWN")
	if l := decodeAs[[]hubtypes.Workflow](t, f.want(f.do(asBob, "GET", "/api/v1/workflows", nil), 200, "")); len(l) != 0 {
		t.Fatalf("bob lists %+v", l)
	}
	f.want(f.do(asBob, "PUT", "/api/v1/workflows/alice/greet", manualWorkflow), 404, "NAME_UNKNOWN")
	f.want(f.do(asBob, "DELETE", "/api/v1/workflows/alice/greet", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asBob, "POST", "/api/v1/workflows/alice/greet/runs", map[string]any{"inputs": map[string]any{"who": "bob"}}), 404, "NAME_UNKNOWN")
	f.want(f.do(asBob, "PUT", "/api/v1/workflows/ghost/greet", manualWorkflow), 404, "NAME_UNKNOWN")
	f.want(f.do(asAdmin, "PUT", "/api/v1/workflows/ghost/greet", manualWorkflow), 404, "NAME_UNKNOWN")

	// A manual run: inputs checked, then run by the engine.
	f.want(f.do(asAlice, "POST", "/api/v1/workflows/alice/greet/runs", map[string]any{"inputs": map[string]any{}}), 400, "INVALID_REQUEST")
	f.want(f.do(asAlice, "POST", "/api/v1/workflows/alice/greet/runs", map[string]any{"inputs": map[string]any{"who": 3}}), 400, "INVALID_REQUEST")
	run := decodeAs[hubtypes.WorkflowRun](t, f.want(f.do(asAlice, "POST", "/api/v1/workflows/alice/greet/runs",
		map[string]any{"inputs": map[string]any{"who": "world"}}), 201, ""))
	if run.ID == 0 || run.Trigger != "manual" || run.Number != 1 {
		t.Fatalf("run %+v", run)
	}
	f.wantAudit("workflow.run", "alice", "alice/greet")
	path := "/api/v1/runs/" + itoa(run.ID)
	deadline := time.Now().Add(30 * time.Second)
	for !engine.Terminal(run.State) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		run = decodeAs[hubtypes.WorkflowRun](t, f.want(f.do(asAlice, "GET", path, nil), 200, ""))
	}
	if run.State != engine.StateSucceeded || len(run.Jobs) != 1 || run.Jobs[0].Outputs["said"] != "world" || len(run.Jobs[0].Steps) != 1 ||
		run.Jobs[0].Steps[0].Starts != 1 || run.Jobs[0].Attempt != 1 {
		t.Fatalf("run %+v", run)
	}
	logs := decodeAs[hubtypes.WorkflowLogs](t, f.want(f.do(asAlice, "GET", path+"/logs?wait=5", nil), 200, ""))
	text := ""
	for _, c := range logs.Chunks {
		text += c.Data
	}
	if !strings.Contains(text, "hello world") || !logs.Done || logs.Next == 0 {
		t.Fatalf("logs %+v", logs)
	}
	after := decodeAs[hubtypes.WorkflowLogs](t, f.want(f.do(asAlice, "GET", path+"/logs?job=hello&after="+itoa(logs.Next), nil), 200, ""))
	if len(after.Chunks) != 0 || !after.Done {
		t.Fatalf("after the cursor: %+v", after)
	}
	f.want(f.do(asAlice, "GET", path+"/logs?job=nope", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asAlice, "GET", path+"/logs?wait=99", nil), 400, "INVALID_REQUEST")
	runs := decodeAs[[]hubtypes.WorkflowRun](t, f.want(f.do(asAlice, "GET", "/api/v1/runs?workflow=alice/greet&state=succeeded", nil), 200, ""))
	if len(runs) != 1 || runs[0].ID != run.ID {
		t.Fatalf("runs %+v", runs)
	}
	f.want(f.do(asAlice, "GET", "/api/v1/runs?workflow=alice/greet&state=odd", nil), 400, "INVALID_REQUEST")
	f.want(f.do(asAlice, "GET", "/api/v1/runs", nil), 400, "INVALID_REQUEST")

	// Bob cannot read, cancel or rerun alice's run either: not found.
	f.want(f.do(asBob, "GET", path, nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asBob, "GET", path+"/logs", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asBob, "POST", path+"/cancel", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asBob, "POST", path+"/rerun", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asBob, "GET", "/api/v1/runs?workflow=alice/greet", nil), 404, "NAME_UNKNOWN")

	// Rerun a finished run; cancel one (a no-op once it ended).
	f.want(f.do(asAlice, "POST", path+"/rerun?failed=maybe", nil), 400, "INVALID_REQUEST")
	f.want(f.do(asAlice, "POST", path+"/rerun", nil), 202, "")
	f.wantAudit("workflow.rerun", "alice", "alice/greet")
	f.want(f.do(asAlice, "POST", path+"/cancel", nil), 202, "")
	f.wantAudit("workflow.cancel", "alice", "alice/greet")

	// Access tokens: hub:workflows:read reads, hub:workflows:write changes; others neither.
	reader := f.token(asAlice, "wf-read", "hub:workflows:read")
	writer := f.token(asAlice, "wf-write", "hub:workflows:write")
	other := f.token(asAlice, "pull", "repository:alice/*:pull", "hub:webhooks:write")
	f.want(f.do(bearer(other), "GET", "/api/v1/workflows/alice/greet", nil), 403, "DENIED")
	f.want(f.do(bearer(other), "PUT", "/api/v1/workflows/alice/greet", manualWorkflow), 403, "DENIED")
	f.want(f.do(bearer(other), "POST", "/api/v1/workflows/alice/greet/runs", map[string]any{"inputs": map[string]any{"who": "x"}}), 403, "DENIED")
	f.want(f.do(bearer(reader), "GET", "/api/v1/workflows/alice/greet", nil), 200, "")
	f.want(f.do(bearer(reader), "GET", path, nil), 200, "")
	f.want(f.do(bearer(reader), "POST", path+"/cancel", nil), 403, "DENIED")
	f.want(f.do(bearer(reader), "PUT", "/api/v1/workflows/alice/greet", manualWorkflow), 403, "DENIED")
	f.want(f.do(bearer(writer), "PUT", "/api/v1/workflows/alice/greet", manualWorkflow), 200, "")
	if e := f.wantAudit("workflow.apply", "alice", "alice/greet"); !strings.Contains(e.Detail, "wf-write") {
		t.Errorf("audit of a token's apply: %+v", e)
	}

	// Delete: gone with its runs.
	f.want(f.do(asAlice, "DELETE", "/api/v1/workflows/alice/greet", nil), 204, "")
	f.wantAudit("workflow.delete", "alice", "alice/greet")
	f.want(f.do(asAlice, "GET", "/api/v1/workflows/alice/greet", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asAlice, "GET", path, nil), 404, "NAME_UNKNOWN")
}

// TestWorkflowOrgRoles: in an organisation, its admins apply, a team with write on the
// whole organisation runs but does not apply, one with read only reads.
func TestWorkflowOrgRoles(t *testing.T) {
	f := newFixture(t)
	f.want(f.do(asAlice, "POST", "/api/v1/orgs", map[string]any{"name": "team"}), 201, "")
	f.want(f.do(asAlice, "PUT", "/api/v1/workflows/team/greet", manualWorkflow), 200, "")
	run := map[string]any{"inputs": map[string]any{"who": "x"}}

	f.want(f.do(asBob, "GET", "/api/v1/workflows/team/greet", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asAlice, "POST", "/api/v1/orgs/team/teams", map[string]any{"name": "devs"}), 201, "")
	f.want(f.do(asAlice, "PUT", "/api/v1/orgs/team/teams/devs/members/bob", nil), 204, "")
	// A grant on one repository is no right on the namespace's workflows.
	f.want(f.do(asAlice, "PUT", "/api/v1/orgs/team/teams/devs/grants", map[string]any{"repository": "team/app", "role": "admin"}), 200, "")
	f.want(f.do(asBob, "GET", "/api/v1/workflows/team/greet", nil), 404, "NAME_UNKNOWN")

	f.want(f.do(asAlice, "PUT", "/api/v1/orgs/team/teams/devs/grants", map[string]any{"repository": "", "role": "read"}), 200, "")
	f.want(f.do(asBob, "GET", "/api/v1/workflows/team/greet", nil), 200, "")
	f.want(f.do(asBob, "POST", "/api/v1/workflows/team/greet/runs", run), 403, "DENIED")

	f.want(f.do(asAlice, "PUT", "/api/v1/orgs/team/teams/devs/grants", map[string]any{"repository": "", "role": "write"}), 200, "")
	r := decodeAs[hubtypes.WorkflowRun](t, f.want(f.do(asBob, "POST", "/api/v1/workflows/team/greet/runs", run), 201, ""))
	f.want(f.do(asBob, "POST", "/api/v1/runs/"+itoa(r.ID)+"/cancel", nil), 202, "")
	f.want(f.do(asBob, "PUT", "/api/v1/workflows/team/greet", manualWorkflow), 403, "DENIED")
	f.want(f.do(asBob, "DELETE", "/api/v1/workflows/team/greet", nil), 403, "DENIED")

	// Bob's own token for workflows reaches no further than bob: not alice's namespace.
	f.want(f.do(asAlice, "PUT", "/api/v1/workflows/alice/greet", manualWorkflow), 200, "")
	bobTok := f.token(asBob, "wf", "hub:workflows:write", "hub:workflows:read")
	f.want(f.do(bearer(bobTok), "GET", "/api/v1/workflows/alice/greet", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(bearer(bobTok), "PUT", "/api/v1/workflows/alice/greet", manualWorkflow), 404, "NAME_UNKNOWN")
	f.want(f.do(bearer(bobTok), "POST", "/api/v1/workflows/alice/greet/runs", run), 404, "NAME_UNKNOWN")

	// A robot of the organisation may run (it has admin on its organisation's
	// repositories) but never applies: it is a service account.
	body := map[string]any{"name": "ci", "scopes": []string{"repository:team/*:pull", "hub:workflows:write", "hub:workflows:read"}, "expires_in_days": 7}
	robot := decodeAs[hubtypes.Robot](t, f.want(f.do(asAlice, "POST", "/api/v1/orgs/team/robots", body), 201, ""))
	withRobot := bearer(robot.Token.Token)
	f.want(f.do(withRobot, "POST", "/api/v1/workflows/team/greet/runs", run), 201, "")
	f.want(f.do(withRobot, "PUT", "/api/v1/workflows/team/greet", manualWorkflow), 403, "DENIED")
	f.want(f.do(withRobot, "DELETE", "/api/v1/workflows/team/greet", nil), 403, "DENIED")
	f.want(f.do(withRobot, "GET", "/api/v1/workflows/alice/greet", nil), 404, "NAME_UNKNOWN")
}

// TestWorkflowLogsWait: a log request with wait answers when the running job writes,
// not before and not only at the deadline; a follower reaches "done".
func TestWorkflowLogsWait(t *testing.T) {
	f := newFixture(t)
	startLocalEngine(t, f)
	src := "name: slow\non:\n  manual: {}\njobs:\n  a:\n    image: alpine\n    steps:\n      - run: |\n          sleep 1\n          echo late\n"
	f.want(f.do(asAlice, "PUT", "/api/v1/workflows/alice/slow", src), 200, "")
	run := decodeAs[hubtypes.WorkflowRun](t, f.want(f.do(asAlice, "POST", "/api/v1/workflows/alice/slow/runs", nil), 201, ""))
	path := "/api/v1/runs/" + itoa(run.ID) + "/logs?wait=20&after="
	start := time.Now()
	var text string
	var after int64
	for i := 0; i < 20; i++ {
		page := decodeAs[hubtypes.WorkflowLogs](t, f.want(f.do(asAlice, "GET", path+itoa(after), nil), 200, ""))
		for _, c := range page.Chunks {
			text += c.Data
		}
		after = page.Next
		if page.Done {
			break
		}
	}
	if !strings.Contains(text, "late") {
		t.Fatalf("followed log %q", text)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 15*time.Second {
		t.Fatalf("following a 1 s step took %v", d)
	}
}
