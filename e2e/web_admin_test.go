package e2e

// A workflow run's log appears live in a real browser (issue 21): the test opens the
// hub's database as a second replica would, plays the workflow engine there (claims
// the job, writes log chunks), and Chromium's run page shows each chunk as it is
// written, without a reload.

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

const liveWorkflow = `name: build
on:
  manual: {}
jobs:
  build:
    image: alpine
    steps:
      - run: echo building
`

// TestWebRunLogLive: the run page of a running job follows its log over server-sent
// events: chunks written to the store after the page loaded appear in the page, as
// text (markup in a log stays text), and the page says when the job has ended.
func TestWebRunLogLive(t *testing.T) {
	chromium := chromiumPath(t)
	dir := t.TempDir()
	s := startServerEnv(t, dir, []string{"HUBCTL_WORKFLOWS_EXECUTOR=none"})
	createUser(t, s, "alice", "alice-password")
	runID := startManualRun(t, s, "alice", "alice-password")

	ctx := context.Background()
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(dir, "hubctl.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var job wfengine.Job
	for deadline := time.Now().Add(10 * time.Second); job.ID == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		cs, err := st.ClaimWorkflowJobs(ctx, "e2e-engine", 1, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) == 1 {
			job = cs[0].Job
		}
	}
	if job.ID == 0 {
		t.Fatal("the run's job never became runnable")
	}
	write := func(s string) {
		t.Helper()
		if err := st.AppendWorkflowLog(ctx, job.ID, "e2e-engine", 0, []byte(s), int64(len(s))); err != nil {
			t.Fatal(err)
		}
	}
	write("step one: fetching\n")

	bctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	allocCtx, cancelAlloc := chromiumAllocator(bctx, t, chromium)
	defer cancelAlloc()
	alice, cancelAlice := chromedp.NewContext(allocCtx)
	defer cancelAlice()
	base := s.URL("")
	signIn(t, alice, base, "alice", "alice-password")
	if err := chromedp.Do(alice, chromedp.Navigate(base+"/settings/admin/runs/"+strconv.FormatInt(runID, 10)),
		chromedp.WaitVisible(chromedp.ID("log"))); err != nil {
		t.Fatalf("run page: %v", err)
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(alice, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	waitText := func(sel, want string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			got := text(sel)
			if strings.Contains(got, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never showed %q; it shows %q", sel, want, got)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitText("#log", "step one: fetching")
	waitText("#log-state", "live")
	start := time.Now()
	write("step two: <b>compiling</b>\n")
	waitText("#log", "step two: <b>compiling</b>")
	t.Logf("a chunk written to the store showed in the page after %v", time.Since(start).Round(time.Millisecond))
	n, err := chromedp.Run(alice, chromedp.Evaluate[int]("document.querySelectorAll('#log *').length"))
	if err != nil || n != 0 {
		t.Errorf("the log holds %d elements (%v): markup in a log must stay text", n, err)
	}
	write("done\n")
	if err := st.FinishWorkflowJob(ctx, job.ID, "e2e-engine", wfengine.Finish{State: wfengine.StateSucceeded}); err != nil {
		t.Fatal(err)
	}
	waitText("#log", "done")
	waitText("#log-state", "ended (succeeded)")

}

// startManualRun applies liveWorkflow as NS/build (NS is user's namespace) and starts
// a run of it by hand, as user; it returns the run's id.
func startManualRun(t *testing.T, s *server, user, pass string) int64 {
	t.Helper()
	resp, body := do(t, http.MethodPut, s.URL("/api/v1/workflows/"+user+"/build"), strings.NewReader(liveWorkflow),
		map[string]string{"Authorization": basic(user, pass)})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("apply workflow: %s %s", resp.Status, truncate(body, 300))
	}
	resp, body = apiCall(t, s, http.MethodPost, "/api/v1/workflows/"+user+"/build/runs", user, pass, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("start run: %s %s", resp.Status, truncate(body, 300))
	}
	var run struct{ ID int64 }
	if err := json.Unmarshal(body, &run); err != nil {
		t.Fatal(err)
	}
	return run.ID
}
