package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Config is how `hubctl proxy run` serves: the public listeners, the control
// listener, and the state file.
type Config struct {
	// Listen is the plain-HTTP public address (":80"); empty serves none.
	Listen string
	// TLSListen is the HTTPS public address (":443"), with CertFile and KeyFile
	// (PEM); empty serves none. ACME is not built yet.
	TLSListen, CertFile, KeyFile string
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
	if (cfg.TLSListen != "") != (cfg.CertFile != "" && cfg.KeyFile != "") {
		return errors.New("proxy: --tls-listen needs --tls-cert and --tls-key, and they need it")
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
	var tlsConf *tls.Config
	if cfg.TLSListen != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return fmt.Errorf("proxy: TLS certificate: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
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
		if pub, err = listen(cfg.Listen, p, nil, 0); err != nil {
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
