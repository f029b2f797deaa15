package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/events"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

const dagWorkflow = `name: dag
on:
  push:
    repositories: [team/app]
    tags: ["v*"]
jobs:
  a:
    image: alpine
    steps:
      - run: echo a
  b:
    needs: [a]
    image: alpine
    matrix:
      os: [linux, darwin]
    steps:
      - run: echo b
      - run: echo b2
`

func plan(t testing.TB) wfengine.Planner {
	return func(w wfengine.Workflow, e events.Event) (*wfengine.PlannedRun, error) {
		pr, err := wfengine.Plan(w, e)
		if err != nil {
			t.Errorf("plan: %v", err)
		}
		return pr, nil
	}
}

func pushEvent(t testing.TB, s *Store, repo, tag string) events.Event {
	t.Helper()
	e, err := s.AppendEvent(context.Background(), events.Event{Type: events.ManifestPushed, Repository: repo, Tag: tag,
		Digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestWorkflowApply: apply creates and replaces by namespace/name, audited in the same
// transaction; get, list and delete; a source that does not parse is refused.
func TestWorkflowApply(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s, _ := openFresh(t, b)
		ctx := t.Context()
		w, err := s.ApplyWorkflow(ctx, "team", "dag", []byte(dagWorkflow), 7, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if w.ID == 0 || w.Digest != WorkflowDigest([]byte(dagWorkflow)) || w.AppliedBy != 7 || !w.Enabled {
			t.Fatalf("applied %+v", w)
		}
		changed := dagWorkflow + "\n# changed\n"
		w2, err := s.ApplyWorkflow(ctx, "team", "dag", []byte(changed), 8, "bob")
		if err != nil {
			t.Fatal(err)
		}
		if w2.ID != w.ID || w2.Digest == w.Digest || string(w2.Source) != changed || w2.AppliedBy != 8 {
			t.Fatalf("re-applied %+v (first %+v)", w2, w)
		}
		if _, err := s.ApplyWorkflow(ctx, "team", "bad", []byte("name: x\njobs: {}\n"), 7, "alice"); err == nil {
			t.Fatal("a workflow that does not parse was stored")
		}
		got, err := s.GetWorkflow(ctx, "team", "dag")
		if err != nil || got.Digest != w2.Digest {
			t.Fatalf("get: %+v, %v", got, err)
		}
		list, err := s.ListWorkflows(ctx, "team")
		if err != nil || len(list) != 1 {
			t.Fatalf("list: %v, %v", list, err)
		}
		audit, err := s.ListAudit(ctx, accounts.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		applies := 0
		for _, e := range audit {
			if e.Action == "workflow.apply" && e.Target == "team/dag" {
				applies++
			}
		}
		if applies != 2 {
			t.Fatalf("%d workflow.apply audit entries, want 2", applies)
		}
		if err := s.DeleteWorkflow(ctx, "team", "dag", "alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetWorkflow(ctx, "team", "dag"); !errors.Is(err, wfengine.ErrNotFound) {
			t.Fatalf("get after delete: %v", err)
		}
		if err := s.DeleteWorkflow(ctx, "team", "dag", "alice"); !errors.Is(err, wfengine.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
	})
}

// TestWorkflowDispatchAndClaim: a matching push makes one run (never two, however
// often and by however many dispatchers it is read), job runs per matrix combination,
// needs queued only once done; claims are exclusive; transitions that lost their race
// report ErrLost.
func TestWorkflowDispatchAndClaim(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s, _ := openFresh(t, b)
		ctx := t.Context()
		w, err := s.ApplyWorkflow(ctx, "team", "dag", []byte(dagWorkflow), 7, "alice")
		if err != nil {
			t.Fatal(err)
		}
		pushEvent(t, s, "team/app", "v1")
		pushEvent(t, s, "team/app", "latest") // no match: tag
		pushEvent(t, s, "other/app", "v1")    // no match: namespace
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.DispatchWorkflows(ctx, 0, plan(t)); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		runs, err := s.ListWorkflowRuns(ctx, w.ID, 0)
		if err != nil || len(runs) != 1 {
			t.Fatalf("runs %+v, %v", runs, err)
		}
		run, err := s.GetWorkflowRun(ctx, runs[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if run.Number != 1 || run.Trigger != "push" || run.Event["tag"] != "v1" || len(run.Jobs) != 3 {
			t.Fatalf("run %+v", run)
		}
		if j := run.Jobs[1]; j.Job != "b" || len(j.Steps) != 2 || len(j.Needs) != 1 || j.State != wfengine.StatePending {
			t.Fatalf("job b %+v", j)
		}

		// Only a is runnable; two claimers get it once.
		c1, err := s.ClaimWorkflowJobs(ctx, "e1", 4, 30*time.Second)
		if err != nil || len(c1) != 1 || c1[0].Job.Job != "a" {
			t.Fatalf("claim: %+v, %v", c1, err)
		}
		if c2, err := s.ClaimWorkflowJobs(ctx, "e2", 4, 30*time.Second); err != nil || len(c2) != 0 {
			t.Fatalf("second claim: %+v, %v", c2, err)
		}
		a := c1[0].Job.ID
		if err := s.StartWorkflowStep(ctx, a, "e2", 0); !errors.Is(err, wfengine.ErrLost) {
			t.Fatalf("start by a non-owner: %v", err)
		}
		if err := s.StartWorkflowStep(ctx, a, "e1", 0); err != nil {
			t.Fatal(err)
		}
		if err := s.StartWorkflowStep(ctx, a, "e1", 0); !errors.Is(err, wfengine.ErrLost) {
			t.Fatalf("second start: %v", err)
		}
		if err := s.AppendWorkflowLog(ctx, a, "e1", 0, []byte("hello\n"), 6); err != nil {
			t.Fatal(err)
		}
		if cancel, err := s.RenewWorkflowJob(ctx, a, "e1", 30*time.Second); err != nil || cancel {
			t.Fatalf("renew: %v, %v", cancel, err)
		}
		if err := s.FinishWorkflowStep(ctx, a, "e1", 0, wfengine.StateSucceeded, 0); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishWorkflowJob(ctx, a, "e1", wfengine.Finish{State: wfengine.StateSucceeded,
			Outputs: map[string]string{"v": "1"}}); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishWorkflowJob(ctx, a, "e1", wfengine.Finish{State: wfengine.StateFailed}); !errors.Is(err, wfengine.ErrLost) {
			t.Fatalf("second finish: %v", err)
		}
		logs, err := s.ReadWorkflowLogs(ctx, a, 0, 0)
		if err != nil || len(logs) != 1 || string(logs[0].Data) != "hello\n" {
			t.Fatalf("logs %+v, %v", logs, err)
		}
		// Now both b runs are queued.
		cb, err := s.ClaimWorkflowJobs(ctx, "e2", 4, 30*time.Second)
		if err != nil || len(cb) != 2 {
			t.Fatalf("claim b: %+v, %v", cb, err)
		}
		// A retry puts b back; cancelling the run cancels what is queued.
		if err := s.FinishWorkflowJob(ctx, cb[0].Job.ID, "e2", wfengine.Finish{State: wfengine.StateQueued}); err != nil {
			t.Fatal(err)
		}
		if err := s.CancelWorkflowRun(ctx, run.ID); err != nil {
			t.Fatal(err)
		}
		if cancel, err := s.RenewWorkflowJob(ctx, cb[1].Job.ID, "e2", 30*time.Second); err != nil || !cancel {
			t.Fatalf("renew after cancel: %v, %v", cancel, err)
		}
		if err := s.FinishWorkflowJob(ctx, cb[1].Job.ID, "e2", wfengine.Finish{State: wfengine.StateCancelled}); err != nil {
			t.Fatal(err)
		}
		run, err = s.GetWorkflowRun(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if run.State != wfengine.StateCancelled || run.Result != "cancelled" || run.Jobs[1].Attempt != 2 {
			t.Fatalf("after cancel: %+v", run)
		}
		if err := s.CancelWorkflowRun(ctx, 999999); !errors.Is(err, wfengine.ErrNotFound) {
			t.Fatalf("cancel of no run: %v", err)
		}

		// Purging finished runs takes their jobs and logs; runs going on stay.
		pushEvent(t, s, "team/app", "v2")
		if _, err := s.DispatchWorkflows(ctx, 0, plan(t)); err != nil {
			t.Fatal(err)
		}
		if n, err := s.PurgeWorkflowRuns(ctx, time.Now().Add(time.Minute), 0); err != nil || n != 1 {
			t.Fatalf("purged %d, %v", n, err)
		}
		if _, err := s.GetWorkflowRun(ctx, run.ID); !errors.Is(err, wfengine.ErrNotFound) {
			t.Fatalf("purged run: %v", err)
		}
		if logs, err := s.ReadWorkflowLogs(ctx, a, 0, 0); err != nil || len(logs) != 0 {
			t.Fatalf("logs of a purged run: %d, %v", len(logs), err)
		}
		if runs, err := s.ListWorkflowRuns(ctx, w.ID, 0); err != nil || len(runs) != 1 || runs[0].Number != 2 {
			t.Fatalf("runs left %+v, %v", runs, err)
		}
	})
}

// TestWorkflowLogCap: a job's log stops at MaxJobLog with a last note, while the step's
// offset counts everything read.
func TestWorkflowLogCap(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s, _ := openFresh(t, b)
		ctx := t.Context()
		if _, err := s.ApplyWorkflow(ctx, "team", "dag", []byte(dagWorkflow), 7, "alice"); err != nil {
			t.Fatal(err)
		}
		pushEvent(t, s, "team/app", "v1")
		if _, err := s.DispatchWorkflows(ctx, 0, plan(t)); err != nil {
			t.Fatal(err)
		}
		c, err := s.ClaimWorkflowJobs(ctx, "e1", 1, 30*time.Second)
		if err != nil || len(c) != 1 {
			t.Fatalf("claim %v %v", c, err)
		}
		id := c[0].Job.ID
		big := make([]byte, 1<<20)
		for range wfengine.MaxJobLog/len(big) + 2 {
			if err := s.AppendWorkflowLog(ctx, id, "e1", 0, big, int64(len(big))); err != nil {
				t.Fatal(err)
			}
		}
		chunks, err := s.ReadWorkflowLogs(ctx, id, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, ch := range chunks {
			if len(ch.Data) > wfengine.MaxLogChunk {
				t.Fatalf("chunk of %d bytes", len(ch.Data))
			}
			total += len(ch.Data)
		}
		if last := string(chunks[len(chunks)-1].Data); total != wfengine.MaxJobLog+len(logTruncated) || last != logTruncated {
			t.Fatalf("stored %d bytes, last chunk of %d bytes is not the truncation note", total, len(last))
		}
		run, err := s.GetWorkflowRun(ctx, c[0].Run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := run.Jobs[0].Steps[0].LogBytes; got != int64(len(big))*int64(wfengine.MaxJobLog/len(big)+2) {
			t.Fatalf("step offset %d", got)
		}
	})
}

// TestWorkflowJoinRace: two job runs a join needs, finished at the same moment by two
// engines, queue the join once both have ended, whichever commits last.
func TestWorkflowJoinRace(t *testing.T) {
	const join = `name: join
on:
  push:
    repositories: [team/app]
jobs:
  a:
    image: alpine
    steps:
      - run: "true"
  b:
    image: alpine
    steps:
      - run: "true"
  c:
    needs: [a, b]
    image: alpine
    steps:
      - run: "true"
`
	eachBackend(t, func(t *testing.T, b backend) {
		s, _ := openFresh(t, b)
		ctx := t.Context()
		w, err := s.ApplyWorkflow(ctx, "team", "join", []byte(join), 7, "alice")
		if err != nil {
			t.Fatal(err)
		}
		for i := range 30 {
			pushEvent(t, s, "team/app", fmt.Sprintf("v%d", i))
		}
		if _, err := s.DispatchWorkflows(ctx, 0, plan(t)); err != nil {
			t.Fatal(err)
		}
		claims, err := s.ClaimWorkflowJobs(ctx, "e1", 100, 30*time.Second)
		if err != nil || len(claims) != 60 {
			t.Fatalf("claimed %d, %v", len(claims), err)
		}
		var wg sync.WaitGroup
		for _, c := range claims {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.FinishWorkflowJob(ctx, c.Job.ID, "e1", wfengine.Finish{State: wfengine.StateSucceeded}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		runs, err := s.ListWorkflowRuns(ctx, w.ID, 0)
		if err != nil || len(runs) != 30 {
			t.Fatalf("runs %d, %v", len(runs), err)
		}
		for _, r := range runs {
			r, err := s.GetWorkflowRun(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if c := r.Jobs[2]; c.Job != "c" || c.State != wfengine.StateQueued {
				t.Fatalf("run %d: join %s is %s", r.Number, c.Job, c.State)
			}
		}
	})
}
