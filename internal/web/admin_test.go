package web_test

// The admin pages (slice 6) against a real hub whose store the test also opens, as a
// second replica would: it plays the workflow engine (claims jobs, writes their log
// chunks) so that the pages and the live log are read from the store alone.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/server/servertest"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

// adminHub is a running hub without a workflow executor, and its store opened a
// second time.
type adminHub struct {
	*hub
	store *sqlstore.Store
}

func startAdminHub(t *testing.T) *adminHub {
	t.Helper()
	addr, cfg := servertest.StartFlags(t, map[string]string{"auth.mode": "token", "workflows.executor": "none", "webhooks.interval": "100ms"}, adminPassword)
	st, err := sqlstore.OpenSQLite(context.Background(), cfg.DB.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &adminHub{hub: &hub{t: t, addr: addr}, store: st}
}

// raw calls the hub API with a body sent as it is.
func (h *hub) raw(method, path, user, pass, body string, status int) []byte {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.url(path), strings.NewReader(body))
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		h.t.Fatalf("%s %s: %s %s, want %d", method, path, resp.Status, out, status)
	}
	return out
}

const gateWorkflow = `name: gate
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
`

const buildWorkflow = `name: build
on:
  manual: {}
jobs:
  build:
    image: alpine
    steps:
      - run: echo building
`

// acme sets up organisation acme: alice its admin (she made it), bob a writer, carol
// a reader, dave an outsider; it returns their browsers signed in, and an anonymous
// one.
func (h *adminHub) acme() map[string]*browser {
	h.t.Helper()
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		h.user(u)
	}
	h.api("POST", "/api/v1/orgs", "alice", "alice-password", map[string]string{"name": "acme"}, http.StatusCreated)
	for team, role := range map[string]string{"devs": "write", "readers": "read"} {
		h.api("POST", "/api/v1/orgs/acme/teams", "alice", "alice-password", map[string]string{"name": team}, http.StatusCreated)
		h.api("PUT", "/api/v1/orgs/acme/teams/"+team+"/grants", "alice", "alice-password", map[string]string{"repository": "", "role": role}, http.StatusOK)
	}
	h.api("PUT", "/api/v1/orgs/acme/teams/devs/members/bob", "alice", "alice-password", nil, http.StatusNoContent)
	h.api("PUT", "/api/v1/orgs/acme/teams/readers/members/carol", "alice", "alice-password", nil, http.StatusNoContent)
	bs := map[string]*browser{"anonymous": h.browser()}
	for _, u := range []string{"admin", "alice", "bob", "carol", "dave"} {
		b := h.browser()
		if u == "admin" {
			if p := b.loginAs("admin", adminPassword); p.Status != http.StatusSeeOther {
				h.t.Fatalf("admin sign-in: %d", p.Status)
			}
		} else {
			b.login(u)
		}
		bs[u] = b
	}
	return bs
}

// startRun starts a run of workflow acme/name as user and returns its id.
func (h *adminHub) startRun(name, source, user string) int64 {
	h.t.Helper()
	h.raw("PUT", "/api/v1/workflows/acme/"+name, "alice", "alice-password", source, http.StatusOK)
	var run struct{ ID int64 }
	if err := json.Unmarshal(h.api("POST", "/api/v1/workflows/acme/"+name+"/runs", user, user+"-password", nil, http.StatusCreated), &run); err != nil {
		h.t.Fatal(err)
	}
	return run.ID
}

// claim takes the next runnable job run as the engine owner "test-engine".
func (h *adminHub) claim(runID int64) wfengine.Job {
	h.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		cs, err := h.store.ClaimWorkflowJobs(context.Background(), "test-engine", 1, time.Minute)
		if err != nil {
			h.t.Fatal(err)
		}
		if len(cs) == 1 {
			if cs[0].Run.ID != runID {
				h.t.Fatalf("claimed a job of run %d, want run %d", cs[0].Run.ID, runID)
			}
			return cs[0].Job
		}
	}
	h.t.Fatalf("no job of run %d became runnable", runID)
	return wfengine.Job{}
}

