package webhook

// Dragonfly preheat (docs/webhooks.md, "Dragonfly preheat"): a hook of kind dragonfly
// answers an image push by creating a preheat job on a Dragonfly manager, so that its
// seed peers (or every peer) fetch the image before the nodes ask for it, and then
// follows the job until it ends.
//
// The request and response shapes follow Dragonfly's manager, read in the
// dragonflyoss/dragonfly repository:
//   - manager/router/router.go: POST and GET /api/v1/jobs[/:id] (no authentication,
//     the 2.0.x API) and the same under /oapi/v1/jobs behind the personal access token
//     middleware (2.1 and later);
//   - manager/handlers/job.go: CreateJob binds types.CreateJobRequest, then for type
//     "preheat" types.CreatePreheatJobRequest, and answers 200 with the job
//     (models.Job); GetJob answers 200 with the job; a bad body answers 422;
//   - manager/types/job.go: CreatePreheatJobRequest {type, args, scheduler_cluster_ids
//     []uint}, PreheatArgs {type "image"|"file", url, headers map[string]string,
//     username, password, platform, scope "single_seed_peer"|"all_seed_peers"|
//     "all_peers", ...}; job states PENDING, RECEIVED, STARTED, RETRY, SUCCESS, FAILURE;
//   - manager/job/preheat.go: an image preheat fetches the manifest at args.url with
//     args.headers and hands the same headers to every layer task.
//
// and its documentation (d7y.io): "Preheat" under advanced-guides/open-api (curl with
// "Authorization: Bearer <personal access token>" against /oapi/v1/jobs, the job
// answered with "id" and "state"), and reference/preheat/api for 2.0.x (the job
// answered with "status" instead of "state").

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/secrets"
)

// Hook kinds.
const (
	// KindWebhook hooks POST the event to their URL, signed.
	KindWebhook = "webhook"
	// KindDragonfly hooks create a Dragonfly preheat job on the manager at their URL.
	KindDragonfly = "dragonfly"
)

// Dragonfly manager API versions.
const (
	// DragonflyOAPI is the open API of Dragonfly 2.1 and later (/oapi/v1/jobs), which
	// takes a personal access token.
	DragonflyOAPI = "oapi"
	// DragonflyV1 is the job API of Dragonfly 2.0.x (/api/v1/jobs), unauthenticated.
	DragonflyV1 = "v1"
)

// Preheat scopes: which peers of a cluster fetch the image (PreheatArgs.Scope).
const (
	PreheatSingleSeedPeer = "single_seed_peer"
	PreheatAllSeedPeers   = "all_seed_peers"
	PreheatAllPeers       = "all_peers"
)

// Preheat timing.
const (
	// DefaultPreheatTimeout is how long a preheat job is followed when the hook says
	// nothing; Dragonfly's own default job timeout is the same.
	DefaultPreheatTimeout = 30 * time.Minute
	// MaxPreheatTimeout bounds a hook's timeout.
	MaxPreheatTimeout = 24 * time.Hour
	// PullTokenTTL is the lifetime of the pull token a preheat fetches the image with:
	// long enough for the manager and the seed peers to start every download.
	PullTokenTTL = 15 * time.Minute
	// defaultPollInterval is the first wait before a job is polled; it doubles up to
	// maxPollInterval.
	defaultPollInterval = 2 * time.Second
	maxPollInterval     = time.Minute
)

// Dragonfly is a dragonfly hook's settings; the manager's address is the hook's URL.
type Dragonfly struct {
	// API is DragonflyOAPI or DragonflyV1.
	API string `json:"api"`
	// Scope is one of the Preheat* scopes.
	Scope string `json:"scope"`
	// SchedulerClusterIDs are the scheduler clusters to preheat in; none means all.
	SchedulerClusterIDs []uint64 `json:"schedulerClusterIds,omitempty"`
	// Platform picks one image of an index ("linux/amd64"); "" lets the manager choose.
	Platform string `json:"platform,omitempty"`
	// Timeout is how long the job is followed before the delivery fails.
	Timeout time.Duration `json:"timeout"`
}

// WithDefaults fills what was left empty: the open API, one seed peer, 30 minutes.
func (s Dragonfly) WithDefaults() Dragonfly {
	if s.API == "" {
		s.API = DragonflyOAPI
	}
	if s.Scope == "" {
		s.Scope = PreheatSingleSeedPeer
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultPreheatTimeout
	}
	return s
}

