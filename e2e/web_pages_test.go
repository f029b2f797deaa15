package e2e

// Every page of the web UI (issue 21) in Debian's Chromium, with real data made
// through the hub's API and the hubctl CLI: every form control has a label, pressing
// Tab visits every visible control in document order and comes back round, nothing
// scrolls sideways at 360 px, the dark theme applies, and each page is screenshot at
// 1280 and 360 px in the light and the dark theme.

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestWebPages: the accessibility and layout checks on every page the UI has, each
// filled with what it shows (repositories, an index, a chart, an artifact, an
// organisation with a team and its grant, a quota, a retention policy, a webhook with
// a failed delivery, a workflow run, a deploy record, audit events, sessions), as an
// anonymous visitor, a user and the administrator.
func TestWebPages(t *testing.T) {
	chromium := chromiumPath(t)
	s := startServerEnv(t, t.TempDir(), []string{"HUBCTL_WORKFLOWS_EXECUTOR=none",
		"HUBCTL_WEBHOOKS_INTERVAL=200ms", "HUBCTL_WEBHOOKS_ALLOW_ADDRESSES=127.0.0.1"})
	f := authFixture{s: s, alicePW: "alice-password-1"}
	createUser(t, s, "alice", f.alicePW)
	cli := loginCLI(t, s)
	cli.run("org", "create", "acme")
	cli.run("team", "create", "acme", "devs")
	cli.run("team", "add-member", "acme", "devs", "alice")
	cli.run("team", "grant", "acme", "devs", "write")
	cli.run("quota", "set", "alice", "1GiB")
	cli.run("repo", "policy", "set", "alice", "--immutable", "v*")
	// A hook whose receiver refuses connections: its delivery page has a failed attempt.
	hook, _ := cli.createHook("http://"+freeLoopback(t)+"/hook", "--namespace", "alice", "--event", "manifest.pushed")

	tok := mustToken(t, s, "alice", f.alicePW, "repository:alice/app:pull,push")
	_, arm := pushAppIndex(t, s, tok, "alice/app", "v1")
	if resp, body := apiCall(t, s, http.MethodPatch, "/api/v1/repositories/alice/app", "admin", adminPassword,
		map[string]string{"visibility": "public"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("make alice/app public: %s %s", resp.Status, truncate(body, 300))
	}
	e := newChartEnv(t, f, "")
	e.hubctl(t, "chart", "push", e.packageChart(t, "demo", "0.1.0", "a demo chart"), "oci://"+s.Addr+"/alice", "--progress", "quiet")
	artifactTree(t, e.dir)
	e.hubctl(t, "artifact", "push", s.Addr+"/alice/tool:1.0", "tool", "site", "--artifact-type", "application/vnd.example.tool", "--progress", "quiet")
	runID := startManualRun(t, s, "alice", f.alicePW)
	recordDeploy(t, s, "alice", f.alicePW, "web", arm.ManifestDigest)
	waitHook(t, 30*time.Second, func() string { return "the hook made no failed attempt" }, func() bool {
		d, ok := onlyDelivery(t, cli, hook)
		return ok && len(d.Log) >= 1
	})

	screens := screensDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	allocCtx, cancelAlloc := chromiumAllocator(ctx, t, chromium)
	defer cancelAlloc()
	anon, cancelAnon := chromedp.NewContext(allocCtx)
	defer cancelAnon()
	if err := chromedp.Do(anon); err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	alice, cancelAlice := chromedp.NewContext(anon, chromedp.WithNewBrowserContext())
	defer cancelAlice()
	admin, cancelAdmin := chromedp.NewContext(anon, chromedp.WithNewBrowserContext())
	defer cancelAdmin()
	base := s.URL("")
	signIn(t, alice, base, "alice", f.alicePW)
	signIn(t, admin, base, "admin", adminPassword)

	run := "/settings/admin/runs/" + strconv.FormatInt(runID, 10)
	pages := []webPage{
		{"explore-anonymous", anon, "/explore"}, {"login", anon, "/login"}, {"namespace-anonymous", anon, "/alice"},
		{"repository-anonymous", anon, "/alice/app"}, {"not-found", anon, "/alice/nothing"},
		{"explore", alice, "/explore"}, {"search", alice, "/explore?q=app"}, {"namespace", alice, "/alice"},
		{"repository", alice, "/alice/app"}, {"tag-index", alice, "/alice/app/-/tags/v1"},
		{"manifest", alice, "/alice/app/-/manifests/" + arm.ManifestDigest},
		{"chart", alice, "/alice/demo/-/charts/0.1.0"}, {"artifact", alice, "/alice/tool/-/artifacts/1.0"},
		{"tokens", alice, "/settings/tokens"}, {"settings", alice, "/settings"},
		{"runs", alice, "/settings/admin/runs?namespace=alice"}, {"run", alice, run},
		{"deploys-form", alice, "/settings/admin/deploys"},
		{"deploys", alice, "/settings/admin/deploys?namespace=alice&service=web"},
		{"admin", admin, "/settings/admin"}, {"admin-users", admin, "/settings/admin/users"},
		{"admin-namespaces", admin, "/settings/admin/orgs"}, {"admin-org", admin, "/settings/admin/orgs/acme"},
		{"admin-audit", admin, "/settings/admin/audit"}, {"admin-policies", admin, "/settings/admin/policies"},
		{"admin-webhooks", admin, "/settings/admin/webhooks?namespace=alice"},
		{"admin-webhook", admin, "/settings/admin/webhooks/" + hook},
	}
	// What each page must show, so that a page checked empty fails.
	shows := map[string]string{
		"search": "alice/app", "repository": "v1", "tag-index": "linux/arm64", "chart": "a demo chart",
		"artifact": "application/vnd.example.tool", "settings": "Sessions", "run": "build",
		"deploys": "alice/app@" + arm.ManifestDigest, "admin-namespaces": "alice", "admin-org": "devs",
		"admin-policies": "v*", "admin-webhooks": hook, "admin-webhook": "connection refused",
		"admin-audit": "team", "not-found": "404",
	}
	for _, p := range pages {
		t.Run(p.name, func(t *testing.T) {
			want := http.StatusOK
			if p.name == "not-found" {
				want = http.StatusNotFound
			}
			checkPage(t, p, base, screens, want, shows[p.name])
		})
	}
}

// recordDeploy records a finished deploy of service in ns through the hub's deploy
// API, as `hubctl deploy` does, of ns/app@digest.
func recordDeploy(t *testing.T, s *server, ns, pass, service, digest string) {
	t.Helper()
	path := "/api/v1/deploys/" + ns + "/" + service
	pinned := s.Addr + "/" + ns + "/app@" + digest
	resp, body := apiCall(t, s, http.MethodPost, path, ns, pass, map[string]any{
		"spec": "name: " + service + "\nimage: " + pinned + "\n", "digests": map[string]string{service: pinned},
		"target": "docker", "host": "e2e", "pid": 1})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("begin deploy: %s %s", resp.Status, truncate(body, 300))
	}
	var begun struct {
		Deploy struct{ Number int }
	}
	if err := json.Unmarshal(body, &begun); err != nil || begun.Deploy.Number < 1 {
		t.Fatalf("begin deploy answered %s (%v)", truncate(body, 300), err)
	}
	n := begun.Deploy.Number
	if resp, body := apiCall(t, s, http.MethodPatch, path+"/"+strconv.Itoa(n), ns, pass,
		map[string]string{"outcome": "succeeded"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("finish deploy: %s %s", resp.Status, truncate(body, 300))
	}
}

// checkPage opens p and checks it: the status is want and the page shows text; every
// form control has a label and every control a name; Tab visits every visible control
// in order and comes back round; in both themes, nothing scrolls sideways at 360 px
// and the dark background differs from the light one; a screenshot at each width and
// theme.
func checkPage(t *testing.T, p webPage, base, screens string, want int, text string) {
	open := func(width int64, dark bool) {
		t.Helper()
		if err := chromedp.Do(p.ctx, scheme(dark), chromedp.EmulateViewport(width, 800)); err != nil {
			t.Fatal(err)
		}
		resp, err := chromedp.RunResponse(p.ctx, chromedp.Navigate(base+p.path))
		if err != nil {
			t.Fatalf("open %s: %v", p.path, err)
		}
		if resp.Status != int64(want) {
			t.Fatalf("%s answered %d, want %d", p.path, resp.Status, want)
		}
		if err := chromedp.Do(p.ctx, chromedp.WaitVisible(chromedp.CSS("main"))); err != nil {
			t.Fatal(err)
		}
	}
	eval := func(what, js string) []string {
		t.Helper()
		v, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]string](js))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}

	open(1280, false)
	if text != "" {
		got, err := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS("main")))
		if err != nil || !strings.Contains(got, text) {
			t.Errorf("%s does not show %q (%v):\n%s", p.path, text, err, got)
		}
	}
	for _, problem := range eval("labels", labelsJS) {
		t.Errorf("%s: %s", p.path, problem)
	}
	tabOrder(t, p)

	var light string
	for _, dark := range []bool{false, true} {
		for _, width := range []int64{1280, 360} {
			open(width, dark)
			wide, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]int64](`[document.documentElement.scrollWidth, window.innerWidth]`))
			if err != nil {
				t.Fatal(err)
			}
			if wide[0] > wide[1] {
				t.Errorf("%s at %d px is %d px wide: it scrolls sideways (%s)", p.path, width, wide[0],
					strings.Join(eval("overflow", overflowJS), "; "))
			}
			bg, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`getComputedStyle(document.body).backgroundColor`))
			if err != nil {
				t.Fatal(err)
			}
			if !dark {
				light = bg
			} else if bg == light {
				t.Errorf("%s: the dark theme has the light background %s", p.path, bg)
			}
			shoot(t, p.ctx, screens, p.name, width, dark)
		}
	}
}

