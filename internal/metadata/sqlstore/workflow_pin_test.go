package sqlstore

import (
	"testing"
	"time"

	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

// TestWorkflowPinnedReclaim: a job run claimed through a Docker executor records the
// engine's identity; once its lease runs out, a replica driving another Docker
// engine (or another executor, or none) never claims it, and a replica driving the
// same engine re-claims it to re-attach. Queued job runs go to any replica.
func TestWorkflowPinnedReclaim(t *testing.T) {
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
		engineA := wfengine.Pin{Executor: "docker", Ref: "AAAA:BBBB"}
		engineB := wfengine.Pin{Executor: "docker", Ref: "CCCC:DDDD"}
		c, err := s.ClaimWorkflowJobs(ctx, "r1", 1, time.Millisecond, engineA)
		if err != nil || len(c) != 1 || c[0].Reattach {
			t.Fatalf("first claim: %+v, %v", c, err)
		}
		id := c[0].Job.ID
		if err := s.StartWorkflowStep(ctx, id, "r1", 0); err == nil {
			// The 1 ms lease may still hold; either way the step's start is counted once.
			t.Log("step started within the lease")
		}
		var exec, ref string
		if err := s.read(ctx, func(q querier) error {
			return q.QueryRow(ctx, `SELECT executor, executor_ref FROM workflow_jobs WHERE id = $1`, id).Scan(&exec, &ref)
		}); err != nil {
			t.Fatal(err)
		}
		if exec != "docker" || ref != engineA.Ref {
			t.Fatalf("recorded executor %q ref %q", exec, ref)
		}
		time.Sleep(50 * time.Millisecond) // the lease has run out

		for _, other := range []struct {
			owner string
			pin   []wfengine.Pin
		}{
			{"r2", []wfengine.Pin{engineB}},
			{"r3", []wfengine.Pin{{Executor: "kube"}}},
			{"r4", []wfengine.Pin{{Executor: "docker"}}},
			{"r5", nil},
		} {
			got, err := s.ClaimWorkflowJobs(ctx, other.owner, 4, 30*time.Second, other.pin...)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range got {
				if g.Job.ID == id {
					t.Fatalf("%s with pin %+v claimed the job pinned to %+v", other.owner, other.pin, engineA)
				}
			}
		}
		got, err := s.ClaimWorkflowJobs(ctx, "r6", 4, 30*time.Second, engineA)
		if err != nil || len(got) != 1 || got[0].Job.ID != id || !got[0].Reattach {
			t.Fatalf("same engine's re-claim: %+v, %v", got, err)
		}
		run, err := s.GetWorkflowRun(ctx, got[0].Run.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range run.Jobs {
			if j.ID == id && (j.Owner != "r6" || j.Steps[0].Starts > 1) {
				t.Fatalf("re-claimed job %+v", j)
			}
		}
		if _, err := s.ClaimWorkflowJobs(ctx, "r7", 1, time.Second, engineA, engineB); err == nil {
			t.Fatal("two pins accepted")
		}
	})
}

// TestWorkflowReclaimOwn: an engine restarted under its owner name takes back, at
// once, the job runs still leased to that name with its pin (Reattach), while their
// leases still hold; another owner cannot take them before the lease runs out, and a
// job run of that name pinned to another engine stays where it is.
func TestWorkflowReclaimOwn(t *testing.T) {
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
		pin := wfengine.Pin{Executor: "docker", Ref: "AAAA:BBBB"}
		c, err := s.ClaimWorkflowJobs(ctx, "hub-1", 1, time.Hour, pin)
		if err != nil || len(c) != 1 {
			t.Fatalf("claim: %+v, %v", c, err)
		}
		id := c[0].Job.ID
		if err := s.StartWorkflowStep(ctx, id, "hub-1", 0); err != nil {
			t.Fatal(err)
		}
		var leaseBefore int64
		if err := s.read(ctx, func(q querier) error {
			return q.QueryRow(ctx, `SELECT lease_until FROM workflow_jobs WHERE id = $1`, id).Scan(&leaseBefore)
		}); err != nil {
			t.Fatal(err)
		}
		// Nobody else, nor hub-1 through another engine, gets it while the lease holds.
		for _, other := range []struct {
			owner string
			pin   wfengine.Pin
		}{{"hub-2", pin}, {"hub-1", wfengine.Pin{Executor: "docker", Ref: "CCCC:DDDD"}}} {
			got, err := s.ReclaimWorkflowJobs(ctx, other.owner, 4, time.Minute, other.pin)
			if err != nil || len(got) != 0 {
				t.Fatalf("%s %+v re-claimed %+v, %v", other.owner, other.pin, got, err)
			}
			if got, err := s.ClaimWorkflowJobs(ctx, other.owner, 4, time.Minute, other.pin); err != nil {
				t.Fatal(err)
			} else {
				for _, g := range got {
					if g.Job.ID == id {
						t.Fatalf("%s took the leased job", other.owner)
					}
				}
			}
		}
		got, err := s.ReclaimWorkflowJobs(ctx, "hub-1", 4, time.Minute, pin)
		if err != nil || len(got) != 1 || got[0].Job.ID != id || !got[0].Reattach {
			t.Fatalf("re-claim of its own: %+v, %v", got, err)
		}
		var owner string
		var lease int64
		var starts int
		if err := s.read(ctx, func(q querier) error {
			return q.QueryRow(ctx, `SELECT j.owner, j.lease_until, s.starts FROM workflow_jobs j JOIN workflow_steps s ON s.job_id = j.id
				WHERE j.id = $1 AND s.idx = 0`, id).Scan(&owner, &lease, &starts)
		}); err != nil {
			t.Fatal(err)
		}
		// The new lease (a minute) ends before the old one (an hour): taken back while
		// the old lease held, and the started step not started again.
		if owner != "hub-1" || lease >= leaseBefore || starts != 1 {
			t.Fatalf("after the re-claim: owner %q lease %d (before %d) starts %d", owner, lease, leaseBefore, starts)
		}
	})
}
