package webhook

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
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/secrets"
)

// Delivery policy.
const (
	// MaxAge is how long a delivery is retried before it is given up.
	MaxAge = 72 * time.Hour
	// firstRetry and maxRetry bound the exponential backoff between attempts.
	firstRetry = 5 * time.Second
	maxRetry   = 6 * time.Hour
	// MaxResponseBody is how much of an answer's body is stored.
	MaxResponseBody = 4 << 10
	// DefaultMaxFailures failed deliveries in a row pause a hook.
	DefaultMaxFailures = 50
	// lease is how long a claimed delivery is a worker's: longer than an attempt.
	lease = 2 * Timeout
	// Redacted replaces a custom header's value in what is stored.
	Redacted = "[redacted]"
)

// Deliverer dispatches events to hooks and sends the due deliveries. Every replica
// runs one; the store's claims keep them from sending one delivery twice.
type Deliverer struct {
	Store   DeliveryStore
	Keyring *secrets.Keyring
	// MayPull reports whether user may pull repository now (authz.Policy.Grant of
	// repository:NAME:pull, public repositories included). A function, not the policy,
	// so that the store, which imports this package, stays below authz.
	MayPull func(ctx context.Context, user accounts.User, repository string) (bool, error)
	// Client sends the requests: NewClient(Guard{…}).
	Client *http.Client
	Log    *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxFailures pauses a hook after that many failed deliveries in a row; 0 means
	// DefaultMaxFailures, a negative number never.
	MaxFailures int
	// Workers is how many deliveries are sent at once; 0 means 8.
	Workers int
	// UserAgent is sent with every request.
	UserAgent string
	// ExternalURL is the hub's base URL (external_url), used by the formats that name
	// the hub or link to content; "" when not configured.
	ExternalURL string
	// Minter issues the pull tokens of Dragonfly preheats (dragonfly.go); nil sends
	// none (a hub without auth).
	Minter PullMinter
	// RegistryURL is the hub's address as Dragonfly reaches it: preheat jobs pull
	// RegistryURL/v2/REPO/manifests/DIGEST.
	RegistryURL string
	// PollInterval is the wait before a preheat job's first poll; it doubles per poll
	// up to a minute. 0 means 2 s.
	PollInterval time.Duration
}

// instanceID names this process until it ends (distribution's source.instanceID).
var instanceID = sync.OnceValue(uuid.NewString)

// visibility returns the visibility of repository now, when the store tells it
// (the SQL store does); "private" otherwise.
func (d *Deliverer) visibility(ctx context.Context, repository string) (string, error) {
	vs, ok := d.Store.(interface {
		RepositoryVisibility(ctx context.Context, repository string) (accounts.Visibility, bool, error)
	})
	if !ok {
		return string(accounts.Private), nil
	}
	v, _, err := vs.RepositoryVisibility(ctx, repository)
	return string(v), err
}

func (d *Deliverer) log() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log
}

