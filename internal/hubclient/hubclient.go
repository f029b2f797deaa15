// Package hubclient is a client for the hub's JSON API (/api/v1/ of `hubctl serve`,
// documented in docs/api.md), authenticated with the credentials `hubctl login` or
// `docker login` stored for the registry host. Request and response bodies are the
// value types of package hubtypes, which the server shares.
package hubclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hubctl/hubctl/internal/credentials"
	"github.com/hubctl/hubctl/internal/tlsconf"
)

// CredentialSource finds the stored login for a registry host; *credentials.Store is
// one.
type CredentialSource interface {
	Get(host string) (credentials.Credentials, error)
}

// Options configure a Client.
type Options struct {
	// Host is the registry as the user typed it (host[:port], or a URL).
	Host string
	// Insecure talks plain HTTP to a host that is not loopback; loopback hosts
	// (localhost, 127.0.0.0/8, ::1) always use HTTP, as docker allows.
	Insecure bool
	// Credentials supplies the login; required.
	Credentials CredentialSource
	// HTTPClient sends the requests; nil means one with a one-minute timeout.
	HTTPClient *http.Client
	// Trust adds the registry's CAs (certs.d, --ca-file) to the client's transport
	// when HTTPClient is nil or has no transport of its own; a loopback host with a CA
	// is reached over HTTPS.
	Trust *tlsconf.Trust
}

// Client calls the hub API of one registry. It is safe for concurrent use.
type Client struct {
	host  string
	base  string
	creds CredentialSource
	http  *http.Client

	once    sync.Once
	authErr error
	auth    func(*http.Request)
}

// New returns a client for the hub API of the registry at o.Host. Credentials are
// read on the first call.
func New(o Options) (*Client, error) {
	if strings.TrimSpace(o.Host) == "" {
		return nil, errors.New("no registry host given")
	}
	if o.Credentials == nil {
		return nil, errors.New("hub client: no credential source")
	}
	host := credentials.RegistryHost(o.Host)
	scheme := "https"
	if o.Insecure || (credentials.IsLoopback(host) && !o.Trust.HasCA(host)) {
		scheme = "http"
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: time.Minute}
	}
	hc = o.Trust.Client(hc)
	return &Client{host: host, base: scheme + "://" + host, creds: o.Credentials, http: hc}, nil
}

// BaseURL is the scheme and host the client talks to, e.g. "http://127.0.0.1:5000".
func (c *Client) BaseURL() string { return c.base }

// Error is an error answer of the hub API.
type Error struct {
	Status  int
	Code    string
	Message string
	// Host is the registry, for the login hint of 401s.
	Host string
	// Detail is the error's detail as sent (JSON), nil when there was none: the
	// holder of a DEPLOY_LOCKED, for instance.
	Detail json.RawMessage
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	code := strings.ToLower(strings.ReplaceAll(e.Code, "_", " "))
	if code == "" {
		code = fmt.Sprintf("HTTP %d", e.Status)
	}
	s := code + ": " + msg
	if e.Status == http.StatusUnauthorized {
		s += fmt.Sprintf(": run 'hubctl login %s'", e.Host)
	}
	return s
}

// ErrNotLoggedIn is returned when no credentials are stored for the host.
var ErrNotLoggedIn = errors.New("not logged in")

