package dockerhost

import (
	"slices"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/deploy"
)

// TestProxyTLSMode: the flags and label of each kind of proxy TLS, and a running
// proxy made another way refused before the engine is asked anything.
func TestProxyTLSMode(t *testing.T) {
	files := &Host{opts: Options{ProxyCert: &deploy.ProxyCert{CertPEM: []byte("c"), KeyPEM: []byte("k")}}}
	acme := &Host{opts: Options{ProxyACME: &deploy.ACME{Domains: []string{"a.example.com", "b.example.com"}, Directory: "https://ca.example/dir", Email: "ops@example.com"}}}
	acme2 := &Host{opts: Options{ProxyACME: &deploy.ACME{Domains: []string{"a.example.com"}}}}
	none := &Host{}

	if got := files.proxyTLSArgs(); !slices.Equal(got, []string{"--tls-listen", ":443", "--tls-cert", "/tls/cert.pem", "--tls-key", "/tls/key.pem"}) {
		t.Errorf("files args %q", got)
	}
	if got := acme.proxyTLSArgs(); !slices.Equal(got, []string{"--tls-listen", ":443", "--acme-domain", "a.example.com,b.example.com", "--acme-directory", "https://ca.example/dir", "--acme-email", "ops@example.com"}) {
		t.Errorf("acme args %q", got)
	}
	if none.proxyTLSArgs() != nil || none.proxyTLSMode() != "" {
		t.Error("no TLS has flags")
	}
	if files.proxyTLSMode() != "files" || !strings.HasPrefix(acme.proxyTLSMode(), "acme:") || acme.proxyTLSMode() == acme2.proxyTLSMode() {
		t.Errorf("modes %q %q %q", files.proxyTLSMode(), acme.proxyTLSMode(), acme2.proxyTLSMode())
	}
	for _, tc := range []struct {
		h    *Host
		have string
		want string
	}{
		{files, "", "runs without TLS and the spec asks TLS with certificate files"},
		{none, "files", "runs TLS with certificate files and the spec asks without TLS"},
		{acme, "files", "and the spec asks TLS with ACME settings"},
		{acme2, acme.proxyTLSMode(), "runs TLS with ACME settings"},
	} {
		err := tc.h.checkProxyTLS(t.Context(), "id", "hubctl-proxy-web", map[string]string{labelProxyTLS: tc.have})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "`hubctl deploy down` and `up`") {
			t.Errorf("have %q: %v", tc.have, err)
		}
	}
	if err := acme.checkProxyTLS(t.Context(), "id", "p", map[string]string{labelProxyTLS: acme.proxyTLSMode()}); err != nil {
		t.Errorf("same ACME settings: %v", err)
	}
	if err := none.checkProxyTLS(t.Context(), "id", "p", map[string]string{}); err != nil {
		t.Errorf("no TLS either side: %v", err)
	}
}
