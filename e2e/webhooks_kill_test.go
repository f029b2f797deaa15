package e2e

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Settings of the kill -9 tests (issue 18, "Tests that must pass in CI").
const (
	killPushes  = 500 // manifest pushes, each of a distinct small image
	killWorkers = 2   // pushing at once
	// killPace spaces the pushes' starts: 500 take at least 20 s, so that they see
	// about a dozen kills however fast the machine is.
	killPace = 40 * time.Millisecond
	// killAnswerDelay is how long the receiver takes to answer: deliveries are in
	// flight about half of the time, so some kills land in the middle of one.
	killAnswerDelay = 20 * time.Millisecond
	// killRepo is pushed to; the hooks watch its namespace (admin's own).
	killRepo = "admin/kill9"
	// killDeliveryWait bounds the wait for the last deliveries after the pushes: a
	// delivery whose replica died mid-attempt stays leased to it for 30 s (twice the
	// 15 s attempt timeout) before another takes it. A hang guard, not a timing
	// assertion.
	killDeliveryWait = 90 * time.Second
)

// liveHubs is the set of addresses of the hubs up now ("" while one is down), shared
// by the pushing workers and the goroutine that kills and restarts them.
type liveHubs struct {
	mu    sync.Mutex
	addrs []string
}

func (l *liveHubs) set(i int, addr string) {
	l.mu.Lock()
	l.addrs[i] = addr
	l.mu.Unlock()
}

// pick returns the address of a random hub that is up, or "" when none is.
func (l *liveHubs) pick() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var up []string
	for _, a := range l.addrs {
		if a != "" {
			up = append(up, a)
		}
	}
	if len(up) == 0 {
		return ""
	}
	return up[rand.IntN(len(up))]
}

// TestWebhooksSurviveKill9 is issue 18's crash test on one hub (SQLite, filesystem):
// 500 manifest pushes from concurrent workers while the test kill -9s `hubctl serve`
// every 1–2 s and restarts it on the same data; every push answered 201 must reach
// the receiver as a manifest.pushed event, at least once.
func TestWebhooksSurviveKill9(t *testing.T) {
	env := []string{"HUBCTL_WEBHOOKS_ALLOW_ADDRESSES=127.0.0.1", "HUBCTL_WEBHOOKS_INTERVAL=200ms"}
	s := startServerEnv(t, t.TempDir(), env)
	killTest(t, []*server{s}, "--namespace", "admin")
}

// TestWebhooksSurviveKill9Replicas is the same on two replicas sharing PostgreSQL and
// an S3 bucket (versitygw), both running deliverers; the test kill -9s either.
func TestWebhooksSurviveKill9Replicas(t *testing.T) {
	rs, _ := startReplicaSetEnv(t, 2, []string{"HUBCTL_WEBHOOKS_ALLOW_ADDRESSES=127.0.0.1", "HUBCTL_WEBHOOKS_INTERVAL=200ms"})
	killTest(t, rs, "--site", "--event", "manifest.pushed")
}

