package deploy

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/deploy/dockerhost/tlstest"
)

func TestParseProxyACME(t *testing.T) {
	s, err := Parse([]byte("service:\n  name: web\n  image: localhost:5000/acme/web:1\n  proxy:\n    port: 8080\n    tls:\n      acme:\n        domains: [Shop.Example.com.]\n        directory: https://acme.example.org/dir\n        email: ops@example.com\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := s.Service.Proxy.TLS.ACME
	if a == nil || len(a.Domains) != 1 || a.Domains[0] != "shop.example.com" || a.Directory != "https://acme.example.org/dir" || a.Email != "ops@example.com" {
		t.Fatalf("acme = %+v", a)
	}
	if got := s.Service.Proxy.TLS.String(); got != "ACME certificates for shop.example.com from https://acme.example.org/dir" {
		t.Errorf("String = %q", got)
	}
}

func TestLoadProxyCert(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "hubctl test CA")
	cert, key := ca.Issue(t, "web", true)
	_, otherKey := ca.Issue(t, "other", true)
	certFile := tlstest.WriteFile(t, dir, "cert.pem", cert)
	keyFile := tlstest.WriteFile(t, dir, "key.pem", key)
	otherKeyFile := tlstest.WriteFile(t, dir, "other.key", otherKey)
	clientCert, clientKey := ca.Issue(t, "client", false)
	noName := tlstest.WriteFile(t, dir, "client.pem", clientCert)
	noNameKey := tlstest.WriteFile(t, dir, "client.key", clientKey)
	big := tlstest.WriteFile(t, dir, "big.pem", bytes.Repeat([]byte("A"), MaxProxyTLSFile+1))

	c, err := LoadProxyCert(&ProxyTLS{Cert: certFile, Key: keyFile}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.KeyPEM, key) || !bytes.Equal(c.CertPEM, cert) || len(c.Names) != 1 || c.Names[0] != "127.0.0.1" {
		t.Fatalf("loaded %v", c.Names)
	}
	if s := c.String(); strings.Contains(s, "PRIVATE") || !strings.Contains(s, "127.0.0.1") {
		t.Errorf("String = %q", s)
	}

	for _, tc := range []struct {
		name string
		tls  ProxyTLS
		now  time.Time
		want string
	}{
		{"mismatched pair", ProxyTLS{Cert: certFile, Key: otherKeyFile}, time.Now(), "are not a certificate and its key"},
		{"swapped", ProxyTLS{Cert: keyFile, Key: certFile}, time.Now(), "are not a certificate and its key"},
		{"missing cert", ProxyTLS{Cert: filepath.Join(dir, "none.pem"), Key: keyFile}, time.Now(), "proxy.tls: cert: open"},
		{"missing key", ProxyTLS{Cert: certFile, Key: filepath.Join(dir, "none.key")}, time.Now(), "proxy.tls: key: open"},
		{"directory", ProxyTLS{Cert: dir, Key: keyFile}, time.Now(), "is not a regular file"},
		{"too big", ProxyTLS{Cert: big, Key: keyFile}, time.Now(), "is over 256 KiB"},
		{"expired", ProxyTLS{Cert: certFile, Key: keyFile}, time.Now().Add(2 * time.Hour), "expired on"},
		{"no name", ProxyTLS{Cert: noName, Key: noNameKey}, time.Now(), "names no host"},
		{"acme", ProxyTLS{ACME: &ACME{Domains: []string{"a.example.com"}}}, time.Now(), "no certificate files"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadProxyCert(&tc.tls, tc.now)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), string(key[40:70])) {
				t.Fatalf("the error shows key material: %v", err)
			}
		})
	}
	if err := os.Chmod(keyFile, 0); err == nil && os.Geteuid() != 0 {
		if _, err := LoadProxyCert(&ProxyTLS{Cert: certFile, Key: keyFile}, time.Now()); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("unreadable key: %v", err)
		}
	}
}
