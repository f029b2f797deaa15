// Package tlsconf holds hubctl's TLS pieces that are not tied to one server or client:
// the client's per-registry trust (a docker-style certs.d folder and --ca-file), the
// self-signed CA that `hubctl serve --tls=self-signed` makes, and a certificate that is
// re-read from its files when they change.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Trust is how a client decides which certificate authorities a registry's certificate
// must chain to. The zero value trusts the system roots only.
//
// For a registry HOST:PORT, every CertsDirs entry is looked up in the layout docker
// uses (/etc/docker/certs.d): DIR/HOST:PORT/*.crt are CA certificates added to the
// system roots, DIR/HOST:PORT/*.cert with the *.key of the same name a client
// certificate. CAFiles are added for every registry.
type Trust struct {
	// CertsDirs are certs.d-style folders, searched in order; all matches count.
	CertsDirs []string
	// CAFiles are PEM files of CA certificates trusted for every registry (--ca-file).
	CAFiles []string

	mu    sync.Mutex
	cache map[string]*hostTrust
}

type hostTrust struct {
	cfg *tls.Config // nil: nothing beyond the system roots
	err error
}

// DefaultCertsDirs are the folders a client reads, given the environment: $HUBCTL_CERTS_DIR
// when set (only it), else hubctl's own (XDG config dir)/hubctl/certs.d, then
// /etc/docker/certs.d and /etc/containers/certs.d, which docker and podman read, so a
// CA installed for them works for hubctl too.
func DefaultCertsDirs(lookupEnv func(string) (string, bool)) []string {
	if v, ok := lookupEnv("HUBCTL_CERTS_DIR"); ok && v != "" {
		return filepath.SplitList(v)
	}
	var dirs []string
	if x, ok := lookupEnv("XDG_CONFIG_HOME"); ok && x != "" {
		dirs = append(dirs, filepath.Join(x, "hubctl", "certs.d"))
	} else if h, ok := lookupEnv("HOME"); ok && h != "" {
		dirs = append(dirs, filepath.Join(h, ".config", "hubctl", "certs.d"))
	}
	return append(dirs, "/etc/docker/certs.d", "/etc/containers/certs.d")
}

// HasCA reports whether anything beyond the system roots is configured for host: a
// certs.d folder with a CA or client certificate, or a --ca-file. A loopback registry
// is reached over HTTPS only then (docker's rule for registries it treats as insecure
// is the same: a certs.d entry turns TLS on).
func (t *Trust) HasCA(host string) bool {
	if t == nil {
		return false
	}
	if len(t.CAFiles) > 0 {
		return true
	}
	for _, d := range t.hostDirs(host) {
		if ents, err := os.ReadDir(d); err == nil {
			for _, e := range ents {
				if ext := filepath.Ext(e.Name()); ext == ".crt" || ext == ".cert" {
					return true
				}
			}
		}
	}
	return false
}

