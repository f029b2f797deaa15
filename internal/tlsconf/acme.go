package tlsconf

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// ACME gets and renews certificates for Domains from an ACME CA with autocert:
// tls-alpn-01 on the TLS listener itself, http-01 through HTTPHandler on a
// plain-HTTP port 80. It is the one ACME setup of hubctl: `hubctl serve --tls=acme`
// keeps its cache in the database (replicas share it), the deploy proxy in its state
// volume.
type ACME struct {
	// Domains are the names certificates are got for; any other is refused.
	Domains []string
	// Email is the account's contact; empty: none.
	Email string
	// Directory is the CA's directory URL; empty: Let's Encrypt's production one.
	Directory string
	// Cache keeps the account key and certificates across restarts; nil keeps them
	// in memory only (every start asks the CA again, which rate-limits).
	Cache autocert.Cache
}

// Setup returns the TLS configuration of the listener (TLS 1.2 at least; a client
// that sends no server name gets the first domain's certificate rather than a
// failed handshake) and the manager, whose HTTPHandler answers http-01.
func (a ACME) Setup() (*tls.Config, *autocert.Manager, error) {
	if len(a.Domains) == 0 {
		return nil, nil, errors.New("ACME: no domain to get a certificate for")
	}
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		HostPolicy: autocert.HostWhitelist(a.Domains...),
		Cache:      a.Cache,
		Email:      a.Email,
		Client:     &acme.Client{DirectoryURL: a.Directory},
	}
	c := m.TLSConfig()
	c.MinVersion = tls.VersionTLS12
	// A probe or a load balancer's check dialling an IP address sends no name.
	get, first := c.GetCertificate, a.Domains[0]
	c.GetCertificate = func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if h.ServerName == "" {
			h.ServerName = first
		}
		return get(h)
	}
	return c, m, nil
}

// HTTPHandler answers ACME http-01 challenges for m and passes every other request
// to next; m nil is next itself.
func HTTPHandler(m *autocert.Manager, next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return m.HTTPHandler(next)
}

// CheckACMEDomain says why d cannot have an ACME certificate: it must be a DNS name
// with a dot (autocert refuses others; an IP address is not a name).
func CheckACMEDomain(d string) error {
	if !strings.Contains(d, ".") || net.ParseIP(d) != nil || strings.ContainsAny(d, "/:@* ") {
		return fmt.Errorf("%q: an ACME certificate needs a DNS name with a dot", d)
	}
	return nil
}

// CheckACMEDirectory says why u is not an ACME directory URL (https only).
func CheckACMEDirectory(u string) error {
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "https" || p.Host == "" {
		return fmt.Errorf("%q must be an https URL", u)
	}
	return nil
}
