package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/workflow/engine"
	"github.com/hubctl/hubctl/internal/workflow/executor/local"
)

// clock is a test's clock for the engine (Options.Now).
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// startClockedEngine is startEngine with the engine's clock set to clk.
func startClockedEngine(t *testing.T, s *sqlstore.Store, id string, clk *clock) {
	t.Helper()
	x, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(engine.Options{Store: s, Executor: x, MayPull: mayPull, ID: id, MaxJobs: 4, Interval: 50 * time.Millisecond,
		Lease: 3 * time.Second, Renew: 200 * time.Millisecond, StopGrace: time.Second, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

const gated = `name: gated
on:
  manual: {}
jobs:
  build:
    image: alpine
    steps:
      - run: echo built
  deploy:
    needs: [build]
    image: alpine
    environment:
      name: production
      approvers: [APPROVERS]
      required: REQUIRED
      timeout: 1h
    steps:
      - run: echo deployed
  after:
    needs: [deploy]
    image: alpine
    steps:
      - run: echo after
`

func gatedWorkflow(approvers string, required int) string {
	return strings.NewReplacer("APPROVERS", approvers, "REQUIRED", string(rune('0'+required))).Replace(gated)
}

// startGated applies the gated workflow as team/name, starts a run of it triggered by
// the account by, and waits until its deploy job waits for approval.
func startGated(t *testing.T, s *sqlstore.Store, name, src string, by int64) (engine.Workflow, engine.Run, engine.Job) {
	t.Helper()
	w, err := s.ApplyWorkflow(t.Context(), "team", name, []byte(src), 1, "admin")
	if err != nil {
		t.Fatal(err)
	}
	pr, err := engine.PlanManual(w, "manual-"+name, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	pr.TriggeredBy = by
	if _, err := s.CreateWorkflowRun(t.Context(), w.ID, pr); err != nil {
		t.Fatal(err)
	}
	r := waitRun(t, s, w, "waiting for approval", func(r engine.Run) bool {
		return jobsByName(r)["deploy"].State == engine.StateWaitingApproval
	})
	if b := jobsByName(r)["build"]; b.State != engine.StateSucceeded {
		t.Fatalf("build %s before the gate", b.State)
	}
	return w, r, jobsByName(r)["deploy"]
}

func decision(r engine.Run, j engine.Job, u accounts.User, verdict, comment string, approvers ...accounts.User) engine.Decision {
	d := engine.Decision{RunID: r.ID, JobID: j.ID, AccountID: u.ID, Account: u.Name, Decision: verdict, Comment: comment}
	for _, a := range approvers {
		d.Approvers = append(d.Approvers, a.ID)
	}
	return d
}

func auditCount(t *testing.T, s *sqlstore.Store, action string) int {
	t.Helper()
	es, err := s.ListAudit(t.Context(), accounts.AuditFilter{Action: action, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// TestWorkflowApprovals: a job whose environment names approvers waits for approval
// once its needs are done; 2 of 3 approvals queue it; an account that is no approver,
// and the one that triggered the run while others are named, are refused and leave no
// trace; a second approval by one account counts once; one rejection fails the job and
// skips its dependents; the timeout, on the engine's clock, fails it too. Each
// decision has its audit entry.
func TestWorkflowApprovals(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *sqlstore.Store) {
		s := open()
		ctx := t.Context()
		users := map[string]accounts.User{}
		for _, name := range []string{"alice", "bob", "carol", "dave"} {
			if _, err := s.CreateUser(ctx, accounts.User{Name: name}); err != nil {
				t.Fatal(err)
			}
			u, err := s.GetUser(ctx, name)
			if err != nil || u.ID == 0 {
				t.Fatal(u, err)
			}
			users[name] = u
		}
		alice, bob, carol, dave := users["alice"], users["bob"], users["carol"], users["dave"]
		clk := &clock{now: time.Now()}
		startClockedEngine(t, s, "e1", clk)
		audited := func(u accounts.User, action string) context.Context {
			return accounts.WithAudit(ctx, accounts.AuditEntry{Actor: u.Name, Action: action, Target: "team/gated"})
		}

		// 2 of 3: alice (who triggered it), bob and carol.
		w, r, deploy := startGated(t, s, "two-of-three", gatedWorkflow("alice, bob, carol", 2), alice.ID)
		approvers := []accounts.User{alice, bob, carol}
		for _, who := range []accounts.User{dave, alice} {
			_, err := s.DecideWorkflowApproval(audited(who, "workflow.approve"), decision(r, deploy, who, engine.DecisionApprove, "", approvers...))
			if !errors.Is(err, engine.ErrForbidden) {
				t.Fatalf("%s approved: %v", who.Name, err)
			}
		}
		if st, err := s.WorkflowApprovals(ctx, r.ID); err != nil || len(st[deploy.ID].Decisions) != 0 || auditCount(t, s, "workflow.approve") != 0 {
			t.Fatalf("refused decisions left %+v (%v)", st[deploy.ID], err)
		}
		state, err := s.DecideWorkflowApproval(audited(bob, "workflow.approve"), decision(r, deploy, bob, engine.DecisionApprove, "ok", approvers...))
		if err != nil || state != engine.StateWaitingApproval {
			t.Fatalf("bob's approval: %s %v", state, err)
		}
		if _, err := s.DecideWorkflowApproval(audited(bob, "workflow.approve"), decision(r, deploy, bob, engine.DecisionApprove, "", approvers...)); !errors.Is(err, engine.ErrInvalid) {
			t.Fatalf("bob's second approval: %v", err)
		}
		if r2, _ := s.GetWorkflowRun(ctx, r.ID); jobsByName(r2)["deploy"].State != engine.StateWaitingApproval {
			t.Fatalf("one approval (given twice) of 2 let deploy go: %s", jobsByName(r2)["deploy"].State)
		}
		if state, err = s.DecideWorkflowApproval(audited(carol, "workflow.approve"), decision(r, deploy, carol, engine.DecisionApprove, "", approvers...)); err != nil || state != engine.StateQueued {
			t.Fatalf("carol's approval: %s %v", state, err)
		}
		r = waitRun(t, s, w, "finished", finished)
		if r.State != engine.StateSucceeded || jobsByName(r)["after"].State != engine.StateSucceeded {
			t.Fatalf("approved run %s: %+v", r.State, r.Jobs)
		}
		st, err := s.WorkflowApprovals(ctx, r.ID)
		if err != nil || len(st[deploy.ID].Decisions) != 2 || !st[deploy.ID].Approved || st[deploy.ID].Required != 2 {
			t.Fatalf("approvals %+v (%v)", st[deploy.ID], err)
		}
		if n := auditCount(t, s, "workflow.approve"); n != 2 {
			t.Fatalf("%d workflow.approve entries, want 2", n)
		}

		// One rejection fails the job; what needs it is skipped.
		w, r, deploy = startGated(t, s, "rejected", gatedWorkflow("bob, carol", 2), alice.ID)
		if state, err = s.DecideWorkflowApproval(audited(carol, "workflow.reject"), decision(r, deploy, carol, engine.DecisionReject, "not today", bob, carol)); err != nil || state != engine.StateFailed {
			t.Fatalf("rejection: %s %v", state, err)
		}
		r = waitRun(t, s, w, "finished", finished)
		jobs := jobsByName(r)
		if r.State != engine.StateFailed || jobs["deploy"].State != engine.StateFailed || jobs["deploy"].Error != "rejected by carol: not today" ||
			jobs["after"].State != engine.StateSkipped {
			t.Fatalf("rejected run %s: %+v", r.State, r.Jobs)
		}
		if _, err := s.DecideWorkflowApproval(audited(bob, "workflow.approve"), decision(r, deploy, bob, engine.DecisionApprove, "", bob, carol)); !errors.Is(err, engine.ErrInvalid) {
			t.Fatalf("approval after the rejection: %v", err)
		}
		if n := auditCount(t, s, "workflow.reject"); n != 1 {
			t.Fatalf("%d workflow.reject entries, want 1", n)
		}

		// The only approver named may approve the run they started.
		w, r, deploy = startGated(t, s, "self", gatedWorkflow("alice", 1), alice.ID)
		if _, err := s.DecideWorkflowApproval(ctx, decision(r, deploy, alice, engine.DecisionApprove, "", alice)); err != nil {
			t.Fatal(err)
		}
		if r = waitRun(t, s, w, "finished", finished); r.State != engine.StateSucceeded {
			t.Fatalf("self-approved run %s: %+v", r.State, r.Jobs)
		}

		// The timeout, on the engine's clock.
		w, _, _ = startGated(t, s, "timeout", gatedWorkflow("bob", 1), alice.ID)
		clk.Add(59 * time.Minute)
		time.Sleep(300 * time.Millisecond)
		if r, _ := s.ListWorkflowRuns(ctx, w.ID, 1); r[0].State == engine.StateFailed {
			t.Fatal("failed before its timeout")
		}
		clk.Add(2 * time.Minute)
		r = waitRun(t, s, w, "finished", finished)
		jobs = jobsByName(r)
		if r.State != engine.StateFailed || !strings.HasPrefix(jobs["deploy"].Error, "timed out waiting for approval (0 of 1") ||
			jobs["after"].State != engine.StateSkipped {
			t.Fatalf("timed-out run %s: %+v", r.State, r.Jobs)
		}
	})
}

func TestMayDecide(t *testing.T) {
	for _, c := range []struct {
		account     int64
		approvers   []int64
		triggeredBy int64
		ok          bool
	}{
		{1, []int64{1, 2}, 0, true},
		{3, []int64{1, 2}, 0, false},
		{1, []int64{1, 2}, 1, false},
		{2, []int64{1, 2}, 1, true},
		{1, []int64{1}, 1, true},
		{1, nil, 0, false},
	} {
		err := engine.MayDecide(c.account, c.approvers, c.triggeredBy)
		if (err == nil) != c.ok || err != nil && !errors.Is(err, engine.ErrForbidden) {
			t.Errorf("MayDecide(%d, %v, %d) = %v", c.account, c.approvers, c.triggeredBy, err)
		}
	}
	for _, bad := range []engine.Decision{{Decision: "maybe"}, {Decision: "approve", Comment: strings.Repeat("x", 1025)},
		{Decision: "reject", Comment: "a\x00b"}} {
		if err := engine.CheckDecision(bad); !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("CheckDecision(%+v) = %v", bad, err)
		}
	}
}
