package deploy

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// MaxProxyTLSFile bounds a certificate or key file of proxy.tls: a chain of a few
// certificates is a few KiB.
const MaxProxyTLSFile = 256 << 10

// ProxyCert is proxy.tls's certificate files as read and checked where hubctl
// runs, before anything starts: a matching pair, not expired. The deploy copies
// them into the proxy container; KeyPEM never reaches a log, a label or the
// container's configuration.
type ProxyCert struct {
	CertPEM []byte
	KeyPEM  []byte
	// Names are the leaf certificate's DNS names, NotAfter its expiry, Fingerprint
	// the SHA-256 of its DER (hex): what a plan shows.
	Names       []string
	NotAfter    time.Time
	Fingerprint string
}

// LoadProxyCert reads and checks the certificate files of t (paths as given,
// relative to hubctl's working directory).
func LoadProxyCert(t *ProxyTLS, now time.Time) (*ProxyCert, error) {
	if t == nil || t.ACME != nil || t.Cert == "" || t.Key == "" {
		return nil, errors.New("proxy.tls: no certificate files (cert and key)")
	}
	certPEM, err := readBounded(t.Cert)
	if err != nil {
		return nil, fmt.Errorf("proxy.tls: cert: %w", err)
	}
	keyPEM, err := readBounded(t.Key)
	if err != nil {
		return nil, fmt.Errorf("proxy.tls: key: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// The standard library's message names no key material.
		return nil, fmt.Errorf("proxy.tls: %s and %s are not a certificate and its key (PEM): %w", t.Cert, t.Key, err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("proxy.tls: cert %s: %w", t.Cert, err)
		}
	}
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("proxy.tls: cert %s expired on %s", t.Cert, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if len(leaf.DNSNames) == 0 && len(leaf.IPAddresses) == 0 {
		return nil, fmt.Errorf("proxy.tls: cert %s names no host (no subject alternative name): clients refuse it", t.Cert)
	}
	sum := sha256.Sum256(leaf.Raw)
	names := append([]string(nil), leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	return &ProxyCert{CertPEM: certPEM, KeyPEM: keyPEM, Names: names, NotAfter: leaf.NotAfter, Fingerprint: hex.EncodeToString(sum[:])}, nil
}

// String is what a plan prints: never the key.
func (c *ProxyCert) String() string {
	return fmt.Sprintf("certificate files for %q, expires %s, sha256 %s", c.Names, c.NotAfter.UTC().Format(time.DateOnly), c.Fingerprint[:16])
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxProxyTLSFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxProxyTLSFile {
		return nil, fmt.Errorf("%s is over %d KiB: not a PEM certificate or key", path, MaxProxyTLSFile>>10)
	}
	return b, nil
}

// String says how the proxy gets its certificate, for a plan: file names or the
// ACME settings, never a key.
func (t *ProxyTLS) String() string {
	if t.ACME == nil {
		return fmt.Sprintf("certificate files %q and %q", t.Cert, t.Key)
	}
	s := "ACME certificates for " + strings.Join(t.ACME.Domains, ", ")
	if t.ACME.Directory != "" {
		s += " from " + t.ACME.Directory
	} else {
		s += " from Let's Encrypt"
	}
	return s
}
