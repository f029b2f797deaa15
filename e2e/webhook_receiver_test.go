package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/hubtypes"
)

// whTolerance is how far a webhook-timestamp may be from the receiver's clock: the
// five minutes the Standard Webhooks libraries allow.
const whTolerance = 5 * time.Minute

// whBody is what a receiver reads of a delivery in the hubctl format (docs/webhooks.md).
type whBody struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Hook string `json:"webhook"`
	Data struct {
		Repository string `json:"repository"`
		Tag        string `json:"tag"`
		Digest     string `json:"digest"`
	} `json:"data"`
}

// verifyWebhook checks a delivery as a receiver configured with secret would, with an
// implementation of its own (not internal/webhook's): the Standard Webhooks signature
// (HMAC-SHA256 over "id.timestamp.body" keyed with the base64-decoded part of the
// secret after whsec_; any one of the space-separated "v1,…" signatures), the
// timestamp within whTolerance of now, GitHub's X-Hub-Signature-256 (HMAC-SHA256 over
// the body keyed with the secret string), both compared in constant time, and a body
// whose id is the webhook-id.
func verifyWebhook(secret string, h http.Header, body []byte, now time.Time) (whBody, error) {
	var b whBody
	raw, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return b, errors.New("the secret does not start with whsec_")
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return b, fmt.Errorf("the secret is not whsec_ and base64: %v", err)
	}
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return b, fmt.Errorf("missing webhook-id %q, webhook-timestamp %q or webhook-signature %q", id, ts, sigs)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return b, fmt.Errorf("webhook-timestamp %q is not unix seconds", ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > whTolerance || d < -whTolerance {
		return b, fmt.Errorf("webhook-timestamp %s is %s away from now", ts, d)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	want := m.Sum(nil)
	good := false
	for _, s := range strings.Fields(sigs) {
		v, sig, _ := strings.Cut(s, ",")
		got, err := base64.StdEncoding.DecodeString(sig)
		if v == "v1" && err == nil && hmac.Equal(got, want) {
			good = true
		}
	}
	if !good {
		return b, fmt.Errorf("no webhook-signature in %q matches", sigs)
	}
	gh, ok := strings.CutPrefix(h.Get("X-Hub-Signature-256"), "sha256=")
	if !ok {
		return b, fmt.Errorf("X-Hub-Signature-256 %q does not start with sha256=", h.Get("X-Hub-Signature-256"))
	}
	got, err := hex.DecodeString(gh)
	g := hmac.New(sha256.New, []byte(secret))
	g.Write(body)
	if err != nil || !hmac.Equal(got, g.Sum(nil)) {
		return b, errors.New("X-Hub-Signature-256 does not match")
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		return b, fmt.Errorf("Content-Type %q, want application/json", ct)
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return b, fmt.Errorf("body is not JSON: %v", err)
	}
	if b.ID != id {
		return b, fmt.Errorf("body id %q is not the webhook-id %q", b.ID, id)
	}
	return b, nil
}

// whRequest is one request a receiver got, kept for the tests to look at.
type whRequest struct {
	Header http.Header
	Body   []byte
	// Err is why verification failed; nil when the request verified.
	Err error
	// Status is what the receiver answered (0 when it held the request until the hub
	// gave up).
	Status int
	Held   time.Duration
}

// whReceiver is a webhook receiver on 127.0.0.1: it verifies every request with
// verifyWebhook, answers as its respond function says (204 by default) and records
// what it got. A request that fails verification is answered 400 and recorded.
type whReceiver struct {
	URL string
	srv *http.Server

	mu       sync.Mutex
	secret   string
	respond  func(w http.ResponseWriter, r *http.Request) int
	requests []whRequest
	// ids counts the verified requests answered 2xx, by webhook-id.
	ids map[string]int
	// pushed counts the verified manifest.pushed events answered 2xx, by
	// "repository:tag@digest".
	pushed map[string]int
	// bad lists the requests that failed verification.
	bad []string
	// held is how many requests are being held open now.
	held int
}

// startReceiver starts a receiver on addr ("127.0.0.1:0" for any port).
func startReceiver(t testing.TB, addr string) *whReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &whReceiver{URL: "http://" + ln.Addr().String() + "/hook", ids: map[string]int{}, pushed: map[string]int{}}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if r.srv.Shutdown(ctx) != nil {
			_ = r.srv.Close()
		}
	})
	return r
}

