package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProxyACMEWithPebble: `hubctl proxy run --acme-domain` gets its certificate as
// `hubctl serve --tls=acme` does (tlsconf.ACME, one setup for both) from a real ACME
// server (pebble, tls-alpn-01 on the proxy's own TLS port), serves the routed
// service over HTTPS with the chain to pebble's root, refuses a name it was not
// given, and after a restart with pebble unreachable serves the same certificate
// from its cache beside the state file.
func TestProxyACMEWithPebble(t *testing.T) {
	const name = "web.pebble.test"
	tlsAddr := freeLoopback(t)
	_, port, _ := net.SplitHostPort(tlsAddr)
	dir, apiCA, mgmt := pebble(t, port)
	roots := pebbleRoots(t, mgmt, apiCA)

	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend via %s", r.Header.Get("X-Forwarded-Proto"))
	}))
	defer backend.Close()

	data := t.TempDir()
	secret := "proxy-secret-0123456789abcdef"
	env := append(cleanEnv("HUBCTL_"), "HUBCTL_PROXY_SECRET="+secret, "SSL_CERT_FILE="+apiCA)
	start := func(directory string) (control string, stop func()) {
		t.Helper()
		control = freeLoopback(t)
		cmd := exec.Command(hubctlBin, "proxy", "run", "--listen", freeLoopback(t), "--tls-listen", tlsAddr,
			"--control-listen", control, "--state-file", filepath.Join(data, "state.json"),
			"--acme-domain", name, "--acme-directory", directory)
		cmd.Env = env
		logf, err := os.Create(filepath.Join(t.TempDir(), "proxy.log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		stop = func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if t.Failed() {
				b, _ := os.ReadFile(logf.Name())
				t.Logf("proxy log:\n%s", b)
			}
			logf.Close()
		}
		t.Cleanup(stop)
		waitTCP(t, control)
		waitTCP(t, tlsAddr)
		return control, stop
	}
	control, stop := start(dir)
	run(t, "", env, hubctlBin, "proxy", "deploy", "web", "--control", "http://"+control,
		"--target", strings.TrimPrefix(backend.URL, "http://"), "--health-interval", "100ms")

	get := func(host string) (*http.Response, string, error) {
		c := acmeClient(roots, tlsAddr)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/", nil)
		resp, err := c.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b), nil
	}
	resp, body, err := get(name)
	if err != nil {
		t.Fatalf("GET https://%s/ trusting pebble's root: %v", name, err)
	}
	if resp.StatusCode != http.StatusOK || body != "backend via https" {
		t.Fatalf("through the proxy: %s %q", resp.Status, body)
	}
	leaf := resp.TLS.PeerCertificates[0]
	if err := leaf.VerifyHostname(name); err != nil {
		t.Fatal(err)
	}
	// A name the proxy was not given gets no certificate.
	if _, _, err := get("other.pebble.test"); err == nil {
		t.Fatal("the proxy got a certificate for a name not in --acme-domain")
	}
	if fi, err := os.Stat(filepath.Join(data, "acme")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("the ACME cache beside the state file: %v %v", fi, err)
	}

	// Restarted with a directory nobody serves: the cached certificate, the state's
	// route.
	stop()
	start("https://" + freeLoopback(t) + "/dir")
	resp, body, err = get(name)
	if err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	if body != "backend via https" || !resp.TLS.PeerCertificates[0].Equal(leaf) {
		t.Fatalf("after the restart: %q, same certificate %v", body, resp.TLS.PeerCertificates[0].Equal(leaf))
	}
}