var platformRe = regexp.MustCompile(`^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$`)

// ValidateKind checks the kind-specific part of a new hook: a plain webhook has no
// Dragonfly settings nor token; a dragonfly hook has valid settings (defaults applied),
// wants manifest.pushed only, and a personal access token when it speaks the open API.
func ValidateKind(h Hook, token string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	switch h.Kind {
	case "", KindWebhook:
		if h.Dragonfly != nil || token != "" {
			return bad("dragonfly settings are for hooks of kind %s", KindDragonfly)
		}
		return nil
	case KindDragonfly:
	default:
		return bad("kind %q: want %s or %s", h.Kind, KindWebhook, KindDragonfly)
	}
	s := h.Dragonfly
	if s == nil {
		return bad("a dragonfly hook needs its dragonfly settings")
	}
	if u, err := url.Parse(h.URL); err != nil || u.RawQuery != "" || u.Fragment != "" {
		return bad("the Dragonfly manager's URL is its base address, without a query or fragment")
	}
	switch s.API {
	case DragonflyOAPI:
		if token == "" {
			return bad("the Dragonfly open API (api %s) needs the manager's personal access token", DragonflyOAPI)
		}
	case DragonflyV1:
	default:
		return bad("dragonfly api %q: want %s (Dragonfly 2.1+, /oapi/v1/jobs) or %s (2.0.x, /api/v1/jobs)", s.API, DragonflyOAPI, DragonflyV1)
	}
	if len(token) > 4096 || strings.ContainsFunc(token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return bad("the personal access token must be printable, without spaces, at most 4096 bytes")
	}
	switch s.Scope {
	case PreheatSingleSeedPeer, PreheatAllSeedPeers, PreheatAllPeers:
	default:
		return bad("dragonfly scope %q: want %s, %s or %s", s.Scope, PreheatSingleSeedPeer, PreheatAllSeedPeers, PreheatAllPeers)
	}
	if len(s.SchedulerClusterIDs) > 100 || slices.Contains(s.SchedulerClusterIDs, 0) {
		return bad("scheduler cluster ids are at most 100 positive numbers")
	}
	if s.Platform != "" && !platformRe.MatchString(s.Platform) {
		return bad("platform %q: want OS/ARCH[/VARIANT], e.g. linux/amd64", s.Platform)
	}
	if s.Timeout < time.Minute || s.Timeout > MaxPreheatTimeout {
		return bad("dragonfly timeout %v: want 1m to %v", s.Timeout, MaxPreheatTimeout)
	}
	if len(h.Events) != 1 || h.Events[0] != events.ManifestPushed {
		return bad("a dragonfly hook preheats pushed images: its only event is %s", events.ManifestPushed)
	}
	if h.Format != FormatHubctl {
		return bad("a dragonfly hook sends a preheat job, not an event format")
	}
	return nil
}

// preheatable reports whether a dragonfly hook acts on e: a pushed image.
func preheatable(e events.Event) bool {
	return e.Type == events.ManifestPushed && e.Kind == events.KindImage && e.Repository != "" && (e.Digest != "" || e.Tag != "")
}

// SealDragonflyToken seals the manager's personal access token into h, whose ID must
// be set; an empty token stores none.
func SealDragonflyToken(ring *secrets.Keyring, h *Hook, token string) error {
	h.DragonflyToken = ""
	if token == "" {
		return nil
	}
	var err error
	h.DragonflyToken, err = ring.Seal([]byte(token), secrets.RowAD(Table, h.ID, "dragonfly_token"))
	return err
}

func openDragonflyToken(ring *secrets.Keyring, h Hook) (string, error) {
	if h.DragonflyToken == "" {
		return "", nil
	}
	b, err := ring.Open(h.DragonflyToken, secrets.RowAD(Table, h.ID, "dragonfly_token"))
	if err != nil {
		return "", fmt.Errorf("webhook %s personal access token: %w", h.ID, err)
	}
	return string(b), nil
}

// ErrMintRefused: the hook's owner may not pull the repository (any more), so no
// pull token is issued for it.
var ErrMintRefused = errors.New("pull token refused: the hook's owner may not pull the repository")

// PullToken is a registry token a preheat pulls the image with.
type PullToken struct {
	// Raw is the bearer token; it never reaches a log, the audit or the attempt log.
	Raw string
	// ID is its jti, which the audit entry names.
	ID        string
	ExpiresAt time.Time
}