// authenticate decides once how requests authenticate: Basic with a stored password
// (or access token), or Bearer with a registry token obtained with a stored refresh
// token (docker keeps a refresh token in place of the password when the token
// service issued one).
func (c *Client) authenticate(ctx context.Context) (func(*http.Request), error) {
	c.once.Do(func() {
		cr, err := c.creds.Get(c.host)
		if err != nil {
			c.authErr = err
			return
		}
		switch {
		case cr.Password != "":
			user, pass := cr.Username, cr.Password
			c.auth = func(r *http.Request) { r.SetBasicAuth(user, pass) }
		case cr.RegistryToken != "":
			// A workflow job's token, which the hub renews into a file: read again for
			// each request, the last one read kept when a read fails.
			tok := cr.RegistryToken
			var mu sync.Mutex
			c.auth = func(r *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				if cr, err := c.creds.Get(c.host); err == nil && cr.RegistryToken != "" {
					tok = cr.RegistryToken
				}
				r.Header.Set("Authorization", "Bearer "+tok)
			}
		case cr.IdentityToken != "":
			jwt, err := c.exchangeRefresh(ctx, cr.IdentityToken)
			if err != nil {
				c.authErr = err
				return
			}
			c.auth = func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+jwt) }
		default:
			c.authErr = fmt.Errorf("%w to %s: run 'hubctl login %s'", ErrNotLoggedIn, c.host, c.host)
		}
	})
	return c.auth, c.authErr
}

// exchangeRefresh trades a refresh token for a registry JWT at the OAuth2 endpoint
// of the Docker token spec. The service name comes from the registry's /v2/
// challenge, since the token must be addressed to it.
func (c *Client) exchangeRefresh(ctx context.Context, refresh string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v2/", nil)
	if err != nil {
		return "", err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("reach %s: %w", c.host, err)
	}
	drain(resp)
	service := challengeParam(resp.Header.Get("WWW-Authenticate"), "service")
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {"hubctl"}}
	if service != "" {
		form.Set("service", service)
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("token request to %s: %w", c.host, err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token request to %s: %w", c.host, c.errorOf(resp))
	}
	var tok struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tok); err != nil {
		return "", fmt.Errorf("token response from %s: %w", c.host, err)
	}
	if tok.Token == "" {
		tok.Token = tok.AccessToken
	}
	if tok.Token == "" {
		return "", fmt.Errorf("token response from %s carries no token", c.host)
	}
	return tok.Token, nil
}

// challengeParam returns one parameter of a WWW-Authenticate challenge, which is
// enough here: the service name is a plain token or a quoted string without quotes.
func challengeParam(h, name string) string {
	_, params, _ := strings.Cut(h, " ")
	for _, p := range strings.Split(params, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(k, name) {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// do sends a request to path (below /api/v1/) with in as the JSON body (nil for none)
// and decodes the answer into out (nil to discard it).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	auth, err := c.authenticate(ctx)
	if err != nil {
		return err
	}
	return c.send(ctx, method, "/api/v1/"+path, auth, in, out, 16<<20)
}

// send sends a request to path (absolute on the hub) with auth's credentials (none when
// nil) and in as the JSON body (nil for none), and decodes at most maxBody bytes of the
// answer into out (nil to discard it).
func (c *Client) send(ctx context.Context, method, path string, auth func(*http.Request), in, out any, maxBody int64) error {
	var body io.Reader
	contentType := "application/json"
	if raw, ok := in.(rawBody); ok {
		body, contentType = bytes.NewReader(raw.data), raw.contentType
	} else if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "hubctl")
	if auth != nil {
		auth(req)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode >= 300 {
		return c.errorOf(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// rawBody is a request body sent as it is, not as JSON.
type rawBody struct {
	data        []byte
	contentType string
}

// errorOf reads the distribution-style error body of a failed response.
func (c *Client) errorOf(resp *http.Response) error {
	e := &Error{Status: resp.StatusCode, Host: c.host}
	var b struct {
		Errors []struct {
			Code    string          `json:"code"`
			Message string          `json:"message"`
			Detail  json.RawMessage `json:"detail"`
		} `json:"errors"`
	}
	if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&b) == nil && len(b.Errors) > 0 {
		e.Code, e.Message = b.Errors[0].Code, b.Errors[0].Message
		if len(b.Errors[0].Detail) > 0 && string(b.Errors[0].Detail) != "null" {
			e.Detail = b.Errors[0].Detail
		}
	}
	return e
}

// drain reads what is left of a body so the connection can be reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

// seg escapes one path segment.
func seg(s string) string { return url.PathEscape(s) }
