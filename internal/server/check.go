package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/config"
	"github.com/hubctl/hubctl/internal/tracing"
)

// CheckConfig checks what `hubctl serve` would need from cfg (already loaded and
// validated) without starting: addresses parse, TLS files load as a pair and name
// something, directories exist or can be made, the PostgreSQL URL parses, the OTEL_*
// variables ask for something serve supports. It opens
// no database (that would migrate it) and binds no port. It returns notes for the
// operator (what will happen, what deserves a look) and the problems found.
func CheckConfig(cfg config.Config) (notes []string, err error) {
	var errs []error
	addrs := map[string]string{"addr": cfg.Addr}
	if cfg.Metrics.Addr != "off" {
		addrs["metrics.addr"] = cfg.Metrics.Addr
	}
	if cfg.TLS.RedirectAddr != "" {
		addrs["tls.redirect_addr"] = cfg.TLS.RedirectAddr
	}
	for k, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %v", k, a, err))
		}
	}
	loopback := false
	if h, _, err := net.SplitHostPort(cfg.Addr); err == nil {
		ip := net.ParseIP(h)
		loopback = h == "localhost" || (ip != nil && ip.IsLoopback())
	}
	if !loopback && cfg.Auth.Mode == "token" && cfg.ExternalURL == "" {
		notes = append(notes, "warning: listening beyond loopback without external_url: the token realm follows each request's Host header")
	}
	if !loopback && !cfg.TLS.On() && !strings.HasPrefix(cfg.ExternalURL, "https://") {
		notes = append(notes, "warning: plain HTTP beyond loopback: clients need it in insecure-registries; use --tls-cert/--tls-key, --tls=acme or a TLS proxy (external_url https://…)")
	}
	if cfg.Auth.Mode == "none" {
		notes = append(notes, "warning: auth.mode none: anyone who reaches the server may push and delete")
	}
	switch cfg.TLS.Mode {
	case "files":
		pair, err := tls.LoadX509KeyPair(cfg.TLS.Cert, cfg.TLS.Key)
		if err != nil {
			errs = append(errs, fmt.Errorf("tls.cert and tls.key: %w", err))
			break
		}
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			errs = append(errs, fmt.Errorf("tls.cert: %w", err))
			break
		}
		names := append(leaf.DNSNames, ipStrings(leaf.IPAddresses)...)
		notes = append(notes, fmt.Sprintf("TLS: certificate for %s, valid until %s (re-read when the files change)", strings.Join(names, ","), leaf.NotAfter.Format(time.DateOnly)))
		if time.Now().After(leaf.NotAfter) {
			errs = append(errs, fmt.Errorf("tls.cert expired on %s", leaf.NotAfter.Format(time.DateOnly)))
		} else if time.Until(leaf.NotAfter) < 14*24*time.Hour {
			notes = append(notes, "warning: the certificate expires within two weeks")
		}
		if u, err := url.Parse(cfg.ExternalURL); err == nil && cfg.ExternalURL != "" && leaf.VerifyHostname(u.Hostname()) != nil {
			errs = append(errs, fmt.Errorf("tls.cert is not valid for %s, the host of external_url", u.Hostname()))
		}
	case "self-signed":
		notes = append(notes, "TLS: self-signed, CA and certificate in "+cfg.TLS.Dir)
		errs = append(errs, canMake("tls.dir", cfg.TLS.Dir))
	case "acme":
		notes = append(notes, fmt.Sprintf("TLS: ACME certificates for %s from %s, kept in the database", cfg.TLS.ACMEDomain, cfg.TLS.ACMEDirectory))
		if !strings.HasSuffix(cfg.Addr, ":443") && cfg.TLS.RedirectAddr == "" {
			notes = append(notes, "warning: the ACME CA validates on port 443 (tls-alpn-01) or 80 (http-01, with tls.redirect_addr :80): make sure one reaches this server")
		}
	default:
		notes = append(notes, "TLS: off")
	}
	errs = append(errs, canMake("data", cfg.Data))
	if cfg.DB.Driver == "postgres" {
		if u, err := url.Parse(cfg.DB.Path); err != nil || u.Host == "" {
			errs = append(errs, errors.New("db.path: the PostgreSQL URL does not parse or names no host"))
		} else {
			notes = append(notes, "database: PostgreSQL "+u.Redacted())
		}
	} else {
		notes = append(notes, "database: SQLite "+cfg.DB.Path)
	}
	notes = append(notes, "blobs: "+storageName(cfg))
	if cfg.Metrics.Addr != "off" {
		notes = append(notes, "metrics: http://"+cfg.Metrics.Addr+"/metrics")
	}
	if ts, err := tracing.FromEnv(os.Getenv); err != nil {
		errs = append(errs, err)
	} else {
		notes = append(notes, "traces: "+ts.String())
	}
	return notes, errors.Join(errs...)
}

// canMake checks dir exists as a directory, or that its nearest existing parent is one
// this process may write into.
func canMake(key, dir string) error {
	p := dir
	for {
		fi, err := os.Stat(p)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s %s: %s is not a directory", key, dir, p)
			}
			if p != dir {
				// Missing below an existing directory: it is made at start, if the
				// directory is writable.
				f, err := os.CreateTemp(p, ".hubctl-check-*")
				if err != nil {
					return fmt.Errorf("%s %s: cannot create it in %s: %w", key, dir, p, err)
				}
				f.Close()
				os.Remove(f.Name())
			}
			return nil
		}
		parent := filepath.Dir(p)
		if parent == p {
			return fmt.Errorf("%s %s: %w", key, dir, err)
		}
		p = parent
	}
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}
