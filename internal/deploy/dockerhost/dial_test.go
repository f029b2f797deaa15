package dockerhost

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/hubctl/hubctl/internal/deploy"
)

// dialMissing skips a test whose peer (sshd, the Docker engine) is not here, and
// fails it when CI=true.
func dialMissing(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// dialEngineSocket is the local engine's unix socket, or a skip.
func dialEngineSocket(t *testing.T) string {
	t.Helper()
	sock := "/var/run/docker.sock"
	if env := os.Getenv("DOCKER_HOST"); env != "" {
		u, err := url.Parse(env)
		if err != nil || u.Scheme != "unix" {
			dialMissing(t, "DOCKER_HOST=%s is not a unix socket: this test relays the engine's socket", env)
		}
		sock = u.Path
	}
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		dialMissing(t, "no Docker engine at %s (start dockerd): %v", sock, err)
	}
	c.Close()
	return sock
}

// dialCheck runs what a deploy does first over api: a ping and a container list.
func dialCheck(ctx context.Context, t *testing.T, api *client.Client) {
	t.Helper()
	p, err := api.Ping(ctx, client.PingOptions{})
	if err != nil {
		t.Fatalf("ping: %v", err)
	}
	if p.APIVersion == "" || api.ClientVersion() == "" {
		t.Fatalf("no API version: ping %q, client %q", p.APIVersion, api.ClientVersion())
	}
	// Negotiated: never above what the engine speaks.
	if client.MaxAPIVersion != p.APIVersion && api.ClientVersion() != p.APIVersion {
		t.Errorf("client speaks API %s, the engine %s", api.ClientVersion(), p.APIVersion)
	}
	if _, err := api.ContainerList(ctx, client.ContainerListOptions{All: true}); err != nil {
		t.Fatalf("container list: %v", err)
	}
}

func TestDialLocal(t *testing.T) {
	sock := dialEngineSocket(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, addr := range []string{"", deploy.LocalHost, "unix://" + sock} {
		api, err := Dial(ctx, deploy.Host{Name: "local", Docker: addr})
		if err != nil {
			t.Fatalf("Dial(%q): %v", addr, err)
		}
		dialCheck(ctx, t, api)
		api.Close()
	}
}

func TestDialRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tlsFiles := &deploy.DockerTLS{CA: "/nonexistent/ca.pem", Cert: "/nonexistent/cert.pem", Key: "/nonexistent/key.pem"}
	for _, tt := range []struct {
		addr string
		tls  *deploy.DockerTLS
		want string
	}{
		{"tcp://10.1.2.3:2375", nil, "has no TLS"},
		{"tcp://engine.example.com:2375", nil, "allowed on a loopback address only"},
		{"tcp://[::ffff:10.0.0.1]:2375", nil, "has no TLS"},
		{"tcp://10.1.2.3", tlsFiles, "write tcp://host:port"},
		{"tcp://10.1.2.3:99999", tlsFiles, "the port must be 1 to 65535"},
		{"tcp://10.1.2.3:2376", tlsFiles, "tls: ca: open /nonexistent/ca.pem"},
		{"tcp://10.1.2.3:2376", &deploy.DockerTLS{Cert: "c"}, "no ca"},
		{"unix:///var/run/docker.sock", tlsFiles, "tls is for tcp:// engines"},
		{"ssh://root@host", tlsFiles, "tls is for tcp:// engines"},
		{"local", tlsFiles, "tls is for tcp:// engines"},
		{"unix://relative/sock", nil, "write unix:///absolute/path"},
		{"unix:///nonexistent/docker.sock", nil, "/nonexistent/docker.sock"},
		{"http://engine:2375", nil, `the scheme "http"`},
		{"engine:2375", nil, "the scheme"},
		{"ssh://root:secret@host", nil, "no password in the address"},
		{"ssh://-oProxyCommand=touch%20x/", nil, "not an engine address"},
		{"ssh://-oProxyCommand=x", nil, "is not a host name"},
		{"ssh://root@host;reboot", nil, "is not a host name"},
		{"ssh://-lroot@host", nil, "user name"},
		{"ssh://root@host:0", nil, "the port must be 1 to 65535"},
		{"ssh://root@host/path", nil, "write ssh://user@host"},
	} {
		api, err := Dial(ctx, deploy.Host{Name: "h", Docker: tt.addr, TLS: tt.tls})
		if err == nil {
			api.Close()
			t.Errorf("Dial(%q) worked; want %q", tt.addr, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Dial(%q): %v; want one line with %q", tt.addr, err, tt.want)
		}
		if tt.addr != "local" && !strings.HasPrefix(err.Error(), "docker engine "+tt.addr+": ") {
			t.Errorf("Dial(%q): %v; want it to name the engine", tt.addr, err)
		}
	}
}

// dialCA is a certificate authority made by the test.
type dialCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newDialCA(t *testing.T, name string) *dialCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &dialCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate and key (PEM) signed by the CA: a server's for
// 127.0.0.1, or a client's.
func (ca *dialCA) issue(t *testing.T, name string, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func dialWrite(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// dialTLSRelay terminates TLS on 127.0.0.1 (client certificates of ca required)
// and relays each connection to the engine's unix socket: an engine on
// tcp://…:2376 with --tlsverify, as far as a client can tell.
func dialTLSRelay(t *testing.T, sock string, ca *dialCA, certPEM, keyPEM []byte) string {
	t.Helper()
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			track(c)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				// The handshake (and its client-certificate check) before any byte
				// reaches the engine.
				if err := c.(*tls.Conn).Handshake(); err != nil {
					return
				}
				e, err := net.Dial("unix", sock)
				if err != nil {
					return
				}
				track(e)
				defer e.Close()
				done := make(chan struct{})
				go func() { io.Copy(e, c); e.(*net.UnixConn).CloseWrite(); close(done) }()
				io.Copy(c, e)
				c.(*tls.Conn).CloseWrite()
				<-done
			}()
		}
	}()
	return "tcp://" + ln.Addr().String()
}