// matrix checks each browser's status on path.
func matrix(t *testing.T, bs map[string]*browser, path string, want map[string]int) {
	t.Helper()
	for who, status := range want {
		p := bs[who].get(path)
		if p.Status != status {
			t.Errorf("%s GET %s: %d, want %d\n%.400s", who, path, p.Status, status, p.Body)
		}
		if p.Status == http.StatusSeeOther && !strings.HasPrefix(p.Header.Get("Location"), "/login?next=") {
			t.Errorf("%s GET %s: redirected to %q, want the sign-in page", who, path, p.Header.Get("Location"))
		}
		if csp := p.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("%s GET %s: CSP %q", who, path, csp)
		}
	}
}

const (
	toLogin = http.StatusSeeOther
	ok      = http.StatusOK
	hidden  = http.StatusNotFound
	refused = http.StatusForbidden
)

// TestAdminPermissionMatrix: every admin page answers each kind of viewer as the hub
// API would: site-admin pages refuse everyone else, an organisation's page is its
// admins', runs and deploys are for the namespace's readers, and a hook is for whoever
// manages it; an outsider cannot tell a hidden thing from a missing one.
func TestAdminPermissionMatrix(t *testing.T) {
	h := startAdminHub(t)
	bs := h.acme()
	runID := h.startRun("build", buildWorkflow, "bob")
	hook := h.createHook("http://hooks.invalid/ok")

	siteOnly := map[string]int{"anonymous": toLogin, "dave": refused, "carol": refused, "bob": refused, "alice": refused, "admin": ok}
	for _, path := range []string{"/settings/admin/users", "/settings/admin/orgs", "/settings/admin/audit", "/settings/admin/users/dave/delete"} {
		matrix(t, bs, path, siteOnly)
	}
	matrix(t, bs, "/settings/admin/users/nosuch/delete", map[string]int{"admin": hidden})
	// The confirmation pages of deletes are for those who may delete.
	orgAdmins := map[string]int{"anonymous": toLogin, "dave": hidden, "carol": hidden, "bob": hidden, "alice": ok, "admin": ok}
	for _, path := range []string{"/settings/admin/orgs/acme/delete", "/settings/admin/orgs/acme/teams/devs/delete"} {
		matrix(t, bs, path, orgAdmins)
	}
	matrix(t, bs, "/settings/admin/orgs/acme/teams/nosuch/delete", map[string]int{"alice": hidden})
	matrix(t, bs, "/settings/admin/orgs/dave/delete", map[string]int{"dave": hidden, "admin": hidden})
	matrix(t, bs, "/settings/admin", map[string]int{"anonymous": toLogin, "dave": ok, "admin": ok})
	matrix(t, bs, "/settings/admin/orgs/acme", map[string]int{"anonymous": toLogin, "dave": hidden, "carol": hidden, "bob": hidden, "alice": ok, "admin": ok})
	matrix(t, bs, "/settings/admin/orgs/nosuch", map[string]int{"dave": hidden, "alice": hidden})
	readers := map[string]int{"anonymous": toLogin, "dave": hidden, "carol": ok, "bob": ok, "alice": ok, "admin": ok}
	for _, path := range []string{"/settings/admin/runs?namespace=acme", "/settings/admin/runs/" + strconv.FormatInt(runID, 10),
		"/settings/admin/deploys?namespace=acme&service=web", "/settings/admin/deploys?namespace=acme"} {
		matrix(t, bs, path, readers)
	}
	matrix(t, bs, "/settings/admin/runs/99999", map[string]int{"dave": hidden, "admin": hidden})
	// A hidden run and a missing one are the same page.
	if a, b := bs["dave"].get("/settings/admin/runs/"+strconv.FormatInt(runID, 10)), bs["dave"].get("/settings/admin/runs/99999"); a.Body != b.Body {
		t.Error("a hidden run and a missing one differ")
	}
	managers := map[string]int{"anonymous": toLogin, "dave": hidden, "carol": hidden, "bob": hidden, "alice": ok, "admin": ok}
	matrix(t, bs, "/settings/admin/webhooks/"+hook, managers)
	matrix(t, bs, "/settings/admin/webhooks/"+hook+"/delete", managers)
	matrix(t, bs, "/settings/admin/webhooks/nosuch", map[string]int{"alice": hidden, "admin": hidden})
	if a, b := bs["bob"].get("/settings/admin/webhooks/"+hook), bs["bob"].get("/settings/admin/webhooks/nosuch"); a.Body != b.Body {
		t.Error("a hook one does not manage and a missing one differ")
	}
	for who, see := range map[string]bool{"dave": false, "carol": false, "bob": false, "alice": true, "admin": true} {
		if got := strings.Contains(bs[who].get("/settings/admin/webhooks?namespace=acme").Body, hook); got != see {
			t.Errorf("%s sees hook %s in the list: %v, want %v", who, hook, got, see)
		}
	}
	// Policies: those of what the viewer may pull.
	h.raw("PUT", "/api/v1/policies/acme", "alice", "alice-password", `{"immutable_tags":["v*"],"retention":{"rules":[{"tags":"dev-*","keep_newest":3}]}}`, http.StatusOK)
	matrix(t, bs, "/settings/admin/policies", map[string]int{"anonymous": toLogin, "dave": ok, "carol": ok, "admin": ok})
	for who, see := range map[string]bool{"dave": false, "carol": true, "bob": true, "alice": true, "admin": true} {
		p := bs[who].get("/settings/admin/policies")
		if got := strings.Contains(p.Body, "<code>dev-*</code>: keep newest 3"); got != see {
			t.Errorf("%s sees acme's policy: %v, want %v\n%s", who, got, see, p.Body)
		}
	}
	// The organisation page shows its teams and grants.
	if p := bs["alice"].get("/settings/admin/orgs/acme"); !strings.Contains(p.Body, "readers") || !strings.Contains(p.Body, "carol") {
		t.Errorf("organisation page lacks its teams:\n%s", p.Body)
	}
}

