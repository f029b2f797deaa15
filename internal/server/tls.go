package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/acme/autocert"

	"github.com/hubctl/hubctl/internal/config"
	"github.com/hubctl/hubctl/internal/tlsconf"
)

// ACMECache is where --tls=acme keeps its account key and certificates: the database,
// so replicas share them (sqlstore's acme.go).
type ACMECache interface {
	ACMEGet(ctx context.Context, key string) ([]byte, bool, error)
	ACMEPut(ctx context.Context, key string, data []byte) error
	ACMEDelete(ctx context.Context, key string) error
}

// tlsSetup is what the TLS mode adds to the server.
type tlsSetup struct {
	config *tls.Config
	// acme answers http-01 challenges on the redirect listener (acme mode only).
	acme *autocert.Manager
}

// setupTLS builds the main listener's TLS configuration for cfg.TLS.Mode, or returns
// nil when TLS is off. addr is the bound listener, for the self-signed names and the
// trust line printed on stderr.
func setupTLS(cfg config.Config, cache ACMECache, log *slog.Logger, stderr io.Writer, addr net.Addr) (*tlsSetup, error) {
	base := &tls.Config{MinVersion: tls.VersionTLS12}
	switch cfg.TLS.Mode {
	case "off":
		return nil, nil
	case "files":
		fc := &tlsconf.FileCert{CertFile: cfg.TLS.Cert, KeyFile: cfg.TLS.Key, OnError: func(err error) {
			log.Warn("reload TLS certificate: serving the previous one", "err", err)
		}}
		if err := fc.Load(); err != nil {
			return nil, err
		}
		base.GetCertificate = fc.GetCertificate
		return &tlsSetup{config: base}, nil
	case "self-signed":
		ss := tlsconf.SelfSigned{Dir: cfg.TLS.Dir}
		names := selfSignedNames(cfg, addr)
		made, err := ss.Ensure(names, time.Now())
		if err != nil {
			return nil, fmt.Errorf("self-signed TLS in %s: %w", cfg.TLS.Dir, err)
		}
		if made {
			log.Info("made a self-signed server certificate", "names", strings.Join(names, ","), "ca", ss.CACert())
		}
		fc := &tlsconf.FileCert{CertFile: ss.CertFile(), KeyFile: ss.KeyFile()}
		if err := fc.Load(); err != nil {
			return nil, err
		}
		base.GetCertificate = fc.GetCertificate
		fmt.Fprintln(stderr, trustLine(ss.CACert(), trustHost(cfg, names[0], addr)))
		return &tlsSetup{config: base}, nil
	case "acme":
		c, m, err := tlsconf.ACME{
			Domains:   config.List(cfg.TLS.ACMEDomain),
			Email:     cfg.TLS.ACMEEmail,
			Directory: cfg.TLS.ACMEDirectory,
			Cache:     acmeCache{cache},
		}.Setup()
		if err != nil {
			return nil, err
		}
		log.Info("TLS certificates from ACME", "domains", cfg.TLS.ACMEDomain, "directory", cfg.TLS.ACMEDirectory)
		return &tlsSetup{config: c, acme: m}, nil
	}
	return nil, fmt.Errorf("tls.mode %q is not supported", cfg.TLS.Mode)
}

// selfSignedNames are the names the self-signed certificate is for: tls.names when
// set, else the host name, localhost and loopback, the external URL's host and the
// address listened on when it is a specific one.
func selfSignedNames(cfg config.Config, addr net.Addr) []string {
	if names := config.List(cfg.TLS.Names); len(names) > 0 {
		return names
	}
	var names []string
	add := func(n string) {
		for _, have := range names {
			if strings.EqualFold(have, n) {
				return
			}
		}
		if n != "" {
			names = append(names, n)
		}
	}
	if u, err := url.Parse(cfg.ExternalURL); err == nil && cfg.ExternalURL != "" {
		add(u.Hostname())
	}
	if h, err := os.Hostname(); err == nil {
		add(h)
	}
	add("localhost")
	add("127.0.0.1")
	add("::1")
	if ta, ok := addr.(*net.TCPAddr); ok && !ta.IP.IsUnspecified() {
		add(ta.IP.String())
	}
	return names
}

// trustHost is HOST:PORT as clients name the registry: the external URL's, else the
// first certificate name with the bound port.
func trustHost(cfg config.Config, name string, addr net.Addr) string {
	if u, err := url.Parse(cfg.ExternalURL); err == nil && cfg.ExternalURL != "" {
		return u.Host
	}
	port := "443"
	if ta, ok := addr.(*net.TCPAddr); ok {
		port = fmt.Sprint(ta.Port)
	}
	if port == "443" {
		return name
	}
	return net.JoinHostPort(name, port)
}

// trustLine is the one line that makes docker (and hubctl, which reads the same
// folder) trust the self-signed CA.
func trustLine(caFile, host string) string {
	return fmt.Sprintf("TLS: self-signed; to trust it on a client: sudo install -D -m 644 %s /etc/docker/certs.d/%s/ca.crt", caFile, host)
}

// redirectHandler sends plain-HTTP requests to the same path over HTTPS: to the
// external URL when set, else to the request's host on the TLS listener's port.
func redirectHandler(cfg config.Config, tlsAddr net.Addr) http.Handler {
	port := ""
	if ta, ok := tlsAddr.(*net.TCPAddr); ok && ta.Port != 443 {
		port = fmt.Sprint(ta.Port)
	}
	ext, _ := url.Parse(strings.TrimSuffix(cfg.ExternalURL, "/"))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var target string
		if cfg.ExternalURL != "" {
			target = ext.Scheme + "://" + ext.Host + r.URL.RequestURI()
		} else {
			host := r.Host
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			if host == "" || strings.ContainsAny(host, "/@\\") {
				http.Error(w, "use HTTPS", http.StatusBadRequest)
				return
			}
			if strings.Contains(host, ":") {
				host = "[" + strings.Trim(host, "[]") + "]"
			}
			if port != "" {
				host += ":" + port
			}
			target = "https://" + host + r.URL.RequestURI()
		}
		// 308 keeps the method and body of a push; GET and HEAD take the classic 301.
		code := http.StatusPermanentRedirect
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			code = http.StatusMovedPermanently
		}
		http.Redirect(w, r, target, code)
	})
}

// acmeCache adapts the database to autocert.Cache.
type acmeCache struct{ c ACMECache }

func (a acmeCache) Get(ctx context.Context, key string) ([]byte, error) {
	b, ok, err := a.c.ACMEGet(ctx, key)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, autocert.ErrCacheMiss
	}
	return b, nil
}

func (a acmeCache) Put(ctx context.Context, key string, data []byte) error {
	return a.c.ACMEPut(ctx, key, data)
}

func (a acmeCache) Delete(ctx context.Context, key string) error {
	return a.c.ACMEDelete(ctx, key)
}
