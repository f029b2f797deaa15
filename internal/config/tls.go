package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/tlsconf"
)

// DefaultACMEDirectory is Let's Encrypt's production directory.
const DefaultACMEDirectory = "https://acme-v02.api.letsencrypt.org/directory"

// DefaultMetricsAddr is where /metrics is served unless told otherwise: loopback, so
// only the host (and a Prometheus on it, or an SSH tunnel) can read it.
const DefaultMetricsAddr = "127.0.0.1:9464"

// DefaultRetentionInterval is how often serve applies retention policies.
const DefaultRetentionInterval = 6 * time.Hour

// TLS configures HTTPS on the main listener (docs/operating.md).
type TLS struct {
	// Mode is "off" (plain HTTP), "files" (Cert and Key, re-read when they change),
	// "self-signed" (a CA and certificate made under <data>/tls) or "acme" (certificates
	// from an ACME CA such as Let's Encrypt). Empty means "files" when Cert is set,
	// else "off".
	Mode string `yaml:"mode"`
	// Cert is a PEM file with the certificate and its chain; Key its private key.
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// Names are the DNS names and IP addresses of the self-signed certificate, comma
	// separated; empty means the host name, localhost, 127.0.0.1, ::1 and the host of
	// external_url.
	Names string `yaml:"names"`
	// Dir holds the self-signed CA and certificate; empty means <data>/tls.
	Dir string `yaml:"dir"`
	// ACMEDomain names the domains to get certificates for (comma separated).
	ACMEDomain string `yaml:"acme_domain"`
	// ACMEDirectory is the ACME CA's directory URL.
	ACMEDirectory string `yaml:"acme_directory"`
	// ACMEEmail is the contact address given to the ACME CA (optional).
	ACMEEmail string `yaml:"acme_email"`
	// RedirectAddr, when set, is a plain-HTTP listener that redirects to HTTPS (and
	// answers ACME http-01 challenges in acme mode), e.g. ":80".
	RedirectAddr string `yaml:"redirect_addr"`
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	// Addr is a separate listener for GET /metrics; "off" (or empty) serves none. The
	// default, DefaultMetricsAddr, is skipped with a warning when the port is taken;
	// any other address must bind.
	Addr string `yaml:"addr"`
	// Token, when set, also serves /metrics on the main listener to requests bearing
	// "Authorization: Bearer TOKEN" (set it through HUBCTL_METRICS_TOKEN, not a file
	// others read).
	Token string `yaml:"token"`
}

// Retention configures when serve applies the retention policies (issue 17).
type Retention struct {
	// Interval is how often retention policies run; 0 only on demand.
	Interval time.Duration `yaml:"interval"`
	// TagHistoryHold is how long a manifest a tag moved away from is kept from
	// garbage collection and retention, so the tag can be restored to it; 0 keeps
	// nothing for that reason.
	TagHistoryHold time.Duration `yaml:"tag_history_hold"`
}

// DefaultEventRetention is how long the event outbox keeps events unless told
// otherwise, and DefaultEventPurgeInterval how often each replica purges older ones.
const (
	DefaultEventRetention     = 30 * 24 * time.Hour
	DefaultEventPurgeInterval = time.Hour
	// DefaultPullInterval is how often each replica writes the manifest pulls it counted
	// as repository.pulled events.
	DefaultPullInterval = time.Minute
)

// Events configures the event outbox (issue 18, docs/design/events.md).
type Events struct {
	// Retention is how long events, and finished webhook deliveries, are kept; 0
	// keeps them forever.
	Retention time.Duration `yaml:"retention"`
	// PurgeInterval is how often each replica deletes events older than Retention,
	// and finished webhook deliveries last touched before then.
	PurgeInterval time.Duration `yaml:"purge_interval"`
	// PullInterval is how often each replica writes the manifest pulls it counted in
	// memory as repository.pulled events (one per manifest and tag, with a count), in
	// one transaction with the pull times retention reads; 0 counts no pulls and writes
	// no such events (pull times are then written every 30 s).
	PullInterval time.Duration `yaml:"pull_interval"`
}