// createHook makes a namespace webhook on acme as alice and returns its id.
func (h *adminHub) createHook(u string) string {
	h.t.Helper()
	var made struct{ ID string }
	b := h.api("POST", "/api/v1/webhooks", "alice", "alice-password", map[string]any{"scope": "namespace", "target": "acme", "url": u}, http.StatusCreated)
	if err := json.Unmarshal(b, &made); err != nil || made.ID == "" {
		h.t.Fatalf("webhook: %s %v", b, err)
	}
	return made.ID
}

// TestAdminQuotaAndAudit: a site administrator sets a quota with the form (audited
// as quota.change, as the API does), a form without the CSRF token or from another
// site changes nothing, and the audit log filters by actor, action and time.
func TestAdminQuotaAndAudit(t *testing.T) {
	h := startAdminHub(t)
	bs := h.acme()
	admin := bs["admin"]
	tok := admin.get("/settings/admin/orgs").csrf(t)
	if p := admin.post("/settings/admin/namespaces/acme/quota", url.Values{"mib": {"5"}}); p.Status != refused {
		t.Errorf("quota without a CSRF token: %d", p.Status)
	}
	if p := admin.postWith("/settings/admin/namespaces/acme/quota", url.Values{"csrf": {tok}, "mib": {"5"}},
		map[string]string{"Origin": "http://evil.example"}); p.Status != refused {
		t.Errorf("quota from another origin: %d", p.Status)
	}
	if p := bs["alice"].post("/settings/admin/namespaces/acme/quota", url.Values{"csrf": {bs["alice"].get("/settings/admin").csrf(t)}, "mib": {"5"}}); p.Status != refused {
		t.Errorf("quota by an organisation admin: %d", p.Status)
	}
	if _, quota, _ := h.store.Usage(context.Background(), "acme"); quota != 0 {
		t.Fatalf("a refused form set the quota to %d", quota)
	}
	if p := admin.post("/settings/admin/namespaces/acme/quota", url.Values{"csrf": {tok}, "mib": {"5"}}); p.Status != http.StatusSeeOther {
		t.Fatalf("set quota: %d\n%s", p.Status, p.Body)
	}
	if _, quota, _ := h.store.Usage(context.Background(), "acme"); quota != 5<<20 {
		t.Errorf("quota %d, want 5 MiB", quota)
	}
	p := admin.get("/settings/admin/audit?action=quota.change")
	if !strings.Contains(p.Body, "<td>quota.change</td>") || !strings.Contains(p.Body, "<td>admin</td>") || strings.Contains(p.Body, "<td>login</td>") {
		t.Errorf("audit filtered by action:\n%s", p.Body)
	}
	if p := admin.get("/settings/admin/audit?actor=carol&action=login"); !strings.Contains(p.Body, "<td>carol</td>") || strings.Contains(p.Body, "<td>bob</td>") {
		t.Errorf("audit filtered by actor:\n%s", p.Body)
	}
	future := time.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04")
	if p := admin.get("/settings/admin/audit?since=" + future); strings.Contains(p.Body, "<td>login</td>") || !strings.Contains(p.Body, "No entries match") {
		t.Errorf("audit since an hour ahead shows entries:\n%s", p.Body)
	}
	past := time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04")
	if p := admin.get("/settings/admin/audit?until=" + past); strings.Contains(p.Body, "<td>login</td>") {
		t.Errorf("audit until an hour ago shows entries:\n%s", p.Body)
	}
	if p := admin.get("/settings/admin/audit?since=yesterday"); p.Status != http.StatusBadRequest {
		t.Errorf("bad since: %d", p.Status)
	}

	// A time range with entries on both sides of each bound (and the hub's own, newer
	// ones) pages through the range: 100 on the first page, the rest on the next.
	t0 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 300 {
		if err := h.store.Audit(context.Background(), accounts.AuditEntry{Time: t0.Add(time.Duration(i) * time.Minute), Actor: "robot",
			Action: "range.test", Detail: "n" + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	rows := regexp.MustCompile(`<td>range\.test</td>`)
	next := regexp.MustCompile(`<a href="([^"]+)">Older entries</a>`)
	path := "/settings/admin/audit?since=2020-01-01T00:10&until=2020-01-01T02:30"
	var got []int
	for range 5 {
		p := admin.get(path)
		got = append(got, len(rows.FindAllString(p.Body, -1)))
		m := next.FindStringSubmatch(p.Body)
		if m == nil {
			break
		}
		path = html.UnescapeString(m[1])
	}
	// 00:10 to 02:30 inclusive is 141 entries; a page whose 100 are all in the range
	// may offer a next page that is empty.
	if len(got) < 2 || got[0] != 100 || got[1] != 41 || (len(got) == 3 && got[2] != 0) || len(got) > 3 {
		t.Errorf("entries per page of a time range: %v, want [100 41]", got)
	}
	if p := admin.get("/settings/admin/audit?since=2020-01-01T00:10&until=2020-01-01T02:30"); !strings.Contains(p.Body, "<td>n150</td>") ||
		strings.Contains(p.Body, "<td>n151</td>") || strings.Contains(p.Body, "<td>login</td>") {
		t.Errorf("first page of the range does not start at its upper bound")
	}
}

// sseEvent is one server-sent event.
type sseEvent struct{ ID, Event, Data string }

func readSSE(body io.Reader) <-chan sseEvent {
	ch := make(chan sseEvent, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(body)
		var e sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if e.Event != "" || e.Data != "" {
					ch <- e
				}
				e = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				e.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				e.Event = line[7:]
			case strings.HasPrefix(line, "data: "):
				e.Data = line[6:]
			}
		}
	}()
	return ch
}

func next(t *testing.T, ch <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("the event stream ended early")
		}
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
	}
	return sseEvent{}
}

