package e2e

// The web UI (issue 21) in a real browser: Debian's Chromium, headless, driven by
// chromedp over the DevTools protocol, against a real `hubctl serve`. chromedp is only
// pointed at /usr/bin/chromium (or $HUBCTL_CHROMIUM); it never downloads a browser.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// chromiumPath finds Debian's Chromium, or skips (fails under CI=true).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HUBCTL_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	skipOrFatal(t, "chromium not found (apt-get install -y chromium)")
	return ""
}

// webPage is one page the test screenshots: who looks at it, and where.
type webPage struct {
	name string
	ctx  context.Context
	path string
}

// TestWebUI: sign in, explore shows a pushed image, search (typed into the explore
// box) finds it and its hit leads to the repository, the tag page of a two-platform
// index shows its platforms and sizes, the copy button puts the pull command on the
// clipboard, a token is created (its secret works) and revoked (it stops working), a
// private repository is invisible to another user and to anonymous visitors: not
// listed, not found by name or digest prefix, its pages 404. Every page's labels, tab
// order, width at 360 px and screenshots are TestWebPages's.
func TestWebUI(t *testing.T) {
	chromium := chromiumPath(t)
	s := startAuthServer(t)
	createUser(t, s, "alice", "alice-password")
	createUser(t, s, "bob", "bob-password")
	tok := mustToken(t, s, "alice", "alice-password", "repository:alice/app:pull,push", "repository:alice/secret:pull,push")
	amd, arm := pushAppIndex(t, s, tok, "alice/app", "v1")
	secretImg := newImage(t, "amd64")
	pushImageAs(t, s, tok, "alice/secret", "s1", secretImg)
	if resp, body := apiCall(t, s, http.MethodPatch, "/api/v1/repositories/alice/app", "admin", adminPassword,
		map[string]string{"visibility": "public"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("make alice/app public: %s %s", resp.Status, truncate(body, 300))
	}

	screens := screensDir(t)
	t.Log("starting chromium")

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	allocCtx, cancelAlloc := chromiumAllocator(ctx, t, chromium)
	defer cancelAlloc()
	alice, cancelAlice := chromedp.NewContext(allocCtx)
	defer cancelAlice()
	start := time.Now()
	if err := chromedp.Do(alice); err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	t.Logf("chromium started in %v", time.Since(start).Round(time.Millisecond))
	// Each visitor in a browser context of its own: no cookies shared.
	bob, cancelBob := chromedp.NewContext(alice, chromedp.WithNewBrowserContext())
	defer cancelBob()
	anon, cancelAnon := chromedp.NewContext(alice, chromedp.WithNewBrowserContext())
	defer cancelAnon()
	base := s.URL("")

	t.Log("signing in")
	signIn(t, alice, base, "alice", "alice-password")
	signIn(t, bob, base, "bob", "bob-password")

	// Explore shows alice her two repositories.
	do := func(c context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(c, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(c context.Context, sel string) string {
		t.Helper()
		v, err := chromedp.Run(c, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	do(alice, "explore", chromedp.Navigate(base+"/explore"), chromedp.WaitVisible(chromedp.CSS("ul.repos")))
	if got := text(alice, "ul.repos"); !strings.Contains(got, "app") || !strings.Contains(got, "secret") {
		t.Errorf("alice's explore: %q", got)
	}

	t.Log("search")
	// Search: typed into the explore page's box and sent; a hit links to its
	// repository. alice finds her private repository by name and by digest prefix, so
	// that bob and anonymous visitors not finding it below means something.
	search := func(c context.Context, who, q string) []string {
		t.Helper()
		do(c, who+" opens explore", chromedp.Navigate(base+"/explore"), chromedp.WaitVisible(chromedp.ID("q")))
		if _, err := chromedp.RunResponse(c, chromedp.SendKeys(chromedp.ID("q"), q),
			chromedp.Click(chromedp.CSS(`form.search button[type=submit]`))); err != nil {
			t.Fatalf("%s searches %q: %v", who, q, err)
		}
		loc, err := chromedp.Run(c, chromedp.Evaluate[string](`location.search`))
		if err != nil || !strings.Contains(loc, "q=") {
			t.Fatalf("%s's search %q did not send the form: location.search %q (%v)", who, q, loc, err)
		}
		hrefs, err := chromedp.Run(c, chromedp.Evaluate[[]string](`[...document.querySelectorAll("ul.repos a")].map(a => a.getAttribute("href"))`))
		if err != nil {
			t.Fatal(err)
		}
		return hrefs
	}
	hasPrefix := func(hrefs []string, prefix string) bool {
		return slices.ContainsFunc(hrefs, func(h string) bool { return strings.HasPrefix(h, prefix) })
	}
	secretPrefix := secretImg.ManifestDigest[:len("sha256:")+12]
	if hrefs := search(alice, "alice", "app"); !slices.Contains(hrefs, "/alice/app") || hasPrefix(hrefs, "/alice/secret") {
		t.Errorf("alice's search for app links to %q, want /alice/app and not alice/secret", hrefs)
	}
	if _, err := chromedp.RunResponse(alice, chromedp.Click(chromedp.CSS(`ul.repos a[href="/alice/app"]`))); err != nil {
		t.Fatalf("follow the search hit: %v", err)
	}
	if path, err := chromedp.Run(alice, chromedp.Evaluate[string](`location.pathname`)); err != nil || path != "/alice/app" {
		t.Errorf("the search hit led to %q (%v), want /alice/app", path, err)
	}
	if got := text(alice, "h1"); !strings.Contains(got, "app") {
		t.Errorf("the repository page after the search hit has the heading %q", got)
	}
	if hrefs := search(alice, "alice", "secret"); !slices.Contains(hrefs, "/alice/secret") {
		t.Errorf("alice's search for her private repository links to %q", hrefs)
	}
	if hrefs := search(alice, "alice", secretPrefix); !hasPrefix(hrefs, "/alice/secret") {
		t.Errorf("alice's search for %s links to %q, want her private repository", secretPrefix, hrefs)
	}

	t.Log("tag page")
	// The tag page: platforms and sizes.
	do(alice, "tag page", chromedp.Navigate(base+"/alice/app/-/tags/v1"), chromedp.WaitVisible(chromedp.CSS("table.platforms")))
	plat := text(alice, "table.platforms")
	for _, img := range []image{amd, arm} {
		size := int64(len(img.Config) + len(img.Layer))
		want := fmt.Sprintf("%.1f KiB", float64(size)/1024)
		if size < 1024 {
			want = fmt.Sprintf("%d B", size)
		}
		if !strings.Contains(plat, want) {
			t.Errorf("platforms table %q lacks the size %s", plat, want)
		}
	}
	if !strings.Contains(plat, "linux/amd64") || !strings.Contains(plat, "linux/arm64") {
		t.Errorf("platforms table: %q", plat)
	}

	// The copy button: the pull command lands on the clipboard. Headless Chromium has
	// a clipboard of its own; it needs the permissions granted and the page focused.
	origin := strings.TrimSuffix(base, "/")
	grant := chromedp.Action[chromedp.Void](func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		c := chromedp.FromContext(ctx)
		for _, name := range []string{"clipboard-read", "clipboard-write"} {
			if _, err := cdp.Call(ctx, c.Browser, browser.SetPermission, browser.SetPermissionParams{
				Permission: &browser.PermissionDescriptor{Name: name, AllowWithoutSanitization: true}, Setting: "granted",
				Origin: origin, BrowserContextID: c.BrowserContextID}); err != nil {
				return chromedp.Void{}, fmt.Errorf("grant %s: %w", name, err)
			}
		}
		_, err := cdp.Call(ctx, tg, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true})
		return chromedp.Void{}, err
	})
	do(alice, "copy", grant, chromedp.WaitVisible(chromedp.CSS("ul.pull button.copy")), chromedp.Click(chromedp.CSS("ul.pull button.copy")))
	clip, err := chromedp.Run(alice, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
	if want := "docker pull " + s.Addr + "/alice/app:v1"; err != nil || clip != want {
		t.Errorf("clipboard after the copy button = %q (%v), want %q", clip, err, want)
	}

	t.Log("tokens")
	// Tokens: create (the secret works), revoke (it stops working).
	do(alice, "create a token", chromedp.Navigate(base+"/settings/tokens"), chromedp.WaitVisible(chromedp.ID("token-name")),
		chromedp.SendKeys(chromedp.ID("token-name"), "from-the-browser"),
		chromedp.Click(chromedp.CSS(`form[action="/settings/tokens"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("secret")))
	secret := text(alice, "#secret")
	if !strings.HasPrefix(secret, "hub_") {
		t.Fatalf("token secret on the page: %q", secret)
	}
	if resp, body := apiCall(t, s, http.MethodGet, "/api/v1/user", "alice", secret, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("the new token does not work: %s %s", resp.Status, truncate(body, 200))
	}
	shoot(t, alice, screens, "tokens-created", 1280, false)
	do(alice, "revoke the token", chromedp.Click(chromedp.CSS(`button[aria-label="Revoke from-the-browser"]`)),
		chromedp.WaitVisible(chromedp.CSS("p.notice")))
	if resp, _ := apiCall(t, s, http.MethodGet, "/api/v1/user", "alice", secret, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the revoked token still works: %s", resp.Status)
	}

	t.Log("private repository")
	// The private repository: missing to bob and to anonymous visitors.
	for _, v := range []struct {
		name string
		ctx  context.Context
	}{{"bob", bob}, {"anonymous", anon}} {
		do(v.ctx, v.name+" explore", chromedp.Navigate(base+"/explore"), chromedp.WaitVisible(chromedp.CSS("ul.repos")))
		if got := text(v.ctx, "ul.repos"); strings.Contains(got, "secret") || !strings.Contains(got, "app") {
			t.Errorf("%s's explore: %q", v.name, got)
		}
		for _, q := range []string{"secret", "alice/secret", secretPrefix} {
			if hrefs := search(v.ctx, v.name, q); hasPrefix(hrefs, "/alice/secret") {
				t.Errorf("%s's search for %q finds alice's private repository: %q", v.name, q, hrefs)
			}
			if got := text(v.ctx, "main"); !strings.Contains(got, "No repository you may pull matches.") {
				t.Errorf("%s's search for %q: %q", v.name, q, got)
			}
		}
		for _, path := range []string{"/alice/secret", "/alice/secret/-/tags/s1"} {
			do(v.ctx, v.name+" "+path, chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.CSS("h1")))
			if got := text(v.ctx, "h1"); !strings.HasPrefix(got, "404") {
				t.Errorf("%s sees %s: %q", v.name, path, got)
			}
		}
	}
}

// pushAppIndex pushes an amd64 and an arm64 image to repo and, as tag, the index of
// the two (with their platforms), with the bearer token tok. It returns the images.
func pushAppIndex(t *testing.T, s *server, tok, repo, tag string) (amd, arm image) {
	t.Helper()
	amd, arm = newImage(t, "amd64"), newImage(t, "arm64")
	pushImageAs(t, s, tok, repo, amd.ManifestDigest, amd)
	pushImageAs(t, s, tok, repo, arm.ManifestDigest, arm)
	index := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
		"manifests": []map[string]any{
			{"mediaType": mtOCIManifest, "digest": amd.ManifestDigest, "size": len(amd.Manifest), "platform": map[string]string{"os": "linux", "architecture": "amd64"}},
			{"mediaType": mtOCIManifest, "digest": arm.ManifestDigest, "size": len(arm.Manifest), "platform": map[string]string{"os": "linux", "architecture": "arm64"}},
		}})
	resp, body := do(t, http.MethodPut, s.URL("/v2/"+repo+"/manifests/"+tag), strings.NewReader(string(index)),
		map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "application/vnd.oci.image.index.v1+json"})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push index %s:%s: %s %s", repo, tag, resp.Status, truncate(body, 300))
	}
	return amd, arm
}

// signIn fills and sends the sign-in form and waits for the explore page.
func signIn(t *testing.T, ctx context.Context, base, user, pass string) {
	t.Helper()
	err := chromedp.Do(ctx, chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), user), chromedp.SendKeys(chromedp.ID("password"), pass),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("form.search")))
	if err != nil {
		t.Fatalf("sign in as %s: %v", user, err)
	}
}

// screensDir is where screenshots go: $HUBCTL_SCREENS, or a temporary directory; the
// test names it in its log.
func screensDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("HUBCTL_SCREENS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots are written to %s", dir)
	return dir
}

// scheme emulates prefers-color-scheme.
func scheme(dark bool) chromedp.Action[chromedp.Void] {
	value := "light"
	if dark {
		value = "dark"
	}
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: value}}})
		return chromedp.Void{}, err
	}
}

// shoot writes a full-page screenshot of the current page.
func shoot(t *testing.T, ctx context.Context, dir, name string, width int64, dark bool) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 is PNG
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	theme := "light"
	if dark {
		theme = "dark"
	}
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d-%s.png", name, width, theme)), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

// chromiumAllocator starts Debian's Chromium (chromium, its path) headless for a
// test: a profile of its own, a 1280×900 window, no GPU, and no sandbox as root
// (Chromium refuses to start as root with one).
func chromiumAllocator(ctx context.Context, t *testing.T, chromium string) (context.Context, context.CancelFunc) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900), chromedp.Flag("disable-gpu", true))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	return chromedp.NewExecAllocator(ctx, opts...)
}