// killTest creates a hook (hookArgs) on the receiver, pushes killPushes images to
// killRepo through hubs while killing and restarting them, then waits for the receiver
// to have verified a manifest.pushed event for every push answered 201.
func killTest(t *testing.T, hubs []*server, hookArgs ...string) {
	rc := startReceiver(t, "127.0.0.1:0")
	cli := loginCLI(t, hubs[0])
	_, secret := cli.createHook(rc.URL, hookArgs...)
	rc.setSecret(secret)
	rc.setRespond(func(w http.ResponseWriter, _ *http.Request) int {
		time.Sleep(killAnswerDelay)
		w.WriteHeader(http.StatusNoContent)
		return http.StatusNoContent
	})
	// Tokens outlive restarts: the keys are in the data directory (or the replicas'
	// shared key directory).
	tok := mustToken(t, hubs[0], "admin", adminPassword, "repository:"+killRepo+":pull,push")

	live := &liveHubs{addrs: make([]string, len(hubs))}
	for i, s := range hubs {
		live.set(i, s.Addr)
	}
	layer := gzipBytes(t, layerTar(t, "kill9.bin", 512))
	run := fmt.Sprint(time.Now().UnixNano())
	imgs := make([]smallImage, killPushes)
	for i := range imgs {
		imgs[i] = newSmallImage(t, i, run, layer)
	}

	var (
		mu        sync.Mutex
		created   = map[string]int{} // "repo:tag@digest" of the pushes answered 201
		otherCode = map[int]int{}    // manifest PUT answers other than 201
		retries   atomic.Int64
		failed    []string
		next      atomic.Int64
		wg        sync.WaitGroup
	)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: killWorkers}}
	defer client.CloseIdleConnections()
	start := time.Now()
	for range killWorkers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= killPushes {
					return
				}
				time.Sleep(time.Until(start.Add(time.Duration(i) * killPace)))
				tag := fmt.Sprintf("p%04d", i)
				// A push whose answer was lost to a kill is pushed again (the tag may
				// then have two manifest.pushed events; either satisfies it).
				for attempt := 0; ; attempt++ {
					if attempt > 0 {
						retries.Add(1)
						time.Sleep(50 * time.Millisecond)
					}
					if attempt == 400 {
						mu.Lock()
						failed = append(failed, tag)
						mu.Unlock()
						break
					}
					addr := live.pick()
					if addr == "" {
						continue
					}
					st, err := pushSmall(client, "http://"+addr, tok, killRepo, tag, layer, imgs[i])
					if err != nil {
						continue
					}
					mu.Lock()
					if st == http.StatusCreated {
						created[killRepo+":"+tag+"@"+imgs[i].Digest]++
					} else {
						otherCode[st]++
					}
					mu.Unlock()
					if st == http.StatusCreated {
						break
					}
				}
			}
		})
	}
	pushed := make(chan struct{})
	go func() { wg.Wait(); close(pushed) }()

	// Kill -9 one hub every 1–2 s and restart it on the same data until the pushes end.
	kills, killsInFlight := 0, 0
	for done := false; !done; {
		select {
		case <-pushed:
			done = true
			continue
		case <-time.After(time.Second + rand.N(time.Second)):
		}
		i := rand.IntN(len(hubs))
		live.set(i, "")
		if _, _, _, _, held := rc.snapshot(); held > 0 {
			killsInFlight++
		}
		hubs[i].Kill()
		kills++
		s := hubs[i]
		hubs[i] = startServerEnv(t, s.DataDir, s.env, s.args...)
		live.set(i, hubs[i].Addr)
	}
	pushTime := time.Since(start)
	t.Logf("%d pushes answered 201 in %s with %d workers, %d kill -9s (%d while the receiver held a request), %d retried pushes, other answers %v",
		len(created), pushTime.Round(time.Millisecond), killWorkers, kills, killsInFlight, retries.Load(), otherCode)
	if len(failed) > 0 {
		t.Fatalf("%d pushes never answered 201: %v", len(failed), failed)
	}
	if len(created) != killPushes {
		t.Fatalf("%d pushes answered 201, want %d", len(created), killPushes)
	}
	if kills < 5 {
		t.Errorf("only %d kill -9s happened during the pushes: the test proves little (the pushes took %s)", kills, pushTime)
	}

	missing := func() []string {
		_, _, got, _, _ := rc.snapshot()
		var m []string
		for k := range created {
			if got[k] == 0 {
				m = append(m, k)
			}
		}
		slices.Sort(m)
		return m
	}
	waitStart := time.Now()
	waitHook(t, killDeliveryWait, func() string {
		m := missing()
		return fmt.Sprintf("%d of %d pushes answered 201 never reached the receiver, e.g. %v", len(m), len(created), m[:min(len(m), 5)])
	}, func() bool { return len(missing()) == 0 })
	reqs, ids, got, _, _ := rc.snapshot()
	dupIDs, dupPushes := 0, 0
	for _, n := range ids {
		dupIDs += n - 1
	}
	for k, n := range got {
		if created[k] > 0 {
			dupPushes += n - 1
		}
	}
	t.Logf("every push reached the receiver %s after the last push; %d requests, %d distinct webhook-ids, "+
		"%d duplicate deliveries of one webhook-id, %d extra manifest.pushed of a pushed tag (re-pushes after a lost answer, and duplicates)",
		time.Since(waitStart).Round(time.Millisecond), len(reqs), len(ids), dupIDs, dupPushes)
	rc.checkNoBad(t)
	checkForgeriesRejected(t, reqs, secret)
}

// checkForgeriesRejected takes a genuine delivery the receiver accepted and shows that
// the receiver's verification is not vacuous: what an attacker could send (the body
// changed, the timestamp changed, the same request replayed later, signed with
// another secret, the GitHub signature alone) fails it.
func checkForgeriesRejected(t *testing.T, reqs []whRequest, secret string) {
	t.Helper()
	i := slices.IndexFunc(reqs, func(r whRequest) bool { return r.Err == nil })
	if i < 0 {
		t.Fatal("no verified delivery to tamper with")
	}
	r := reqs[i]
	now := time.Now()
	if _, err := verifyWebhook(secret, r.Header, r.Body, now); err != nil {
		t.Fatalf("the genuine delivery no longer verifies: %v", err)
	}
	body := slices.Clone(r.Body)
	body[len(body)/2] ^= 1
	h := r.Header.Clone()
	ts := h.Get("webhook-timestamp")
	h.Set("webhook-timestamp", ts[:len(ts)-1]+string('0'+(ts[len(ts)-1]-'0'+1)%10))
	noStd := r.Header.Clone()
	noStd.Del("webhook-signature")
	forgeries := map[string]func() error{
		"body changed":      func() error { _, err := verifyWebhook(secret, r.Header, body, now); return err },
		"timestamp changed": func() error { _, err := verifyWebhook(secret, h, r.Body, now); return err },
		"replayed 6 min later": func() error {
			_, err := verifyWebhook(secret, r.Header, r.Body, now.Add(6*time.Minute))
			return err
		},
		"another secret": func() error {
			_, err := verifyWebhook(fmt.Sprintf("whsec_%s", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="), r.Header, r.Body, now)
			return err
		},
		"without webhook-signature": func() error { _, err := verifyWebhook(secret, noStd, r.Body, now); return err },
	}
	for name, f := range forgeries {
		if err := f(); err == nil {
			t.Errorf("forgery %q verified", name)
		}
	}
}