// setSecret gives the receiver the hook's secret, once `webhook create` printed it.
func (rc *whReceiver) setSecret(s string) {
	rc.mu.Lock()
	rc.secret = s
	rc.mu.Unlock()
}

// setRespond changes how the receiver answers verified requests: it writes the answer
// and returns its status, or 0 when it wrote none (held until the hub gave up).
func (rc *whReceiver) setRespond(f func(w http.ResponseWriter, r *http.Request) int) {
	rc.mu.Lock()
	rc.respond = f
	rc.mu.Unlock()
}

func (rc *whReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	rc.mu.Lock()
	secret, respond := rc.secret, rc.respond
	rc.mu.Unlock()
	var b whBody
	if err == nil {
		b, err = verifyWebhook(secret, r.Header, body, time.Now())
	}
	req := whRequest{Header: r.Header.Clone(), Body: body, Err: err}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		req.Status = http.StatusBadRequest
		rc.mu.Lock()
		rc.bad = append(rc.bad, err.Error())
		rc.requests = append(rc.requests, req)
		rc.mu.Unlock()
		return
	}
	if respond == nil {
		respond = func(w http.ResponseWriter, _ *http.Request) int {
			w.WriteHeader(http.StatusNoContent)
			return http.StatusNoContent
		}
	}
	rc.mu.Lock()
	rc.held++
	rc.mu.Unlock()
	start := time.Now()
	req.Status = respond(w, r)
	req.Held = time.Since(start)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.held--
	rc.requests = append(rc.requests, req)
	if req.Status >= 200 && req.Status < 300 {
		rc.ids[b.ID]++
		if b.Type == "manifest.pushed" {
			rc.pushed[b.Data.Repository+":"+b.Data.Tag+"@"+b.Data.Digest]++
		}
	}
}

// snapshot returns copies of what the receiver recorded.
func (rc *whReceiver) snapshot() (requests []whRequest, ids, pushed map[string]int, bad []string, held int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	ids, pushed = map[string]int{}, map[string]int{}
	for k, v := range rc.ids {
		ids[k] = v
	}
	for k, v := range rc.pushed {
		pushed[k] = v
	}
	return append([]whRequest(nil), rc.requests...), ids, pushed, append([]string(nil), rc.bad...), rc.held
}

// checkNoBad fails the test when a request failed verification.
func (rc *whReceiver) checkNoBad(t testing.TB) {
	t.Helper()
	_, _, _, bad, _ := rc.snapshot()
	if len(bad) > 0 {
		t.Errorf("%d deliveries failed the receiver's verification, first: %s", len(bad), bad[0])
	}
}

// hubCLI runs the hubctl client logged in to a hub as admin, with a private home.
type hubCLI struct {
	t        testing.TB
	env      []string
	registry string
}