func TestDialTLS(t *testing.T) {
	sock := dialEngineSocket(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	ca := newDialCA(t, "hubctl test engine CA")
	srvCert, srvKey := ca.issue(t, "engine", true)
	cliCert, cliKey := ca.issue(t, "deployer", false)
	addr := dialTLSRelay(t, sock, ca, srvCert, srvKey)
	files := &deploy.DockerTLS{
		CA:   dialWrite(t, dir, "ca.pem", ca.pem),
		Cert: dialWrite(t, dir, "cert.pem", cliCert),
		Key:  dialWrite(t, dir, "key.pem", cliKey),
	}

	api, err := Dial(ctx, deploy.Host{Name: "tls", Docker: addr, TLS: files})
	if err != nil {
		t.Fatalf("Dial with the right CA and client certificate: %v", err)
	}
	dialCheck(ctx, t, api)
	api.Close()

	// A server certificate of another CA (a man in the middle) is refused.
	other := newDialCA(t, "someone else's CA")
	wrongCA := *files
	wrongCA.CA = dialWrite(t, dir, "other-ca.pem", other.pem)
	if api, err := Dial(ctx, deploy.Host{Name: "tls", Docker: addr, TLS: &wrongCA}); err == nil {
		api.Close()
		t.Error("Dial with a wrong CA worked")
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Dial with a wrong CA: %v; want a certificate error", err)
	}

	// Without a client certificate, or with one the engine's CA did not sign, the
	// engine is not reached.
	noCert := deploy.DockerTLS{CA: files.CA}
	if api, err := Dial(ctx, deploy.Host{Name: "tls", Docker: addr, TLS: &noCert}); err == nil {
		api.Close()
		t.Error("Dial without a client certificate worked")
	} else {
		t.Logf("without a client certificate: %v", err)
	}
	foreignCert, foreignKey := other.issue(t, "intruder", false)
	foreign := deploy.DockerTLS{CA: files.CA, Cert: dialWrite(t, dir, "f.pem", foreignCert), Key: dialWrite(t, dir, "f.key", foreignKey)}
	if api, err := Dial(ctx, deploy.Host{Name: "tls", Docker: addr, TLS: &foreign}); err == nil {
		api.Close()
		t.Error("Dial with a client certificate of another CA worked")
	}

	// A key that is not the certificate's, and a CA file with no certificate.
	mismatch := deploy.DockerTLS{CA: files.CA, Cert: files.Cert, Key: foreign.Key}
	if _, err := Dial(ctx, deploy.Host{Name: "tls", Docker: addr, TLS: &mismatch}); err == nil || !strings.Contains(err.Error(), "client certificate") {
		t.Errorf("Dial with a key of another certificate: %v", err)
	}
	empty := deploy.DockerTLS{CA: dialWrite(t, dir, "empty.pem", []byte("not a certificate\n")), Cert: files.Cert, Key: files.Key}
	if _, err := Dial(ctx, deploy.Host{Name: "tls", Docker: addr, TLS: &empty}); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Errorf("Dial with an empty CA: %v", err)
	}

	// Plain TCP is allowed on loopback only; this one speaks TLS, so it fails, but
	// it is tried, not refused.
	if _, err := Dial(ctx, deploy.Host{Name: "tls", Docker: addr}); err == nil || strings.Contains(err.Error(), "has no TLS") {
		t.Errorf("Dial of a loopback tcp:// without TLS: %v; want it tried", err)
	}
}