// tabOrder presses Tab (real key events through Input.dispatchKeyEvent) until the
// focus has gone round the page, and checks that it stopped on every visible control
// in document order, and nowhere else but the document itself and scroll boxes
// (which Chromium makes focusable when nothing in them is).
func tabOrder(t *testing.T, p webPage) {
	t.Helper()
	grantFocus := chromedp.Action[chromedp.Void](func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true})
		return chromedp.Void{}, err
	})
	if err := chromedp.Do(p.ctx, grantFocus); err != nil {
		t.Fatal(err)
	}
	controls, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]string](tabbableJS))
	if err != nil {
		t.Fatalf("list the controls: %v", err)
	}
	if len(controls) == 0 {
		t.Fatalf("%s has no control to tab to", p.path)
	}
	var stops []int // the controls' indexes in the order Tab reached them
	var stray []string
	round := false
	for press := 0; press < 2*len(controls)+4; press++ {
		if err := chromedp.Do(p.ctx, chromedp.KeyEvent(kb.Tab)); err != nil {
			t.Fatalf("press Tab: %v", err)
		}
		at, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](focusedJS))
		if err != nil {
			t.Fatalf("read the focus: %v", err)
		}
		i, err := strconv.Atoi(at)
		if err != nil {
			if !strings.HasPrefix(at, "document") && !strings.HasPrefix(at, "scroller ") {
				stray = append(stray, at)
			}
			continue
		}
		if len(stops) > 0 && i == stops[len(stops)-1] {
			continue // Tab moves within one control too: a date's fields
		}
		if len(stops) > 0 && i == stops[0] {
			round = true
			break
		}
		stops = append(stops, i)
	}
	if !round {
		t.Errorf("%s: after %d presses of Tab the focus never came back to where it started", p.path, 2*len(controls)+4)
	}
	if len(stray) > 0 {
		t.Errorf("%s: Tab stopped on what is no visible control: %q", p.path, stray)
	}
	// From wherever the page put the focus first (autofocus), the stops must be the
	// controls in document order, wrapping round once.
	ok := len(stops) == len(controls)
	for k := 1; ok && k < len(stops); k++ {
		ok = stops[k] == (stops[k-1]+1)%len(controls)
	}
	if !ok {
		var got []string
		for _, i := range stops {
			got = append(got, controls[i])
		}
		t.Errorf("%s: Tab visited %d of %d controls, in this order:\n  %s\nwant (from any start, wrapping):\n  %s", p.path,
			len(stops), len(controls), strings.Join(got, "\n  "), strings.Join(controls, "\n  "))
	}
}

