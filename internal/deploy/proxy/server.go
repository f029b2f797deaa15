package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/acme/autocert"

	"github.com/hubctl/hubctl/internal/tlsconf"
)

// Config is how `hubctl proxy run` serves: the public listeners, the control
// listener, and the state file.
type Config struct {
	// Listen is the plain-HTTP public address (":80"); empty serves none.
	Listen string
	// TLSListen is the HTTPS public address (":443"), with CertFile and KeyFile
	// (PEM, re-read when they change) or ACME; empty serves none.
	TLSListen, CertFile, KeyFile string
	// ACME, when its Domains are set, gets TLSListen's certificates from an ACME CA
	// (tls-alpn-01 on TLSListen, http-01 on Listen), as `hubctl serve --tls=acme`
	// does; its Cache is ACMECacheDir when ACME.Cache is nil.
	ACME tlsconf.ACME
	// ACMECacheDir keeps the ACME account and certificates (autocert.DirCache).
	ACMECacheDir string
	// ControlListen is the control channel's address; it must not be a public one.
	ControlListen string
	// Secret authenticates the control channel.
	Secret []byte
	// StateFile keeps the targets across restarts.
	StateFile string
	Logger    *slog.Logger
	// Ready, if set, is called with the bound addresses once every listener is open
	// (tests listen on port 0).
	Ready func(public, tlsPublic, control net.Addr)
}

// Run serves until ctx ends, then stops taking connections and lets requests in
// flight finish (for at most the drain default).
func Run(ctx context.Context, cfg Config) error {
	if cfg.Listen == "" && cfg.TLSListen == "" {
		return errors.New("proxy: no public listener: give --listen or --tls-listen")
	}
	if cfg.ControlListen == "" {
		return errors.New("proxy: no control listener: give --control-listen")
	}
	files, useACME := cfg.CertFile != "" || cfg.KeyFile != "", len(cfg.ACME.Domains) > 0
	switch {
	case files && useACME:
		return errors.New("proxy: give certificate files or ACME domains, not both")
	case files && (cfg.CertFile == "" || cfg.KeyFile == ""):
		return errors.New("proxy: --tls-cert and --tls-key go together")
	case (cfg.TLSListen != "") != (files || useACME):
		return errors.New("proxy: --tls-listen needs --tls-cert and --tls-key, or --acme-domain, and they need it")
	case useACME && cfg.ACME.Cache == nil && cfg.ACMECacheDir == "":
		return errors.New("proxy: ACME needs a cache directory (--acme-cache, or a --state-file beside which it goes): certificates must outlive a restart, ACME CAs rate-limit")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p, err := New(Options{StateFile: cfg.StateFile, Logger: log})
	if err != nil {
		return err
	}
	defer p.Close()
	control, err := p.Control(cfg.Secret)
	if err != nil {
		return err
	}
	var (
		tlsConf *tls.Config
		acmeMgr *autocert.Manager
	)
	switch {
	case files:
		fc := &tlsconf.FileCert{CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, OnError: func(err error) {
			log.Warn("proxy: reload TLS certificate: serving the previous one", "err", err)
		}}
		if err := fc.Load(); err != nil {
			return fmt.Errorf("proxy: TLS certificate: %w", err)
		}
		tlsConf = &tls.Config{GetCertificate: fc.GetCertificate, MinVersion: tls.VersionTLS12}
	case useACME:
		a := cfg.ACME
		if a.Cache == nil {
			if err := os.MkdirAll(cfg.ACMECacheDir, 0o700); err != nil {
				return fmt.Errorf("proxy: ACME cache: %w", err)
			}
			a.Cache = autocert.DirCache(cfg.ACMECacheDir)
		}
		if tlsConf, acmeMgr, err = a.Setup(); err != nil {
			return fmt.Errorf("proxy: %w", err)
		}
		log.Info("proxy: TLS certificates from ACME", "domains", strings.Join(a.Domains, ","), "directory", a.Directory)
	}

	type srv struct {
		s  *http.Server
		ln net.Listener
	}
	var srvs []srv
	closeAll := func() {
		for _, s := range srvs {
			s.ln.Close()
		}
	}
	listen := func(addr string, h http.Handler, tc *tls.Config, writeTimeout time.Duration) (net.Addr, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("proxy: listen %s: %w", addr, err)
		}
		if tc != nil {
			ln = tls.NewListener(ln, tc)
		}
		srvs = append(srvs, srv{&http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		}, ln})
		return ln.Addr(), nil
	}
	var pub, pubTLS, ctl net.Addr
	if cfg.Listen != "" {
		if pub, err = listen(cfg.Listen, tlsconf.HTTPHandler(acmeMgr, p), nil, 0); err != nil {
			return err
		}
	}
	if cfg.TLSListen != "" {
		if pubTLS, err = listen(cfg.TLSListen, p, tlsConf, 0); err != nil {
			return err
		}
	}
	if ctl, err = listen(cfg.ControlListen, control, nil, 0); err != nil {
		return err
	}
	if cfg.Ready != nil {
		cfg.Ready(pub, pubTLS, ctl)
	}
	log.Info("proxy: serving", "listen", cfg.Listen, "tls_listen", cfg.TLSListen, "control", ctl.String(), "services", len(p.List()))
	errc := make(chan error, len(srvs))
	for _, s := range srvs {
		go func() { errc <- s.s.Serve(s.ln) }()
	}
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), DefaultDrainTimeout)
	defer cancel()
	for _, s := range srvs {
		_ = s.s.Shutdown(sctx)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("proxy: %w", err)
	}
	return nil
}
