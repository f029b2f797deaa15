package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Client drives a proxy's control channel: what `hubctl deploy` uses on each host.
type Client struct {
	base   *url.URL
	secret string
	http   *http.Client
}

// NewClient returns a client of the control channel at baseURL (http://HOST:PORT)
// with the proxy's secret. hc nil means http.DefaultClient's transport without a
// timeout: a deploy waits for health checks and drains, bounded by its context.
func NewClient(baseURL, secret string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("proxy control address %q: want http://HOST:PORT", clip(baseURL))
	}
	if len(secret) < MinSecretBytes {
		return nil, fmt.Errorf("the proxy control secret is %d bytes; it must be at least %d", len(secret), MinSecretBytes)
	}
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: u, secret: secret, http: hc}, nil
}

// APIError is an error answer of the control channel; errors.Is matches it with the
// sentinel of its code (ErrUnhealthy, ErrBusy, …).
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("proxy: %s", e.Message) }

// Is reports whether target is the sentinel of e's code.
func (e *APIError) Is(target error) bool { return target != nil && codeErr(e.Code) == target }

// Deploy sets the service's targets; see Proxy.Deploy.
func (c *Client) Deploy(ctx context.Context, service string, req DeployRequest) (DeployResult, error) {
	var res DeployResult
	return res, c.do(ctx, http.MethodPut, service, req, &res)
}

// Status returns one service.
func (c *Client) Status(ctx context.Context, service string) (Status, error) {
	var st Status
	return st, c.do(ctx, http.MethodGet, service, nil, &st)
}

// List returns every service.
func (c *Client) List(ctx context.Context) ([]Status, error) {
	var sts []Status
	return sts, c.do(ctx, http.MethodGet, "", nil, &sts)
}

// Remove stops routing to the service and drains its targets.
func (c *Client) Remove(ctx context.Context, service string) (RemoveResult, error) {
	var res RemoveResult
	return res, c.do(ctx, http.MethodDelete, service, nil, &res)
}

func (c *Client) do(ctx context.Context, method, service string, in, out any) error {
	u := c.base.JoinPath("v1", "services")
	if service != "" {
		if err := CheckServiceName(service); err != nil {
			return err
		}
		u = u.JoinPath(service)
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.secret)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("proxy control %s: %w", c.base.Host, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("proxy control %s: %w", c.base.Host, err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb errorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
			return &APIError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
		}
		return &APIError{Status: resp.StatusCode, Code: CodeInternal, Message: fmt.Sprintf("%s answered %s: %s", c.base.Host, resp.Status, strings.TrimSpace(clip(string(data))))}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("proxy control %s: bad answer: %w", c.base.Host, err)
	}
	return nil
}