// PullMinter issues pull tokens for preheats. It lives where the token service's
// signing keys are (internal/server) and is injected into the Deliverer.
type PullMinter interface {
	// MintPull issues a token for the hook h that grants repository:NAME:pull on
	// repository only, for about PullTokenTTL, and audits it (the hook, the
	// repository, the jti). It returns an error wrapping ErrMintRefused when h's
	// creator may not pull repository now.
	MintPull(ctx context.Context, h Hook, repository string) (PullToken, error)
}

// PreheatJob is what a delivery remembers of the job it created (Delivery.Job).
type PreheatJob struct {
	ID  uint64 `json:"id"`
	API string `json:"api"`
	// State is the job's state when last seen (PENDING, ..., SUCCESS, FAILURE).
	State    string    `json:"state"`
	Created  time.Time `json:"created"`
	Deadline time.Time `json:"deadline"`
	// Polls counts the polls so far; the wait before the next doubles with it.
	Polls int `json:"polls"`
	// TokenID is the jti of the pull token the job was given.
	TokenID string `json:"jti,omitempty"`
}

// ParsePreheatJob reads Delivery.Job.
func ParsePreheatJob(s string) (PreheatJob, error) {
	var j PreheatJob
	if err := json.Unmarshal([]byte(s), &j); err != nil || j.ID == 0 {
		return j, fmt.Errorf("stored preheat job %q unreadable", truncate(s, 80))
	}
	return j, nil
}

// preheatRequest is types.CreatePreheatJobRequest of the manager.
type preheatRequest struct {
	Type                string      `json:"type"`
	Args                preheatArgs `json:"args"`
	SchedulerClusterIDs []uint64    `json:"scheduler_cluster_ids,omitempty"`
}

// preheatArgs is the part of types.PreheatArgs a hub fills. The pull token goes in
// headers rather than username and password: those would make the manager exchange
// them at the hub's /token, which takes account passwords and access tokens, not a
// registry token; headers reach the registry as they are, on the manifest request and
// on every layer request of the seed peers.
type preheatArgs struct {
	Type     string            `json:"type"`
	URL      string            `json:"url"`
	Headers  map[string]string `json:"headers,omitempty"`
	Platform string            `json:"platform,omitempty"`
	Scope    string            `json:"scope,omitempty"`
}

// jobAnswer is the part of models.Job a hub reads: 2.1+ says "state", 2.0.x "status".
type jobAnswer struct {
	ID     uint64 `json:"id"`
	State  string `json:"state"`
	Status string `json:"status"`
}

func (a jobAnswer) state() string {
	if a.State != "" {
		return a.State
	}
	return a.Status
}

// Terminal job states.
const (
	jobSuccess = "SUCCESS"
	jobFailure = "FAILURE"
)

func jobsURL(base, api string) string {
	prefix := "/oapi/v1/jobs"
	if api == DragonflyV1 {
		prefix = "/api/v1/jobs"
	}
	return strings.TrimSuffix(base, "/") + prefix
}

// preheat is the delivery of a dragonfly hook: create the job, or poll the one
// created before. Never blocks a worker for longer than one request: between polls
// the delivery is pending, due at the next poll, and any replica's worker claims it.
func (d *Deliverer) preheat(ctx context.Context, h Hook, del Delivery, e events.Event) Outcome {
	if h.Dragonfly == nil {
		return Outcome{State: StateFailed, Error: "dragonfly hook without settings"}
	}
	pat, err := openDragonflyToken(d.Keyring, h)
	if err != nil {
		return d.retry(del, Outcome{Error: err.Error(), Skip: true}, 0)
	}
	if del.Job != "" {
		return d.pollPreheat(ctx, h, del, pat)
	}
	return d.createPreheat(ctx, h, del, e, pat)
}

