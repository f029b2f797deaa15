// Package dockerdaemon reads images from and loads images into the Docker engine
// through its HTTP API (docker save and docker load), as an imagestore.Source and
// imagestore.Target.
package dockerdaemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/hubctl/hubctl/internal/imagestore"
)

// DefaultHost is the engine's address when DOCKER_HOST is not set.
const DefaultHost = "unix:///var/run/docker.sock"

// maxAPIVersion is the newest API version the client speaks; it asks for
// min(engine's version, this).
const maxAPIVersion = "1.41"

// ErrUnreachable is the engine not answering at its address.
var ErrUnreachable = errors.New("cannot reach the Docker engine")

// Client talks to one Docker engine. It is safe for concurrent use.
type Client struct {
	host    string // DOCKER_HOST as given, for messages
	baseURL string // scheme and host of requests, before the version
	http    *http.Client

	mu      sync.Mutex
	version string // negotiated API version, empty until the first ping
}

// New returns a client for the engine DOCKER_HOST names (unix:///var/run/docker.sock
// by default, or tcp://host:port). With DOCKER_TLS_VERIFY or DOCKER_CERT_PATH set it
// uses TLS with ca.pem, cert.pem and key.pem from DOCKER_CERT_PATH (~/.docker by
// default). It does no I/O: the API version is negotiated on the first request.
func New() (*Client, error) {
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = DefaultHost
	}
	u, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("DOCKER_HOST %q: %w", host, err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	c := &Client{host: host, http: &http.Client{Transport: tr}}
	switch u.Scheme {
	case "unix":
		sock := u.Path
		if sock == "" {
			return nil, fmt.Errorf("DOCKER_HOST %q: no socket path", host)
		}
		tr.Proxy = nil // a socket is never reached through a proxy
		var d net.Dialer
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", sock)
		}
		// The host is a placeholder; requests go to the socket.
		c.baseURL = "http://docker"
	case "tcp", "http", "https":
		if u.Host == "" {
			return nil, fmt.Errorf("DOCKER_HOST %q: no host:port", host)
		}
		scheme := "http"
		cfg, err := tlsConfigFromEnv()
		if err != nil {
			return nil, err
		}
		if cfg != nil || u.Scheme == "https" {
			scheme = "https"
			tr.TLSClientConfig = cfg
		}
		c.baseURL = scheme + "://" + u.Host
	default:
		return nil, fmt.Errorf("DOCKER_HOST %q: scheme %q is not supported (use unix:// or tcp://)", host, u.Scheme)
	}
	return c, nil
}

// tlsConfigFromEnv follows the docker CLI: TLS when DOCKER_TLS_VERIFY or
// DOCKER_CERT_PATH is set, the server's certificate checked against ca.pem only when
// DOCKER_TLS_VERIFY is set, a client certificate when cert.pem and key.pem exist.
func tlsConfigFromEnv() (*tls.Config, error) {
	verify := os.Getenv("DOCKER_TLS_VERIFY") != ""
	dir := os.Getenv("DOCKER_CERT_PATH")
	if !verify && dir == "" {
		return nil, nil
	}
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("DOCKER_TLS_VERIFY: no DOCKER_CERT_PATH and %w", err)
		}
		dir = filepath.Join(home, ".docker")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: !verify}
	if verify {
		ca, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
		if err != nil {
			return nil, fmt.Errorf("DOCKER_TLS_VERIFY: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, fmt.Errorf("DOCKER_TLS_VERIFY: %s holds no certificate", filepath.Join(dir, "ca.pem"))
		}
		cfg.RootCAs = pool
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if _, err := os.Stat(certFile); err == nil {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("DOCKER_CERT_PATH: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Host returns the engine address the client uses, as DOCKER_HOST spells it.
func (c *Client) Host() string { return c.host }

// Ping checks that the engine answers and negotiates the API version.
func (c *Client) Ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.baseURL+"/_ping", nil)
	if err != nil {
		return err
	}
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode != http.StatusOK {
		return c.statusError(resp, "")
	}
	v := resp.Header.Get("API-Version")
	if v == "" {
		// Engines older than 1.25 do not send it; 1.24 is what they all speak.
		v = "1.24"
	}
	if versionLess(maxAPIVersion, v) {
		v = maxAPIVersion
	}
	c.mu.Lock()
	c.version = v
	c.mu.Unlock()
	return nil
}

// apiVersion returns the negotiated version, pinging the engine the first time.
func (c *Client) apiVersion(ctx context.Context) (string, error) {
	c.mu.Lock()
	v := c.version
	c.mu.Unlock()
	if v != "" {
		return v, nil
	}
	if err := c.Ping(ctx); err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version, nil
}

// versionLess compares API versions ("1.41") numerically.
func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(pa), len(pb)) {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// request builds a request for path under the negotiated version ("/images/json").
func (c *Client) request(ctx context.Context, method, path string, query url.Values, body io.Reader) (*http.Request, error) {
	v, err := c.apiVersion(ctx)
	if err != nil {
		return nil, err
	}
	u := c.baseURL + "/v" + v + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	return http.NewRequestWithContext(ctx, method, u, body)
}

// send does the request, telling a dead engine apart from other failures.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err == nil {
		return resp, nil
	}
	if ctxErr := req.Context().Err(); ctxErr != nil {
		return nil, ctxErr
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return nil, fmt.Errorf("%w at %s: %v (set DOCKER_HOST to use another engine)", ErrUnreachable, c.host, opErr.Err)
	}
	return nil, fmt.Errorf("docker engine at %s: %w", c.host, err)
}

// statusError turns an error response into an error carrying the engine's message.
func (c *Client) statusError(resp *http.Response, what string) error {
	var body struct {
		Message string `json:"message"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	msg := strings.TrimSpace(string(raw))
	if json.Unmarshal(raw, &body) == nil && body.Message != "" {
		msg = body.Message
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &EngineError{Status: resp.StatusCode, Message: msg, What: what}
}

// EngineError is an error response from the engine.
type EngineError struct {
	Status  int    // HTTP status
	Message string // the engine's message
	What    string // what was asked for, such as an image name; may be empty
}

// Error says what the engine refused and why.
func (e *EngineError) Error() string {
	if e.What != "" {
		return fmt.Sprintf("docker engine: %s: %s (HTTP %d)", e.What, e.Message, e.Status)
	}
	return fmt.Sprintf("docker engine: %s (HTTP %d)", e.Message, e.Status)
}

// Summary is the refusal in one line for people: an image the engine lacks is named
// once, with where to look.
func (e *EngineError) Summary() string {
	if e.Status == http.StatusNotFound {
		if what := strings.TrimPrefix(e.What, "image "); what != "" && what != e.What {
			return fmt.Sprintf("the Docker engine has no image %s ('docker images' lists what it has)", what)
		}
	}
	return e.Error()
}

// Unwrap makes a 404 match imagestore.ErrNotFound.
func (e *EngineError) Unwrap() error {
	if e.Status == http.StatusNotFound {
		return imagestore.ErrNotFound
	}
	return nil
}