// loginCLI logs in to s as admin with `hubctl login` in a fresh home.
func loginCLI(t testing.TB, s *server) *hubCLI {
	t.Helper()
	home, err := os.MkdirTemp("", "hubctl-e2e-wh-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	c := &hubCLI{t: t, env: clientEnv(t, filepath.Join(home, "h")), registry: s.Addr}
	runStdin(t, "", c.env, adminPassword+"\n", hubctlBin, "login", s.Addr, "-u", "admin", "--password-stdin")
	return c
}

// run runs `hubctl ARGS --registry HUB` and returns stdout; a non-zero exit fails.
func (c *hubCLI) run(args ...string) string {
	c.t.Helper()
	return run(c.t, "", c.env, hubctlBin, append(args, "--registry", c.registry)...)
}

// createHook runs `hubctl webhook create URL ARGS -o json` and returns the hook's id
// and signing secret.
func (c *hubCLI) createHook(url string, args ...string) (id, secret string) {
	c.t.Helper()
	out := c.run(append([]string{"webhook", "create", url, "-o", "json"}, args...)...)
	var h hubtypes.CreateWebhookResponse
	if err := json.Unmarshal([]byte(out), &h); err != nil || h.ID == "" || !strings.HasPrefix(h.Secret, "whsec_") {
		c.t.Fatalf("webhook create -o json: %v: %q", err, out)
	}
	return h.ID, h.Secret
}

// deliveries runs `hubctl webhook deliveries ID -o json`.
func (c *hubCLI) deliveries(id string) []hubtypes.WebhookDelivery {
	c.t.Helper()
	out := c.run("webhook", "deliveries", id, "-o", "json", "--limit", "1000")
	var ds []hubtypes.WebhookDelivery
	if err := json.Unmarshal([]byte(out), &ds); err != nil {
		c.t.Fatalf("webhook deliveries -o json: %v: %q", err, out)
	}
	return ds
}

// waitHook polls cond every 100 ms until it holds; after limit (a hang guard, not a
// performance assertion) it fails the test with what.
func waitHook(t testing.TB, limit time.Duration, what func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", limit, what())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// smallImage is the config and manifest of a distinct small image over a shared layer.
type smallImage struct {
	Config, Manifest []byte
	Digest           string
}

// newSmallImage makes image n of a run: its config names n, so every image (and its
// manifest digest) is distinct; they share layer.
func newSmallImage(t testing.TB, n int, run string, layer []byte) smallImage {
	t.Helper()
	cfg := mustJSON(t, map[string]any{
		"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{sha256Digest(layer)}},
		"config": map[string]any{"Labels": map[string]string{"n": strconv.Itoa(n), "run": run}},
	})
	mf := mustJSON(t, manifest{
		SchemaVersion: 2,
		MediaType:     mtOCIManifest,
		Config:        &descriptor{MediaType: mtOCIConfig, Digest: sha256Digest(cfg), Size: int64(len(cfg))},
		Layers:        []descriptor{{MediaType: mtOCILayerGz, Digest: sha256Digest(layer), Size: int64(len(layer))}},
	})
	return smallImage{Config: cfg, Manifest: mf, Digest: sha256Digest(mf)}
}

// pushSmall pushes img's config, layer and manifest to base (http://ADDR) as repo:tag
// with a bearer token, without the testing package (it runs in worker goroutines). It
// returns the manifest PUT's status, or an error when a request got no answer or a
// blob upload was refused.
func pushSmall(c *http.Client, base, tok, repo, tag string, layer []byte, img smallImage) (int, error) {
	send := func(method, url, ct string, body []byte) (int, string, error) {
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			return 0, "", err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", ct)
		resp, err := c.Do(req)
		if err != nil {
			return 0, "", err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusCreated && method == http.MethodPut && resp.Header.Get("Docker-Content-Digest") != img.Digest {
			return 0, "", fmt.Errorf("manifest PUT answered 201 with Docker-Content-Digest %q, want %s", resp.Header.Get("Docker-Content-Digest"), img.Digest)
		}
		return resp.StatusCode, truncate(b, 200), nil
	}
	for _, b := range [][]byte{img.Config, layer} {
		st, body, err := send(http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/?digest="+sha256Digest(b), "application/octet-stream", b)
		if err != nil {
			return 0, err
		}
		if st != http.StatusCreated {
			return 0, fmt.Errorf("blob upload: %d %s", st, body)
		}
	}
	st, _, err := send(http.MethodPut, base+"/v2/"+repo+"/manifests/"+tag, mtOCIManifest, img.Manifest)
	return st, err
}
