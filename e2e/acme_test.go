package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/pgtest"
	"github.com/hubctl/hubctl/internal/tlsconf"
)

// acmeName is the dotted name the hub gets a certificate for; pebble-challtestsrv
// answers 127.0.0.1 for every name (autocert refuses names without a dot).
const acmeName = "hub.pebble.test"

// freeLoopback returns 127.0.0.1:PORT of a port nobody listens on right now.
func freeLoopback(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startProcess starts a helper process whose output goes to a log file, stopped at
// cleanup; the log is shown when the test fails.
func startProcess(t *testing.T, env []string, name string, args ...string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), filepath.Base(name)+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s log:\n%s", filepath.Base(name), b)
		}
	})
}

// waitTCP waits until addr accepts connections (a hang guard, not a timing claim).
func waitTCP(t *testing.T, addr string) {
	t.Helper()
	for i := 0; i < 300; i++ {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s", addr)
}

// pebble starts pebble-challtestsrv and pebble, which validates tls-alpn-01 on
// tlsPort, and returns pebble's directory URL, the CA its HTTPS API is served with,
// and its management address (for the issuing root).
func pebble(t *testing.T, tlsPort string) (dir, apiCA, mgmt string) {
	t.Helper()
	pebbleBin, challBin := tool(t, "pebble"), tool(t, "pebble-challtestsrv")
	dns, chall := freeLoopback(t), freeLoopback(t)
	startProcess(t, nil, challBin, "-dnsserver", dns, "-management", chall,
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	// pebble's own API certificate, from a CA made here.
	api := tlsconf.SelfSigned{Dir: t.TempDir()}
	if _, err := api.Ensure([]string{"127.0.0.1", "localhost"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	listen, mgmt := freeLoopback(t), freeLoopback(t)
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress": listen, "managementListenAddress": mgmt,
		"certificate": api.CertFile(), "privateKey": api.KeyFile(),
		"httpPort": 1, "tlsPort": mustAtoi(t, tlsPort),
		"ocspResponderURL": "", "externalAccountBindingRequired": false,
	}}
	cfgPath := filepath.Join(t.TempDir(), "pebble.json")
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	startProcess(t, []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=100"},
		pebbleBin, "-config", cfgPath, "-dnsserver", dns)
	waitTCP(t, dns)
	waitTCP(t, listen)
	waitTCP(t, mgmt)
	return "https://" + listen + "/dir", api.CACert(), mgmt
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// pebbleRoots fetches the roots pebble issues under (its management API).
func pebbleRoots(t *testing.T, mgmt, apiCA string) *x509.CertPool {
	t.Helper()
	b, _ := os.ReadFile(apiCA)
	apiPool := x509.NewCertPool()
	apiPool.AppendCertsFromPEM(b)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: apiPool}}}
	pool := x509.NewCertPool()
	for _, p := range []string{"/roots/0", "/intermediates/0"} {
		resp, err := c.Get("https://" + mgmt + p)
		if err != nil {
			t.Fatal(err)
		}
		pem, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !pool.AppendCertsFromPEM(pem) {
			t.Fatalf("pebble %s: no certificate in %q", p, pem)
		}
	}
	return pool
}

// acmeClient reaches the hub at addr by acmeName, trusting only pebble's roots.
func acmeClient(roots *x509.CertPool, addr string) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// TestACMEWithPebble: serve --tls=acme gets a certificate for a dotted name from a
// real ACME server (pebble, tls-alpn-01 on the hub's own port), serves it with the
// chain to pebble's root, and keeps it in PostgreSQL: a second replica on the same
// database serves the same certificate with pebble gone.
func TestACMEWithPebble(t *testing.T) {
	addr := freeLoopback(t)
	_, port, _ := net.SplitHostPort(addr)
	dir, apiCA, mgmt := pebble(t, port)
	dsn := pgtest.Start(t)
	env := []string{"SSL_CERT_FILE=" + apiCA, "HUBCTL_DB_PATH=" + dsn, "HUBCTL_AUTH_KEYS_DIR=" + t.TempDir()}
	s := startServerEnv(t, t.TempDir(), env, "--addr", addr, "--tls=acme", "--acme-domain", acmeName, "--acme-directory", dir)

	roots := pebbleRoots(t, mgmt, apiCA)
	c := acmeClient(roots, s.Addr)
	resp, err := c.Get("https://" + acmeName + "/v2/")
	if err != nil {
		t.Fatalf("GET https://%s/v2/ trusting pebble's root: %v", acmeName, err)
	}
	resp.Body.Close()
	leaf := resp.TLS.PeerCertificates[0]
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `realm="https://`+acmeName+`/token"`) {
		t.Errorf("GET /v2/: %s, challenge %q", resp.Status, resp.Header.Get("WWW-Authenticate"))
	}
	if err := leaf.VerifyHostname(acmeName); err != nil {
		t.Fatal(err)
	}
	// A second replica: same database, pebble stopped (its port is closed to the
	// replica by giving it a directory nobody serves): the certificate comes from the
	// database.
	addr2 := freeLoopback(t)
	s2 := startServerEnv(t, t.TempDir(), []string{"HUBCTL_DB_PATH=" + dsn, "HUBCTL_AUTH_KEYS_DIR=" + envValue(env, "HUBCTL_AUTH_KEYS_DIR")},
		"--addr", addr2, "--tls=acme", "--acme-domain", acmeName, "--acme-directory", "https://"+freeLoopback(t)+"/dir")
	resp, err = acmeClient(roots, s2.Addr).Get("https://" + acmeName + "/healthz")
	if err != nil {
		t.Fatalf("the second replica: %v", err)
	}
	resp.Body.Close()
	if !resp.TLS.PeerCertificates[0].Equal(leaf) {
		t.Error("the second replica serves another certificate than the first got")
	}
}

// envValue returns KEY's value in env.
func envValue(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}
