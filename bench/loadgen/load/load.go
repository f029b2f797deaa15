// Package load is a load generator for OCI registries: many concurrent clients, each
// signed in with the Docker token flow, mixing pushes of small images, pulls, manifest
// HEADs and tag lists for a fixed time, over the raw distribution API. It measures
// requests per second, latency percentiles per kind of request and errors. bench/loadgen
// runs it against hubctl serve and the CNCF distribution registry; an e2e test runs a
// short version in CI.
package load

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a run.
type Options struct {
	// Target is the registry's base URL (http://127.0.0.1:5000).
	Target string
	// Clients run concurrently, each with its own connections.
	Clients int
	// Duration is how long the mixed load runs (after a seed push per repository).
	Duration time.Duration
	// Username and Password sign in at the token realm the registry names; empty
	// means anonymous. With Accounts > 1, Username holds a %d: client i signs in as
	// fmt.Sprintf(Username, i%Accounts), so per-account limits see many accounts as
	// a real crowd of clients would be.
	Username, Password string
	Accounts           int
	// Namespace holds the repositories (default "loadgen").
	Namespace string
	// Repositories is how many repositories the clients share (default Clients/10+1).
	Repositories int
	// Weights of push, pull, HEAD and tag list (default 1, 4, 4, 1).
	Push, Pull, Head, Tags int
	// LayerSize is the size of each pushed image's one layer (default 4 KiB).
	LayerSize int
	// TLS, when set, is the client TLS configuration (a CA to trust).
	TLS *tls.Config
}

// Kinds of requests measured.
const (
	KindBlobUpload  = "blob_upload"
	KindManifestPut = "manifest_put"
	KindManifestGet = "manifest_get"
	KindBlobGet     = "blob_get"
	KindHead        = "manifest_head"
	KindTags        = "tags_list"
	KindToken       = "token"
)

// Stats are one kind's figures.
type Stats struct {
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	P50ms    float64 `json:"p50_ms"`
	P90ms    float64 `json:"p90_ms"`
	P99ms    float64 `json:"p99_ms"`
	Maxms    float64 `json:"max_ms"`
}

// Result is what a run measured.
type Result struct {
	Target   string  `json:"target"`
	Clients  int     `json:"clients"`
	Seconds  float64 `json:"seconds"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	// RequestsPerSecond counts every HTTP request of the timed part.
	RequestsPerSecond float64 `json:"requests_per_second"`
	// Overall are the latencies of every request together.
	Overall Stats            `json:"overall"`
	Kinds   map[string]Stats `json:"kinds"`
	// Pushes and Pulls count whole images.
	Pushes int64 `json:"pushes"`
	Pulls  int64 `json:"pulls"`
	// ErrorSamples are the first errors seen, for the report.
	ErrorSamples []string `json:"error_samples,omitempty"`
}

// Run applies the load and returns the figures. An error means the run could not
// start (no registry, no sign-in); failed requests during the run are counted in the
// result, not returned.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Clients <= 0 {
		o.Clients = 20
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Namespace == "" {
		o.Namespace = "loadgen"
	}
	if o.Repositories <= 0 {
		o.Repositories = o.Clients/10 + 1
	}
	if o.Push+o.Pull+o.Head+o.Tags == 0 {
		o.Push, o.Pull, o.Head, o.Tags = 1, 4, 4, 1
	}
	if o.LayerSize <= 0 {
		o.LayerSize = 4 << 10
	}
	base, err := url.Parse(strings.TrimSuffix(o.Target, "/"))
	if err != nil || base.Host == "" {
		return Result{}, fmt.Errorf("target %q is not a URL", o.Target)
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2 * o.Clients,
		MaxIdleConnsPerHost: 2 * o.Clients,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		TLSClientConfig:     o.TLS,
		ForceAttemptHTTP2:   false,
	}
	defer tr.CloseIdleConnections()
	r := &runner{o: o, base: base.String(), hc: &http.Client{Transport: tr, Timeout: 60 * time.Second},
		lat: map[string]*latencies{}, tokens: map[string]string{}, signing: map[string]*sync.Mutex{}, refresh: map[int]string{}}
	if err := r.discover(ctx); err != nil {
		return Result{}, err
	}
	// Seed: one image per repository, so pulls have something from the first second.
	for i := 0; i < o.Repositories; i++ {
		if _, err := r.push(ctx, 0, r.repo(i), "seed"); err != nil {
			return Result{}, fmt.Errorf("seed %s: %w", r.repo(i), err)
		}
		r.images[r.repo(i)] = append(r.images[r.repo(i)], "seed")
	}
	r.reset()

	runCtx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < o.Clients; c++ {
		wg.Go(func() { r.client(runCtx, c) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	return r.result(elapsed), nil
}

type latencies struct {
	mu     sync.Mutex
	d      []time.Duration
	errors int64
}

type runner struct {
	o    Options
	base string
	hc   *http.Client

	realm, service string

	mu      sync.Mutex
	lat     map[string]*latencies
	tokens  map[string]string // account and repository → token
	signing map[string]*sync.Mutex
	loginMu sync.Mutex
	refresh map[int]string // account → refresh token
	images  map[string][]string
	errs    []string
	pushes  atomic.Int64
	pulls   atomic.Int64
}

func (r *runner) repo(i int) string { return fmt.Sprintf("%s/repo-%d", r.o.Namespace, i) }

func (r *runner) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lat = map[string]*latencies{}
	r.errs = nil
	r.pushes.Store(0)
	r.pulls.Store(0)
}

// discover reads the registry's challenge: the token realm, or none.
func (r *runner) discover(ctx context.Context) error {
	r.images = map[string][]string{}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/v2/", nil)
	resp, err := r.hc.Do(req)
	if err != nil {
		return fmt.Errorf("GET /v2/: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	ch := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(strings.ToLower(ch), "bearer ") {
		return fmt.Errorf("GET /v2/: %s, challenge %q: want 200 or a Bearer challenge", resp.Status, ch)
	}
	for _, part := range strings.Split(ch[len("bearer "):], ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		v = strings.Trim(v, `"`)
		switch strings.ToLower(k) {
		case "realm":
			r.realm = v
		case "service":
			r.service = v
		}
	}
	if r.realm == "" {
		return fmt.Errorf("challenge %q names no realm", ch)
	}
	return nil
}

