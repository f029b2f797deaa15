package engine_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/workflow/engine"
)

const chainFirst = `name: first
on:
  manual:
jobs:
  build:
    image: alpine
    steps:
      - run: echo built
`

const chainSecond = `name: second
on:
  workflow:
    workflows: [first]
    results: [success, failure]
jobs:
  after:
    image: alpine
    outputs: [seen]
    env:
      SEEN: "${{ event.workflow }} ${{ event.runId }} ${{ event.result }} ${{ event.depth }}"
    steps:
      - run: echo "seen=$SEEN" >> "$HUBCTL_OUTPUT"
`

// manualRun starts a manual run of w.
func manualRun(t *testing.T, s *sqlstore.Store, w engine.Workflow) int64 {
	t.Helper()
	pr, err := engine.PlanManual(w, "manual-"+time.Now().Format(time.RFC3339Nano), nil, "admin")
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.CreateWorkflowRun(t.Context(), w.ID, pr)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestWorkflowTriggerChain: a run of first finishing writes workflow.finished; second,
// which names first, starts from it with the finished run's workflow, id, result and
// depth as event values; a workflow of another namespace naming first does not start.
func TestWorkflowTriggerChain(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *sqlstore.Store) {
		s := open()
		first, err := s.ApplyWorkflow(t.Context(), "team", "first", []byte(chainFirst), 1, "admin")
		if err != nil {
			t.Fatal(err)
		}
		second, err := s.ApplyWorkflow(t.Context(), "team", "second", []byte(chainSecond), 1, "admin")
		if err != nil {
			t.Fatal(err)
		}
		other, err := s.ApplyWorkflow(t.Context(), "elsewhere", "second", []byte(chainSecond), 1, "admin")
		if err != nil {
			t.Fatal(err)
		}
		startEngine(t, s, "e1", 4)
		id := manualRun(t, s, first)
		done := waitRun(t, s, first, "finished", finished)
		if done.ID != id || done.Result != "success" {
			t.Fatalf("first run %+v", done)
		}
		b := waitRun(t, s, second, "finished", finished)
		want := "first " + strconv.FormatInt(id, 10) + " success 1"
		if b.Trigger != "workflow" || b.Jobs[0].Outputs["seen"] != want || b.Result != "success" {
			t.Fatalf("second run: trigger %q outputs %v result %q, want seen=%q", b.Trigger, b.Jobs[0].Outputs, b.Result, want)
		}
		page, err := s.ListEvents(t.Context(), events.Query{Types: []events.Type{events.WorkflowFinished}, Access: allAccess, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) < 2 || page.Events[0].Repository != "" || page.Events[0].Detail["workflow"] != "first" {
			t.Fatalf("workflow.finished events %+v", page.Events)
		}
		time.Sleep(300 * time.Millisecond) // a few dispatch rounds
		if runs, _ := s.ListWorkflowRuns(t.Context(), other.ID, 0); len(runs) != 0 {
			t.Fatalf("a workflow of another namespace started %d runs", len(runs))
		}
	})
}

const loopA = `name: ping
on:
  manual:
  workflow:
    workflows: [pong]
jobs:
  a:
    image: alpine
    steps:
      - run: "true"
`

const loopB = `name: pong
on:
  workflow:
    workflows: [ping]
jobs:
  b:
    image: alpine
    steps:
      - run: "true"
`

// TestWorkflowTriggerLoop: two workflows starting each other stop once the chain is
// MaxChainDepth runs deep, and the refusal is in the audit log.
func TestWorkflowTriggerLoop(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *sqlstore.Store) {
		s := open()
		ping, err := s.ApplyWorkflow(t.Context(), "team", "ping", []byte(loopA), 1, "admin")
		if err != nil {
			t.Fatal(err)
		}
		pong, err := s.ApplyWorkflow(t.Context(), "team", "pong", []byte(loopB), 1, "admin")
		if err != nil {
			t.Fatal(err)
		}
		startEngine(t, s, "e1", 4)
		manualRun(t, s, ping)
		// The manual run and MaxChainDepth chained ones: 6 of ping, 5 of pong.
		deadline := time.Now().Add(90 * time.Second)
		var audit int
		for time.Now().Before(deadline) {
			entries, err := s.ListAudit(t.Context(), auditQuery("workflow.chain_stopped"))
			if err != nil {
				t.Fatal(err)
			}
			if audit = len(entries); audit > 0 {
				if entries[0].Target != "team/pong" || entries[0].Actor != "system" {
					t.Fatalf("audit %+v", entries[0])
				}
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if audit != 1 {
			t.Fatalf("%d chain_stopped entries", audit)
		}
		time.Sleep(500 * time.Millisecond)
		pings, _ := s.ListWorkflowRuns(t.Context(), ping.ID, 0)
		pongs, _ := s.ListWorkflowRuns(t.Context(), pong.ID, 0)
		if len(pings)+len(pongs) != engine.MaxChainDepth+1 || len(pings) != 6 || len(pongs) != 5 {
			t.Fatalf("%d runs of ping and %d of pong, want 6 and 5", len(pings), len(pongs))
		}
		deepest := pings[0] // newest first
		if deepest.Event["depth"] != float64(engine.MaxChainDepth) {
			t.Fatalf("the last run's depth %v", deepest.Event["depth"])
		}
	})
}

var allAccess = metadata.CatalogFilter{All: true}

func auditQuery(action string) accounts.AuditFilter { return accounts.AuditFilter{Action: action} }
