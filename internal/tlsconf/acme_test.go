package tlsconf

import (
	"crypto/tls"
	"slices"
	"testing"
)

// TestACMESetup: no domain is an error; the listener's configuration offers
// tls-alpn-01 and TLS 1.2 at least, and refuses a name it was not given before
// asking any CA (the directory here is never reached).
func TestACMESetup(t *testing.T) {
	if _, _, err := (ACME{}).Setup(); err == nil {
		t.Fatal("Setup without a domain")
	}
	c, m, err := ACME{Domains: []string{"shop.example.com"}, Directory: "https://127.0.0.1:1/dir"}.Setup()
	if err != nil || m == nil {
		t.Fatal(err)
	}
	if c.MinVersion != tls.VersionTLS12 || !slices.Contains(c.NextProtos, "acme-tls/1") {
		t.Fatalf("MinVersion %x, NextProtos %v", c.MinVersion, c.NextProtos)
	}
	if _, err := c.GetCertificate(&tls.ClientHelloInfo{ServerName: "evil.example.com"}); err == nil {
		t.Fatal("a certificate for a name not given")
	}
}

func TestCheckACME(t *testing.T) {
	for d, ok := range map[string]bool{"shop.example.com": true, "localhost": false, "127.0.0.1": false,
		"*.example.com": false, "a.b/c": false, "": false} {
		if err := CheckACMEDomain(d); (err == nil) != ok {
			t.Errorf("CheckACMEDomain(%q) = %v", d, err)
		}
	}
	for u, ok := range map[string]bool{"https://acme.example/dir": true, "http://acme.example/dir": false, "https://": false, "::": false} {
		if err := CheckACMEDirectory(u); (err == nil) != ok {
			t.Errorf("CheckACMEDirectory(%q) = %v", u, err)
		}
	}
}
