package e2e

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/deploy/dockerhost/sshtest"
	"github.com/hubctl/hubctl/internal/deploy/loadtest"
)

// startDeploySSHD runs sshd on loopback (sshtest), whose logins run this machine's
// docker CLI: ssh://USER@127.0.0.1:PORT is the same engine, reached as a remote
// host is. It answers that address and an ssh_config (ssh -F, given to hubctl as
// $HUBCTL_SSH_CONFIG) that offers the test's key only and trusts the test's host
// key only.
func startDeploySSHD(t *testing.T) (addr, sshConfig string) {
	t.Helper()
	key := sshtest.Keygen(t, t.TempDir(), "client")
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	s := sshtest.Start(t, pub)
	return s.Addr(), s.ClientConfig(t, "ssh_config", key, s.KnownHosts(t, "known_hosts", s.HostPub))
}

// TestDeployDockerSSH: a host reached over SSH (a real sshd on loopback, with a key
// and host key the test made, given to hubctl as $HUBCTL_SSH_CONFIG) takes a
// deploy end to end: up, the service answers through the proxy, update to v2,
// status and logs over the same connection, down removes everything. Without the
// ssh config (so without the key), the host is refused in one line and nothing
// starts.
func TestDeployDockerSSH(t *testing.T) {
	requireDocker(t)
	addr, sshConfig := startDeploySSHD(t)
	e := newDeployEnv(t)
	e.hosts = fmt.Sprintf("hosts:\n  - name: remote\n    docker: %s\n", addr)
	ver := func(v string) string { return v + "-" + e.id }

	e.writeSpec("v1")
	if _, errOut, err := e.hubctl(e.deployArgs("up")...); err == nil || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "ssh") {
		t.Fatalf("up without the ssh key: %v %q", err, errOut)
	} else {
		t.Logf("without the key: %s", strings.TrimSpace(errOut))
	}
	if left := e.docker("ps", "-aq", "--filter", "label=dev.hubctl.service="+e.service); left != "" {
		t.Fatalf("a refused host left containers: %s", left)
	}

	e.env = []string{"HUBCTL_SSH_CONFIG=" + sshConfig}
	e.mustHubctl(e.deployArgs("up")...)
	if got := e.tasks(); !slices.Equal(got, []string{"1:running:true", "1:running:true"}) {
		t.Fatalf("tasks after up over ssh = %v", got)
	}
	if body, err := loadtest.Get(http.DefaultClient, e.proxyURL()); err != nil || body != ver("v1") {
		t.Fatalf("through the proxy: %q %v", body, err)
	}
	// The containers carry the spec's host name: they were made through the ssh host.
	if hosts := e.docker("ps", "--format", `{{.Label "dev.hubctl.host"}}`, "--filter", "label=dev.hubctl.service="+e.service); !strings.Contains(hosts, "remote") {
		t.Fatalf("host labels %q", hosts)
	}
	e.writeSpec("v2")
	e.mustHubctl(e.deployArgs("update")...)
	if body, err := loadtest.Get(http.DefaultClient, e.proxyURL()); err != nil || body != ver("v2") {
		t.Fatalf("after update over ssh: %q %v", body, err)
	}
	if _, errOut, err := e.hubctl(e.args("logs")...); err != nil || !strings.Contains(errOut, "==> remote/") {
		t.Fatalf("logs over ssh: %v %q", err, errOut)
	}
	e.mustHubctl(e.args("down")...)
	if left := e.docker("ps", "-aq", "--filter", "label=dev.hubctl.service="+e.service); left != "" {
		t.Fatalf("down over ssh left containers: %s", left)
	}
	if recs := e.history(); len(recs) != 2 || recs[0].Outcome != "succeeded" {
		t.Fatalf("history = %+v", recs)
	}
}
