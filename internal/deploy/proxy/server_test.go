package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/deploy/loadtest"
	"github.com/hubctl/hubctl/internal/tlsconf"
)

// TestRunTLSFiles: Run terminates TLS with certificate files: a client trusting only
// the CA reaches the routed task over HTTPS, a certificate
// renewed over the files is served on the next connection without a restart, and a
// setup that cannot work is refused before anything listens.
func TestRunTLSFiles(t *testing.T) {
	dir := t.TempDir()
	ss := tlsconf.SelfSigned{Dir: dir}
	if _, err := ss.Ensure([]string{"127.0.0.1", "localhost"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Config{
		{TLSListen: "127.0.0.1:0", ControlListen: "127.0.0.1:0"},
		{TLSListen: "127.0.0.1:0", CertFile: ss.CertFile(), ControlListen: "127.0.0.1:0"},
		{TLSListen: "127.0.0.1:0", CertFile: ss.CertFile(), KeyFile: ss.KeyFile(), ACME: tlsconf.ACME{Domains: []string{"a.example.com"}}, ControlListen: "127.0.0.1:0"},
		{TLSListen: "127.0.0.1:0", ACME: tlsconf.ACME{Domains: []string{"a.example.com"}}, ControlListen: "127.0.0.1:0"},
		{TLSListen: "127.0.0.1:0", CertFile: ss.CertFile(), KeyFile: ss.CACert(), ControlListen: "127.0.0.1:0"},
	} {
		bad.Secret = []byte(testSecret)
		if err := Run(t.Context(), bad); err == nil {
			t.Errorf("Run(%+v) served", bad)
		}
	}

	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan [2]net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{TLSListen: "127.0.0.1:0", CertFile: ss.CertFile(), KeyFile: ss.KeyFile(),
			ControlListen: "127.0.0.1:0", Secret: []byte(testSecret),
			Ready: func(_, tlsPublic, control net.Addr) { ready <- [2]net.Addr{tlsPublic, control} }})
	}()
	var addrs [2]net.Addr
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	c, err := NewClient("http://"+addrs[1].String(), testSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	tk := startTask(t, "v1", true)
	if _, err := c.Deploy(ctx, "web", DeployRequest{Targets: targets(tk), Health: fastHealth}); err != nil {
		t.Fatal(err)
	}

	// client trusts only the CA in the files now.
	client := func() *http.Client {
		pem, err := os.ReadFile(ss.CACert())
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
			TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	url := "https://" + addrs[0].String() + "/"
	hc := client()
	if body, err := loadtest.Get(hc, url); err != nil || body != "v1" {
		t.Fatalf("over TLS: %q %v", body, err)
	}
	var seen []*x509.Certificate
	grab := func() {
		t.Helper()
		conn, err := tls.Dial("tcp", addrs[0].String(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, conn.ConnectionState().PeerCertificates[0])
		conn.Close()
	}
	grab()
	// Renewed: a new CA and certificate written over the files (their size or time
	// changes), served on the next connection.
	for _, f := range []string{ss.CertFile(), ss.KeyFile(), ss.CACert(), filepath.Join(dir, "ca.key")} {
		os.Remove(f)
	}
	if _, err := ss.Ensure([]string{"127.0.0.1"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	grab()
	if seen[0].Equal(seen[1]) {
		t.Fatal("the renewed certificate is not served")
	}
	hc = client()
	if body, err := loadtest.Get(hc, url); err != nil || body != "v1" {
		t.Fatalf("over TLS after the renewal: %q %v", body, err)
	}
	if h := tk.requests.Load(); h < 2 {
		t.Errorf("the task served %d requests", h)
	}
}
