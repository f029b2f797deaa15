package docker

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/workflow/engine"
	"github.com/hubctl/hubctl/internal/workflow/executor"
)

// manualRun is one manual run of a workflow in a fresh SQLite store, run by engines on
// x that a test starts and stops: the setup the engine-level tests of this executor
// share (reattach, vanished containers).
type manualRun struct {
	t      *testing.T
	ctx    context.Context
	x      *Executor
	store  *sqlstore.Store
	runID  int64
	prefix string // the engines' JobIDPrefix, unique per test
}

// newManualRun applies src as team/name and creates its manual run.
func newManualRun(t *testing.T, x *Executor, name, src string) *manualRun {
	t.Helper()
	ctx := ctxT(t)
	store, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	w, err := store.ApplyWorkflow(ctx, "team", name, []byte(src), 1, "admin")
	if err != nil {
		t.Fatal(err)
	}
	pr, err := engine.PlanManual(w, "m1", map[string]any{}, "admin")
	if err != nil {
		t.Fatal(err)
	}
	runID, err := store.CreateWorkflowRun(ctx, w.ID, pr)
	if err != nil {
		t.Fatal(err)
	}
	return &manualRun{t: t, ctx: ctx, x: x, store: store, runID: runID, prefix: randomID(t) + "-"}
}

// start runs an engine of id with job lease lease until the returned stop.
func (m *manualRun) start(id string, lease time.Duration) (stop func()) {
	m.t.Helper()
	e, err := engine.New(engine.Options{Store: m.store, Executor: m.x, ID: id, JobIDPrefix: m.prefix,
		MayPull:  func(context.Context, int64, string) (bool, error) { return true, nil },
		Interval: 100 * time.Millisecond, Lease: lease, Renew: 200 * time.Millisecond, StopGrace: time.Second})
	if err != nil {
		m.t.Fatal(err)
	}
	ectx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.Run(ectx)
	}()
	return func() { cancel(); <-done }
}

// wait polls the run until cond holds, failing the test after limit.
func (m *manualRun) wait(what string, limit time.Duration, cond func(engine.Run) bool) engine.Run {
	m.t.Helper()
	for deadline := time.Now().Add(limit); ; {
		r, err := m.store.GetWorkflowRun(m.ctx, m.runID)
		if err != nil {
			m.t.Fatal(err)
		}
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("never %s: %+v", what, r)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// log is the stored log of job jobID.
func (m *manualRun) log(jobID int64) string {
	m.t.Helper()
	chunks, err := m.store.ReadWorkflowLogs(m.ctx, jobID, 0, 0)
	if err != nil {
		m.t.Fatal(err)
	}
	var b strings.Builder
	for _, c := range chunks {
		b.Write(c.Data)
	}
	return b.String()
}

// jobSpec is the executor's view of job jobID of the run, whose objects are removed
// when the test ends should it fail before the engine removes them.
func (m *manualRun) jobSpec(img string, jobID int64) *executor.JobSpec {
	spec := newJob(m.t, m.x, img)
	spec.JobID = fmt.Sprint(m.prefix, jobID)
	return spec
}
