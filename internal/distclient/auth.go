package distclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hubctl/hubctl/internal/credentials"
)

// registry is one registry's auth state: its challenge, learnt by one GET /v2/, and
// the tokens fetched for each set of scopes.
type registry struct {
	c    *Client
	host string
	base string

	// pingMu serialises the first contact; pinged is set once it succeeded. A failed
	// ping (a cancelled call, an outage) is tried again by the next request.
	pingMu sync.Mutex
	pinged bool
	scheme string // "bearer", "basic" or "" (no auth)
	params map[string]string
	creds  credentials.Credentials

	mu     sync.Mutex
	tokens map[string]token
	// fetches deduplicates concurrent token requests for the same scopes.
	fetches map[string]*tokenFetch
}

type token struct {
	value   string
	expires time.Time
}

type tokenFetch struct {
	done chan struct{}
	tok  token
	err  error
}

func (r *registry) ping(ctx context.Context) error {
	r.pingMu.Lock()
	defer r.pingMu.Unlock()
	if r.pinged {
		return nil
	}
	if err := r.doPing(ctx); err != nil {
		return err
	}
	r.pinged = true
	return nil
}

func (r *registry) doPing(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/v2/", nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", r.c.opts.UserAgent)
	var resp *http.Response
	for attempt := 1; ; attempt++ {
		resp, err = r.c.hc.Do(req)
		if err == nil && !retryableStatus(resp.StatusCode) {
			break
		}
		if attempt >= r.c.opts.MaxAttempts || (err != nil && !retryableErr(err)) {
			if err != nil {
				return fmt.Errorf("cannot reach registry %s: %w", r.host, err)
			}
			drain(resp)
			return fmt.Errorf("registry %s: GET /v2/: %s", r.host, resp.Status)
		}
		retryAfter := ""
		cause := err
		if err == nil {
			retryAfter = resp.Header.Get("Retry-After")
			cause = fmt.Errorf("GET /v2/: %s", resp.Status)
			drain(resp)
		}
		wait := backoff(attempt, retryAfter)
		if r.c.opts.OnRetry != nil {
			r.c.opts.OnRetry(ctx, RetryInfo{Method: http.MethodGet, URL: r.base + "/v2/", Attempt: attempt + 1, Wait: wait, Err: cause})
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusUnauthorized:
	default:
		return fmt.Errorf("registry %s: GET /v2/: unexpected %s (is it an OCI registry?)", r.host, resp.Status)
	}
	r.scheme, r.params = credentials.ParseChallenge(resp.Header.Get("WWW-Authenticate"))
	if r.scheme != "bearer" && r.scheme != "basic" {
		return fmt.Errorf("registry %s: GET /v2/: 401 without a Bearer or Basic challenge", r.host)
	}
	creds, err := r.c.opts.Credentials.Resolve(r.host)
	if err != nil {
		return err
	}
	r.creds = creds
	return nil
}

func scopeKey(scopes []string) string {
	s := slices.Clone(scopes)
	slices.Sort(s)
	return strings.Join(slices.Compact(s), " ")
}

