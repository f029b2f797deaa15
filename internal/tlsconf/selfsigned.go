package tlsconf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"
)

// SelfSigned are the files `hubctl serve --tls=self-signed` keeps in its folder.
type SelfSigned struct {
	// Dir holds ca.crt, ca.key, server.crt and server.key.
	Dir string
}

// CACert is the CA certificate clients are told to trust.
func (s SelfSigned) CACert() string { return filepath.Join(s.Dir, "ca.crt") }

// CertFile is the server certificate (leaf then CA, PEM).
func (s SelfSigned) CertFile() string { return filepath.Join(s.Dir, "server.crt") }

// KeyFile is the server key (PEM).
func (s SelfSigned) KeyFile() string { return filepath.Join(s.Dir, "server.key") }

func (s SelfSigned) caKey() string { return filepath.Join(s.Dir, "ca.key") }

// caLifetime and leafLifetime: the CA lives long so trusting it is done once; the server
// certificate is remade whenever the names change or it comes within renewBefore of
// its end, and it stays within the 398 days clients such as Apple's accept.
const (
	caLifetime   = 10 * 365 * 24 * time.Hour
	leafLifetime = 397 * 24 * time.Hour
	renewBefore  = 30 * 24 * time.Hour
)

// Ensure makes the CA (once) and a server certificate for names (DNS names or IP
// addresses), reusing what is there while it is valid for exactly those names. It
// reports whether it wrote a new server certificate.
func (s SelfSigned) Ensure(names []string, now time.Time) (bool, error) {
	if len(names) == 0 {
		return false, errors.New("self-signed certificate: no names")
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return false, err
	}
	caCert, caKey, err := s.loadOrMakeCA(now)
	if err != nil {
		return false, err
	}
	if leafFits(s.CertFile(), s.KeyFile(), caCert, names, now) {
		return false, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return false, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: names[0], Organization: []string{"hubctl self-signed"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(leafLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return false, fmt.Errorf("self-signed server certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return false, err
	}
	// The key first: a certificate never sits beside a key it does not match for long,
	// and the reloader keeps the old pair until both parse as a pair.
	if err := writeAtomic(s.KeyFile(), pemBlock("PRIVATE KEY", keyDER), 0o600); err != nil {
		return false, err
	}
	chain := append(pemBlock("CERTIFICATE", der), pemBlock("CERTIFICATE", caCert.Raw)...)
	if err := writeAtomic(s.CertFile(), chain, 0o644); err != nil {
		return false, err
	}
	return true, nil
}

func (s SelfSigned) loadOrMakeCA(now time.Time) (*x509.Certificate, crypto.Signer, error) {
	if pair, err := tls.LoadX509KeyPair(s.CACert(), s.caKey()); err == nil {
		if c, err := x509.ParseCertificate(pair.Certificate[0]); err == nil && now.Before(c.NotAfter) {
			if signer, ok := pair.PrivateKey.(crypto.Signer); ok {
				return c, signer, nil
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("self-signed CA in %s: %w", s.Dir, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "hubctl CA " + host, Organization: []string{"hubctl self-signed"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	if err := writeAtomic(s.caKey(), pemBlock("PRIVATE KEY", keyDER), 0o600); err != nil {
		return nil, nil, err
	}
	if err := writeAtomic(s.CACert(), pemBlock("CERTIFICATE", der), 0o644); err != nil {
		return nil, nil, err
	}
	c, err := x509.ParseCertificate(der)
	return c, key, err
}

// leafFits reports whether the server pair on disk is signed by ca, names exactly names
// and is not near its end.
func leafFits(certFile, keyFile string, ca *x509.Certificate, names []string, now time.Time) bool {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return false
	}
	c, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil || c.CheckSignatureFrom(ca) != nil || now.Add(renewBefore).After(c.NotAfter) {
		return false
	}
	var have []string
	have = append(have, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		have = append(have, ip.String())
	}
	want := make([]string, 0, len(names))
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			n = ip.String()
		}
		want = append(want, n)
	}
	sort.Strings(have)
	sort.Strings(want)
	return slices.Equal(slices.Compact(have), slices.Compact(want))
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// writeAtomic writes b to a temporary file beside path and renames it over path, so a
// reader sees the old or the new content, never half of it.
func writeAtomic(path string, b []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
