package e2e

import (
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/hubtypes"
)

// webhookHub starts a hub with token auth on SQLite whose webhooks may reach 127.0.0.1
// (unless open is false) and look for work every 200 ms, and logs the CLI in as admin.
func webhookHub(t *testing.T, open bool) (*server, *hubCLI, string) {
	t.Helper()
	env := []string{"HUBCTL_WEBHOOKS_INTERVAL=200ms"}
	if open {
		env = append(env, "HUBCTL_WEBHOOKS_ALLOW_ADDRESSES=127.0.0.1")
	}
	s := startServerEnv(t, t.TempDir(), env)
	tok := mustToken(t, s, "admin", adminPassword, "repository:admin/hooked:pull,push")
	return s, loginCLI(t, s), tok
}

// pushTagged pushes a fresh image as admin/hooked:tag and returns its digest.
func pushTagged(t *testing.T, s *server, tok, tag string) string {
	t.Helper()
	img := newImage(t, "amd64")
	pushImageAs(t, s, tok, "admin/hooked", tag, img)
	return img.ManifestDigest
}

// onlyDelivery returns the hook's (newest) manifest.pushed delivery, if the hub made
// one yet: for hooks that saw one push. Its Attempts counts an attempt from when a
// worker claims it; its Log holds the attempts that finished.
func onlyDelivery(t *testing.T, cli *hubCLI, hook string) (hubtypes.WebhookDelivery, bool) {
	t.Helper()
	for _, d := range cli.deliveries(hook) {
		if d.Type == "manifest.pushed" {
			return d, true
		}
	}
	return hubtypes.WebhookDelivery{}, false
}

func describeDelivery(d hubtypes.WebhookDelivery) string {
	var b strings.Builder
	fmt.Fprintf(&b, "delivery %d: state %s, %d attempts, last status %d, last error %q", d.ID, d.State, d.Attempts, d.LastStatus, d.LastError)
	for _, a := range d.Log {
		fmt.Fprintf(&b, "\n  %s status %d error %q", a.Time, a.Status, a.Error)
	}
	return b.String()
}

// TestWebhookRetriesUntilReceiverUp: a receiver that is down (connection refused),
// then answers 503, then 204, gets the event once it answers 204; every attempt is
// stored with what went wrong, and the webhook-id stays the event's.
func TestWebhookRetriesUntilReceiverUp(t *testing.T) {
	s, cli, tok := webhookHub(t, true)
	// A port nobody listens on, a moment ago: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	hook, secret := cli.createHook("http://"+addr+"/hook", "--namespace", "admin", "--event", "manifest.pushed")
	digest := pushTagged(t, s, tok, "retry")

	var d hubtypes.WebhookDelivery
	waitHook(t, 30*time.Second, func() string { return "no refused attempt stored: " + describeDelivery(d) }, func() bool {
		var ok bool
		d, ok = onlyDelivery(t, cli, hook)
		return ok && len(d.Log) >= 1
	})
	if d.State != "pending" || !strings.Contains(d.LastError, "connection refused") || d.NextAt == "" {
		t.Fatalf("after a refused connection: %s, want pending with the error and the next attempt's time", describeDelivery(d))
	}

	// Up, but unavailable: 503.
	rc := startReceiver(t, addr)
	rc.setSecret(secret)
	rc.setRespond(func(w http.ResponseWriter, _ *http.Request) int {
		http.Error(w, "not yet", http.StatusServiceUnavailable)
		return http.StatusServiceUnavailable
	})
	waitHook(t, 30*time.Second, func() string { return "no 503 attempt: " + describeDelivery(d) }, func() bool {
		d, _ = onlyDelivery(t, cli, hook)
		return d.LastStatus == http.StatusServiceUnavailable
	})
	if d.State != "pending" || d.Attempts < 2 {
		t.Fatalf("after a 503: %s, want pending after at least 2 attempts", describeDelivery(d))
	}

	rc.setRespond(nil) // 204
	waitHook(t, 60*time.Second, func() string { return "not delivered: " + describeDelivery(d) }, func() bool {
		d, _ = onlyDelivery(t, cli, hook)
		return d.State == "delivered"
	})
	reqs, ids, pushed, _, _ := rc.snapshot()
	rc.checkNoBad(t)
	if len(ids) != 1 || ids[d.Event] != 1 || pushed["admin/hooked:retry@"+digest] != 1 {
		t.Errorf("the receiver accepted %v (events %v), want the event %s once", ids, pushed, d.Event)
	}
	for _, r := range reqs {
		if id := r.Header.Get("webhook-id"); id != d.Event {
			t.Errorf("an attempt carried webhook-id %q, want the event id %s on every retry", id, d.Event)
		}
	}
	if d.Attempts < 3 || d.LastStatus != http.StatusNoContent {
		t.Errorf("delivered: %s, want at least 3 attempts, the last answered 204", describeDelivery(d))
	}
	t.Logf("%s", describeDelivery(d))
}