// hostDirs are the certs.d folders that may hold host's files. Docker names the folder
// HOST:PORT, or HOST alone for the default port 443.
func (t *Trust) hostDirs(host string) []string {
	var out []string
	names := []string{host}
	if h, p, err := net.SplitHostPort(host); err == nil && p == "443" {
		names = append(names, h)
	}
	for _, d := range t.CertsDirs {
		for _, n := range names {
			// A host never holds a path separator; refuse one rather than read elsewhere.
			if n == "" || strings.ContainsAny(n, `/\`) || n == "." || n == ".." {
				continue
			}
			out = append(out, filepath.Join(d, n))
		}
	}
	return out
}

// ClientConfig returns the TLS configuration for host (HOST[:PORT]), or nil when the
// system defaults apply. It is built once per host and cached.
func (t *Trust) ClientConfig(host string) (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if ht, ok := t.cache[host]; ok {
		return ht.cfg, ht.err
	}
	cfg, err := t.build(host)
	if t.cache == nil {
		t.cache = map[string]*hostTrust{}
	}
	t.cache[host] = &hostTrust{cfg: cfg, err: err}
	return cfg, err
}

func (t *Trust) build(host string) (*tls.Config, error) {
	var cas [][]byte
	var pairs []tls.Certificate
	for _, f := range t.CAFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		cas = append(cas, b)
	}
	for _, d := range t.hostDirs(host) {
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			p := filepath.Join(d, e.Name())
			switch filepath.Ext(e.Name()) {
			case ".crt":
				b, err := os.ReadFile(p)
				if err != nil {
					return nil, fmt.Errorf("certs.d: %w", err)
				}
				cas = append(cas, b)
			case ".cert":
				key := strings.TrimSuffix(p, ".cert") + ".key"
				pair, err := tls.LoadX509KeyPair(p, key)
				if err != nil {
					return nil, fmt.Errorf("certs.d client certificate %s: %w", p, err)
				}
				pairs = append(pairs, pair)
			}
		}
	}
	if len(cas) == 0 && len(pairs) == 0 {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: pairs}
	if len(cas) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		for i, b := range cas {
			if !pool.AppendCertsFromPEM(b) {
				return nil, fmt.Errorf("CA certificate %d for %s: no PEM certificate in it", i+1, host)
			}
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// Transport wraps base so each registry host gets its own TLS configuration: requests
// to a host with nothing configured go through base unchanged, others through a clone
// of base carrying the host's CAs and client certificate. base is not modified.
func (t *Trust) Transport(base *http.Transport) http.RoundTripper {
	if t == nil {
		return base
	}
	return &trustTransport{trust: t, base: base, byHost: map[string]http.RoundTripper{}}
}

type trustTransport struct {
	trust *Trust
	base  *http.Transport

	mu     sync.Mutex
	byHost map[string]http.RoundTripper
}

func (tt *trustTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != "https" {
		return tt.base.RoundTrip(r)
	}
	rt, err := tt.forHost(r.URL.Host)
	if err != nil {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return nil, err
	}
	return rt.RoundTrip(r)
}

func (tt *trustTransport) forHost(host string) (http.RoundTripper, error) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	if rt, ok := tt.byHost[host]; ok {
		return rt, nil
	}
	// certs.d names a registry HOST:PORT; a URL without a port is port 443.
	key := host
	if _, _, err := net.SplitHostPort(host); err != nil {
		key = net.JoinHostPort(strings.Trim(host, "[]"), "443")
	}
	cfg, err := tt.trust.ClientConfig(key)
	if err != nil {
		return nil, err
	}
	var rt http.RoundTripper = tt.base
	if cfg != nil {
		c := tt.base.Clone()
		if c.TLSClientConfig != nil {
			merged := c.TLSClientConfig.Clone()
			merged.RootCAs, merged.Certificates, merged.MinVersion = cfg.RootCAs, cfg.Certificates, cfg.MinVersion
			cfg = merged
		}
		c.TLSClientConfig = cfg
		rt = c
	}
	tt.byHost[host] = rt
	return rt, nil
}

// CloseIdleConnections closes the idle connections of every transport it made.
func (tt *trustTransport) CloseIdleConnections() {
	tt.base.CloseIdleConnections()
	tt.mu.Lock()
	defer tt.mu.Unlock()
	for _, rt := range tt.byHost {
		if c, ok := rt.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	}
}

// ErrUnknownAuthority reports whether err is a certificate that does not chain to a
// trusted CA (as opposed to a network or protocol failure).
func ErrUnknownAuthority(err error) bool {
	var ua x509.UnknownAuthorityError
	var cv *tls.CertificateVerificationError
	return errors.As(err, &ua) || (errors.As(err, &cv) && errors.As(cv.Err, &ua))
}

// Client returns hc with its transport wrapped by Transport when the transport is nil
// or an *http.Transport; another RoundTripper (a trace, a test's) is kept as it is.
// hc itself is not modified.
func (t *Trust) Client(hc *http.Client) *http.Client {
	if t == nil {
		return hc
	}
	base, ok := hc.Transport.(*http.Transport)
	if hc.Transport == nil {
		base, ok = http.DefaultTransport.(*http.Transport).Clone(), true
	}
	if !ok {
		return hc
	}
	c := *hc
	c.Transport = t.Transport(base)
	return &c
}