// token returns a token for repo (pull and push) for the client's account: the cached
// one unless it is failed (refused with 401: expired), else a new one. One sign-in per
// account and repository runs at a time, the others wait for it, as the clients of
// one machine sharing a credential helper would; a 429 from the sign-in guard is
// waited out as its Retry-After says.
func (r *runner) token(ctx context.Context, acct int, repo, failed string) (string, error) {
	if r.realm == "" {
		return "", nil
	}
	if r.o.Accounts > 1 {
		acct %= r.o.Accounts
	} else {
		acct = 0
	}
	key := fmt.Sprint(acct, " ", repo)
	r.mu.Lock()
	lock := r.signing[key]
	if lock == nil {
		lock = &sync.Mutex{}
		r.signing[key] = lock
	}
	r.mu.Unlock()
	lock.Lock()
	defer lock.Unlock()
	r.mu.Lock()
	tok, ok := r.tokens[key]
	r.mu.Unlock()
	if ok && tok != failed {
		return tok, nil
	}
	user := r.o.Username
	if r.o.Accounts > 1 {
		user = fmt.Sprintf(user, acct)
	}
	// As docker after a login: the password once per account for a refresh token,
	// then a token per repository for the refresh token (no password check).
	refresh, err := r.refreshToken(ctx, acct, user)
	if err != nil {
		return "", err
	}
	scope := "repository:" + repo + ":pull,push"
	q := url.Values{"service": {r.service}, "scope": {scope}}
	for attempt := 1; ; attempt++ {
		var req *http.Request
		if refresh != "" {
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "service": {r.service},
				"scope": {scope}, "client_id": {"loadgen"}}
			req, _ = http.NewRequestWithContext(ctx, http.MethodPost, r.realm, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			req, _ = http.NewRequestWithContext(ctx, http.MethodGet, r.realm+"?"+q.Encode(), nil)
			if user != "" {
				req.SetBasicAuth(user, r.o.Password)
			}
		}
		start := time.Now()
		resp, err := r.hc.Do(req)
		if err != nil {
			r.record(KindToken, start, err)
			return "", err
		}
		var body struct {
			Token       string `json:"token"`
			AccessToken string `json:"access_token"`
		}
		if resp.StatusCode == http.StatusTooManyRequests && attempt < 10 {
			wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			resp.Body.Close()
			r.record(KindToken, start, nil)
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(time.Duration(max(wait, 1)) * time.Second):
			}
			continue
		}
		if resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("token: %s", resp.Status)
		} else if err = json.NewDecoder(resp.Body).Decode(&body); err == nil && body.Token == "" {
			body.Token = body.AccessToken
		}
		resp.Body.Close()
		r.record(KindToken, start, err)
		if err != nil {
			return "", err
		}
		r.mu.Lock()
		r.tokens[key] = body.Token
		r.mu.Unlock()
		return body.Token, nil
	}
}

