package credentials

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/tlsconf"
)

// ErrInvalidCredentials is the registry refusing the username or password.
var ErrInvalidCredentials = errors.New("invalid username or password")

// VerifyOptions tune how Verify reaches the registry.
type VerifyOptions struct {
	// PlainHTTP talks HTTP instead of HTTPS. Loopback hosts always use HTTP.
	PlainHTTP bool
	// Client is the HTTP client; nil means one with a one-minute overall timeout.
	Client *http.Client
	// ClientID names the client to the token service (Docker token spec client_id).
	ClientID string
	// Trust adds the registry's CAs (certs.d, --ca-file); a loopback host with one is
	// reached over HTTPS.
	Trust *tlsconf.Trust
}

// VerifyResult is the outcome of a successful Verify.
type VerifyResult struct {
	// Credentials are what to store: the password replaced by the refresh token when
	// the token service issued one, as docker does.
	Credentials Credentials
	// NoAuth reports that the registry answered /v2/ without asking for credentials,
	// so nothing was actually checked.
	NoAuth bool
}

// Verify checks c against the registry at host the way `docker login` does: GET /v2/,
// then answer its challenge — Bearer with a token request (HTTP Basic, offline_token
// for a refresh token) or Basic with /v2/ again. A refusal wraps ErrInvalidCredentials.
func Verify(ctx context.Context, host string, c Credentials, opts VerifyOptions) (VerifyResult, error) {
	client := opts.Client
	if client == nil {
		client = &http.Client{Timeout: time.Minute}
	}
	client = opts.Trust.Client(client)
	clientID := opts.ClientID
	if clientID == "" {
		clientID = "hubctl"
	}
	regHost := RegistryHost(host)
	scheme := "https"
	if opts.PlainHTTP || (IsLoopback(regHost) && !opts.Trust.HasCA(regHost)) {
		scheme = "http"
	}
	base := scheme + "://" + regHost + "/v2/"
	fail := func(err error) (VerifyResult, error) {
		return VerifyResult{}, fmt.Errorf("login to %s failed: %w", NormalizeHost(host), err)
	}

	resp, err := get(ctx, client, base, nil)
	if err != nil {
		return fail(err)
	}
	drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
		return VerifyResult{Credentials: c, NoAuth: true}, nil
	case http.StatusUnauthorized:
	default:
		return fail(fmt.Errorf("GET %s: unexpected status %s", base, resp.Status))
	}

	scheme, params := ParseChallenge(resp.Header.Get("WWW-Authenticate"))
	switch scheme {
	case "bearer":
		tok, err := fetchToken(ctx, client, params, c, clientID)
		if err != nil {
			return fail(err)
		}
		out := c
		if tok.RefreshToken != "" {
			// A refresh token is worth more than the password: it can be revoked alone.
			out.Password = ""
			out.IdentityToken = tok.RefreshToken
		}
		return VerifyResult{Credentials: out}, nil
	case "basic":
		resp, err := get(ctx, client, base, func(r *http.Request) { r.SetBasicAuth(c.Username, c.Password) })
		if err != nil {
			return fail(err)
		}
		drain(resp)
		switch resp.StatusCode {
		case http.StatusOK:
			return VerifyResult{Credentials: c}, nil
		case http.StatusUnauthorized, http.StatusForbidden:
			return fail(ErrInvalidCredentials)
		}
		return fail(fmt.Errorf("GET %s: unexpected status %s", base, resp.Status))
	}
	return fail(fmt.Errorf("GET %s: 401 without a Bearer or Basic challenge", base))
}

// tokenResponse is the Docker token spec's answer; token and access_token are synonyms.
type tokenResponse struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

func fetchToken(ctx context.Context, client *http.Client, params map[string]string, c Credentials, clientID string) (tokenResponse, error) {
	realm := params["realm"]
	u, err := url.Parse(realm)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return tokenResponse{}, fmt.Errorf("bearer challenge with unusable realm %q", realm)
	}
	q := u.Query()
	if s := params["service"]; s != "" {
		q.Set("service", s)
	}
	q.Set("offline_token", "true")
	q.Set("client_id", clientID)
	u.RawQuery = q.Encode()

	resp, err := get(ctx, client, u.String(), func(r *http.Request) { r.SetBasicAuth(c.Username, c.Password) })
	if err != nil {
		return tokenResponse{}, err
	}
	defer drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden:
		return tokenResponse{}, ErrInvalidCredentials
	default:
		return tokenResponse{}, fmt.Errorf("token request to %s: unexpected status %s", u.Redacted(), resp.Status)
	}
	var tok tokenResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tok); err != nil {
		return tokenResponse{}, fmt.Errorf("token response from %s: %w", u.Host, err)
	}
	if tok.Token == "" && tok.AccessToken == "" {
		return tokenResponse{}, fmt.Errorf("token response from %s carries no token", u.Host)
	}
	return tok, nil
}

func get(ctx context.Context, client *http.Client, u string, setup func(*http.Request)) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "hubctl")
	if setup != nil {
		setup(req)
	}
	return client.Do(req)
}

// drain reads what is left of a small body so the connection can be reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

// ParseChallenge splits a WWW-Authenticate value into its lower-cased scheme and its
// parameters (RFC 7235 auth-params, values quoted or bare).
func ParseChallenge(h string) (string, map[string]string) {
	h = strings.TrimSpace(h)
	scheme, rest, _ := strings.Cut(h, " ")
	params := map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; {
		name, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		name = strings.ToLower(strings.TrimSpace(name))
		after = strings.TrimLeft(after, " ")
		var val string
		if strings.HasPrefix(after, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(after) && after[i] != '"'; i++ {
				if after[i] == '\\' && i+1 < len(after) {
					i++
				}
				b.WriteByte(after[i])
			}
			val, rest = b.String(), after[min(i+1, len(after)):]
		} else {
			val, rest, _ = strings.Cut(after, ",")
			val = strings.TrimSpace(val)
			rest = "," + rest
		}
		params[name] = val
		rest = strings.TrimLeft(strings.TrimSpace(rest), ",")
		rest = strings.TrimSpace(rest)
	}
	return strings.ToLower(scheme), params
}

// IsLoopback reports whether host[:port] names this machine (localhost, 127.0.0.0/8,
// ::1), where registries run over plain HTTP as docker allows.
func IsLoopback(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