var streamRe = regexp.MustCompile(`data-stream="([^"]+)"`)

// TestRunLogStreams: the run page shows the log so far (escaped), and its event
// stream sends each chunk written to the store after it, by whichever replica, then
// "end" when the job run ends; a reader may follow it, an outsider may not.
func TestRunLogStreams(t *testing.T) {
	h := startAdminHub(t)
	bs := h.acme()
	runID := h.startRun("build", buildWorkflow, "bob")
	job := h.claim(runID)
	ctx := context.Background()
	write := func(s string) {
		t.Helper()
		if err := h.store.AppendWorkflowLog(ctx, job.ID, "test-engine", 0, []byte(s), int64(len(s))); err != nil {
			t.Fatal(err)
		}
	}
	write("first line <b>so far</b>\n")
	carol := bs["carol"]
	runPath := "/settings/admin/runs/" + strconv.FormatInt(runID, 10)
	p := carol.get(runPath)
	if p.Status != ok || !strings.Contains(p.Body, "first line &lt;b&gt;so far&lt;/b&gt;") {
		t.Fatalf("run page lacks the log so far: %d\n%s", p.Status, p.Body)
	}
	m := streamRe.FindStringSubmatch(p.Body)
	if m == nil || !strings.Contains(p.Body, `src="/static/logs.js?v=`) {
		t.Fatalf("a running job's page has no live stream:\n%s", p.Body)
	}
	stream := strings.ReplaceAll(m[1], "&amp;", "&")
	if !strings.HasSuffix(stream, "&after=1") {
		t.Errorf("stream %q does not start after the chunk on the page", stream)
	}
	if got := bs["dave"].get(stream); got.Status != hidden {
		t.Errorf("an outsider's stream: %d", got.Status)
	}
	if got := bs["anonymous"].get(stream); got.Status != http.StatusUnauthorized {
		t.Errorf("an anonymous stream: %d", got.Status)
	}

	resp, err := carol.c.Get(h.url(stream))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != ok || !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("stream: %s %s", resp.Status, ct)
	}
	events := readSSE(resp.Body)
	// A session holds at most 8 streams; the next is refused until one closes.
	var extra []*http.Response
	for range 7 {
		r, err := carol.c.Get(h.url(stream))
		if err != nil || r.StatusCode != ok {
			t.Fatalf("stream within the bound: %v %v", r, err)
		}
		extra = append(extra, r)
	}
	if got := carol.get(stream); got.Status != http.StatusTooManyRequests || got.Header.Get("Retry-After") == "" {
		t.Errorf("a 9th stream: %d", got.Status)
	}
	if r, err := bs["bob"].c.Get(h.url(stream)); err != nil || r.StatusCode != ok {
		t.Errorf("another session's stream is refused: %v %v", r, err)
	} else {
		r.Body.Close()
	}
	for _, r := range extra {
		r.Body.Close()
	}
	// Closed streams give their places back.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r, err := carol.c.Get(h.url(stream))
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode == ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("closed streams still count: %d", r.StatusCode)
		}
	}
	for i, line := range []string{"second line\n", "<script>alert(1)</script>\n"} {
		write(line)
		e := next(t, events)
		var c struct {
			Seq  int64
			Data string
		}
		if err := json.Unmarshal([]byte(e.Data), &c); err != nil || e.Event != "chunk" || c.Data != line || c.Seq != int64(i+2) || e.ID != strconv.Itoa(i+2) {
			t.Fatalf("event %+v (%v), want chunk %d %q", e, err, i+2, line)
		}
		if strings.Contains(e.Data, "<") {
			t.Errorf("event data carries a raw '<': %s", e.Data)
		}
	}
	if err := h.store.FinishWorkflowJob(ctx, job.ID, "test-engine", wfengine.Finish{State: wfengine.StateSucceeded}); err != nil {
		t.Fatal(err)
	}
	if e := next(t, events); e.Event != "end" || !strings.Contains(e.Data, "succeeded") {
		t.Fatalf("after the job ended: %+v, want end", e)
	}
	// A reconnecting browser resumes after Last-Event-ID.
	req, _ := http.NewRequest("GET", h.url(stream), nil)
	req.Header.Set("Last-Event-ID", "2")
	resp2, err := carol.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	ev := readSSE(resp2.Body)
	if e := next(t, ev); e.ID != "3" {
		t.Errorf("resumed at %+v, want chunk 3", e)
	}
	// An ended job's page has the whole log and no stream.
	p = carol.get(runPath)
	if streamRe.MatchString(p.Body) || !strings.Contains(p.Body, "&lt;script&gt;alert(1)&lt;/script&gt;") || strings.Contains(p.Body, "<script>alert") {
		t.Errorf("ended job's page:\n%s", p.Body)
	}
}