// authorize sets the Authorization header the registry's challenge asks for.
func (r *registry) authorize(ctx context.Context, req *http.Request, scopes []string) error {
	switch r.scheme {
	case "":
		return nil
	case "basic":
		if !r.creds.IsAnonymous() {
			req.SetBasicAuth(r.creds.Username, r.creds.Password)
		}
		return nil
	}
	if req.URL.Host != strings.TrimPrefix(strings.TrimPrefix(r.base, "https://"), "http://") {
		// An upload Location on another host (a CDN or object store) gets no token.
		return nil
	}
	if r.creds.RegistryToken != "" {
		// A workflow job's token: sent as it is, asked for again every time since the
		// hub renews it in $HUBCTL_TOKEN_FILE while the step runs.
		creds, err := r.c.opts.Credentials.Resolve(r.host)
		if err != nil {
			return err
		}
		if creds.RegistryToken != "" {
			req.Header.Set("Authorization", "Bearer "+creds.RegistryToken)
			return nil
		}
	}
	tok, err := r.token(ctx, scopes)
	if err != nil {
		return err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return nil
}

func (r *registry) token(ctx context.Context, scopes []string) (string, error) {
	key := scopeKey(scopes)
	r.mu.Lock()
	if t, ok := r.tokens[key]; ok && time.Now().Before(t.expires) {
		r.mu.Unlock()
		return t.value, nil
	}
	if r.fetches == nil {
		r.fetches = map[string]*tokenFetch{}
	}
	if f, ok := r.fetches[key]; ok {
		r.mu.Unlock()
		select {
		case <-f.done:
			return f.tok.value, f.err
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	f := &tokenFetch{done: make(chan struct{})}
	r.fetches[key] = f
	r.mu.Unlock()

	// The fetch serves every request waiting for these scopes, so it must not end
	// when the request that started it is cancelled; it has a deadline of its own.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	f.tok, f.err = r.fetchToken(fctx, scopes)
	cancel()
	r.mu.Lock()
	delete(r.fetches, key)
	if f.err == nil {
		r.tokens[key] = f.tok
	}
	r.mu.Unlock()
	close(f.done)
	return f.tok.value, f.err
}

// invalidate forgets the token for scopes so the next request fetches a new one.
func (r *registry) invalidate(scopes []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.tokens, scopeKey(scopes))
}

type tokenResponse struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
}

// fetchToken asks the token service for scopes: OAuth2 POST with the refresh token
// when the login stored one (docker's identity token), else GET with Basic
// credentials, or anonymously.
func (r *registry) fetchToken(ctx context.Context, scopes []string) (token, error) {
	realm := r.params["realm"]
	u, err := url.Parse(realm)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return token{}, fmt.Errorf("registry %s: bearer challenge with unusable realm %q", r.host, realm)
	}
	var req *http.Request
	if r.creds.IdentityToken != "" {
		form := url.Values{}
		form.Set("grant_type", "refresh_token")
		form.Set("refresh_token", r.creds.IdentityToken)
		form.Set("service", r.params["service"])
		form.Set("client_id", "hubctl")
		if len(scopes) > 0 {
			form.Set("scope", strings.Join(scopes, " "))
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
		if err != nil {
			return token{}, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		q := u.Query()
		if s := r.params["service"]; s != "" {
			q.Set("service", s)
		}
		for _, s := range scopes {
			q.Add("scope", s)
		}
		u.RawQuery = q.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return token{}, err
		}
		if !r.creds.IsAnonymous() {
			req.SetBasicAuth(r.creds.Username, r.creds.Password)
		}
	}
	req.Header.Set("User-Agent", r.c.opts.UserAgent)
	resp, err := r.c.hc.Do(req)
	if err != nil {
		return token{}, fmt.Errorf("token request to %s: %w", u.Host, err)
	}
	defer drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden:
		hint := fmt.Sprintf("run 'hubctl login %s'", r.host)
		if !r.creds.IsAnonymous() {
			hint = fmt.Sprintf("the stored login for %s was refused; run 'hubctl login %s' again", r.host, r.host)
		}
		return token{}, fmt.Errorf("%w: %s", ErrUnauthorized, hint)
	default:
		return token{}, fmt.Errorf("token request to %s: unexpected %s", u.Host, resp.Status)
	}
	var tr tokenResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tr); err != nil {
		return token{}, fmt.Errorf("token response from %s: %w", u.Host, err)
	}
	v := tr.Token
	if v == "" {
		v = tr.AccessToken
	}
	if v == "" {
		return token{}, fmt.Errorf("token response from %s carries no token", u.Host)
	}
	life := time.Duration(tr.ExpiresIn) * time.Second
	if life <= 0 {
		life = 60 * time.Second // the token spec's default
	}
	// Renew a little early so a token never expires in flight.
	return token{value: v, expires: time.Now().Add(life - min(life/5, 30*time.Second))}, nil
}

// PushScope is the token scope for pulling from and pushing to repo, for callers that
// check a blob they are about to upload under the same token as the upload.
func PushScope(repo string) string { return "repository:" + repo + ":pull,push" }

// Scope helpers for the Docker token spec.
func pullScope(repo string) string        { return "repository:" + repo + ":pull" }
func pushScope(repo string) string        { return PushScope(repo) }
func deleteScope(repo string) string      { return "repository:" + repo + ":delete" }
func catalogScope() string                { return "registry:catalog:*" }
func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
