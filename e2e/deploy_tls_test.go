package e2e

import (
	"fmt"
	"github.com/hubctl/hubctl/internal/deploy/loadtest"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/deploy/dockerhost/tlstest"
)

// engineSocket is the local engine's unix socket (DOCKER_HOST=unix://… or the
// default), or a skip.
func engineSocket(t *testing.T) string {
	t.Helper()
	sock := "/var/run/docker.sock"
	if env := os.Getenv("DOCKER_HOST"); env != "" {
		u, err := url.Parse(env)
		if err != nil || u.Scheme != "unix" {
			skipOrFatal(t, "DOCKER_HOST=%s is not a unix socket: this test relays the engine's socket", env)
		}
		sock = u.Path
	}
	if _, err := os.Stat(sock); err != nil {
		skipOrFatal(t, "no Docker engine socket: %v", err)
	}
	return sock
}

// TestDeployDockerTLS: a host on tcp://127.0.0.1:PORT with TLS, as an engine run
// with --tlsverify on 2376 is (a relay the test starts terminates TLS, requires a
// client certificate of the test's CA, and forwards to the local engine's socket),
// takes a deploy end to end; a client certificate of another CA is refused in one
// line that says so, and nothing starts.
func TestDeployDockerTLS(t *testing.T) {
	requireDocker(t)
	sock := engineSocket(t)
	e := newDeployEnv(t)
	ver := func(v string) string { return v + "-" + e.id }

	ca := tlstest.NewCA(t, "hubctl e2e engine CA")
	srvCert, srvKey := ca.Issue(t, "engine", true)
	addr := tlstest.Relay(t, sock, ca, srvCert, srvKey)
	dir := t.TempDir()
	caFile := tlstest.WriteFile(t, dir, "ca.pem", ca.PEM)
	cliCert, cliKey := ca.Issue(t, "deployer", false)
	other := tlstest.NewCA(t, "someone else's CA")
	badCert, badKey := other.Issue(t, "intruder", false)
	hosts := func(cert, key []byte, name string) string {
		return fmt.Sprintf("hosts:\n  - name: secure\n    docker: %s\n    tls:\n      ca: %s\n      cert: %s\n      key: %s\n",
			addr, caFile, tlstest.WriteFile(t, dir, name+".pem", cert), tlstest.WriteFile(t, dir, name+".key", key))
	}

	// A client certificate the engine's CA did not sign: refused, one line, nothing made.
	e.hosts = hosts(badCert, badKey, "intruder")
	e.writeSpec("v1")
	_, errOut, err := e.hubctl(e.deployArgs("up")...)
	if err == nil || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "the engine refused the client certificate") {
		t.Fatalf("up with a client certificate of another CA: %v\n%s", err, errOut)
	}
	t.Logf("wrong client certificate: %s", strings.TrimSpace(errOut))
	if left := e.docker("ps", "-aq", "--filter", "label=dev.hubctl.service="+e.service); left != "" {
		t.Fatalf("a refused host left containers: %s", left)
	}
	if _, err := os.Stat(e.stateDir); !os.IsNotExist(err) {
		t.Fatalf("a refused host wrote history: %v", err)
	}

	// The right one: up, the service answers through the proxy, status and down
	// over the same TLS connection.
	e.hosts = hosts(cliCert, cliKey, "deployer")
	e.writeSpec("v1")
	e.mustHubctl(e.deployArgs("up")...)
	if got := e.tasks(); !slices.Equal(got, []string{"1:running:true", "1:running:true"}) {
		t.Fatalf("tasks after up over TLS = %v", got)
	}
	if body, err := loadtest.Get(http.DefaultClient, e.proxyURL()); err != nil || body != ver("v1") {
		t.Fatalf("through the proxy: %q %v", body, err)
	}
	if hosts := e.docker("ps", "--format", `{{.Label "dev.hubctl.host"}}`, "--filter", "label=dev.hubctl.service="+e.service); !strings.Contains(hosts, "secure") {
		t.Fatalf("host labels %q", hosts)
	}
	e.mustHubctl(e.args("down")...)
	if left := e.docker("ps", "-aq", "--filter", "label=dev.hubctl.service="+e.service); left != "" {
		t.Fatalf("down over TLS left containers: %s", left)
	}
}