// TestRunApproval: the approve and reject buttons show to those with write on the
// namespace, decide through the API's own rules (the one who started the run may not
// approve while another approver is named), are audited, and need the CSRF token.
func TestRunApproval(t *testing.T) {
	h := startAdminHub(t)
	bs := h.acme()
	runID := h.startRun("gate", gateWorkflow, "bob")
	job := h.claim(runID)
	ctx := context.Background()
	if waiting, err := h.store.AwaitWorkflowApproval(ctx, job.ID, "test-engine", 1, time.Now().Add(time.Hour)); err != nil || !waiting {
		t.Fatalf("await approval: %v %v", waiting, err)
	}
	runPath := "/settings/admin/runs/" + strconv.FormatInt(runID, 10)
	approve := fmt.Sprintf("%s/jobs/%d/approve", runPath, job.ID)
	if p := bs["carol"].get(runPath); strings.Contains(p.Body, approve) {
		t.Error("a reader sees the approve button")
	}
	alice := bs["alice"]
	p := alice.get(runPath)
	if !strings.Contains(p.Body, `action="`+approve+`"`) {
		t.Fatalf("the approver sees no approve button:\n%s", p.Body)
	}
	tok := p.csrf(t)
	// Refused: no token, another origin, a reader, the one who started the run.
	if got := alice.post(approve, url.Values{"comment": {"ok"}}); got.Status != refused {
		t.Errorf("approve without a CSRF token: %d", got.Status)
	}
	if got := alice.postWith(approve, url.Values{"csrf": {tok}}, map[string]string{"Origin": "http://evil.example"}); got.Status != refused {
		t.Errorf("approve from another origin: %d", got.Status)
	}
	if got := bs["carol"].post(approve, url.Values{"csrf": {bs["carol"].get(runPath).csrf(t)}}); got.Status != refused {
		t.Errorf("approve by a reader: %d", got.Status)
	}
	if got := bs["dave"].post(approve, url.Values{"csrf": {bs["dave"].get("/settings/admin").csrf(t)}}); got.Status != hidden {
		t.Errorf("approve by an outsider: %d", got.Status)
	}
	got := bs["bob"].post(approve, url.Values{"csrf": {bs["bob"].get(runPath).csrf(t)}})
	if got.Status != refused || !strings.Contains(got.Body, "role=\"alert\"") {
		t.Errorf("approve by the run's starter while alice is named: %d\n%s", got.Status, got.Body)
	}
	if st, _ := h.store.WorkflowApprovals(ctx, runID); st[job.ID] != nil && len(st[job.ID].Decisions) != 0 {
		t.Fatalf("a refused decision was recorded: %+v", st[job.ID].Decisions)
	}
	got = alice.post(approve, url.Values{"csrf": {tok}, "comment": {"<script>ship</script>"}})
	if got.Status != http.StatusSeeOther {
		t.Fatalf("alice approves: %d\n%s", got.Status, got.Body)
	}
	st, err := h.store.WorkflowApprovals(ctx, runID)
	if err != nil || st[job.ID] == nil || len(st[job.ID].Decisions) != 1 || st[job.ID].Decisions[0].Account != "alice" {
		t.Fatalf("approvals after alice approved: %+v %v", st[job.ID], err)
	}
	if again := alice.post(approve, url.Values{"csrf": {tok}}); again.Status != http.StatusConflict {
		t.Errorf("approving a job that no longer waits: %d, want 409", again.Status)
	}
	p = alice.get(got.Header.Get("Location"))
	if !strings.Contains(p.Body, "approval was recorded") || !strings.Contains(p.Body, "&lt;script&gt;ship&lt;/script&gt;") {
		t.Errorf("run page after approving:\n%s", p.Body)
	}
	a := bs["admin"].get("/settings/admin/audit?action=workflow.approve")
	if !strings.Contains(a.Body, "<td>alice</td>") || !strings.Contains(a.Body, "acme/gate") {
		t.Errorf("the approval is not in the audit log:\n%s", a.Body)
	}
}