// describeJS names an element for a message: tag, id, name, text.
const describeJS = `const describe = el => {
	let d = el.tagName.toLowerCase();
	if (el.id) d += "#" + el.id;
	if (el.name) d += "[name=" + el.name + "]";
	if (el.getAttribute("href")) d += "[href=" + el.getAttribute("href") + "]";
	const txt = (el.innerText || el.value || "").trim().replace(/\s+/g, " ").slice(0, 40);
	return txt ? d + " " + JSON.stringify(txt) : d;
};`

// labelsJS lists the page's unlabelled form controls, nameless links and buttons,
// labels for no control and duplicate ids.
const labelsJS = `(() => {` + describeJS + `
	const bad = [];
	const text = el => (el.innerText || el.textContent || "").trim();
	for (const el of document.querySelectorAll("input, select, textarea")) {
		if (["hidden", "submit", "button", "reset", "image"].includes((el.getAttribute("type") || "").toLowerCase())) continue;
		let name = (el.getAttribute("aria-label") || "").trim();
		for (const l of el.labels || []) name += text(l);
		for (const id of (el.getAttribute("aria-labelledby") || "").split(/\s+/).filter(Boolean)) {
			const r = document.getElementById(id);
			if (r) name += text(r);
		}
		if (!name) bad.push("no label for " + describe(el));
	}
	for (const el of document.querySelectorAll("a[href], button, summary, input[type=submit], input[type=button]")) {
		const name = text(el) || el.getAttribute("aria-label") || el.getAttribute("title") || el.value || "";
		if (!name.trim()) bad.push("no name for " + describe(el));
	}
	for (const l of document.querySelectorAll("label[for]")) {
		const c = document.getElementById(l.htmlFor);
		if (!c || !c.matches("input, select, textarea, button")) bad.push("the label " + JSON.stringify(text(l)) + " is for no control (" + l.htmlFor + ")");
	}
	const seen = new Set();
	for (const el of document.querySelectorAll("[id]")) {
		if (seen.has(el.id)) bad.push("the id " + el.id + " twice");
		seen.add(el.id);
	}
	return bad;
})()`