// TestWebhookGoneDisablesHook: a receiver answering 410 Gone fails the delivery and
// turns the hook off, with the reason `hubctl webhook show` and `ls` print; the failed
// delivery is not retried once the hook is enabled again, and new events flow.
func TestWebhookGoneDisablesHook(t *testing.T) {
	s, cli, tok := webhookHub(t, true)
	rc := startReceiver(t, "127.0.0.1:0")
	rc.setRespond(func(w http.ResponseWriter, _ *http.Request) int {
		w.WriteHeader(http.StatusGone)
		return http.StatusGone
	})
	hook, secret := cli.createHook(rc.URL, "--namespace", "admin", "--event", "manifest.pushed")
	rc.setSecret(secret)
	pushTagged(t, s, tok, "gone")

	var show string
	waitHook(t, 30*time.Second, func() string { return "the hook is still on:\n" + show }, func() bool {
		show = cli.run("webhook", "show", hook)
		return strings.Contains(show, "disabled because")
	})
	if !strings.Contains(show, "410 Gone") || !regexpLine(show, `enabled\s+no`) {
		t.Errorf("webhook show after a 410:\n%s\nwant enabled no and the reason naming 410 Gone", show)
	}
	if ls := cli.run("webhook", "ls"); !strings.Contains(ls, "no: the receiver answered 410 Gone") {
		t.Errorf("webhook ls after a 410:\n%s", ls)
	}
	var gone hubtypes.WebhookDelivery
	for _, d := range cli.deliveries(hook) {
		if d.Type == "manifest.pushed" {
			gone = d
		}
	}
	if gone.State != "failed" || gone.LastStatus != http.StatusGone || gone.Attempts != 1 {
		t.Errorf("the delivery answered 410: %s, want failed after one attempt", describeDelivery(gone))
	}

	// Enabled again, the hook gets new events; the failed delivery stays failed.
	cli.run("webhook", "enable", hook)
	rc.setRespond(nil)
	digest := pushTagged(t, s, tok, "back")
	waitHook(t, 30*time.Second, func() string { return "the event after enable never arrived" }, func() bool {
		_, _, pushed, _, _ := rc.snapshot()
		return pushed["admin/hooked:back@"+digest] > 0
	})
	reqs, _, _, _, _ := rc.snapshot()
	n := 0
	for _, r := range reqs {
		if r.Header.Get("webhook-id") == gone.Event {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the event answered 410 was sent %d times, want once", n)
	}
	if show := cli.run("webhook", "show", hook); strings.Contains(show, "disabled because") || !regexpLine(show, `enabled\s+yes`) {
		t.Errorf("webhook show after enable:\n%s", show)
	}
	rc.checkNoBad(t)
}

// TestWebhookSlowReceiverDoesNotBlockPushes: a receiver that holds every request open
// until the hub gives up (its 15 s attempt timeout) does not slow pushes: ten pushes
// complete while the first delivery is still held. The timed-out attempt is stored,
// and the events arrive once the receiver answers.
func TestWebhookSlowReceiverDoesNotBlockPushes(t *testing.T) {
	s, cli, tok := webhookHub(t, true)
	rc := startReceiver(t, "127.0.0.1:0")
	release := make(chan struct{})
	var (
		mu        sync.Mutex
		holdEnded bool // a held request ended (the hub gave up, or release)
		holdTime  time.Duration
	)
	rc.setRespond(func(w http.ResponseWriter, r *http.Request) int {
		start := time.Now()
		select {
		case <-r.Context().Done():
			mu.Lock()
			holdEnded, holdTime = true, time.Since(start)
			mu.Unlock()
			return 0
		case <-release:
			w.WriteHeader(http.StatusNoContent)
			return http.StatusNoContent
		}
	})
	hook, secret := cli.createHook(rc.URL, "--namespace", "admin", "--event", "manifest.pushed")
	rc.setSecret(secret)
	digests := map[string]string{"held": pushTagged(t, s, tok, "held")}
	waitHook(t, 30*time.Second, func() string { return "the first delivery never reached the receiver" }, func() bool {
		_, _, _, _, held := rc.snapshot()
		return held > 0
	})

	var took []time.Duration
	for i := range 10 {
		tag := fmt.Sprintf("while-held-%d", i)
		start := time.Now()
		digests[tag] = pushTagged(t, s, tok, tag)
		took = append(took, time.Since(start))
	}
	mu.Lock()
	ended := holdEnded
	mu.Unlock()
	if ended {
		t.Fatalf("the held delivery ended before ten pushes completed (push times %v): delivery blocks pushes", took)
	}
	t.Logf("ten pushes while a delivery was held open: %v", took)

	// The hub gives up on the held request; that attempt is stored as an error and
	// retried.
	waitHook(t, 40*time.Second, func() string { return "the hub never gave up on the held request" }, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return holdEnded
	})
	close(release)
	mu.Lock()
	t.Logf("the hub gave up on the held request after %s", holdTime.Round(time.Millisecond))
	mu.Unlock()
	waitHook(t, 60*time.Second, func() string {
		_, _, pushed, _, _ := rc.snapshot()
		return fmt.Sprintf("the receiver accepted %d of %d events", len(pushed), len(digests))
	}, func() bool {
		_, _, pushed, _, _ := rc.snapshot()
		for tag, d := range digests {
			if pushed["admin/hooked:"+tag+"@"+d] == 0 {
				return false
			}
		}
		return true
	})
	var timedOut bool
	for _, d := range cli.deliveries(hook) {
		for _, a := range d.Log {
			if a.Status == 0 && strings.Contains(strings.ToLower(a.Error), "timeout") || strings.Contains(a.Error, "deadline exceeded") {
				timedOut = true
			}
		}
	}
	if !timedOut {
		t.Errorf("no attempt stored with the timeout error")
	}
	rc.checkNoBad(t)
}

