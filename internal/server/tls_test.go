package server

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/tlsconf"
)

// clientFor returns an HTTP client trusting only the CA in caFile.
func clientFor(t *testing.T, caFile string, h2 bool) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no CA in", caFile)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: h2}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// TestSelfSignedTLS: --tls=self-signed makes a CA under the data directory, serves
// HTTPS with HTTP/2 and TLS 1.2 at least, the realm follows the scheme, and a second
// start reuses the CA (clients trust it once).
func TestSelfSignedTLS(t *testing.T) {
	r := start(t, map[string]string{"tls.mode": "self-signed", "auth.mode": "token"})
	ca := filepath.Join(r.data, "tls", "ca.crt")
	c := clientFor(t, ca, true)
	resp, err := c.Get("https://" + r.addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol %s, want HTTP/2", resp.Proto)
	}
	if resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("TLS version %x", resp.TLS.Version)
	}
	if ch := resp.Header.Get("WWW-Authenticate"); !strings.Contains(ch, `realm="https://`+r.addr+`/token"`) {
		t.Errorf("challenge %q does not send clients to https", ch)
	}
	// TLS 1.1 is refused.
	old := &tls.Config{MaxVersion: tls.VersionTLS11, InsecureSkipVerify: true}
	if conn, err := tls.Dial("tcp", r.addr, old); err == nil {
		conn.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}
	// Plain HTTP on the TLS port is not served.
	if resp, err := http.Get("http://" + r.addr + "/v2/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP on the TLS port: %s", resp.Status)
		}
	}
	// A client with another CA fails on the chain.
	other := tlsconf.SelfSigned{Dir: t.TempDir()}
	if _, err := other.Ensure([]string{"127.0.0.1"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	_, err = clientFor(t, other.CACert(), false).Get("https://" + r.addr + "/v2/")
	if err == nil || !tlsconf.ErrUnknownAuthority(err) {
		t.Errorf("wrong CA: err = %v, want an unknown authority", err)
	}
	caBefore, _ := os.ReadFile(ca)
	r.stop(t)
	again := start(t, map[string]string{"tls.mode": "self-signed", "data": r.data})
	caAfter, _ := os.ReadFile(ca)
	if string(caBefore) != string(caAfter) {
		t.Error("the CA changed on restart")
	}
	if resp, err := clientFor(t, ca, false).Get("https://" + again.addr + "/healthz"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
}

// TestCertFilesReloaded: a certificate replaced on disk is served on the next
// connection, and a broken replacement leaves the old one in service.
func TestCertFilesReloaded(t *testing.T) {
	dir := t.TempDir()
	ss1 := tlsconf.SelfSigned{Dir: filepath.Join(dir, "one")}
	ss2 := tlsconf.SelfSigned{Dir: filepath.Join(dir, "two")}
	for _, ss := range []tlsconf.SelfSigned{ss1, ss2} {
		if _, err := ss.Ensure([]string{"127.0.0.1", "localhost"}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	copyFile(t, ss1.CertFile(), cert)
	copyFile(t, ss1.KeyFile(), key)
	r := start(t, map[string]string{"tls.cert": cert, "tls.key": key})
	get := func(ca string) error {
		c := clientFor(t, ca, false)
		c.Transport.(*http.Transport).DisableKeepAlives = true
		resp, err := c.Get("https://" + r.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(ss1.CACert()); err != nil {
		t.Fatal(err)
	}
	copyFile(t, ss2.KeyFile(), key)
	copyFile(t, ss2.CertFile(), cert)
	if err := get(ss2.CACert()); err != nil {
		t.Fatalf("after replacing the pair: %v", err)
	}
	if err := get(ss1.CACert()); err == nil {
		t.Fatal("the old certificate is still served")
	}
	// Half a rotation (a key that does not match): the last good pair stays.
	copyFile(t, ss1.KeyFile(), key)
	if err := get(ss2.CACert()); err != nil {
		t.Fatalf("a mismatched pair on disk broke serving: %v", err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	tmp := to + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, to); err != nil {
		t.Fatal(err)
	}
}

// TestRedirectToHTTPS: the plain listener of tls.redirect_addr sends GETs with 301 and
// pushes with 308 to the same path on the TLS port.
func TestRedirectToHTTPS(t *testing.T) {
	redirect := freeAddr(t)
	r := start(t, map[string]string{"tls.mode": "self-signed", "tls.redirect_addr": redirect})
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	_, port, _ := strings.Cut(r.addr, ":")
	for method, code := range map[string]int{http.MethodGet: 301, http.MethodPut: 308} {
		req, _ := http.NewRequest(method, "http://"+redirect+"/v2/a/manifests/1?x=y", nil)
		req.Host = "hub.example.test"
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := "https://hub.example.test:" + port + "/v2/a/manifests/1?x=y"; resp.StatusCode != code || resp.Header.Get("Location") != want {
			t.Errorf("%s: %d %q, want %d %q", method, resp.StatusCode, resp.Header.Get("Location"), code, want)
		}
	}
}

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