func (d *Deliverer) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// Run dispatches and delivers until ctx ends, looking for work every interval when
// idle.
func (d *Deliverer) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		busy, err := d.Step(ctx)
		if err != nil && ctx.Err() == nil {
			d.log().Warn("webhooks", "err", err)
		}
		if busy {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Step dispatches the next events and sends the deliveries due now, and reports
// whether there was anything to do.
func (d *Deliverer) Step(ctx context.Context) (bool, error) {
	n, err := d.Store.DispatchWebhooks(ctx, 0, d.now())
	if err != nil {
		return false, err
	}
	workers := d.Workers
	if workers <= 0 {
		workers = 8
	}
	claims, err := d.Store.ClaimWebhookDeliveries(ctx, workers, d.now(), lease)
	if err != nil {
		return n > 0, err
	}
	var wg sync.WaitGroup
	for _, c := range claims {
		wg.Go(func() {
			o := d.attempt(ctx, c)
			max := d.MaxFailures
			if max <= 0 {
				max = DefaultMaxFailures
			}
			// Recorded even when ctx ended meanwhile: the attempt happened.
			if err := d.Store.FinishWebhookDelivery(context.WithoutCancel(ctx), c.Delivery.ID, o, max, d.now()); err != nil {
				d.log().Warn("webhook delivery: record the attempt", "hook", c.Hook.ID, "delivery", c.Delivery.ID, "err", err)
			}
		})
	}
	wg.Wait()
	return n > 0 || len(claims) > 0, nil
}

// mayRead reports whether the hook's owner may still read what the event is about.
func (d *Deliverer) mayRead(ctx context.Context, h Hook, e events.Event) (bool, error) {
	if e.Type == EventTest {
		// A ping its sender (a manager of the hook) made: it carries no repository's data.
		return true, nil
	}
	u, err := d.Store.UserByID(ctx, h.CreatedBy)
	if errors.Is(err, accounts.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if u.Disabled {
		return false, nil
	}
	if e.Repository == "" {
		// Hub-wide events go to site hooks only, and only while their owner is an admin.
		return u.Admin, nil
	}
	if h.Scope == ScopeSite && !u.Admin {
		return false, nil
	}
	return d.MayPull(ctx, u, e.Repository)
}

func (d *Deliverer) attempt(ctx context.Context, c Claim) Outcome {
	h, del := c.Hook, c.Delivery
	fail := func(msg string) Outcome {
		return d.retry(del, Outcome{Error: msg, Failed: true}, 0)
	}
	var e events.Event
	if err := json.Unmarshal([]byte(del.Payload), &e); err != nil {
		return Outcome{State: StateFailed, Error: "stored event unreadable: " + err.Error()}
	}
	ok, err := d.mayRead(ctx, h, e)
	if err != nil {
		return d.retry(del, Outcome{Error: "authorisation check: " + err.Error(), Skip: true}, 0)
	}
	if !ok {
		return Outcome{State: StateSkipped, Error: "the hook's owner may no longer read " + e.Repository, Skip: true}
	}
	if h.Kind == KindDragonfly {
		return d.preheat(ctx, h, del, e)
	}
	keys, headers, err := OpenSigning(d.Keyring, h, d.now())
	if err != nil {
		// Not the receiver's fault: no failure counted against the hook.
		return d.retry(del, Outcome{Error: err.Error(), Skip: true}, 0)
	}
	if h.Scope != ScopeSite {
		// Who pushed from where is for site administrators, in every format.
		e.Remote, e.RequestID = "", ""
	}
	m := Message{Hook: h, Event: e, ExternalURL: d.ExternalURL, InstanceID: instanceID()}
	if h.Format == FormatHarbor && e.Repository != "" {
		if m.Visibility, err = d.visibility(ctx, e.Repository); err != nil {
			return d.retry(del, Outcome{Error: "repository visibility: " + err.Error(), Skip: true}, 0)
		}
	}
	body, contentType, err := Encode(m)
	if errors.Is(err, ErrNotCarried) {
		return Outcome{State: StateSkipped, Error: "format " + h.Format + " does not carry this event: " + err.Error(), Skip: true}
	}
	if err != nil {
		return Outcome{State: StateFailed, Error: err.Error()}
	}
	now := d.now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return fail(err.Error())
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if err := Sign(req.Header, keys, e.ID, now, body); err != nil {
		return Outcome{State: StateFailed, Error: err.Error()}
	}
	req.Header.Set("Content-Type", contentType)
	ua := d.UserAgent
	if ua == "" {
		ua = "hubctl-webhook"
	}
	req.Header.Set("User-Agent", ua)
	a := Attempt{Started: now, RequestHeaders: map[string]string{}}
	for k, v := range req.Header {
		a.RequestHeaders[k] = strings.Join(v, ", ")
	}
	for k := range headers {
		a.RequestHeaders[http.CanonicalHeaderKey(k)] = Redacted
	}
	start := time.Now()
	resp, err := d.Client.Do(req)
	a.Duration = time.Since(start)
	if err != nil {
		a.Error = err.Error()
		if errors.Is(err, ErrForbiddenAddress) {
			a.Error = h.URL + ": " + guardDetail(err).Error()
		}
		o := d.retry(del, Outcome{Attempt: a, Error: a.Error, Failed: true}, 0)
		return o
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	a.Status, a.ResponseBody = resp.StatusCode, string(head)
	a.ResponseHeaders = map[string]string{}
	for k, v := range resp.Header {
		if len(a.ResponseHeaders) >= 32 {
			break
		}
		a.ResponseHeaders[k] = truncate(strings.Join(v, ", "), 512)
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return Outcome{Attempt: a, State: StateDelivered}
	case resp.StatusCode == http.StatusGone:
		return Outcome{Attempt: a, State: StateFailed, Error: "410 Gone", Failed: true, Disable: "the receiver answered 410 Gone"}
	}
	return d.retry(del, Outcome{Attempt: a, Error: resp.Status, Failed: true}, retryAfter(resp.Header.Get("Retry-After"), now))
}

// retry schedules the next attempt after an exponential backoff with jitter (at least
// after, the receiver's Retry-After), or gives the delivery up past MaxAge.
func (d *Deliverer) retry(del Delivery, o Outcome, after time.Duration) Outcome {
	n := max(del.Attempts, 1)
	back := firstRetry << min(n-1, 20)
	back = min(back, maxRetry)
	// ±25 % so that the deliveries of a receiver that came back do not arrive at once.
	back = time.Duration(float64(back) * (0.75 + rand.Float64()/2))
	back = max(back, min(after, maxRetry))
	next := d.now().Add(back)
	if next.Sub(del.CreatedAt) > MaxAge {
		o.State, o.Error = StateFailed, strings.TrimSpace(o.Error+"; given up after "+MaxAge.String())
		return o
	}
	o.State, o.NextAt = StatePending, next
	return o
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Sign sets the signature headers of a delivery of body with message id at t, signed
// with each of secrets (the current one first, then a previous one during a rotation):
// Standard Webhooks' webhook-id, webhook-timestamp and webhook-signature (for each
// secret "v1," and the base64 HMAC-SHA256 of "id.timestamp.body" keyed with the
// secret's decoded bytes, space-separated, as the spec allows) and GitHub's
// X-Hub-Signature-256 ("sha256=" and the hex HMAC-SHA256 of body keyed with the
// current secret string as given, "whsec_…", as GitHub receivers use theirs; it has
// room for one signature only).
func Sign(h http.Header, secrets []string, id string, t time.Time, body []byte) error {
	if len(secrets) == 0 {
		return errors.New("webhook: no secret to sign with")
	}
	ts := strconv.FormatInt(t.Unix(), 10)
	sigs := make([]string, 0, len(secrets))
	for _, secret := range secrets {
		key, err := SecretKey(secret)
		if err != nil {
			return err
		}
		m := hmac.New(sha256.New, key)
		fmt.Fprintf(m, "%s.%s.", id, ts)
		m.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	}
	h.Set("Webhook-Id", id)
	h.Set("Webhook-Timestamp", ts)
	h.Set("Webhook-Signature", strings.Join(sigs, " "))
	g := hmac.New(sha256.New, []byte(secrets[0]))
	g.Write(body)
	h.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(g.Sum(nil)))
	return nil
}

// guardDetail is the SSRF guard's own error inside err (which address, which range),
// without the dialer's and client's wrapping, so a stored attempt says what was
// refused: the address a name resolved to is what tells a rebinding apart.
func guardDetail(err error) error {
	detail := err
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e == ErrForbiddenAddress {
			break
		}
		if errors.Is(e, ErrForbiddenAddress) {
			detail = e
		}
	}
	return detail
}