// TestWebhookSSRFGuard: without webhooks.allow_addresses a hook may not reach the
// hub's own host, however its URL names it (127.0.0.1, localhost, 0.0.0.0, an
// IPv4-mapped IPv6 address, [::1]); the refused attempt is stored with the reason and
// the receiver on 127.0.0.1 gets nothing. With the allow-list, a receiver that
// redirects to the cloud metadata address is not followed.
func TestWebhookSSRFGuard(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		s, cli, tok := webhookHub(t, false)
		rc := startReceiver(t, "127.0.0.1:0")
		_, port, _ := net.SplitHostPort(strings.TrimSuffix(strings.TrimPrefix(rc.URL, "http://"), "/hook"))
		urls := []string{
			rc.URL,
			"http://localhost:" + port + "/hook",
			"http://0.0.0.0:" + port + "/hook",
			"http://[::ffff:127.0.0.1]:" + port + "/hook",
			"http://[::1]:" + port + "/hook",
			"http://169.254.169.254/latest/meta-data/",
		}
		hooks := map[string]string{}
		for _, u := range urls {
			id, secret := cli.createHook(u, "--namespace", "admin", "--event", "manifest.pushed")
			rc.setSecret(secret)
			hooks[u] = id
		}
		pushTagged(t, s, tok, "ssrf")
		for u, id := range hooks {
			var d hubtypes.WebhookDelivery
			waitHook(t, 30*time.Second, func() string { return u + ": no refused attempt: " + describeDelivery(d) }, func() bool {
				d, _ = onlyDelivery(t, cli, id)
				return len(d.Log) >= 1
			})
			if d.State != "pending" || len(d.Log) == 0 || !strings.Contains(d.Log[0].Error, "address not allowed") ||
				!strings.Contains(d.Log[0].Error, "webhooks.allow_addresses") || d.Log[0].Status != 0 {
				t.Errorf("%s: %s\nwant a pending delivery whose attempt names the SSRF guard and webhooks.allow_addresses", u, describeDelivery(d))
			} else {
				t.Logf("%s: %s", u, d.Log[0].Error)
			}
		}
		if reqs, _, _, _, _ := rc.snapshot(); len(reqs) != 0 {
			t.Errorf("the receiver on 127.0.0.1 got %d requests through the guard", len(reqs))
		}
	})

	t.Run("redirect not followed", func(t *testing.T) {
		s, cli, tok := webhookHub(t, true)
		rc := startReceiver(t, "127.0.0.1:0")
		rc.setRespond(func(w http.ResponseWriter, r *http.Request) int {
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusTemporaryRedirect)
			return http.StatusTemporaryRedirect
		})
		hook, secret := cli.createHook(rc.URL, "--namespace", "admin", "--event", "manifest.pushed")
		rc.setSecret(secret)
		pushTagged(t, s, tok, "redirect")
		var d hubtypes.WebhookDelivery
		waitHook(t, 30*time.Second, func() string { return "no attempt: " + describeDelivery(d) }, func() bool {
			d, _ = onlyDelivery(t, cli, hook)
			return len(d.Log) >= 1
		})
		if d.State != "pending" || d.LastStatus != http.StatusTemporaryRedirect {
			t.Errorf("a 307 to the metadata address: %s, want pending with status 307 (not followed, not delivered)", describeDelivery(d))
		}
		rc.checkNoBad(t)
	})
}

// regexpLine reports whether a line of s matches the regular expression re.
func regexpLine(s, re string) bool {
	r := regexp.MustCompile(re)
	return slices.ContainsFunc(strings.Split(s, "\n"), r.MatchString)
}