// refreshToken signs acct in with its password once (offline_token=true) and keeps
// the refresh token the token service hands out; "" when it hands out none (then
// every token request carries the password).
func (r *runner) refreshToken(ctx context.Context, acct int, user string) (string, error) {
	if user == "" {
		return "", nil
	}
	r.loginMu.Lock()
	defer r.loginMu.Unlock()
	if t, ok := r.refresh[acct]; ok {
		return t, nil
	}
	q := url.Values{"service": {r.service}, "offline_token": {"true"}, "client_id": {"loadgen"}}
	for attempt := 1; ; attempt++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.realm+"?"+q.Encode(), nil)
		req.SetBasicAuth(user, r.o.Password)
		start := time.Now()
		resp, err := r.hc.Do(req)
		if err != nil {
			r.record(KindToken, start, err)
			return "", err
		}
		var body struct {
			RefreshToken string `json:"refresh_token"`
		}
		if resp.StatusCode == http.StatusTooManyRequests && attempt < 10 {
			wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			resp.Body.Close()
			r.record(KindToken, start, nil)
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(time.Duration(max(wait, 1)) * time.Second):
			}
			continue
		}
		if resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("sign in as %s: %s", user, resp.Status)
		} else {
			err = json.NewDecoder(resp.Body).Decode(&body)
		}
		resp.Body.Close()
		r.record(KindToken, start, err)
		if err != nil {
			return "", err
		}
		r.refresh[acct] = body.RefreshToken
		return body.RefreshToken, nil
	}
}

// do sends one request with the repository's token, signing in again once on a 401
// (an expired token), and checks the status.
func (r *runner) do(ctx context.Context, acct int, kind, repo, method, path string, body []byte, hdr map[string]string, want ...int) (*http.Response, []byte, error) {
	failed := ""
	for attempt := 0; ; attempt++ {
		tok, err := r.token(ctx, acct, repo, failed)
		if err != nil {
			return nil, nil, err
		}
		u := path
		if !strings.HasPrefix(path, "http") {
			u = r.base + path
		}
		req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
		if err != nil {
			return nil, nil, err
		}
		if body == nil {
			req.Body, req.ContentLength = http.NoBody, 0
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		start := time.Now()
		resp, err := r.hc.Do(req)
		var b []byte
		if err == nil {
			b, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err == nil && resp.StatusCode == http.StatusUnauthorized && attempt == 0 && r.realm != "" {
			failed = tok
			continue // the token expired: sign in again, not an error
		}
		if err == nil && !slices.Contains(want, resp.StatusCode) {
			err = fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, truncate(b, 200))
		}
		if ctx.Err() != nil && err != nil {
			// The run ended under this request: neither a measurement nor an error.
			return nil, nil, ctx.Err()
		}
		r.record(kind, start, err)
		return resp, b, err
	}
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return strings.TrimSpace(string(b))
}

func (r *runner) record(kind string, start time.Time, err error) {
	d := time.Since(start)
	r.mu.Lock()
	l := r.lat[kind]
	if l == nil {
		l = &latencies{}
		r.lat[kind] = l
	}
	if err != nil && len(r.errs) < 10 {
		r.errs = append(r.errs, kind+": "+err.Error())
	}
	r.mu.Unlock()
	l.mu.Lock()
	l.d = append(l.d, d)
	if err != nil {
		l.errors++
	}
	l.mu.Unlock()
}

// push uploads a new small image (a unique layer and config) under tag.
func (r *runner) push(ctx context.Context, acct int, repo, tag string) (string, error) {
	layer := make([]byte, r.o.LayerSize)
	_, _ = rand.Read(layer)
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]}}`, sha(layer)))
	for _, b := range [][]byte{layer, cfg} {
		if err := r.uploadBlob(ctx, acct, repo, b); err != nil {
			return "", err
		}
	}
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		sha(cfg), len(cfg), sha(layer), len(layer))
	_, _, err := r.do(ctx, acct, KindManifestPut, repo, http.MethodPut, "/v2/"+repo+"/manifests/"+tag, []byte(m),
		map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, http.StatusCreated)
	if err != nil {
		return "", err
	}
	r.pushes.Add(1)
	return sha([]byte(m)), nil
}

// uploadBlob pushes b monolithically: POST ?digest= with the body where the registry
// completes it (201), else POST then PUT (distribution answers the POST 202).
func (r *runner) uploadBlob(ctx context.Context, acct int, repo string, b []byte) error {
	d := sha(b)
	resp, _, err := r.do(ctx, acct, KindBlobUpload, repo, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+d, b,
		map[string]string{"Content-Type": "application/octet-stream"}, http.StatusCreated, http.StatusAccepted)
	if err != nil || resp.StatusCode == http.StatusCreated {
		return err
	}
	loc, err := resp.Location()
	if err != nil {
		return fmt.Errorf("upload location: %w", err)
	}
	q := loc.Query()
	q.Set("digest", d)
	loc.RawQuery = q.Encode()
	_, _, err = r.do(ctx, acct, KindBlobUpload, repo, http.MethodPut, loc.String(), b,
		map[string]string{"Content-Type": "application/octet-stream"}, http.StatusCreated)
	return err
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// pull reads an image's manifest and its blobs.
func (r *runner) pull(ctx context.Context, acct int, repo, tag string) error {
	_, raw, err := r.do(ctx, acct, KindManifestGet, repo, http.MethodGet, "/v2/"+repo+"/manifests/"+tag, nil,
		map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"}, http.StatusOK)
	if err != nil {
		return err
	}
	var m struct {
		Config struct{ Digest string }   `json:"config"`
		Layers []struct{ Digest string } `json:"layers"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	for _, d := range append([]string{m.Config.Digest}, func() []string {
		var out []string
		for _, l := range m.Layers {
			out = append(out, l.Digest)
		}
		return out
	}()...) {
		_, b, err := r.do(ctx, acct, KindBlobGet, repo, http.MethodGet, "/v2/"+repo+"/blobs/"+d, nil, nil, http.StatusOK)
		if err != nil {
			return err
		}
		if sha(b) != d {
			err := fmt.Errorf("blob %s: content differs", d)
			r.mu.Lock()
			if len(r.errs) < 10 {
				r.errs = append(r.errs, err.Error())
			}
			l := r.lat[KindBlobGet]
			r.mu.Unlock()
			l.mu.Lock()
			l.errors++
			l.mu.Unlock()
			return err
		}
	}
	r.pulls.Add(1)
	return nil
}

