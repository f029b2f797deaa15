package engine_test

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/workflow/engine"
	"github.com/hubctl/hubctl/internal/workflow/executor/local"
)

const cronWorkflow = `name: cron
on:
  schedule:
    - cron: "*/5 * * * *"
  manual:
    inputs:
      channel:
        type: choice
        options: [stable, edge]
jobs:
  tick:
    image: alpine
    steps:
      - run: echo tick
`

// clockEngine is an engine on s whose clock is clk (unix nanoseconds), ticked by hand.
func clockEngine(t *testing.T, s *sqlstore.Store, id string, clk *atomic.Int64) *engine.Engine {
	t.Helper()
	x, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(engine.Options{Store: s, Executor: x, MayPull: mayPull, ID: id, Lease: 3 * time.Second,
		Renew: 200 * time.Millisecond, StopGrace: time.Second, Now: func() time.Time { return time.Unix(0, clk.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Wait)
	return e
}

// scheduledRuns returns the event ids of w's runs, oldest first, and fails on one
// that is not a schedule's.
func scheduledRuns(t *testing.T, s *sqlstore.Store, w engine.Workflow) []string {
	t.Helper()
	runs, err := s.ListWorkflowRuns(t.Context(), w.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range runs {
		if r.Trigger != "schedule" || r.Event["cron"] != "*/5 * * * *" || r.Inputs["channel"] != "stable" {
			t.Errorf("run %d: trigger %q event %v inputs %v", r.ID, r.Trigger, r.Event, r.Inputs)
		}
		ids = append(ids, r.EventID)
	}
	sort.Strings(ids)
	return ids
}

// TestWorkflowSchedule: a */5 cron entry driven by the engine's clock starts exactly
// one run per tick, none before its tick, none twice for one tick, and one (not
// twelve) after an hour without a dispatcher; re-applying recomputes the next tick and
// deleting the workflow drops its rows.
func TestWorkflowSchedule(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *sqlstore.Store) {
		s := open()
		w, err := s.ApplyWorkflow(t.Context(), "team", "cron", []byte(cronWorkflow), 1, "admin")
		if err != nil {
			t.Fatal(err)
		}
		rows, err := s.ListWorkflowSchedules(t.Context(), w.ID)
		if err != nil || len(rows) != 1 {
			t.Fatalf("schedule rows %+v, %v", rows, err)
		}
		first := rows[0].Next
		if first.Minute()%5 != 0 || first.Second() != 0 || !first.After(time.Now().Add(-time.Second)) {
			t.Fatalf("first tick %v is not the next five-minute mark", first)
		}
		var clk atomic.Int64
		clk.Store(first.Add(-time.Second).UnixNano())
		e := clockEngine(t, s, "e1", &clk)
		tick := func(want int) {
			t.Helper()
			if err := e.Tick(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := scheduledRuns(t, s, w); len(got) != want {
				t.Fatalf("at %v: %d runs %v, want %d", time.Unix(0, clk.Load()).UTC(), len(got), got, want)
			}
		}
		tick(0) // a second before the tick
		clk.Store(first.UnixNano())
		tick(1)
		tick(1) // the same tick again
		clk.Add(int64(4 * time.Minute))
		tick(1)
		clk.Store(first.Add(5 * time.Minute).UnixNano())
		tick(2)
		clk.Add(int64(time.Hour)) // twelve ticks missed
		tick(3)
		tick(3)
		want := []string{
			engine.ScheduleEventID(0, first),
			engine.ScheduleEventID(0, first.Add(5*time.Minute)),
			engine.ScheduleEventID(0, first.Add(10*time.Minute)), // the first missed tick, once
		}
		sort.Strings(want)
		if got := scheduledRuns(t, s, w); !equalStrings(got, want) {
			t.Fatalf("event ids %v, want %v", got, want)
		}
		rows, _ = s.ListWorkflowSchedules(t.Context(), w.ID)
		if len(rows) != 1 || !rows[0].Next.After(time.Unix(0, clk.Load())) {
			t.Fatalf("after the missed hour the row is due at %+v, want after the clock", rows)
		}
		// A run of a schedule runs like any other.
		e.Wait()
		runs, _ := s.ListWorkflowRuns(t.Context(), w.ID, 1)
		waitRun(t, s, w, "finished", func(r engine.Run) bool { return r.ID == runs[0].ID && finished(r) })

		// Apply again with another entry: the rows follow the file.
		if _, err := s.ApplyWorkflow(t.Context(), "team", "cron", []byte(cronWorkflow+"\n"), 1, "admin"); err != nil {
			t.Fatal(err)
		}
		if rows, _ = s.ListWorkflowSchedules(t.Context(), w.ID); len(rows) != 1 || rows[0].Next.Before(time.Now()) {
			t.Fatalf("rows after apply %+v", rows)
		}
		if err := s.DeleteWorkflow(t.Context(), "team", "cron", "admin"); err != nil {
			t.Fatal(err)
		}
		if rows, _ = s.ListWorkflowSchedules(t.Context(), w.ID); len(rows) != 0 {
			t.Fatalf("rows after delete %+v", rows)
		}
	})
}

// TestWorkflowScheduleTwoEngines: two engines on one PostgreSQL ticking at once, with
// the same clock, start each tick once.
func TestWorkflowScheduleTwoEngines(t *testing.T) {
	s1, s2, w, rows := twoStoresWithCron(t)
	var clk atomic.Int64
	e1, e2 := clockEngine(t, s1, "e1", &clk), clockEngine(t, s2, "e2", &clk)
	var want []string
	for i := range 8 {
		due := rows[0].Next.Add(time.Duration(i) * 5 * time.Minute)
		want = append(want, engine.ScheduleEventID(0, due))
		clk.Store(due.UnixNano())
		var wg sync.WaitGroup
		for _, e := range []*engine.Engine{e1, e2, e1, e2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := e.Tick(context.Background()); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	sort.Strings(want)
	if got := scheduledRuns(t, s1, w); !equalStrings(got, want) {
		t.Fatalf("event ids %v, want %v", got, want)
	}
}

// twoStoresWithCron opens two stores on one PostgreSQL, as two replicas have, and
// applies cronWorkflow through the first: its one schedule row is rows[0].
func twoStoresWithCron(t *testing.T) (s1, s2 *sqlstore.Store, w engine.Workflow, rows []sqlstore.WorkflowSchedule) {
	t.Helper()
	open := backends[1].open(t)
	s1, s2 = open(), open()
	w, err := s1.ApplyWorkflow(t.Context(), "team", "cron", []byte(cronWorkflow), 1, "admin")
	if err != nil {
		t.Fatal(err)
	}
	rows, err = s1.ListWorkflowSchedules(t.Context(), w.ID)
	if err != nil || len(rows) != 1 {
		t.Fatalf("schedule rows %+v, %v", rows, err)
	}
	return s1, s2, w, rows
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestWorkflowScheduleTwoHubs: two engines running their own dispatch loops, as two
// `hubctl serve` replicas do, each on its own connection pool to one PostgreSQL and
// both on one clock the test moves, start each due tick exactly once: the tick's run
// appears, and several dispatch rounds of both later there is still one per tick.
func TestWorkflowScheduleTwoHubs(t *testing.T) {
	s1, s2, w, rows := twoStoresWithCron(t)
	var clk atomic.Int64
	clk.Store(rows[0].Next.Add(-time.Minute).UnixNano())
	for i, s := range []*sqlstore.Store{s1, s2} {
		x, err := local.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		e, err := engine.New(engine.Options{Store: s, Executor: x, MayPull: mayPull, ID: []string{"hub1", "hub2"}[i],
			Interval: 20 * time.Millisecond, Lease: 3 * time.Second, Renew: 200 * time.Millisecond, StopGrace: time.Second,
			Now: func() time.Time { return time.Unix(0, clk.Load()) }})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = e.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	// Before the first tick: nothing, however many rounds pass.
	time.Sleep(200 * time.Millisecond)
	if got := scheduledRuns(t, s1, w); len(got) != 0 {
		t.Fatalf("runs before the first tick: %v", got)
	}
	var want []string
	for i := range 4 {
		due := rows[0].Next.Add(time.Duration(i) * 5 * time.Minute)
		want = append(want, engine.ScheduleEventID(0, due))
		clk.Store(due.Add(time.Second).UnixNano())
		for deadline := time.Now().Add(20 * time.Second); len(scheduledRuns(t, s2, w)) < len(want); {
			if time.Now().After(deadline) {
				t.Fatalf("tick %d never started a run", i)
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond) // 15 rounds of each engine
	}
	sort.Strings(want)
	if got := scheduledRuns(t, s1, w); !equalStrings(got, want) {
		t.Fatalf("event ids %v, want %v (one run per tick over both hubs)", got, want)
	}
}