// tabbableJS numbers the visible controls Tab must reach (data-tab-stop) and lists
// them, in the order Tab must visit them: positive tabindex first, then the document's.
// A control with tabindex -1 is listed too: Tab skipping it is a failure.
const tabbableJS = `(() => {` + describeJS + `
	const all = [...document.querySelectorAll("a[href], button, input, select, textarea, summary, [tabindex]")].filter(el => {
		if (el.disabled || el.matches("input[type=hidden]") || el.closest("[inert]")) return false;
		// A control taken out of the order (tabindex -1) must still be reached: only
		// other elements made focusable for scripts are left out.
		const control = el.matches("a[href], button, input, select, textarea, summary");
		if (!control && el.tabIndex < 0) return false;
		if (el.matches("summary") && !(el.parentElement && el.parentElement.matches("details") && el.parentElement.querySelector("summary") === el)) return false;
		if (el.getClientRects().length === 0 || getComputedStyle(el).visibility !== "visible") return false;
		// Of a group of radio buttons only one is a Tab stop.
		if (el.matches("input[type=radio]") && el.name) {
			const group = [...el.form.querySelectorAll("input[type=radio]")].filter(r => r.name === el.name);
			return el === (group.find(r => r.checked) || group[0]);
		}
		return true;
	});
	const positive = all.filter(el => el.tabIndex > 0).sort((a, b) => a.tabIndex - b.tabIndex);
	const order = positive.concat(all.filter(el => el.tabIndex <= 0));
	order.forEach((el, i) => el.dataset.tabStop = String(i));
	return order.map(describe);
})()`

// focusedJS says where the focus is: a control's data-tab-stop, "document", a scroll
// box ("scroller …") or another element.
const focusedJS = `(() => {` + describeJS + `
	const a = document.activeElement;
	if (!a || a === document.body || a === document.documentElement) return "document";
	if (a.dataset.tabStop !== undefined) return a.dataset.tabStop;
	const cs = getComputedStyle(a);
	if (/auto|scroll/.test(cs.overflowX + cs.overflowY) && (a.scrollWidth > a.clientWidth || a.scrollHeight > a.clientHeight)) return "scroller " + describe(a);
	return describe(a);
})()`

// overflowJS names the elements that reach past the viewport's right edge, widest
// first: what makes a page scroll sideways.
const overflowJS = `(() => {` + describeJS + `
	const w = document.documentElement.clientWidth;
	const out = [];
	for (const el of document.querySelectorAll("body *")) {
		const r = el.getBoundingClientRect();
		if (r.right > w + 0.5 && r.width > 0) out.push([r.right, describe(el) + " right " + Math.round(r.right)]);
	}
	return out.sort((a, b) => b[0] - a[0]).slice(0, 5).map(x => x[1]);
})()`
