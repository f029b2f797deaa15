package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSelfSignedEnsure(t *testing.T) {
	ss := SelfSigned{Dir: t.TempDir()}
	now := time.Now()
	made, err := ss.Ensure([]string{"hub.lab", "127.0.0.1"}, now)
	if err != nil || !made {
		t.Fatalf("first Ensure = %v, %v", made, err)
	}
	ca, _ := os.ReadFile(ss.CACert())
	if made, err := ss.Ensure([]string{"127.0.0.1", "hub.lab"}, now); err != nil || made {
		t.Fatalf("Ensure with the same names = %v, %v; want it reused", made, err)
	}
	if made, err := ss.Ensure([]string{"hub.lab", "127.0.0.1", "10.0.0.5"}, now); err != nil || !made {
		t.Fatalf("Ensure with a new name = %v, %v; want a new certificate", made, err)
	}
	later := now.Add(leafLifetime - renewBefore/2)
	if made, err := ss.Ensure([]string{"hub.lab", "127.0.0.1", "10.0.0.5"}, later); err != nil || !made {
		t.Fatalf("Ensure near the end = %v, %v; want a renewal", made, err)
	}
	ca2, _ := os.ReadFile(ss.CACert())
	if string(ca) != string(ca2) {
		t.Fatal("the CA was remade")
	}
	pair, err := tls.LoadX509KeyPair(ss.CertFile(), ss.KeyFile())
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	for _, name := range []string{"hub.lab", "10.0.0.5"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, CurrentTime: later}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if fi, _ := os.Stat(ss.KeyFile()); fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", fi.Mode())
	}
}

// serveTLS serves 200 over TLS with the pair in dir's self-signed files, optionally
// asking for a client certificate signed by clientCA.
func serveTLS(t *testing.T, ss SelfSigned, clientCA *x509.CertPool) string {
	t.Helper()
	fc := &FileCert{CertFile: ss.CertFile(), KeyFile: ss.KeyFile()}
	if err := fc.Load(); err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{GetCertificate: fc.GetCertificate}
	if clientCA != nil {
		// The chain is checked by hand: the self-signed leaf is for server auth only.
		cfg.ClientAuth = tls.RequireAnyClientCert
		cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			c, err := x509.ParseCertificate(raw[0])
			if err != nil {
				return err
			}
			_, err = c.Verify(x509.VerifyOptions{Roots: clientCA, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
			return err
		}
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestTrustCertsDir(t *testing.T) {
	ss := SelfSigned{Dir: t.TempDir()}
	if _, err := ss.Ensure([]string{"127.0.0.1"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, ss, nil)
	certsD := t.TempDir()
	trust := &Trust{CertsDirs: []string{certsD}}
	get := func(tr *Trust) error {
		c := tr.Client(&http.Client{Timeout: 10 * time.Second})
		resp, err := c.Get("https://" + addr + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if trust.HasCA(addr) {
		t.Fatal("HasCA with an empty certs.d")
	}
	if err := get(trust); err == nil || !ErrUnknownAuthority(err) {
		t.Fatalf("without the CA: %v, want unknown authority", err)
	}
	hostDir := filepath.Join(certsD, addr)
	if err := os.MkdirAll(hostDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ca, _ := os.ReadFile(ss.CACert())
	if err := os.WriteFile(filepath.Join(hostDir, "ca.crt"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	trust = &Trust{CertsDirs: []string{certsD}}
	if !trust.HasCA(addr) {
		t.Fatal("HasCA false with ca.crt in place")
	}
	if err := get(trust); err != nil {
		t.Fatalf("with certs.d/%s/ca.crt: %v", addr, err)
	}
	// --ca-file alone works for any host; a wrong one fails.
	if err := get(&Trust{CAFiles: []string{ss.CACert()}}); err != nil {
		t.Fatalf("with --ca-file: %v", err)
	}
	other := SelfSigned{Dir: t.TempDir()}
	other.Ensure([]string{"127.0.0.1"}, time.Now())
	if err := get(&Trust{CAFiles: []string{other.CACert()}}); err == nil || !ErrUnknownAuthority(err) {
		t.Fatalf("with a wrong --ca-file: %v", err)
	}
	// A path in the host name is never read.
	if (&Trust{CertsDirs: []string{certsD}}).HasCA("../" + filepath.Base(certsD) + "/" + addr) {
		t.Fatal("a host with a path separator read a folder")
	}
}

func TestTrustClientCertificate(t *testing.T) {
	server := SelfSigned{Dir: t.TempDir()}
	client := SelfSigned{Dir: t.TempDir()}
	server.Ensure([]string{"127.0.0.1"}, time.Now())
	client.Ensure([]string{"client"}, time.Now())
	clientCA, _ := os.ReadFile(client.CACert())
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(clientCA)
	addr := serveTLS(t, server, pool)
	_, port, _ := net.SplitHostPort(addr)
	dir := filepath.Join(t.TempDir(), "127.0.0.1:"+port)
	os.MkdirAll(dir, 0o755)
	ca, _ := os.ReadFile(server.CACert())
	os.WriteFile(filepath.Join(dir, "ca.crt"), ca, 0o644)
	cert, _ := os.ReadFile(client.CertFile())
	key, _ := os.ReadFile(client.KeyFile())
	os.WriteFile(filepath.Join(dir, "client.cert"), cert, 0o644)
	os.WriteFile(filepath.Join(dir, "client.key"), key, 0o600)
	tr := &Trust{CertsDirs: []string{filepath.Dir(dir)}}
	resp, err := tr.Client(&http.Client{}).Get("https://" + addr + "/")
	if err != nil {
		t.Fatalf("with the client certificate: %v", err)
	}
	resp.Body.Close()
}