// On reports whether the main listener serves TLS.
func (t TLS) On() bool { return t.Mode != "off" }

// List splits a comma-separated setting into its trimmed, non-empty items.
func List(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (c *Config) resolveTLS() {
	if c.TLS.Mode == "" {
		c.TLS.Mode = "off"
		if c.TLS.Cert != "" || c.TLS.Key != "" {
			c.TLS.Mode = "files"
		}
	}
	if c.TLS.Dir == "" && c.Data != "" {
		c.TLS.Dir = filepath.Join(c.Data, "tls")
	}
	if c.Metrics.Addr == "" {
		c.Metrics.Addr = "off"
	}
}

// validateOps checks the TLS, metrics and retention settings.
func (c *Config) validateOps() []error {
	var errs []error
	t := c.TLS
	switch t.Mode {
	case "off":
		if t.RedirectAddr != "" {
			errs = append(errs, errors.New("tls.redirect_addr needs TLS on (tls.mode files, self-signed or acme)"))
		}
	case "files":
		if t.Cert == "" || t.Key == "" {
			errs = append(errs, errors.New("tls.mode files needs both tls.cert and tls.key (--tls-cert, --tls-key)"))
		}
	case "self-signed":
	case "acme":
		if len(List(t.ACMEDomain)) == 0 {
			errs = append(errs, errors.New("tls.mode acme needs tls.acme_domain (--acme-domain NAME)"))
		}
		for _, d := range List(t.ACMEDomain) {
			if err := tlsconf.CheckACMEDomain(d); err != nil {
				errs = append(errs, fmt.Errorf("tls.acme_domain %w", err))
			}
		}
		if err := tlsconf.CheckACMEDirectory(t.ACMEDirectory); err != nil {
			errs = append(errs, fmt.Errorf("tls.acme_directory %w", err))
		}
	default:
		errs = append(errs, fmt.Errorf("tls.mode %q is not supported (want off, files, self-signed or acme)", t.Mode))
	}
	if t.Mode != "files" && t.Mode != "off" && (t.Cert != "" || t.Key != "") {
		errs = append(errs, fmt.Errorf("tls.cert and tls.key are for tls.mode files, not %s", t.Mode))
	}
	if c.ExternalURL != "" {
		u, err := url.Parse(c.ExternalURL)
		if err == nil && t.On() && u.Scheme == "http" {
			errs = append(errs, fmt.Errorf("external_url %q is http but the listener serves TLS: clients would be sent to plain HTTP; use https://", c.ExternalURL))
		}
	}
	if a := c.Metrics.Addr; a != "off" {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("metrics.addr %q: %v (want HOST:PORT or off)", a, err))
		}
	}
	if c.Metrics.Token != "" && len(c.Metrics.Token) < 16 {
		errs = append(errs, errors.New("metrics.token must be at least 16 characters"))
	}
	if c.Events.PullInterval < 0 {
		errs = append(errs, fmt.Errorf("events.pull_interval must not be negative (0 turns pull events off), got %s", c.Events.PullInterval))
	}
	if c.Events.Retention < 0 || c.Events.PurgeInterval <= 0 {
		errs = append(errs, fmt.Errorf("events.retention must not be negative and events.purge_interval must be greater than 0, got %s and %s",
			c.Events.Retention, c.Events.PurgeInterval))
	}
	if c.Retention.TagHistoryHold < 0 {
		errs = append(errs, fmt.Errorf("retention.tag_history_hold must not be negative, got %s", c.Retention.TagHistoryHold))
	}
	if c.Retention.Interval < 0 {
		errs = append(errs, fmt.Errorf("retention.interval must not be negative, got %s", c.Retention.Interval))
	}
	return errs
}