var deliveryRe = regexp.MustCompile(`/deliveries/(\d+)/redeliver`)

// TestWebhookDeliveriesAndRedeliver: a hook's page lists its deliveries with its URL
// escaped; redeliver (with the CSRF token) queues the event again, and a forged post
// changes nothing.
func TestWebhookDeliveriesAndRedeliver(t *testing.T) {
	h := startAdminHub(t)
	bs := h.acme()
	hook := h.createHook(`http://hooks.invalid/x?q="><script>alert(1)</script>`)
	tok := h.registryToken("alice", "alice-password", "acme/app")
	h.pushImage(tok, "acme/app", "v1", "amd64", nil, 100)
	alice := bs["alice"]
	hookPath := "/settings/admin/webhooks/" + hook
	var p page
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if p = alice.get(hookPath); deliveryRe.MatchString(p.Body) {
			break
		}
	}
	ids := deliveryRe.FindAllStringSubmatch(p.Body, -1)
	if len(ids) == 0 {
		t.Fatalf("no delivery on the hook's page:\n%s", p.Body)
	}
	if strings.Contains(p.Body, "<script>alert(1)") || !strings.Contains(p.Body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the hook's URL is not escaped:\n%s", p.Body)
	}
	if l := alice.get("/settings/admin/webhooks?namespace=acme"); strings.Contains(l.Body, "<script>alert(1)") {
		t.Errorf("the hook list shows the URL raw:\n%s", l.Body)
	}
	count := func() int {
		ds, err := h.store.ListWebhookDeliveries(context.Background(), hook, 100)
		if err != nil {
			t.Fatal(err)
		}
		return len(ds)
	}
	before := count()
	redeliver := hookPath + "/deliveries/" + ids[0][1] + "/redeliver"
	if got := alice.post(redeliver, nil); got.Status != refused {
		t.Errorf("redeliver without a CSRF token: %d", got.Status)
	}
	if got := alice.postWith(redeliver, url.Values{"csrf": {p.csrf(t)}}, map[string]string{"Origin": "null"}); got.Status != refused {
		t.Errorf("redeliver from Origin null: %d", got.Status)
	}
	if got := bs["bob"].post(redeliver, url.Values{"csrf": {bs["bob"].get("/settings/admin").csrf(t)}}); got.Status != hidden {
		t.Errorf("redeliver by a writer who does not manage the hook: %d", got.Status)
	}
	if n := count(); n != before {
		t.Fatalf("refused posts made deliveries: %d, want %d", n, before)
	}
	got := alice.post(redeliver, url.Values{"csrf": {p.csrf(t)}})
	if got.Status != http.StatusSeeOther {
		t.Fatalf("redeliver: %d\n%s", got.Status, got.Body)
	}
	if n := count(); n != before+1 {
		t.Errorf("deliveries after redeliver: %d, want %d", n, before+1)
	}
	if p := alice.get(got.Header.Get("Location")); !strings.Contains(p.Body, "queued again") {
		t.Errorf("page after redeliver:\n%s", p.Body)
	}
}

