package sqlstore

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

const gateWorkflow = `name: gate
on:
  manual: {}
jobs:
  deploy:
    image: alpine
    environment:
      name: production
      approvers: [alice, bob]
      required: 2
    steps:
      - run: "true"
`

// TestWorkflowApprovalStore: job runs parked for approval by their claimer; two
// approvers deciding at once on many of them each queue every job run exactly once
// (the run's row orders the decisions); a decision or a cancel whose audit entry
// cannot be written does not happen; the deadline fails what still waits.
func TestWorkflowApprovalStore(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s, _ := openFresh(t, b)
		ctx := t.Context()
		w, err := s.ApplyWorkflow(ctx, "team", "gate", []byte(gateWorkflow), 7, "admin")
		if err != nil {
			t.Fatal(err)
		}
		const n = 12
		var runs []int64
		for i := range n {
			pr, err := wfengine.PlanManual(w, fmt.Sprintf("manual-%d", i), nil, "")
			if err != nil {
				t.Fatal(err)
			}
			pr.TriggeredBy = 3 // carol, no approver
			id, err := s.CreateWorkflowRun(ctx, w.ID, pr)
			if err != nil {
				t.Fatal(err)
			}
			runs = append(runs, id)
		}
		claims, err := s.ClaimWorkflowJobs(ctx, "e1", 100, 30*time.Second)
		if err != nil || len(claims) != n {
			t.Fatalf("claimed %d, %v", len(claims), err)
		}
		deadline := time.Now().Add(time.Hour)
		for _, c := range claims {
			if waiting, err := s.AwaitWorkflowApproval(ctx, c.Job.ID, "e1", 2, deadline); err != nil || !waiting {
				t.Fatalf("await: %v %v", waiting, err)
			}
			if _, err := s.AwaitWorkflowApproval(ctx, c.Job.ID, "e1", 2, deadline); !errors.Is(err, wfengine.ErrLost) {
				t.Fatalf("await of a job run no longer running: %v", err)
			}
		}
		if again, err := s.ClaimWorkflowJobs(ctx, "e2", 100, 30*time.Second); err != nil || len(again) != 0 {
			t.Fatalf("claimed %d job runs waiting for approval (%v)", len(again), err)
		}

		// A decision whose audit entry is refused (no actor) records nothing.
		last := claims[n-1]
		bad := accounts.WithAudit(ctx, accounts.AuditEntry{Action: "workflow.approve"})
		d := wfengine.Decision{RunID: last.Run.ID, JobID: last.Job.ID, AccountID: 1, Account: "alice", Decision: wfengine.DecisionApprove,
			Approvers: []int64{1, 2}}
		if _, err := s.DecideWorkflowApproval(bad, d); err == nil {
			t.Fatal("a decision without its audit entry was recorded")
		}
		if st, err := s.WorkflowApprovals(ctx, last.Run.ID); err != nil || len(st[last.Job.ID].Decisions) != 0 {
			t.Fatalf("decisions after a refused audit: %+v %v", st[last.Job.ID], err)
		}
		if err := s.CancelWorkflowRun(accounts.WithAudit(ctx, accounts.AuditEntry{Action: "workflow.cancel"}), last.Run.ID); err == nil {
			t.Fatal("a cancel without its audit entry happened")
		}
		if r, err := s.GetWorkflowRun(ctx, last.Run.ID); err != nil || r.CancelRequested || r.Jobs[0].State != wfengine.StateWaitingApproval {
			t.Fatalf("run after a refused cancel: %+v %v", r, err)
		}

		// Alice and bob approve the others at once.
		var wg sync.WaitGroup
		for _, c := range claims[:n-1] {
			for _, who := range []struct {
				id   int64
				name string
			}{{1, "alice"}, {2, "bob"}} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					actx := accounts.WithAudit(ctx, accounts.AuditEntry{Actor: who.name, Action: "workflow.approve", Target: "team/gate"})
					if _, err := s.DecideWorkflowApproval(actx, wfengine.Decision{RunID: c.Run.ID, JobID: c.Job.ID, AccountID: who.id,
						Account: who.name, Decision: wfengine.DecisionApprove, Approvers: []int64{1, 2}}); err != nil {
						t.Error(err)
					}
				}()
			}
		}
		wg.Wait()
		for _, c := range claims[:n-1] {
			r, err := s.GetWorkflowRun(ctx, c.Run.ID)
			if err != nil || r.Jobs[0].State != wfengine.StateQueued {
				t.Fatalf("run %d after two approvals: %+v %v", c.Run.ID, r.Jobs, err)
			}
		}
		if es, err := s.ListAudit(ctx, accounts.AuditFilter{Action: "workflow.approve", Limit: 1000}); err != nil || len(es) != 2*(n-1) {
			t.Fatalf("%d workflow.approve entries (%v), want %d", len(es), err, 2*(n-1))
		}
		// Approved job runs run when claimed again: no second wait.
		claims, err = s.ClaimWorkflowJobs(ctx, "e2", 100, 30*time.Second)
		if err != nil || len(claims) != n-1 {
			t.Fatalf("claimed %d approved job runs, %v", len(claims), err)
		}
		if waiting, err := s.AwaitWorkflowApproval(ctx, claims[0].Job.ID, "e2", 2, deadline); err != nil || waiting {
			t.Fatalf("an approved job run waits again: %v %v", waiting, err)
		}

		// The deadline, by the clock the caller gives.
		if n, err := s.ExpireWorkflowApprovals(ctx, deadline.Add(-time.Minute)); err != nil || n != 0 {
			t.Fatalf("expired %d before the deadline (%v)", n, err)
		}
		if n, err := s.ExpireWorkflowApprovals(ctx, deadline.Add(time.Minute)); err != nil || n != 1 {
			t.Fatalf("expired %d after the deadline (%v), want 1", n, err)
		}
		r, err := s.GetWorkflowRun(ctx, last.Run.ID)
		if err != nil || r.State != wfengine.StateFailed || r.Jobs[0].Error != "timed out waiting for approval (0 of 2 approvals)" {
			t.Fatalf("expired run %+v %v", r, err)
		}
	})
}