func (d *Deliverer) createPreheat(ctx context.Context, h Hook, del Delivery, e events.Event, pat string) Outcome {
	s := h.Dragonfly.WithDefaults()
	if d.RegistryURL == "" {
		// The hub's operator must say where the manager reaches the hub: not the
		// receiver's fault, so no failure is counted.
		return d.retry(del, Outcome{Error: "the hub has no external_url: a preheat job needs the address Dragonfly pulls the image from", Skip: true}, 0)
	}
	ref := e.Digest
	if ref == "" {
		ref = e.Tag
	}
	args := preheatArgs{Type: "image", URL: strings.TrimSuffix(d.RegistryURL, "/") + "/v2/" + e.Repository + "/manifests/" + ref,
		Platform: s.Platform, Scope: s.Scope}
	var pull PullToken
	if d.Minter != nil {
		var err error
		pull, err = d.Minter.MintPull(ctx, h, e.Repository)
		if errors.Is(err, ErrMintRefused) {
			return Outcome{State: StateSkipped, Error: err.Error(), Skip: true}
		}
		if err != nil {
			return d.retry(del, Outcome{Error: "mint the pull token: " + err.Error(), Skip: true}, 0)
		}
		args.Headers = map[string]string{"Authorization": "Bearer " + pull.Raw}
	}
	body, err := json.Marshal(preheatRequest{Type: "preheat", Args: args, SchedulerClusterIDs: s.SchedulerClusterIDs})
	if err != nil {
		return Outcome{State: StateFailed, Error: err.Error()}
	}
	resp, a, err := d.managerCall(ctx, h, http.MethodPost, jobsURL(h.URL, s.API), body, pat, pull.Raw)
	if err != nil {
		return d.retry(del, Outcome{Attempt: a, Error: a.Error, Failed: true}, 0)
	}
	var ans jobAnswer
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		if err := json.Unmarshal([]byte(resp.body), &ans); err != nil || ans.ID == 0 {
			a.Error = "the manager's answer names no job id"
			return d.retry(del, Outcome{Attempt: a, Error: a.Error, Failed: true}, 0)
		}
	case permanent(resp.StatusCode):
		msg := fmt.Sprintf("the manager refused the preheat job: %s", resp.status)
		if resp.StatusCode == http.StatusNotFound {
			msg += fmt.Sprintf(" (is the manager's API %s?)", map[string]string{DragonflyOAPI: DragonflyV1, DragonflyV1: DragonflyOAPI}[s.API])
		}
		return Outcome{Attempt: a, State: StateFailed, Error: msg, Failed: true}
	default:
		return d.retry(del, Outcome{Attempt: a, Error: resp.status, Failed: true}, retryAfter(resp.header.Get("Retry-After"), d.now()))
	}
	now := d.now()
	job := PreheatJob{ID: ans.ID, API: s.API, State: ans.state(), Created: now, Deadline: now.Add(s.Timeout), TokenID: pull.ID}
	if job.State == jobSuccess || job.State == jobFailure {
		return d.jobEnded(a, job)
	}
	return Outcome{Attempt: a, State: StatePending, NextAt: d.nextPoll(job, now), Job: job.String()}
}

func (d *Deliverer) pollPreheat(ctx context.Context, h Hook, del Delivery, pat string) Outcome {
	job, err := ParsePreheatJob(del.Job)
	if err != nil {
		return Outcome{State: StateFailed, Error: err.Error()}
	}
	now := d.now()
	job.Polls++
	resp, a, err := d.managerCall(ctx, h, http.MethodGet, jobsURL(h.URL, job.API)+"/"+strconv.FormatUint(job.ID, 10), nil, pat, "")
	switch {
	case err != nil:
		return d.pollAgain(job, now, a, "poll: "+a.Error)
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		var ans jobAnswer
		if err := json.Unmarshal([]byte(resp.body), &ans); err != nil {
			return d.pollAgain(job, now, a, "poll: the manager's answer is not a job")
		}
		job.State = ans.state()
		if job.State == jobSuccess || job.State == jobFailure {
			return d.jobEnded(a, job)
		}
		return d.pollAgain(job, now, a, "")
	case permanent(resp.StatusCode):
		return Outcome{Attempt: a, State: StateFailed, Job: job.String(), Failed: true,
			Error: fmt.Sprintf("poll preheat job %d: %s", job.ID, resp.status)}
	}
	return d.pollAgain(job, now, a, "poll: "+resp.status)
}

// pollAgain schedules the next poll of a job still running (or whose poll failed for
// a passing reason), or fails the delivery past the job's deadline. Intermediate polls
// leave no attempt row and are not counted as attempts.
func (d *Deliverer) pollAgain(job PreheatJob, now time.Time, a Attempt, problem string) Outcome {
	if !now.Before(job.Deadline) {
		if a.Error == "" && problem != "" {
			a.Error = problem
		}
		return Outcome{Attempt: a, State: StateFailed, Job: job.String(), Failed: true,
			Error: fmt.Sprintf("preheat job %s: not finished after %v; the job is left to the manager", job.label(), job.Deadline.Sub(job.Created).Round(time.Second))}
	}
	return Outcome{State: StatePending, NextAt: d.nextPoll(job, now), Job: job.String(), Error: problem, Skip: true, Uncounted: true}
}

