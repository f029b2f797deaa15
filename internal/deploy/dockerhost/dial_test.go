package dockerhost

import (
	"context"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/hubctl/hubctl/internal/deploy"
	"github.com/hubctl/hubctl/internal/deploy/dockerhost/tlstest"
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
	tlsFiles := &deploy.DockerTLS{CA: "/nonexistent/ca.PEM", Cert: "/nonexistent/cert.pem", Key: "/nonexistent/key.pem"}
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
		{"tcp://10.1.2.3:2376", tlsFiles, "tls: ca: open /nonexistent/ca.PEM"},
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

func dialWrite(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	return tlstest.WriteFile(t, dir, name, data)
}

func TestDialTLS(t *testing.T) {
	sock := dialEngineSocket(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "hubctl test engine CA")
	srvCert, srvKey := ca.Issue(t, "engine", true)
	cliCert, cliKey := ca.Issue(t, "deployer", false)
	addr := tlstest.Relay(t, sock, ca, srvCert, srvKey)
	files := &deploy.DockerTLS{
		CA:   dialWrite(t, dir, "ca.PEM", ca.PEM),
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
	other := tlstest.NewCA(t, "someone else's CA")
	wrongCA := *files
	wrongCA.CA = dialWrite(t, dir, "other-ca.PEM", other.PEM)
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
	} else if !strings.Contains(err.Error(), "the engine wants a client certificate") || strings.Contains(err.Error(), "\n") {
		t.Errorf("Dial without a client certificate: %v; want one line saying the engine wants one", err)
	}
	foreignCert, foreignKey := other.Issue(t, "intruder", false)
	foreign := deploy.DockerTLS{CA: files.CA, Cert: dialWrite(t, dir, "f.pem", foreignCert), Key: dialWrite(t, dir, "f.key", foreignKey)}
	if api, err := Dial(ctx, deploy.Host{Name: "tls", Docker: addr, TLS: &foreign}); err == nil {
		api.Close()
		t.Error("Dial with a client certificate of another CA worked")
	} else if !strings.Contains(err.Error(), "the engine refused the client certificate "+foreign.Cert) || strings.Contains(err.Error(), "\n") {
		t.Errorf("Dial with a client certificate of another CA: %v; want one line naming the refused certificate", err)
	} else {
		t.Logf("a client certificate of another CA: %v", err)
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