// client runs one client's mix until ctx ends.
func (r *runner) client(ctx context.Context, id int) {
	rng := mrand.New(mrand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))
	total := r.o.Push + r.o.Pull + r.o.Head + r.o.Tags
	n := 0
	for ctx.Err() == nil {
		repo := r.repo(rng.IntN(r.o.Repositories))
		r.mu.Lock()
		tags := r.images[repo]
		tag := tags[rng.IntN(len(tags))]
		r.mu.Unlock()
		pick := rng.IntN(total)
		switch {
		case pick < r.o.Push:
			n++
			newTag := fmt.Sprintf("c%d-%d", id, n)
			if _, err := r.push(ctx, id, repo, newTag); err == nil {
				r.mu.Lock()
				// Keep each repository's set small: pulls of recent images.
				if len(r.images[repo]) >= 32 {
					r.images[repo] = r.images[repo][1:]
				}
				r.images[repo] = append(r.images[repo], newTag)
				r.mu.Unlock()
			}
		case pick < r.o.Push+r.o.Pull:
			_ = r.pull(ctx, id, repo, tag)
		case pick < r.o.Push+r.o.Pull+r.o.Head:
			_, _, _ = r.do(ctx, id, KindHead, repo, http.MethodHead, "/v2/"+repo+"/manifests/"+tag, nil,
				map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"}, http.StatusOK)
		default:
			_, _, _ = r.do(ctx, id, KindTags, repo, http.MethodGet, "/v2/"+repo+"/tags/list", nil, nil, http.StatusOK)
		}
	}
}

func (r *runner) result(elapsed time.Duration) Result {
	res := Result{Target: r.o.Target, Clients: r.o.Clients, Seconds: elapsed.Seconds(), Kinds: map[string]Stats{},
		Pushes: r.pushes.Load(), Pulls: r.pulls.Load()}
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []time.Duration
	for kind, l := range r.lat {
		st := stats(l.d)
		st.Errors = l.errors
		res.Kinds[kind] = st
		res.Errors += l.errors
		if kind != KindToken {
			res.Requests += st.Requests
			all = append(all, l.d...)
		}
	}
	res.Overall = stats(all)
	res.Overall.Errors = res.Errors
	res.RequestsPerSecond = float64(res.Requests) / elapsed.Seconds()
	res.ErrorSamples = r.errs
	return res
}

func stats(d []time.Duration) Stats {
	if len(d) == 0 {
		return Stats{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(p float64) float64 {
		i := int(p * float64(len(s)-1))
		return float64(s[i].Microseconds()) / 1000
	}
	return Stats{Requests: int64(len(s)), P50ms: at(0.5), P90ms: at(0.9), P99ms: at(0.99), Maxms: at(1)}
}