// jobEnded records the job's final state as the delivery's outcome.
func (d *Deliverer) jobEnded(a Attempt, job PreheatJob) Outcome {
	if job.State == jobSuccess {
		return Outcome{Attempt: a, State: StateDelivered, Job: job.String()}
	}
	return Outcome{Attempt: a, State: StateFailed, Job: job.String(), Failed: true, Error: "preheat job " + job.label()}
}

// nextPoll is when job is polled next: PollInterval doubled per poll, up to a minute,
// never after the deadline (so a timeout is noticed on time).
func (d *Deliverer) nextPoll(job PreheatJob, now time.Time) time.Time {
	first := d.PollInterval
	if first <= 0 {
		first = defaultPollInterval
	}
	wait := min(first<<min(job.Polls, 16), maxPollInterval)
	if next := now.Add(wait); next.Before(job.Deadline) {
		return next
	}
	return job.Deadline
}

func (j PreheatJob) String() string {
	b, _ := json.Marshal(j)
	return string(b)
}

func (j PreheatJob) label() string {
	if j.State == "" {
		return strconv.FormatUint(j.ID, 10)
	}
	return fmt.Sprintf("%d %s", j.ID, j.State)
}

// permanent reports whether a manager's answer will not change by asking again: the
// request or the token is wrong, or the API is not there.
func permanent(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed,
		http.StatusUnprocessableEntity:
		return true
	}
	return false
}

// managerAnswer is the head of a manager's answer.
type managerAnswer struct {
	StatusCode int
	status     string
	header     http.Header
	body       string
}

// managerCall sends one request to the manager and describes it as an attempt: the
// token and custom header values redacted, the answer's body without the job's args
// (which echo the pull token) and with any secret replaced.
func (d *Deliverer) managerCall(ctx context.Context, h Hook, method, u string, body []byte, pat, pull string) (*managerAnswer, Attempt, error) {
	a := Attempt{Started: d.now(), RequestHeaders: map[string]string{}}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		a.Error = err.Error()
		return nil, a, err
	}
	_, headers, err := Open(d.Keyring, h)
	if err != nil {
		a.Error = err.Error()
		return nil, a, err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	ua := d.UserAgent
	if ua == "" {
		ua = "hubctl-webhook"
	}
	req.Header.Set("User-Agent", ua)
	if pat != "" {
		req.Header.Set("Authorization", "Bearer "+pat)
	}
	for k, v := range req.Header {
		a.RequestHeaders[k] = strings.Join(v, ", ")
	}
	for k := range headers {
		a.RequestHeaders[http.CanonicalHeaderKey(k)] = Redacted
	}
	if pat != "" {
		a.RequestHeaders["Authorization"] = Redacted
	}
	start := time.Now()
	resp, err := d.Client.Do(req)
	a.Duration = time.Since(start)
	if err != nil {
		a.Error = err.Error()
		if errors.Is(err, ErrForbiddenAddress) {
			a.Error = h.URL + ": " + guardDetail(err).Error()
		}
		return nil, a, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	ans := &managerAnswer{StatusCode: resp.StatusCode, status: resp.Status, header: resp.Header, body: string(raw)}
	a.Status = resp.StatusCode
	a.ResponseBody = scrubJob(raw, pat, pull)
	a.ResponseHeaders = map[string]string{}
	for k, v := range resp.Header {
		if len(a.ResponseHeaders) >= 32 {
			break
		}
		a.ResponseHeaders[k] = truncate(strings.Join(v, ", "), 512)
	}
	return ans, a, nil
}

// scrubJob returns what of a manager's answer is stored: a job without its args (they
// carry the pull token's header), other bodies as they are, and in either any of the
// secrets replaced, cut to MaxResponseBody.
func scrubJob(raw []byte, secrets ...string) string {
	s := string(raw)
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) == nil {
		if _, ok := m["args"]; ok {
			delete(m, "args")
			b, _ := json.Marshal(m)
			s = string(b)
		}
	}
	for _, x := range secrets {
		if x != "" {
			s = strings.ReplaceAll(s, x, Redacted)
		}
	}
	return truncate(s, MaxResponseBody)
}