// TestAdminOrgAndUserForms: an organisation's admins add and remove team members and
// set grants with the page's forms (audited as the API audits them); a writer, a
// forged or token-less post changes nothing; a site administrator disables an account
// (its sessions end) but not their own.
func TestAdminOrgAndUserForms(t *testing.T) {
	h := startAdminHub(t)
	bs := h.acme()
	ctx := context.Background()
	members := func() []string {
		m, err := h.store.ListTeamMembers(ctx, "acme", "devs")
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	alice := bs["alice"]
	tok := alice.get("/settings/admin/orgs/acme").csrf(t)
	add := "/settings/admin/orgs/acme/teams/devs/members"
	if p := alice.post(add, url.Values{"user": {"dave"}}); p.Status != refused {
		t.Errorf("add without a CSRF token: %d", p.Status)
	}
	if p := alice.postWith(add, url.Values{"csrf": {tok}, "user": {"dave"}}, map[string]string{"Origin": "http://evil.example"}); p.Status != refused {
		t.Errorf("add from another origin: %d", p.Status)
	}
	if p := bs["bob"].post(add, url.Values{"csrf": {bs["bob"].get("/settings/admin").csrf(t)}, "user": {"dave"}}); p.Status != hidden {
		t.Errorf("add by a writer: %d", p.Status)
	}
	if m := members(); strings.Join(m, ",") != "bob" {
		t.Fatalf("refused posts changed the team: %v", m)
	}
	if p := alice.post(add, url.Values{"csrf": {tok}, "user": {"dave"}}); p.Status != http.StatusSeeOther {
		t.Fatalf("add dave: %d\n%s", p.Status, p.Body)
	}
	if m := members(); strings.Join(m, ",") != "bob,dave" {
		t.Errorf("members after adding dave: %v", m)
	}
	if p := alice.post(add, url.Values{"csrf": {tok}, "user": {"nobody"}}); p.Status != hidden || !strings.Contains(p.Body, "No such") {
		t.Errorf("add a missing user: %d", p.Status)
	}
	grants := "/settings/admin/orgs/acme/teams/devs/grants"
	if p := alice.post(grants, url.Values{"csrf": {tok}, "repository": {"acme/app"}, "role": {"owner"}}); p.Status != http.StatusBadRequest {
		t.Errorf("grant a bad role: %d", p.Status)
	}
	if p := alice.post(grants, url.Values{"csrf": {tok}, "repository": {"acme/app"}, "role": {"admin"}}); p.Status != http.StatusSeeOther {
		t.Fatalf("grant: %d\n%s", p.Status, p.Body)
	}
	if g, _ := h.store.ListTeamGrants(ctx, "acme", "devs"); len(g) != 2 {
		t.Errorf("grants after granting admin on acme/app: %+v", g)
	}
	if p := alice.post(add+"/remove", url.Values{"csrf": {tok}, "user": {"dave"}}); p.Status != http.StatusSeeOther {
		t.Fatalf("remove dave: %d", p.Status)
	}
	if m := members(); strings.Join(m, ",") != "bob" {
		t.Errorf("members after removing dave: %v", m)
	}
	admin := bs["admin"]
	for _, action := range []string{"team.member.add", "team.member.remove", "permission.change"} {
		if p := admin.get("/settings/admin/audit?actor=alice&action=" + action); !strings.Contains(p.Body, "acme/devs") {
			t.Errorf("%s by alice not audited", action)
		}
	}

	// Disabling an account.
	atok := admin.get("/settings/admin/users").csrf(t)
	if p := alice.post("/settings/admin/users/dave/disabled", url.Values{"csrf": {tok}, "disabled": {"true"}}); p.Status != refused {
		t.Errorf("disable by a non-site-admin: %d", p.Status)
	}
	if p := admin.post("/settings/admin/users/admin/disabled", url.Values{"csrf": {atok}, "disabled": {"true"}}); p.Status != http.StatusBadRequest {
		t.Errorf("disable oneself: %d", p.Status)
	}
	if p := bs["dave"].get("/settings/admin"); p.Status != ok {
		t.Fatalf("dave before: %d", p.Status)
	}
	if p := admin.post("/settings/admin/users/dave/disabled", url.Values{"csrf": {atok}, "disabled": {"true"}}); p.Status != http.StatusSeeOther {
		t.Fatalf("disable dave: %d\n%s", p.Status, p.Body)
	}
	if u, _ := h.store.GetUser(ctx, "dave"); !u.Disabled {
		t.Error("dave is not disabled")
	}
	if p := bs["dave"].get("/settings/admin"); p.Status != toLogin {
		t.Errorf("dave's session after disabling: %d", p.Status)
	}
	if p := admin.get("/settings/admin/audit?action=user.update"); !strings.Contains(p.Body, "<td>dave</td>") {
		t.Errorf("disabling not audited")
	}
}
